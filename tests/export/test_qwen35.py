"""The exported Qwen3.5 hybrid graph against transformers (fp32, eager), on tiny random shapes.

The tiny shapes (``qwen_edge.export.synth``) cover both checkpoint classes, tied and untied
embeddings, layer counts that are not multiples of 4, GQA ratio 1 and > 1, and odd numbers of
linear-attention heads with value heads sharing key heads.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import GraphRunner, reference_logits

pytestmark = pytest.mark.parity
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

SHAPES = ("tiny-qwen3.5", "tiny-qwen3.5-text", "tiny-qwen3.5-odd")
PROMPT_LEN = 13
DECODE_STEPS = 16
FP32_TOL = 1e-4  # max abs error on logits, fp32 graph vs transformers fp32 eager


def _hf(path):  # type: ignore[no-untyped-def]
    config = json.loads((path / "config.json").read_text())
    cls = getattr(transformers, config["architectures"][0])
    return cls.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()


def _prompt(seed: int = 0, n: int = PROMPT_LEN) -> list[int]:
    return np.random.default_rng(seed).integers(0, 151_000, n).tolist()


def test_text_mrope_equals_plain_rope() -> None:
    """Interleaved mRoPE with the three position axes equal (text) is rotate-half RoPE on the
    first head_dim * partial_rotary_factor dims: transformers' own rotary embedding vs ours."""
    from qwen_edge.export.qwen import rotary_caches
    from qwen_edge.export.synth import SHAPES as ALL

    text = transformers.Qwen3_5TextConfig(**ALL["qwen3.5-0.8b"]["text_config"])
    rope = transformers.models.qwen3_5.modeling_qwen3_5.Qwen3_5TextRotaryEmbedding(text)
    positions = torch.arange(300)[None]
    cos, sin = rope(torch.zeros(1, dtype=torch.float32), positions)
    assert text.rope_parameters["mrope_section"] == [11, 11, 10]
    assert cos.shape[-1] == 64  # 256 * 0.25
    # the same arithmetic as plain RoPE on 64 dims, bit for bit ...
    freqs = positions[0].float()[:, None] * rope.inv_freq
    assert torch.equal(cos[0], torch.cat([freqs.cos()] * 2, -1))
    assert torch.equal(sin[0], torch.cat([freqs.sin()] * 2, -1))
    # ... and our float64 tables agree to transformers' fp32 angle rounding (~position * 1e-7)
    ours_cos, ours_sin = rotary_caches(64, 300, text.rope_parameters["rope_theta"])
    np.testing.assert_allclose(cos[0].numpy(), np.concatenate([ours_cos] * 2, -1), atol=5e-5)
    np.testing.assert_allclose(sin[0].numpy(), np.concatenate([ours_sin] * 2, -1), atol=5e-5)
    # the sections do matter once the axes differ (images): the test is not vacuous
    moved = torch.stack([positions, positions + 7, positions + 3])
    cos_3d, _ = rope(torch.zeros(1, dtype=torch.float32), moved)
    assert not np.allclose(cos_3d[0].numpy(), cos[0].numpy(), atol=1e-3)


@pytest.mark.parametrize("shared", [True, False], ids=["in-place", "fed-back"])
@pytest.mark.parametrize("shape", SHAPES)
def test_fp32_matches_transformers(shape, shared, checkpoint, package):  # type: ignore[no-untyped-def]
    hf = _hf(checkpoint(shape))
    runner = GraphRunner(package(shape, "fp32"), shared=shared)
    ids = _prompt()
    got = runner.forward(ids, num_logits=PROMPT_LEN)
    np.testing.assert_allclose(got, reference_logits(hf, ids), atol=FP32_TOL, rtol=0)
    for _ in range(DECODE_STEPS):  # greedy, one token per step through KV cache and states
        ids.append(int(np.argmax(got[-1])))
        got = runner.forward(ids[-1:], num_logits=1)
        np.testing.assert_allclose(got[0], reference_logits(hf, ids)[-1], atol=FP32_TOL, rtol=0)


def test_chunked_prefill_carries_the_states(package):  # type: ignore[no-untyped-def]
    pkg = package("tiny-qwen3.5", "fp32")
    ids = _prompt(seed=1, n=39)
    whole = GraphRunner(pkg).forward(ids, num_logits=len(ids))
    chunked = GraphRunner(pkg)
    chunked.forward(ids[:2], num_logits=1)  # shorter than the conv kernel
    chunked.forward(ids[2:16], num_logits=1)
    tail = chunked.forward(ids[16:], num_logits=4)
    np.testing.assert_allclose(tail, whole[-4:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", ["tiny-qwen3.5", "tiny-qwen3.5-text"])
def test_manifest_states_and_ignored_parts(shape, checkpoint, package):  # type: ignore[no-untyped-def]
    onnx = pytest.importorskip("onnx")
    from qwen_edge.export.checkpoint import load_checkpoint

    manifest = json.loads((package(shape, "fp32") / "qwen_edge.json").read_text())
    cfg = load_checkpoint(checkpoint(shape)).config
    lin = manifest["shapes"]["linear_attention"]
    assert manifest["shapes"]["layer_types"] == list(cfg.layer_types)
    assert lin["conv_state_shape"] == [1, 2 * cfg.linear.key_dim + cfg.linear.value_dim, 3]
    assert lin["recurrent_state_shape"] == [1, cfg.linear.num_value_heads,
                                            cfg.linear.key_head_dim, cfg.linear.value_head_dim]
    assert lin["state_nbytes_per_layer"] == 4 * (np.prod(lin["conv_state_shape"])
                                                 + np.prod(lin["recurrent_state_shape"]))
    ignored = manifest["ignored_tensors"]
    assert set(ignored) == ({"mtp", "model.visual"} if "text" not in shape else {"mtp"})
    graph = onnx.load(str(package(shape, "fp32") / "model.onnx"), load_external_data=False).graph
    sources = {p.value for i in graph.initializer for p in i.metadata_props}
    names = {i.name for i in graph.initializer} | sources
    assert not any(n.startswith(("mtp.", "model.visual.")) for n in names)
    inputs = {i.name for i in graph.input}
    full = [i for i, t in enumerate(cfg.layer_types) if t == "full_attention"]
    assert {n for n in inputs if n.startswith("past_key_values")} == {
        f"past_key_values.{i}.{kv}" for i in full for kv in ("key", "value")}


def test_synth_checkpoints_have_what_transformers_has(checkpoint) -> None:  # type: ignore[no-untyped-def]
    """Every tensor transformers' model holds is in the synth checkpoint, with its shape; the
    checkpoint's extras are the mtp.* layer that transformers skips on load."""
    from qwen_edge.export.checkpoint import load_checkpoint

    for shape in ("tiny-qwen3.5", "tiny-qwen3.5-text"):
        ckpt = load_checkpoint(checkpoint(shape))
        with torch.device("meta"):
            config = transformers.AutoConfig.from_pretrained(checkpoint(shape))
            model = getattr(transformers, config.architectures[0])(config)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        if ckpt.config.tie_word_embeddings:
            expected.pop("lm_head.weight")
        assert {n: ckpt.shape(n) for n in expected} == expected
        assert {n for n in ckpt.names() if n not in expected} == {
            n for n in ckpt.names() if n.startswith("mtp.")}


def test_export_uses_the_checkpoints_own_tokenizer(checkpoint, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from qwen_edge.errors import TokenizerError
    from qwen_edge.export import ExportConfig, export_model

    src = tmp_path / "ckpt"
    shutil.copytree(checkpoint("tiny-qwen3.5-text"), src)
    tok = json.loads((src / "tokenizer.json").read_text())
    tok["added_tokens"].append({"id": 151669, "content": "<|marker|>", "single_word": False,
                                "lstrip": False, "rstrip": False, "normalized": False,
                                "special": True})
    (src / "tokenizer.json").write_text(json.dumps(tok))
    pkg = export_model(src, tmp_path / "pkg", ExportConfig(quant="fp32", max_context=64)).path
    assert json.loads((pkg / "tokenizer.json").read_text()) == tok
    assert json.loads((pkg / "qwen_edge.json").read_text())["tokenizer"]["special_tokens"][
        "<|marker|>"] == 151669
    (src / "tokenizer.json").unlink()
    with pytest.raises(TokenizerError, match="cannot be built offline"):
        export_model(src, tmp_path / "pkg2", ExportConfig(quant="fp32", max_context=64))


# Quantized logits vs fp32 on a 64-token random prompt, tiny shapes, measured (seed 2):
# int8 min cosine 0.9976 / 0.9974, relative error 3.7 % / 3.0 % (tiny-qwen3.5 / -text);
# int4 (default: symmetric, searched scales, block 32) min cosine 0.726 / 0.842, relative error
# 42 % / 34 %. The linear-attention layers amplify weight noise more than full attention on
# random weights (2-layer variants: int4 cosine 0.913 all-linear vs 0.983 all-full); the
# real-shape numbers are in test_quantized_at_real_shape.
QUANT_LIMITS = {"int8": (0.995, 0.06), "int4": (0.65, 0.5)}  # (min cosine, max rel error)


def _closeness(ref: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    cosine = (got * ref).sum(-1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(ref, axis=-1))
    return float(cosine.min()), float(np.linalg.norm(got - ref) / np.linalg.norm(ref))


@pytest.mark.parametrize("quant", ["int8", "int4"])
@pytest.mark.parametrize("shape", ["tiny-qwen3.5", "tiny-qwen3.5-text"])
def test_quantized_close_to_fp32(shape, quant, package):  # type: ignore[no-untyped-def]
    ids = _prompt(seed=2, n=64)
    ref = GraphRunner(package(shape, "fp32")).forward(ids, num_logits=len(ids))
    got = GraphRunner(package(shape, quant)).forward(ids, num_logits=len(ids))
    cosine, rel = _closeness(ref, got)
    min_cos, max_rel = QUANT_LIMITS[quant]
    assert cosine >= min_cos, cosine
    assert rel <= max_rel, rel


# Real shape qwen3.5-0.8b (random bf16 weights, seed 0; one 64-token random prompt, all
# positions), measured: int8 min cosine 0.900, relative error 36 %; int4 min cosine 0.165,
# relative error 123 %. Far worse than qwen2.5-0.5b at the same settings (int8 0.9991 / 3.7 %,
# int4 0.814 / 55 %, test_real_shapes.py): a known problem, not understood yet. On a 4-layer
# all-linear tiny model, keeping in_proj_qkv|z in fp32 lifts int4 from cosine 0.76 to 0.91
# (out_proj, MLP, embedding/head: 0.75-0.79); at qwen3.5-0.8b, int4 on the linear-attention
# layers alone gives 0.18, on everything else alone 0.21, int4 with in_proj_qkv|z at int8
# 0.17: every int4 perturbation decorrelates the random network; in transformers, 0.5 %
# Gaussian noise on every linear weight alone moves the logits by 20 % (docs/qwen35.md). REAL_LIMITS guard against regressions from the measured values;
# test_quantized_at_real_shape_meets_the_qwen25_bar records the target (xfail until met).
REAL_LIMITS = {"int8": (0.85, 0.45), "int4": (0.1, 1.4)}  # (min cosine, max relative error)
QWEN25_BAR = {"int8": (0.998, 0.06), "int4": (0.75, 0.65)}  # test_real_shapes.py's limits


def _real_shape_closeness(quant: str) -> tuple[float, float]:
    """Export qwen3.5-0.8b once per machine (cached in the temp dir: ~10 min, 6 GB)."""
    import tempfile
    from pathlib import Path

    from qwen_edge.export import ExportConfig, export_model
    from qwen_edge.export.synth import synth_checkpoint

    root = Path(tempfile.gettempdir()) / "qwen-edge-qwen35-real"
    ckpt = root / "ckpt"
    if not (ckpt / "config.json").exists():
        synth_checkpoint("qwen3.5-0.8b", ckpt, seed=0, dtype="bfloat16", force=True)
    for q in ("fp32", quant):
        if not (root / q / "qwen_edge.json").exists():
            export_model(ckpt, root / q, ExportConfig(quant=q, max_context=128), force=True)
    ids = _prompt(seed=0, n=64)
    ref = GraphRunner(root / "fp32", max_context=128).forward(ids, num_logits=len(ids))
    got = GraphRunner(root / quant, max_context=128).forward(ids, num_logits=len(ids))
    return _closeness(ref, got)


@pytest.mark.slow
@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_quantized_at_real_shape(quant):  # type: ignore[no-untyped-def]
    cosine, rel = _real_shape_closeness(quant)
    min_cos, max_rel = REAL_LIMITS[quant]
    assert cosine >= min_cos, cosine
    assert rel <= max_rel, rel


@pytest.mark.slow
@pytest.mark.xfail(reason="known problem: Qwen3.5 quantizes far worse than Qwen2.5 on random "
                          "weights (see REAL_LIMITS)")
@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_quantized_at_real_shape_meets_the_qwen25_bar(quant):  # type: ignore[no-untyped-def]
    cosine, rel = _real_shape_closeness(quant)
    min_cos, max_rel = QWEN25_BAR[quant]
    assert cosine >= min_cos, cosine
    assert rel <= max_rel, rel


@pytest.mark.slow
def test_fp32_matches_transformers_at_real_shape() -> None:
    """qwen3.5-0.8b (head_dim 256, 64 rotary dims, 16 x 128 linear heads): measured max abs
    error 5.1e-5 over a 16-token prefill."""
    import tempfile
    from pathlib import Path

    _real_shape_closeness("int8")  # builds (or reuses) the checkpoint and the fp32 package
    root = Path(tempfile.gettempdir()) / "qwen-edge-qwen35-real"
    ids = _prompt(seed=0, n=16)
    got = GraphRunner(root / "fp32", max_context=128).forward(ids, num_logits=len(ids))
    np.testing.assert_allclose(got, reference_logits(_hf(root / "ckpt"), ids), atol=FP32_TOL,
                               rtol=0)

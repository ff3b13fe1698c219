"""qwen_edge.export.synth: published shapes, random-weight checkpoints, and that both
transformers and load_checkpoint read them.

Most tests swap in a no-op for ``write_tokenizer_files`` (building the real tokenizer takes
seconds); the ``real`` fixture writes the real one and checks it.
"""

from __future__ import annotations

import hashlib
import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from qwen_edge.errors import ConfigError, OutputExistsError
from qwen_edge.export import tokenizer as tokenizer_module
from qwen_edge.export.checkpoint import load_checkpoint
from qwen_edge.export.hf_config import QwenConfig, expected_tensors
from qwen_edge.export.synth import SHAPES, synth_checkpoint

REAL_SHAPES = ["qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b", "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b"]
TINY_SHAPES = ["tiny-qwen2", "tiny-qwen2-untied", "tiny-qwen3", "tiny-qwen3-mha"]

# The numbers the model cards and config.json files publish: hidden, layers, q heads, kv heads,
# intermediate, head_dim, max positions, rope_theta, and the parameter counts as the model
# cards print them (total, and without the embedding).
DOCUMENTED = {
    "qwen2.5-0.5b": ("Qwen2ForCausalLM", 896, 24, 14, 2, 4864, 64, 32768, 1e6, "0.49B", "0.36B"),
    "qwen2.5-1.5b": ("Qwen2ForCausalLM", 1536, 28, 12, 2, 8960, 128, 32768, 1e6, "1.54B", "1.31B"),
    "qwen2.5-3b": ("Qwen2ForCausalLM", 2048, 36, 16, 2, 11008, 128, 32768, 1e6, "3.09B", "2.77B"),
    "qwen3-0.6b": ("Qwen3ForCausalLM", 1024, 28, 16, 8, 3072, 128, 40960, 1e6, "0.6B", "0.44B"),
    "qwen3-1.7b": ("Qwen3ForCausalLM", 2048, 28, 16, 8, 6144, 128, 40960, 1e6, "1.7B", "1.4B"),
    "qwen3-4b": ("Qwen3ForCausalLM", 2560, 36, 32, 8, 9728, 128, 40960, 1e6, "4.0B", "3.6B"),
}


def as_card(params: int, like: str) -> str:
    """params printed the way the model card prints ``like`` ("0.49B", "4.0B")."""
    decimals = len(like.removesuffix("B").split(".")[1])
    return f"{params / 1e9:.{decimals}f}B"


class TokenizerCalls(list[tuple[Path, str]]):
    """Records write_tokenizer_files(out_dir, variant) calls instead of building a tokenizer."""

    def __call__(self, out_dir: Any, variant: str = "qwen2.5") -> None:
        self.append((Path(out_dir), variant))


@pytest.fixture
def no_tokenizer(monkeypatch: pytest.MonkeyPatch) -> TokenizerCalls:
    calls = TokenizerCalls()
    monkeypatch.setattr(tokenizer_module, "write_tokenizer_files", calls)
    return calls


@pytest.fixture(scope="module")
def weights_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A module-wide folder of synth checkpoints without tokenizer files."""
    root = tmp_path_factory.mktemp("synth")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tokenizer_module, "write_tokenizer_files", TokenizerCalls())
        for shape in TINY_SHAPES:
            synth_checkpoint(shape, root / shape)
        synth_checkpoint("tiny-qwen2", root / "tiny-qwen2-f32", dtype="float32")
        synth_checkpoint("tiny-qwen2", root / "tiny-qwen2-f16", dtype="float16")
        synth_checkpoint("tiny-qwen2", root / "tiny-qwen2-sharded", max_shard_bytes=60_000)
    return root


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-qwen2 and tiny-qwen3 with the real tokenizer files."""
    root = tmp_path_factory.mktemp("synth-real")
    synth_checkpoint("tiny-qwen2", root / "tiny-qwen2")
    synth_checkpoint("tiny-qwen3", root / "tiny-qwen3")
    return root


# -- shapes -------------------------------------------------------------------------------


QWEN35_REAL = ["qwen3.5-0.8b", "qwen3.5-2b", "qwen3.5-4b"]
QWEN35_TINY = ["tiny-qwen3.5", "tiny-qwen3.5-text", "tiny-qwen3.5-odd"]


def test_shape_names() -> None:
    assert list(SHAPES) == REAL_SHAPES + TINY_SHAPES + QWEN35_REAL + QWEN35_TINY


# Qwen3.5 text configs as the cited sources give them (export/synth.py): hidden, layers,
# heads, kv heads, intermediate, linear key heads, linear value heads, vision depth / hidden.
QWEN35_DOCUMENTED = {
    "qwen3.5-0.8b": (1024, 24, 8, 2, 3584, 16, 16, 12, 768),
    "qwen3.5-2b": (2048, 24, 8, 2, 6144, 16, 16, 24, 1024),
    "qwen3.5-4b": (2560, 32, 16, 4, 9216, 16, 32, 24, 1024),
}


@pytest.mark.parametrize("shape", QWEN35_REAL)
def test_qwen35_shapes_match_the_published_numbers(shape: str) -> None:
    raw = SHAPES[shape]
    cfg = QwenConfig.from_dict(raw)
    assert cfg.linear is not None
    hidden, layers, heads, kv, inter, k_heads, v_heads, depth, v_hidden = QWEN35_DOCUMENTED[shape]
    assert raw["architectures"] == ["Qwen3_5ForConditionalGeneration"]
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size) == (hidden, layers, inter)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (heads, kv, 256)
    assert (cfg.linear.num_key_heads, cfg.linear.num_value_heads) == (k_heads, v_heads)
    assert (cfg.linear.key_head_dim, cfg.linear.value_head_dim, cfg.linear.conv_kernel) == (
        128, 128, 4)
    assert cfg.layer_types == ("linear_attention",) * 3 + ("full_attention",) + cfg.layer_types[4:]
    assert cfg.full_attention_layers == tuple(range(3, layers, 4))
    assert (cfg.vocab_size, cfg.rope_theta, cfg.partial_rotary_factor) == (248320, 1e7, 0.25)
    assert cfg.tie_word_embeddings
    assert cfg.norm_offset
    assert cfg.prefix == "model.language_model."
    assert (raw["vision_config"]["depth"], raw["vision_config"]["hidden_size"]) == (depth, v_hidden)
    assert raw["text_config"]["rope_parameters"]["mrope_section"] == [11, 11, 10]


@pytest.mark.parametrize("shape", REAL_SHAPES)
def test_real_shapes_match_the_published_numbers(shape: str) -> None:
    arch, hidden, layers, heads, kv, inter, head_dim, positions, theta, total, body = DOCUMENTED[
        shape
    ]
    raw = SHAPES[shape]
    cfg = QwenConfig.from_dict(raw)
    assert raw["architectures"] == [arch]
    assert (cfg.hidden_size, cfg.num_hidden_layers) == (hidden, layers)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads) == (heads, kv)
    assert cfg.intermediate_size == inter
    assert cfg.head_dim == head_dim
    assert cfg.vocab_size == raw["vocab_size"] == 151936
    assert cfg.max_position_embeddings == positions
    assert cfg.rope_theta == theta
    assert cfg.rms_norm_eps == 1e-6
    assert cfg.tie_word_embeddings is True
    assert raw["torch_dtype"] == "bfloat16"
    assert raw["bos_token_id"] == 151643
    assert raw["eos_token_id"] == 151645
    assert raw["use_sliding_window"] is False
    if arch == "Qwen3ForCausalLM":
        assert raw["head_dim"] == 128
        assert raw["attention_bias"] is False
        assert raw["transformers_version"] == "4.51.0"
        assert raw["rope_theta"] == 1000000
    else:
        assert "head_dim" not in raw  # derived: hidden / heads
        assert raw["transformers_version"] == "4.43.1"
        assert raw["rope_theta"] == 1000000.0
    params = sum(math.prod(s) for s in expected_tensors(cfg).values())
    assert as_card(params, total) == total
    assert as_card(params - cfg.vocab_size * cfg.hidden_size, body) == body  # tied: one matrix


def test_qwen2_5_0_5b_exact_parameter_count() -> None:
    """494,032,768: the figure every Qwen2.5-0.5B loader prints."""
    cfg = QwenConfig.from_dict(SHAPES["qwen2.5-0.5b"])
    assert sum(math.prod(s) for s in expected_tensors(cfg).values()) == 494_032_768


@pytest.mark.parametrize("shape", TINY_SHAPES)
def test_tiny_shapes(shape: str) -> None:
    cfg = QwenConfig.from_dict(SHAPES[shape])
    assert cfg.vocab_size == 151936  # the real tokenizer works
    assert cfg.num_hidden_layers == 2
    assert cfg.hidden_size == 64
    assert cfg.intermediate_size % 32 != 0  # quantization blocks must pad
    params = sum(math.prod(s) for s in expected_tensors(cfg).values())
    assert params < 25_000_000


def test_tiny_shapes_cover_the_variants() -> None:
    cfgs = {s: QwenConfig.from_dict(SHAPES[s]) for s in TINY_SHAPES}
    q2, q2u, q3, mha = (cfgs[s] for s in TINY_SHAPES)
    assert (q2.architecture, q2.num_attention_heads, q2.num_key_value_heads) == (
        "Qwen2ForCausalLM",
        4,
        2,
    )
    assert q2.tie_word_embeddings
    assert not q2u.tie_word_embeddings
    assert q3.architecture == "Qwen3ForCausalLM"
    assert q3.qk_norm
    assert q3.head_dim == 32 != q3.hidden_size // q3.num_attention_heads
    assert mha.num_attention_heads == mha.num_key_value_heads


# -- writing ------------------------------------------------------------------------------


def test_writes_the_published_config(tmp_path: Path, no_tokenizer: TokenizerCalls) -> None:
    small = {"num_hidden_layers": 1, "vocab_size": 64, "intermediate_size": 96}
    out = synth_checkpoint("qwen3-0.6b", tmp_path / "q", overrides=small, dtype="float16")
    text = (out / "config.json").read_text()
    written = json.loads(text)
    assert written == {**SHAPES["qwen3-0.6b"], **small, "torch_dtype": "float16"}
    assert list(written) == sorted(written)  # as the published files: sorted, indent 2
    assert '\n  "architectures": [\n    "Qwen3ForCausalLM"\n  ],' in text
    assert json.loads((out / "generation_config.json").read_text()) == {
        "bos_token_id": 151643,
        "do_sample": True,
        "eos_token_id": [151645, 151643],
        "pad_token_id": 151643,
        "temperature": 0.6,
        "top_k": 20,
        "top_p": 0.95,
        "transformers_version": "4.51.0",
    }
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "generation_config.json",
        "model.safetensors",
    ]
    assert no_tokenizer == [(no_tokenizer[0][0], "qwen3")]
    ckpt = load_checkpoint(out)
    ckpt.validate()
    assert ckpt.config.num_hidden_layers == 1
    assert {ckpt.dtype(n) for n in ckpt.names()} == {"F16"}


@pytest.mark.parametrize(
    ("shape", "repetition_penalty", "variant"),
    [
        ("qwen2.5-0.5b", 1.1, "qwen2.5"),
        ("qwen2.5-1.5b", 1.1, "qwen2.5"),
        ("qwen2.5-3b", 1.05, "qwen2.5"),
        ("tiny-qwen2-untied", 1.1, "qwen2.5"),
    ],
)
def test_qwen2_5_generation_config(
    tmp_path: Path,
    no_tokenizer: TokenizerCalls,
    shape: str,
    repetition_penalty: float,
    variant: str,
) -> None:
    heads = SHAPES[shape]["num_attention_heads"]
    small = {
        "num_hidden_layers": 1,
        "vocab_size": 64,
        "hidden_size": 4 * heads,
        "intermediate_size": 40,
    }
    out = synth_checkpoint(shape, tmp_path / "q", overrides=small)
    assert json.loads((out / "generation_config.json").read_text()) == {
        "bos_token_id": 151643,
        "pad_token_id": 151643,
        "do_sample": True,
        "eos_token_id": [151645, 151643],
        "repetition_penalty": repetition_penalty,
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
        "transformers_version": "4.37.0",
    }
    assert no_tokenizer[0][1] == variant
    assert load_checkpoint(out).generation_config["eos_token_id"] == [151645, 151643]


@pytest.mark.parametrize("shape", TINY_SHAPES)
def test_tiny_checkpoints_load_and_validate(weights_only: Path, shape: str) -> None:
    ckpt = load_checkpoint(weights_only / shape)
    ckpt.validate()
    assert ckpt.config == QwenConfig.from_dict(SHAPES[shape])
    assert ckpt.names() == sorted(expected_tensors(ckpt.config))
    assert {ckpt.dtype(n) for n in ckpt.names()} == {"BF16"}
    assert (weights_only / shape / "model.safetensors").stat().st_size == 8 + len(
        _header_bytes(weights_only / shape / "model.safetensors")
    ) + 2 * sum(math.prod(ckpt.shape(n)) for n in ckpt.names())


def _header_bytes(file: Path) -> bytes:
    raw = file.read_bytes()[:100_000]
    return raw[8 : 8 + int.from_bytes(raw[:8], "little")]


def test_header_is_aligned_and_tagged(weights_only: Path) -> None:
    header = _header_bytes(weights_only / "tiny-qwen2" / "model.safetensors")
    assert len(header) % 8 == 0
    assert json.loads(header)["__metadata__"] == {"format": "pt"}


def test_distributions(weights_only: Path) -> None:
    """matrices N(0, 0.02); norms 1 + N(0, 0.1); biases N(0, 0.02): all nonzero and random."""
    ckpt = load_checkpoint(weights_only / "tiny-qwen2-f32")
    embed = ckpt.tensor("model.embed_tokens.weight")
    assert abs(embed.mean()) < 1e-4
    assert abs(embed.std() - 0.02) < 1e-4
    norms = np.concatenate([ckpt.tensor(n) for n in ckpt.names() if n.endswith("norm.weight")])
    assert abs(norms.mean() - 1.0) < 0.02
    assert abs(norms.std() - 0.1) < 0.02
    biases = np.concatenate([ckpt.tensor(n) for n in ckpt.names() if n.endswith(".bias")])
    assert abs(biases.std() - 0.02) < 0.004
    assert np.all(biases != 0)
    assert len(np.unique(ckpt.tensor("model.layers.0.self_attn.q_proj.bias"))) == 64


def test_dtypes_are_one_draw_rounded(weights_only: Path) -> None:
    """bf16 / f16 checkpoints hold the float32 checkpoint's values, rounded to nearest."""
    f32 = load_checkpoint(weights_only / "tiny-qwen2-f32")
    bf16 = load_checkpoint(weights_only / "tiny-qwen2")
    f16 = load_checkpoint(weights_only / "tiny-qwen2-f16")
    for name in f32.names():
        x = f32.tensor(name)
        np.testing.assert_array_equal(
            bf16.tensor(name), x.astype(ml_dtypes.bfloat16).astype(np.float32)
        )
        np.testing.assert_array_equal(f16.tensor(name), x.astype(np.float16).astype(np.float32))


def test_sharded_equals_unsharded(weights_only: Path) -> None:
    folder = weights_only / "tiny-qwen2-sharded"
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = sorted(p.name for p in folder.glob("*.safetensors"))
    assert len(shards) > 2
    assert shards == [
        f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)
    ]
    assert sorted(set(index["weight_map"].values())) == shards
    assert not (folder / "model.safetensors").exists()

    sharded, single = load_checkpoint(folder), load_checkpoint(weights_only / "tiny-qwen2")
    sharded.validate()
    assert index["metadata"]["total_size"] == sum(single.nbytes(n) for n in single.names())
    assert sharded.names() == single.names()
    for name in single.names():
        np.testing.assert_array_equal(sharded.tensor(name), single.tensor(name))
    for shard in shards:  # a shard holds at most max_shard_bytes, unless one tensor is bigger
        names = [n for n, f in index["weight_map"].items() if f == shard]
        size = sum(sharded.nbytes(n) for n in names)
        assert size <= 60_000 or len(names) == 1


@pytest.mark.usefixtures("no_tokenizer")
def test_same_seed_same_bytes_other_seed_other_values(tmp_path: Path, weights_only: Path) -> None:
    again = synth_checkpoint("tiny-qwen2", tmp_path / "again")
    other = synth_checkpoint("tiny-qwen2", tmp_path / "other", seed=1)

    def digest(folder: Path) -> str:
        return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()

    assert digest(again) == digest(weights_only / "tiny-qwen2")
    assert digest(other) != digest(again)
    name = "model.layers.1.mlp.down_proj.weight"
    assert not np.array_equal(
        load_checkpoint(other).tensor(name), load_checkpoint(again).tensor(name)
    )


def test_values_depend_on_the_tensor_name_only(weights_only: Path) -> None:
    """Tied and untied share every tensor they both have (streams are seeded per name)."""
    tied = load_checkpoint(weights_only / "tiny-qwen2")
    untied = load_checkpoint(weights_only / "tiny-qwen2-untied")
    assert set(untied.names()) - set(tied.names()) == {"lm_head.weight"}
    for name in tied.names():
        np.testing.assert_array_equal(tied.tensor(name), untied.tensor(name))
    assert not np.array_equal(
        untied.tensor("lm_head.weight"), untied.tensor("model.embed_tokens.weight")
    )


# -- errors and the output folder ---------------------------------------------------------


def test_unknown_shape_lists_the_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        synth_checkpoint("qwen9-70b", tmp_path / "x")
    for name in SHAPES:
        assert name in str(info.value)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"dtype": "int8"}, "dtype='int8'"),
        ({"seed": -1}, "seed=-1"),
        ({"max_shard_bytes": 0}, "max_shard_bytes=0"),
        ({"overrides": {"num_key_value_heads": 3}}, "num_key_value_heads=3"),
        ({"overrides": {"architectures": ["LlamaForCausalLM"]}}, "LlamaForCausalLM"),
        ({"overrides": {"rope_scaling": {"type": "yarn", "factor": 4.0}}}, "yarn"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        synth_checkpoint("tiny-qwen2", tmp_path / "x", **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("no_tokenizer")
def test_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(OutputExistsError, match="force=True"):
        synth_checkpoint("tiny-qwen3", out)
    assert (out / "keep.txt").read_text() == "precious"

    synth_checkpoint("tiny-qwen3", out, force=True)
    assert not (out / "keep.txt").exists()
    load_checkpoint(out).validate()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left


@pytest.mark.usefixtures("no_tokenizer")
def test_existing_file_as_output(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(OutputExistsError):
        synth_checkpoint("tiny-qwen3", tmp_path / "out")


@pytest.mark.usefixtures("no_tokenizer")
def test_empty_existing_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    synth_checkpoint("tiny-qwen3", tmp_path / "out")
    load_checkpoint(tmp_path / "out").validate()


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(out_dir: Any, _variant: str = "qwen2.5") -> None:
        (Path(out_dir) / "tokenizer.json").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(tokenizer_module, "write_tokenizer_files", broken)
    with pytest.raises(OSError, match="disk full"):
        synth_checkpoint("tiny-qwen2", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


# -- the real tokenizer -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "marker"),
    [("tiny-qwen2", "You are Qwen, created by Alibaba"), ("tiny-qwen3", "<think>")],
)
def test_real_tokenizer_files(real: Path, shape: str, marker: str) -> None:
    ckpt = load_checkpoint(real / shape)
    ckpt.validate()
    assert ckpt.tokenizer_json == real / shape / "tokenizer.json"
    assert ckpt.chat_template is not None
    assert "<|im_start|>" in ckpt.chat_template
    assert marker in ckpt.chat_template
    assert ckpt.tokenizer_config["eos_token"] == "<|im_end|>"
    vocab = json.loads(ckpt.tokenizer_json.read_text())
    ids = [t["id"] for t in vocab["added_tokens"]]
    assert max(ids) < ckpt.config.vocab_size  # every token has an embedding row


# -- parity with transformers -------------------------------------------------------------


def _transformers_model(folder: Path) -> tuple[Any, dict[str, Any]]:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32, output_loading_info=True
    )
    return model, info


@pytest.mark.parity
@pytest.mark.parametrize(
    "folder", [*TINY_SHAPES, "tiny-qwen2-f32", "tiny-qwen2-f16", "tiny-qwen2-sharded"]
)
def test_transformers_loads_synth_checkpoints(weights_only: Path, folder: str) -> None:
    model, info = _transformers_model(weights_only / folder)
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    ckpt = load_checkpoint(weights_only / folder)
    cfg = ckpt.config
    assert type(model).__name__ == cfg.architecture
    assert model.config.num_key_value_heads == cfg.num_key_value_heads
    assert model.config.tie_word_embeddings is cfg.tie_word_embeddings
    state = model.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        **expected_tensors(cfg),
        "lm_head.weight": (cfg.vocab_size, cfg.hidden_size),
    }
    for name in ckpt.names():
        np.testing.assert_array_equal(ckpt.tensor(name), state[name].numpy(), err_msg=name)
    if cfg.tie_word_embeddings:
        np.testing.assert_array_equal(
            state["lm_head.weight"].numpy(), ckpt.tensor("model.embed_tokens.weight")
        )


@pytest.mark.parity
def test_transformers_loads_the_real_tokenizer(real: Path) -> None:
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(real / "tiny-qwen3")
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|im_end|>"


# -- a real shape -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("no_tokenizer")
def test_qwen2_5_0_5b_streams_to_disk(tmp_path: Path) -> None:
    """988 MB of bf16 written with a few tens of MB of numpy memory, and read back valid."""
    tracemalloc.start()
    try:
        out = synth_checkpoint("qwen2.5-0.5b", tmp_path / "q")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (out / "model.safetensors").stat().st_size > 988_000_000
    assert peak < 64 * 2**20  # one 4M-value chunk in fp32 + its bf16 copy, not the model
    ckpt = load_checkpoint(out)
    ckpt.validate()
    assert ckpt.config.hidden_size == 896
    assert ckpt.config.num_hidden_layers == 24
    embed = ckpt.tensor("model.embed_tokens.weight")
    assert embed.shape == (151936, 896)
    assert abs(float(embed.std()) - 0.02) < 1e-4


@pytest.mark.slow
@pytest.mark.parity
def test_qwen2_5_0_5b_loads_in_transformers(tmp_path: Path) -> None:
    out = synth_checkpoint("qwen2.5-0.5b", tmp_path / "q")  # with the real tokenizer
    model, info = _transformers_model(out)
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert sum(p.numel() for p in model.parameters()) == 494_032_768
    ckpt = load_checkpoint(out)
    state = model.state_dict()
    for name in (
        "model.layers.23.self_attn.k_proj.bias",
        "model.layers.0.mlp.down_proj.weight",
        "model.norm.weight",
    ):
        np.testing.assert_array_equal(ckpt.tensor(name), state[name].numpy(), err_msg=name)

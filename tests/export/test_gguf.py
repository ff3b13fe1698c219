"""GGUF import: files written by the gguf package's own GGUFWriter from tiny random checkpoints.

The reference for every GGUF is the safetensors checkpoint it was written from, exported the
normal way: the same weights must give the same logits (exactly for float32 tensors; for
quantized tensors, exactly the logits of the dequantized weights, and within the quantization
error of the original ones).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from helpers import GraphRunner

from qwen_edge.errors import CheckpointError, UnsupportedArchitectureError
from qwen_edge.export import ExportConfig, export_model
from qwen_edge.export.checkpoint import load_checkpoint
from qwen_edge.export.gguf import is_gguf, load_gguf, write_hf_checkpoint

Q = gguf.GGMLQuantizationType
PROMPT = [9707, 1879, 11, 1246, 525, 498, 30, 151645, 198, 151644]  # "Hello world, how are you?"...
FP32 = ExportConfig(quant="fp32", max_context=64)

_LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_GLOBAL = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight":
           "output_norm.weight", "lm_head.weight": "output.weight"}


def _gguf_name(name: str) -> str:
    if name in _GLOBAL:
        return _GLOBAL[name]
    _, _, i, rest = name.split(".", 3)
    return f"blk.{i}.{_LAYER[rest]}"


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute: HF rotate-half rows -> interleaved pairs."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
        w.shape)


def write_gguf(ckpt_dir: Path, out: Path, *, qtype: int = Q.F32, arch: str | None = None,
               tensor_type: dict[str, np.ndarray] | None = None) -> Path:
    """A GGUF of the checkpoint, laid out as llama.cpp's convert_hf_to_gguf.py does.

    ``qtype`` quantizes every matrix whose rows are a whole number of blocks (the others stay
    F32, as llama.cpp falls back); ``arch="llama"`` drops the q/k/v biases and permutes q/k.
    ``tensor_type`` replaces tensors (by GGUF name) with arrays written as they are.
    """
    ckpt = load_checkpoint(ckpt_dir)
    c, raw = ckpt.config, ckpt.raw_config
    arch = arch or c.model_type
    w = gguf.GGUFWriter(out, arch)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(c.rope_theta)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    if c.model_type == "qwen3":
        w.add_key_length(c.head_dim)
        w.add_value_length(c.head_dim)
    tok = json.loads((ckpt_dir / "tokenizer.json").read_text())
    vocab = {**tok["model"]["vocab"], **{t["content"]: t["id"] for t in tok["added_tokens"]}}
    special = {t["id"]: t["special"] for t in tok["added_tokens"]}
    by_id = {i: s for s, i in vocab.items()}
    tokens, types = [], []
    for i in range(c.vocab_size):
        tokens.append(by_id.get(i, f"[PAD{i}]"))
        types.append(1 if i in by_id and i not in special else
                     3 if special.get(i) else 4 if i in special else 5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    merges = tok["model"]["merges"]
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    w.add_bos_token_id(151643)
    w.add_eos_token_id(151645)
    w.add_chat_template(json.loads((ckpt_dir / "tokenizer_config.json").read_text())
                        ["chat_template"])
    replaced = tensor_type or {}
    for name in ckpt.names():
        if arch == "llama" and name.endswith(".bias"):
            continue
        t = ckpt.tensor(name)
        if arch == "llama" and name.endswith(("q_proj.weight", "k_proj.weight")):
            heads = c.num_attention_heads if "q_proj" in name else c.num_key_value_heads
            t = _permute(t, heads)
        gname = _gguf_name(name)
        if gname in replaced:
            w.add_tensor(gname, replaced[gname])
        elif qtype != Q.F32 and t.ndim == 2 and t.shape[1] % gguf.GGML_QUANT_SIZES[qtype][0] == 0:
            w.add_tensor(gname, gguf.quants.quantize(t, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(gname, t)
    del raw
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def _logits(pkg: Path) -> np.ndarray:
    return GraphRunner(pkg, max_context=64).forward(PROMPT, num_logits=len(PROMPT))


@pytest.fixture(scope="module")
def reference(checkpoint, tmp_path_factory):  # type: ignore[no-untyped-def]
    """reference(shape) -> logits of the fp32 export of the safetensors checkpoint."""
    cache: dict[str, np.ndarray] = {}

    def make(shape: str) -> np.ndarray:
        if shape not in cache:
            out = tmp_path_factory.mktemp("ref") / shape
            cache[shape] = _logits(export_model(checkpoint(shape), out, FP32).path)
        return cache[shape]

    return make


@pytest.mark.parametrize("shape", ["tiny-qwen2", "tiny-qwen2-untied", "tiny-qwen3"])
def test_fp32_gguf_exports_exactly_like_the_safetensors(checkpoint, reference, tmp_path,
                                                        shape):  # type: ignore[no-untyped-def]
    src = write_gguf(checkpoint(shape), tmp_path / "m.gguf")
    assert is_gguf(src)
    ckpt = load_gguf(src)
    assert ckpt.config == load_checkpoint(checkpoint(shape)).config
    logits = _logits(export_model(src, tmp_path / "pkg", FP32).path)
    np.testing.assert_array_equal(logits, reference(shape))


def _dequantized_checkpoint(ckpt_dir: Path, gguf_file: Path, out: Path) -> Path:
    """The checkpoint folder with every tensor replaced by gguf's own dequantization of it."""
    from safetensors.numpy import save_file

    reader = gguf.GGUFReader(gguf_file)
    by_name = {t.name: t for t in reader.tensors}
    ckpt = load_checkpoint(ckpt_dir)
    weights = {}
    for name in ckpt.names():
        t = by_name[_gguf_name(name)]
        weights[name] = gguf.quants.dequantize(t.data, t.tensor_type).reshape(ckpt.shape(name))
    shutil.copytree(ckpt_dir, out)
    for f in out.glob("*.safetensors*"):
        f.unlink()
    save_file(weights, str(out / "model.safetensors"))
    return out


def _rms_relative(logits: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sqrt(((logits - ref) ** 2).mean() / (ref**2).mean()))


# RMS logit error relative to the unquantized weights' logits that each type's rounding may
# cause in this 2-layer random model (measured, seed 0: Q8_0 0.9 %, Q4_0 15 %, Q4_1 12 %;
# the bounds leave room, and a wrong dequantization or tensor layout is far above them).
@pytest.mark.parametrize(("qtype", "bound"), [(Q.Q8_0, 0.03), (Q.Q4_0, 0.35), (Q.Q4_1, 0.35)])
def test_quantized_gguf_matches_its_dequantized_weights(checkpoint, reference, tmp_path, qtype,
                                                        bound):  # type: ignore[no-untyped-def]
    ckpt_dir = checkpoint("tiny-qwen2")
    src = write_gguf(ckpt_dir, tmp_path / "m.gguf", qtype=qtype)
    ckpt = load_gguf(src)
    quantized = [n for n in ckpt.names() if ckpt.dtype(n) == qtype.name]
    assert len(quantized) >= 7  # q/k/v/o/gate/up of both layers and the embedding
    logits = _logits(export_model(src, tmp_path / "pkg", FP32).path)
    same = _dequantized_checkpoint(ckpt_dir, src, tmp_path / "deq")
    np.testing.assert_array_equal(logits, _logits(export_model(same, tmp_path / "p2", FP32).path))
    assert 0 < _rms_relative(logits, reference("tiny-qwen2")) < bound


def test_quantized_gguf_exports_to_int4_like_its_dequantized_weights(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    ckpt_dir = checkpoint("tiny-qwen2")
    src = write_gguf(ckpt_dir, tmp_path / "m.gguf", qtype=Q.Q4_1)
    int4 = ExportConfig(quant="int4", max_context=64)
    logits = _logits(export_model(src, tmp_path / "pkg", int4).path)
    same = _dequantized_checkpoint(ckpt_dir, src, tmp_path / "deq")
    np.testing.assert_array_equal(logits, _logits(export_model(same, tmp_path / "p2", int4).path))


def _zero_biases(ckpt_dir: Path, out: Path) -> Path:
    from safetensors.numpy import save_file

    ckpt = load_checkpoint(ckpt_dir)
    weights = {n: ckpt.tensor(n) * (0 if n.endswith(".bias") else 1) for n in ckpt.names()}
    shutil.copytree(ckpt_dir, out)
    for f in out.glob("*.safetensors*"):
        f.unlink()
    save_file(weights, str(out / "model.safetensors"))
    return out


def test_llama_layout_gguf_is_qwen2_without_biases(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    unbiased = _zero_biases(checkpoint("tiny-qwen2"), tmp_path / "ckpt")
    src = write_gguf(unbiased, tmp_path / "m.gguf", arch="llama")
    ckpt = load_gguf(src)
    assert ckpt.config.architecture == "Qwen2ForCausalLM"
    assert not ckpt.config.attention_bias
    ref = load_checkpoint(unbiased)
    for name in ("model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight"):
        np.testing.assert_array_equal(ckpt.tensor(name), ref.tensor(name))  # un-permuted
    logits = _logits(export_model(src, tmp_path / "pkg", FP32).path)
    expected = _logits(export_model(unbiased, tmp_path / "ref", FP32).path)
    np.testing.assert_array_equal(logits, expected)


def test_hf_checkpoint_written_from_gguf_loads_and_exports_the_same(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    unbiased = _zero_biases(checkpoint("tiny-qwen2"), tmp_path / "ckpt")
    src = write_gguf(unbiased, tmp_path / "m.gguf", arch="llama")
    folder = write_hf_checkpoint(src, tmp_path / "hf")
    written, ref = load_checkpoint(folder), load_checkpoint(unbiased)
    written.validate()
    assert written.config == ref.config
    for name in ref.names():
        np.testing.assert_array_equal(written.tensor(name), ref.tensor(name))
    assert written.chat_template == ref.chat_template
    assert json.loads((folder / "tokenizer_config.json").read_text())["eos_token"] == "<|im_end|>"


TEXTS = [
    "Hello world, how are you?",
    "  leading spaces\n\n\ttabs and 12345 digits, don't we'll",
    "<|im_start|>user\nTurn on the lights<|im_end|>\n<tool_call>\n{\"name\": \"x\"}\n</tool_call>",
    "Ünïcödé café naïve 東京 🙂 e\u0301",
]


def test_tokenizer_rebuilt_from_gguf_encodes_like_the_original(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    ckpt_dir = checkpoint("tiny-qwen2")
    rebuilt = Tokenizer.from_str(load_gguf(write_gguf(ckpt_dir, tmp_path / "m.gguf"))
                                 .tokenizer_text())
    original = Tokenizer.from_file(str(ckpt_dir / "tokenizer.json"))
    for text in TEXTS:
        ids = rebuilt.encode(text).ids
        assert ids == original.encode(text).ids, text
        assert rebuilt.decode(ids, skip_special_tokens=False) == original.decode(
            ids, skip_special_tokens=False)
    special = {t.content: (i, t.special) for i, t in rebuilt.get_added_tokens_decoder().items()}
    assert special["<|im_end|>"] == (151645, True)
    assert special["<tool_call>"] == (151657, False)


def test_package_from_gguf_carries_its_tokenizer_and_template(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    from qwen_edge.package import read_package

    ckpt_dir = checkpoint("tiny-qwen2")
    pkg = read_package(export_model(write_gguf(ckpt_dir, tmp_path / "m.gguf"), tmp_path / "pkg",
                                    FP32).path)
    template = json.loads((ckpt_dir / "tokenizer_config.json").read_text())["chat_template"]
    assert pkg.chat_template == template
    assert pkg.special_tokens["<tool_call>"] == 151657
    assert 151645 in pkg.stop_token_ids


def test_cli_exports_a_gguf(checkpoint, tmp_path, capsys):  # type: ignore[no-untyped-def]
    from qwen_edge.cli import main

    src = write_gguf(checkpoint("tiny-qwen2"), tmp_path / "m.gguf", qtype=Q.Q8_0)
    out = tmp_path / "pkg"
    assert main(["export", str(src), "-o", str(out), "--quant", "int8", "--max-context", "64",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["package"] == str(out)
    assert json.loads((out / "qwen_edge.json").read_text())["quantization"]["method"] == "int8"


# -- bad files ----------------------------------------------------------------------------


def test_truncated_gguf_is_a_checkpoint_error(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    src = write_gguf(checkpoint("tiny-qwen2"), tmp_path / "m.gguf")
    data = src.read_bytes()
    for size in (len(data) - 1000, len(data) // 2, 100):
        src.write_bytes(data[:size])
        with pytest.raises(CheckpointError, match="truncated"):
            export_model(src, tmp_path / "pkg", FP32)
        assert not (tmp_path / "pkg").exists()


def test_unknown_architecture_is_named(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    src = write_gguf(checkpoint("tiny-qwen2"), tmp_path / "m.gguf", arch="phi3")
    with pytest.raises(UnsupportedArchitectureError, match=r"'phi3'.*qwen2, qwen3, llama"):
        export_model(src, tmp_path / "pkg", FP32)


def test_unsupported_tensor_type_is_named(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    ckpt_dir = checkpoint("tiny-qwen2")
    shape = load_checkpoint(ckpt_dir).shape("model.layers.0.mlp.up_proj.weight")
    ints = {"blk.0.ffn_up.weight": np.zeros(shape, np.int32)}
    src = write_gguf(ckpt_dir, tmp_path / "m.gguf", tensor_type=ints)
    with pytest.raises(CheckpointError, match=r"blk\.0\.ffn_up\.weight has type I32"):
        export_model(src, tmp_path / "pkg", FP32)
    with pytest.raises(CheckpointError, match="type I32"):
        load_gguf(src).tensor("model.layers.0.mlp.up_proj.weight")


def test_not_a_gguf(tmp_path):  # type: ignore[no-untyped-def]
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 20)
    assert is_gguf(bad)
    with pytest.raises(CheckpointError, match="not a readable GGUF"):
        load_gguf(bad)
    assert not is_gguf(tmp_path / "missing.gguf")
    with pytest.raises(CheckpointError, match="a GGUF file, not a Hugging Face folder"):
        load_checkpoint(bad)  # the folder reader points to the GGUF route

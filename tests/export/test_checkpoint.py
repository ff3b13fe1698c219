"""qwen_edge.export.checkpoint / hf_config / weights / hub: config parsing, safetensors streaming, validation, hub errors.

Checkpoints here are written by hand (safetensors' own numpy writer for F32/F16, a 20-line
raw writer for BF16 and corrupt files), so the reader is never checked against itself.
Parity tests read checkpoints that transformers saved.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from qwen_edge.errors import (
    CheckpointError,
    ConfigError,
    ExportError,
    HubUnavailableError,
    UnsupportedArchitectureError,
)
from qwen_edge.export.checkpoint import load_checkpoint
from qwen_edge.export.hf_config import SUPPORTED_ARCHITECTURES, QwenConfig, expected_tensors
from qwen_edge.export.hub import HUB_ALLOW_PATTERNS

# -- tiny configs and the tensors their architecture needs, written out by hand ------------

QWEN2 = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "vocab_size": 16,
    "hidden_size": 8,
    "intermediate_size": 12,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 64,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-06,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "use_sliding_window": False,
    "sliding_window": 32768,
    "max_window_layers": 21,
}
QWEN2_TENSORS = {  # head_dim 4 = 8 / 2; q/k/v biases, no o bias; tied: no lm_head
    "model.embed_tokens.weight": (16, 8),
    "model.layers.0.input_layernorm.weight": (8,),
    "model.layers.0.self_attn.q_proj.weight": (8, 8),
    "model.layers.0.self_attn.q_proj.bias": (8,),
    "model.layers.0.self_attn.k_proj.weight": (4, 8),
    "model.layers.0.self_attn.k_proj.bias": (4,),
    "model.layers.0.self_attn.v_proj.weight": (4, 8),
    "model.layers.0.self_attn.v_proj.bias": (4,),
    "model.layers.0.self_attn.o_proj.weight": (8, 8),
    "model.layers.0.post_attention_layernorm.weight": (8,),
    "model.layers.0.mlp.gate_proj.weight": (12, 8),
    "model.layers.0.mlp.up_proj.weight": (12, 8),
    "model.layers.0.mlp.down_proj.weight": (8, 12),
    "model.norm.weight": (8,),
}
QWEN3 = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "vocab_size": 16,
    "hidden_size": 8,
    "intermediate_size": 12,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 6,
    "attention_bias": False,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000,
    "rope_scaling": None,
    "rms_norm_eps": 1e-06,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "eos_token_id": [151645, 151643],
}
QWEN3_TENSORS = {  # explicit head_dim 6 != 8 / 2; q/k norms, no biases; untied lm_head
    "model.embed_tokens.weight": (16, 8),
    "model.layers.0.input_layernorm.weight": (8,),
    "model.layers.0.self_attn.q_proj.weight": (12, 8),
    "model.layers.0.self_attn.k_proj.weight": (6, 8),
    "model.layers.0.self_attn.v_proj.weight": (6, 8),
    "model.layers.0.self_attn.o_proj.weight": (8, 12),
    "model.layers.0.self_attn.q_norm.weight": (6,),
    "model.layers.0.self_attn.k_norm.weight": (6,),
    "model.layers.0.post_attention_layernorm.weight": (8,),
    "model.layers.0.mlp.gate_proj.weight": (12, 8),
    "model.layers.0.mlp.up_proj.weight": (12, 8),
    "model.layers.0.mlp.down_proj.weight": (8, 12),
    "model.norm.weight": (8,),
    "lm_head.weight": (16, 8),
}

_ST_DTYPE = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
}


def write_safetensors(
    file: Path, tensors: dict[str, np.ndarray], *, dtype: str | None = None
) -> None:
    """The safetensors format, written plainly: a header, then each tensor's bytes in order.

    ``dtype`` overrides the dtype string (to label uint16 bit patterns as BF16, for example).
    """
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, array in tensors.items():
        st = dtype or next(k for k, v in _ST_DTYPE.items() if v == array.dtype)
        header[name] = {
            "dtype": st,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with file.open("wb") as f:
        f.write(len(blob).to_bytes(8, "little") + blob)
        for array in tensors.values():
            f.write(np.ascontiguousarray(array).tobytes())


def random_tensors(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def make_checkpoint(
    folder: Path,
    config: dict[str, Any] | None = None,
    tensors: dict[str, np.ndarray] | None = None,
    *,
    dtype: str = "F32",
) -> dict[str, np.ndarray]:
    """config.json + model.safetensors (F32/F16 via safetensors.numpy, BF16 raw)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = QWEN2 if config is None else config
    tensors = random_tensors(QWEN2_TENSORS) if tensors is None else tensors
    (folder / "config.json").write_text(json.dumps(config))
    if dtype == "BF16":
        write_safetensors(
            folder / "model.safetensors",
            {k: v.astype(ml_dtypes.bfloat16) for k, v in tensors.items()},
        )
    else:
        from safetensors.numpy import save_file

        save_file(
            {k: v.astype(_ST_DTYPE[dtype]) for k, v in tensors.items()},
            str(folder / "model.safetensors"),
            metadata={"format": "pt"},
        )
    return tensors


# -- config -------------------------------------------------------------------------------


def test_supported_architectures() -> None:
    assert SUPPORTED_ARCHITECTURES == ("Qwen2ForCausalLM", "Qwen3ForCausalLM",
                                       "Qwen3_5ForCausalLM", "Qwen3_5ForConditionalGeneration")


QWEN35_TEXT = {
    "architectures": ["Qwen3_5ForCausalLM"], "model_type": "qwen3_5_text", "vocab_size": 16,
    "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 5, "num_attention_heads": 2,
    "num_key_value_heads": 1, "head_dim": 64, "linear_num_key_heads": 1,
    "linear_num_value_heads": 3, "linear_key_head_dim": 4, "linear_value_head_dim": 6,
    "rope_parameters": {"rope_theta": 1e7, "partial_rotary_factor": 0.25, "rope_type": "default"},
}


def test_qwen35_config_both_classes() -> None:
    text = QwenConfig.from_dict(QWEN35_TEXT)
    assert text.layer_types == ("linear_attention",) * 3 + ("full_attention", "linear_attention")
    assert (text.full_attention_layers, text.linear_attention_layers) == ((3,), (0, 1, 2, 4))
    assert text.linear is not None
    assert text.linear.conv_state_shape == (1, 2 * 4 + 3 * 6, 3)
    assert text.linear.recurrent_state_shape == (1, 3, 4, 6)
    assert (text.prefix, text.ignored_prefixes) == ("model.", ("mtp.",))
    assert text.norm_offset
    assert text.attn_output_gate
    assert text.partial_rotary_factor == 0.25
    wrapped = QwenConfig.from_dict({
        "architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
        "tie_word_embeddings": True, "text_config": {**QWEN35_TEXT, "tie_word_embeddings": False},
        "vision_config": {"depth": 1}})
    assert wrapped.prefix == "model.language_model."
    assert wrapped.ignored_prefixes == ("model.visual.", "mtp.")
    assert wrapped.tie_word_embeddings  # the top-level value is the one transformers uses
    assert wrapped.layer_types == text.layer_types


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"num_experts": 64}, "MoE checkpoints are not supported"),
        ({"linear_num_value_heads": 4, "linear_num_key_heads": 3}, "must be a multiple"),
        ({"layer_types": ["full_attention"]}, "must list num_hidden_layers=5"),
        ({"head_dim": 32}, "needs a multiple of 16"),
        ({"rope_parameters": {"rope_type": "yarn"}}, "only the default RoPE"),
    ],
)
def test_qwen35_config_errors(change: dict[str, object], fragment: str) -> None:
    with pytest.raises(CheckpointError, match=fragment):
        QwenConfig.from_dict({**QWEN35_TEXT, **change})


def test_qwen2_config_derives_head_dim_and_biases() -> None:
    cfg = QwenConfig.from_dict(QWEN2)
    assert cfg.architecture == "Qwen2ForCausalLM"
    assert cfg.model_type == "qwen2"
    assert (cfg.vocab_size, cfg.hidden_size, cfg.intermediate_size) == (16, 8, 12)
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (1, 2, 1)
    assert cfg.head_dim == 4
    assert cfg.attention_bias is True
    assert cfg.qk_norm is False
    assert cfg.rope_theta == 1e6
    assert isinstance(cfg.rope_theta, float)
    assert cfg.rms_norm_eps == 1e-6
    assert cfg.max_position_embeddings == 64
    assert cfg.tie_word_embeddings is True
    assert cfg.dtype == "bfloat16"
    assert cfg.rope_scaling is None
    assert cfg.bos_token_id == 151643
    assert cfg.eos_token_id == (151645,)


def test_qwen3_config_has_explicit_head_dim_and_qk_norm() -> None:
    cfg = QwenConfig.from_dict(QWEN3)
    assert cfg.architecture == "Qwen3ForCausalLM"
    assert cfg.head_dim == 6
    assert cfg.attention_bias is False
    assert cfg.qk_norm is True
    assert cfg.rope_theta == 1e6
    assert isinstance(cfg.rope_theta, float)
    assert cfg.tie_word_embeddings is False
    assert cfg.eos_token_id == (151645, 151643)


def test_config_is_frozen() -> None:
    cfg = QwenConfig.from_dict(QWEN2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hidden_size = 16  # type: ignore[misc]


def test_unknown_keys_are_dropped_and_model_type_stands_in_for_architectures() -> None:
    d = {k: v for k, v in QWEN3.items() if k != "architectures"}
    cfg = QwenConfig.from_dict({**d, "some_future_key": {"x": 1}, "use_cache": True})
    assert cfg.architecture == "Qwen3ForCausalLM"
    assert cfg == QwenConfig.from_dict(QWEN3)


def test_transformers5_layout() -> None:
    """transformers 5 writes dtype, rope_parameters and layer_types instead of the 4.x keys."""
    d = {k: v for k, v in QWEN3.items() if k not in ("rope_theta", "rope_scaling", "torch_dtype")}
    d |= {
        "dtype": "float32",
        "rope_parameters": {"rope_theta": 5000.0, "rope_type": "default"},
        "layer_types": ["full_attention"],
        "eos_token_id": None,
        "pad_token_id": None,
    }
    cfg = QwenConfig.from_dict(d)
    assert cfg.rope_theta == 5000.0
    assert cfg.rope_scaling is None
    assert cfg.dtype == "float32"
    assert cfg.eos_token_id == ()


def test_missing_optional_values_take_transformers_defaults() -> None:
    required = (
        "architectures",
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
    )
    cfg = QwenConfig.from_dict({k: QWEN2[k] for k in required})
    assert cfg.num_key_value_heads == 2  # = num_attention_heads
    assert cfg.rope_theta == 10000.0
    assert cfg.rms_norm_eps == 1e-6
    assert cfg.max_position_embeddings == 32768
    assert cfg.tie_word_embeddings is False
    assert cfg.dtype == "float32"
    assert QwenConfig.from_dict({**QWEN3, "head_dim": None}).head_dim == 128  # Qwen3Config's


DROP = object()  # marks a key to remove from the config

BAD_CONFIGS = [
    # (changes to QWEN2, error class, fragments the message must contain)
    pytest.param(
        {"architectures": ["LlamaForCausalLM"]},
        UnsupportedArchitectureError,
        ["LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"],
        id="llama",
    ),
    pytest.param(
        {"architectures": DROP, "model_type": "llama"},
        UnsupportedArchitectureError,
        ["llama", "supported: Qwen2ForCausalLM, Qwen3ForCausalLM"],
        id="no-architectures",
    ),
    pytest.param(
        {"architectures": ["Qwen2MoeForCausalLM"]},
        UnsupportedArchitectureError,
        ["Qwen2MoeForCausalLM", "supported"],
        id="moe",
    ),
    pytest.param(
        {"model_type": "qwen3"}, CheckpointError, ["model_type", "qwen3"], id="model-type-mismatch"
    ),
    pytest.param(
        {"num_key_value_heads": 3},
        CheckpointError,
        ["num_attention_heads=2", "num_key_value_heads=3"],
        id="heads-not-divisible",
    ),
    pytest.param(
        {"hidden_size": 0}, CheckpointError, ["hidden_size=0", "positive integer"], id="zero-hidden"
    ),
    pytest.param(
        {"hidden_size": 9},
        CheckpointError,
        ["hidden_size=9", "num_attention_heads"],
        id="hidden-not-divisible",
    ),
    pytest.param({"vocab_size": "16"}, CheckpointError, ["vocab_size='16'"], id="string-int"),
    pytest.param({"vocab_size": None}, CheckpointError, ["vocab_size=None"], id="null-int"),
    pytest.param(
        {"num_hidden_layers": True}, CheckpointError, ["num_hidden_layers"], id="bool-int"
    ),
    pytest.param(
        {"intermediate_size": 12.5}, CheckpointError, ["intermediate_size"], id="float-int"
    ),
    pytest.param(
        {"intermediate_size": DROP},
        CheckpointError,
        ["missing intermediate_size"],
        id="missing-int",
    ),
    pytest.param({"rms_norm_eps": -1.0}, CheckpointError, ["rms_norm_eps"], id="negative-eps"),
    pytest.param({"rope_theta": "big"}, CheckpointError, ["rope_theta"], id="string-theta"),
    pytest.param(
        {"tie_word_embeddings": "yes"}, CheckpointError, ["tie_word_embeddings"], id="string-bool"
    ),
    pytest.param({"torch_dtype": "int8"}, CheckpointError, ["torch_dtype", "int8"], id="dtype"),
    pytest.param({"hidden_act": "gelu"}, CheckpointError, ["hidden_act", "gelu"], id="act"),
    pytest.param(
        {
            "rope_scaling": {
                "type": "yarn",
                "factor": 4.0,
                "original_max_position_embeddings": 32768,
            }
        },
        CheckpointError,
        ["yarn", "not supported", "rope_scaling"],
        id="yarn",
    ),
    pytest.param(
        {"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}},
        CheckpointError,
        ["dynamic", "not supported"],
        id="dynamic-rope",
    ),
    pytest.param(
        {"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0}},
        CheckpointError,
        ["yarn"],
        id="yarn-transformers5",
    ),
    pytest.param(
        {"use_sliding_window": True},
        CheckpointError,
        ["use_sliding_window", "not supported"],
        id="sliding-window",
    ),
    pytest.param(
        {"layer_types": ["sliding_attention"]},
        CheckpointError,
        ["not supported"],
        id="sliding-layer-types",
    ),
    pytest.param(
        {"quantization_config": {"quant_method": "gptq", "bits": 4}},
        CheckpointError,
        ["gptq", "not supported"],
        id="quantized",
    ),
]


@pytest.mark.parametrize(("changes", "error", "fragments"), BAD_CONFIGS)
def test_bad_config(changes: dict[str, Any], error: type[Exception], fragments: list[str]) -> None:
    d = {k: v for k, v in {**QWEN2, **changes}.items() if v is not DROP}
    with pytest.raises(error) as info:
        QwenConfig.from_dict(d, source="ckpt/config.json")
    assert str(info.value).startswith("ckpt/config.json: ")
    for fragment in fragments:
        assert fragment in str(info.value)


def test_rope_scaling_default_type_is_plain_rope() -> None:
    cfg = QwenConfig.from_dict({**QWEN2, "rope_scaling": {"rope_type": "default"}})
    assert cfg.rope_scaling is None


def test_qwen3_attention_bias_is_rejected() -> None:
    with pytest.raises(CheckpointError, match="attention_bias=true"):
        QwenConfig.from_dict({**QWEN3, "attention_bias": True})


def test_errors_share_the_hierarchy() -> None:
    assert issubclass(CheckpointError, ExportError)
    assert issubclass(UnsupportedArchitectureError, ExportError)
    assert issubclass(HubUnavailableError, ExportError)


@pytest.mark.parametrize(
    ("config", "tensors"), [(QWEN2, QWEN2_TENSORS), (QWEN3, QWEN3_TENSORS)], ids=["qwen2", "qwen3"]
)
def test_expected_tensors(config: dict[str, Any], tensors: dict[str, tuple[int, ...]]) -> None:
    assert expected_tensors(QwenConfig.from_dict(config)) == tensors


def test_expected_tensors_untied_qwen2_needs_lm_head() -> None:
    shapes = expected_tensors(QwenConfig.from_dict({**QWEN2, "tie_word_embeddings": False}))
    assert shapes == {**QWEN2_TENSORS, "lm_head.weight": (16, 8)}


# -- loading a folder ---------------------------------------------------------------------


def test_load_reads_metadata_and_tensors(tmp_path: Path) -> None:
    arrays = make_checkpoint(tmp_path)
    (tmp_path / "generation_config.json").write_text(json.dumps({"temperature": 0.7}))
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ x }}"}))

    ckpt = load_checkpoint(tmp_path)

    assert ckpt.path == tmp_path
    assert ckpt.config == QwenConfig.from_dict(QWEN2)
    assert ckpt.raw_config == QWEN2
    assert ckpt.generation_config == {"temperature": 0.7}
    assert ckpt.tokenizer_json == tmp_path / "tokenizer.json"
    assert ckpt.tokenizer_config == {"chat_template": "{{ x }}"}
    assert ckpt.chat_template == "{{ x }}"
    assert ckpt.names() == sorted(QWEN2_TENSORS)
    ckpt.validate()
    for name, array in arrays.items():
        assert ckpt.shape(name) == array.shape
        assert ckpt.dtype(name) == "F32"
        assert ckpt.nbytes(name) == array.nbytes
        out = ckpt.tensor(name)
        assert out.dtype == np.float32
        assert out.flags.c_contiguous
        np.testing.assert_array_equal(out, array)


def test_optional_files_default_to_empty(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    ckpt = load_checkpoint(str(tmp_path))
    assert ckpt.generation_config == {}
    assert ckpt.tokenizer_config == {}
    assert ckpt.tokenizer_json is None
    assert ckpt.chat_template is None


def test_chat_template_jinja_file_wins(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "old"}))
    (tmp_path / "chat_template.jinja").write_text("new {{ messages }}")
    assert load_checkpoint(tmp_path).chat_template == "new {{ messages }}"


def test_named_chat_templates_pick_default(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    templates = [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": templates}))
    assert load_checkpoint(tmp_path).chat_template == "D"


def test_bf16_conversion_is_exact(tmp_path: Path) -> None:
    """All 65536 bf16 bit patterns (zeros, subnormals, inf, NaN payloads) convert bit-exactly."""
    bits = np.arange(1 << 16, dtype=np.uint16).reshape(256, 256)
    make_checkpoint(tmp_path)
    write_safetensors(tmp_path / "model.safetensors", {"all": bits}, dtype="BF16")
    out = load_checkpoint(tmp_path).tensor("all")
    reference = bits.view(ml_dtypes.bfloat16).astype(np.float32)
    by_shift = (bits.astype(np.uint32) << 16).view(np.float32)  # bf16 is the top half of f32
    np.testing.assert_array_equal(out.view(np.uint32), reference.view(np.uint32))
    np.testing.assert_array_equal(out.view(np.uint32), by_shift.view(np.uint32))


def test_f16_conversion_is_exact(tmp_path: Path) -> None:
    bits = np.arange(1 << 16, dtype=np.uint16).reshape(256, 256)
    make_checkpoint(tmp_path)
    write_safetensors(tmp_path / "model.safetensors", {"all": bits}, dtype="F16")
    out = load_checkpoint(tmp_path).tensor("all")
    reference = bits.view(np.float16).astype(np.float32)
    np.testing.assert_array_equal(out.view(np.uint32), reference.view(np.uint32))


def test_bf16_checkpoint_validates_and_reads_rounded_values(tmp_path: Path) -> None:
    arrays = make_checkpoint(tmp_path, QWEN3, random_tensors(QWEN3_TENSORS), dtype="BF16")
    ckpt = load_checkpoint(tmp_path)
    ckpt.validate()
    for name, array in arrays.items():
        assert ckpt.dtype(name) == "BF16"
        assert ckpt.nbytes(name) == array.size * 2
        expected = array.astype(ml_dtypes.bfloat16).astype(np.float32)
        np.testing.assert_array_equal(ckpt.tensor(name), expected)


def test_zero_size_tensor(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    write_safetensors(
        tmp_path / "model.safetensors",
        {"empty": np.zeros((0, 4), np.float32), "x": np.ones(3, np.float32)},
    )
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.tensor("empty").shape == (0, 4)
    np.testing.assert_array_equal(ckpt.tensor("x"), np.ones(3, np.float32))


def shard(folder: Path, arrays: dict[str, np.ndarray], groups: list[list[str]]) -> None:
    """Write arrays as len(groups) shards + model.safetensors.index.json (the HF layout)."""
    weight_map = {}
    for i, names in enumerate(groups, 1):
        file = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
        write_safetensors(folder / file, {n: arrays[n] for n in names})
        weight_map |= dict.fromkeys(names, file)
    index = {
        "metadata": {"total_size": sum(a.nbytes for a in arrays.values())},
        "weight_map": weight_map,
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


def test_sharded_equals_unsharded(tmp_path: Path) -> None:
    arrays = make_checkpoint(tmp_path / "single")
    names = list(arrays)
    (tmp_path / "sharded").mkdir()
    (tmp_path / "sharded" / "config.json").write_text(json.dumps(QWEN2))
    shard(tmp_path / "sharded", arrays, [names[:1], names[1:9], names[9:]])

    single, sharded = load_checkpoint(tmp_path / "single"), load_checkpoint(tmp_path / "sharded")
    sharded.validate()
    assert sharded.names() == single.names()
    for name in names:
        assert sharded.shape(name) == single.shape(name)
        np.testing.assert_array_equal(sharded.tensor(name), single.tensor(name))


# -- validate -----------------------------------------------------------------------------


def test_validate_ignores_extra_tensors(tmp_path: Path) -> None:
    arrays = random_tensors({**QWEN2_TENSORS, "lm_head.weight": (16, 8), "extra.thing": (3,)})
    make_checkpoint(tmp_path, QWEN2, arrays)
    load_checkpoint(tmp_path).validate()


def _without(shapes: dict[str, tuple[int, ...]], name: str) -> dict[str, tuple[int, ...]]:
    return {k: v for k, v in shapes.items() if k != name}


BAD_TENSORS = [
    # (config, tensor shapes written, fragments the message must contain)
    pytest.param(
        QWEN2,
        _without(QWEN2_TENSORS, "model.layers.0.mlp.up_proj.weight"),
        ["missing tensor model.layers.0.mlp.up_proj.weight", "[12, 8]"],
        id="missing",
    ),
    pytest.param(
        QWEN2,
        _without(QWEN2_TENSORS, "model.layers.0.self_attn.k_proj.bias"),
        ["missing tensor model.layers.0.self_attn.k_proj.bias", "[4]"],
        id="qwen2-missing-bias",
    ),
    pytest.param(
        QWEN2,
        {**QWEN2_TENSORS, "model.layers.0.mlp.down_proj.weight": (12, 8)},
        ["model.layers.0.mlp.down_proj.weight", "shape [12, 8]", "expected [8, 12]"],
        id="transposed",
    ),
    pytest.param(
        QWEN2,
        {**QWEN2_TENSORS, "model.embed_tokens.weight": (15, 8)},
        ["model.embed_tokens.weight", "[15, 8]", "[16, 8]"],
        id="vocab",
    ),
    pytest.param(
        {**QWEN2, "tie_word_embeddings": False},
        QWEN2_TENSORS,
        ["missing tensor lm_head.weight", "[16, 8]"],
        id="untied-no-lm-head",
    ),
    pytest.param(
        QWEN3,
        _without(QWEN3_TENSORS, "model.layers.0.self_attn.q_norm.weight"),
        ["missing tensor model.layers.0.self_attn.q_norm.weight", "[6]"],
        id="qwen3-missing-q-norm",
    ),
    pytest.param(
        QWEN3,
        {**QWEN3_TENSORS, "model.layers.0.self_attn.k_norm.weight": (4,)},
        ["model.layers.0.self_attn.k_norm.weight", "[4]", "expected [6]"],
        id="qwen3-head-dim",
    ),
    pytest.param(
        {**QWEN2, "num_hidden_layers": 2},
        QWEN2_TENSORS,
        ["missing tensor model.layers.1.", "(and 7 more)"],
        id="missing-layer",
    ),
]


@pytest.mark.parametrize(("config", "shapes", "fragments"), BAD_TENSORS)
def test_validate_reports_missing_and_misshapen_tensors(
    tmp_path: Path,
    config: dict[str, Any],
    shapes: dict[str, tuple[int, ...]],
    fragments: list[str],
) -> None:
    make_checkpoint(tmp_path, config, random_tensors(shapes))
    ckpt = load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError) as info:
        ckpt.validate()
    assert str(tmp_path) in str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unsupported_dtype(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    arrays = random_tensors(QWEN2_TENSORS)
    arrays["model.norm.weight"] = np.ones(8, np.int8)
    write_safetensors(tmp_path / "model.safetensors", arrays)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.dtype("model.norm.weight") == "I8"
    with pytest.raises(CheckpointError, match=r"model\.norm\.weight has dtype I8"):
        ckpt.validate()
    with pytest.raises(CheckpointError, match=r"dtype I8; supported: F32, F16, BF16"):
        ckpt.tensor("model.norm.weight")


def test_unknown_tensor_name(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    ckpt = load_checkpoint(tmp_path)
    for call in (ckpt.tensor, ckpt.shape, ckpt.dtype, ckpt.nbytes):
        with pytest.raises(CheckpointError, match="no tensor named 'nope'"):
            call("nope")


def test_file_changed_after_load(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    ckpt = load_checkpoint(tmp_path)
    file = tmp_path / "model.safetensors"
    os.truncate(file, file.stat().st_size - 4)
    with pytest.raises(CheckpointError, match="changed on disk"):
        ckpt.tensor("model.norm.weight")  # the last tensor: its bytes are gone


# -- corrupt files ------------------------------------------------------------------------


def _rewrite_header(file: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = file.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    edit(header)
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    file.write_bytes(len(blob).to_bytes(8, "little") + blob + data[8 + n :])


def _set_entry(name: str, **values: Any) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        _rewrite_header(folder / "model.safetensors", lambda h: h[name].update(values))

    return mutate


def _patch_bytes(at: int, data: bytes) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        file = folder / "model.safetensors"
        raw = bytearray(file.read_bytes())
        raw[at : at + len(data)] = data
        file.write_bytes(bytes(raw))

    return mutate


def _truncate(nbytes: int) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        file = folder / "model.safetensors"
        os.truncate(file, nbytes if nbytes >= 0 else file.stat().st_size + nbytes)

    return mutate


def _garble_header(folder: Path) -> None:
    file = folder / "model.safetensors"
    raw = bytearray(file.read_bytes())
    raw[8:20] = b"{not json!!!"
    file.write_bytes(bytes(raw))


def _header_not_object(folder: Path) -> None:
    file = folder / "model.safetensors"
    raw = file.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    file.write_bytes(raw[:8] + b"[]".ljust(n) + raw[8 + n :])


def _shift_offsets(folder: Path) -> None:
    def edit(header: dict[str, Any]) -> None:
        begin, end = header["model.norm.weight"]["data_offsets"]
        header["model.norm.weight"]["data_offsets"] = [begin + 10**6, end + 10**6]

    _rewrite_header(folder / "model.safetensors", edit)


def _overlap(folder: Path) -> None:
    def edit(header: dict[str, Any]) -> None:
        header["model.norm.weight"]["data_offsets"] = [0, 32]  # over the embedding's bytes

    _rewrite_header(folder / "model.safetensors", edit)


CORRUPTIONS = [
    # (mutation of a valid checkpoint folder, fragment of the message)
    pytest.param(
        _patch_bytes(0, (10**12).to_bytes(8, "little")),
        "beyond the end of the file",
        id="header-length-huge",
    ),
    pytest.param(_truncate(5), "too short", id="shorter-than-prefix"),
    pytest.param(_truncate(100), "beyond the end of the file", id="truncated-in-header"),
    pytest.param(_garble_header, "not valid JSON", id="header-not-json"),
    pytest.param(_patch_bytes(8, b"\xff\xfe"), "not valid JSON", id="header-not-utf8"),
    pytest.param(_header_not_object, "not a JSON object", id="header-not-object"),
    pytest.param(_truncate(-4), "truncated", id="truncated-data"),
    pytest.param(_shift_offsets, "truncated or its data_offsets are corrupt", id="offsets-outside"),
    pytest.param(
        _set_entry("model.norm.weight", shape=[9]),
        "shape [9] x F32 takes 36 bytes",
        id="size-vs-shape",
    ),
    pytest.param(
        _set_entry("model.norm.weight", dtype="F16"), "x F16 takes 16 bytes", id="size-vs-dtype"
    ),
    pytest.param(
        _set_entry("model.norm.weight", data_offsets=[8, 4]), "malformed", id="offsets-reversed"
    ),
    pytest.param(_set_entry("model.norm.weight", shape=[-8]), "malformed", id="negative-dim"),
    pytest.param(
        _set_entry("model.norm.weight", data_offsets="x"),
        "needs dtype, shape",
        id="offsets-not-pair",
    ),
    pytest.param(_overlap, "overlap", id="overlap"),
]


@pytest.mark.parametrize(("mutate", "fragment"), CORRUPTIONS)
def test_corrupt_safetensors(tmp_path: Path, mutate: Callable[[Path], None], fragment: str) -> None:
    make_checkpoint(tmp_path)
    mutate(tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path)
    assert str(tmp_path / "model.safetensors") in str(info.value)
    assert fragment in str(info.value)


def _sharded(folder: Path) -> dict[str, np.ndarray]:
    arrays = make_checkpoint(folder)
    (folder / "model.safetensors").unlink()
    names = list(arrays)
    shard(folder, arrays, [names[:5], names[5:]])
    return arrays


def _edit_index(folder: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    index = folder / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    edit(data)
    index.write_text(json.dumps(data))


BAD_INDEXES = [
    pytest.param(
        lambda f: (f / "model-00002-of-00002.safetensors").unlink(),
        ["model.safetensors.index.json", "model-00002-of-00002.safetensors", "missing"],
        id="missing-shard",
    ),
    pytest.param(
        lambda f: (f / "model.safetensors.index.json").write_text("{oops"),
        ["model.safetensors.index.json", "not valid JSON"],
        id="index-not-json",
    ),
    pytest.param(
        lambda f: _edit_index(f, lambda d: d.pop("weight_map")),
        ["model.safetensors.index.json", "weight_map"],
        id="no-weight-map",
    ),
    pytest.param(
        lambda f: _edit_index(
            f,
            lambda d: d["weight_map"].update(
                {"model.norm.weight": "model-00001-of-00002.safetensors"}
            ),
        ),
        ["model.norm.weight", "model-00001-of-00002.safetensors", "no such tensor"],
        id="wrong-shard",
    ),
    pytest.param(
        lambda f: _edit_index(
            f, lambda d: d["weight_map"].update({"x": "../model-00001-of-00002.safetensors"})
        ),
        ["../model-00001-of-00002.safetensors"],
        id="path-outside",
    ),
    pytest.param(
        lambda f: os.truncate(f / "model-00002-of-00002.safetensors", 50),
        ["model-00002-of-00002.safetensors", "beyond the end"],
        id="truncated-shard",
    ),
]


@pytest.mark.parametrize(("mutate", "fragments"), BAD_INDEXES)
def test_corrupt_sharded_checkpoint(
    tmp_path: Path, mutate: Callable[[Path], None], fragments: list[str]
) -> None:
    _sharded(tmp_path)
    load_checkpoint(tmp_path).validate()  # valid before the mutation
    mutate(tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_shard_duplicate_tensor(tmp_path: Path) -> None:
    arrays = _sharded(tmp_path)
    write_safetensors(
        tmp_path / "model-00002-of-00002.safetensors", {n: arrays[n] for n in list(arrays)[4:]}
    )
    with pytest.raises(CheckpointError, match="is also in"):
        load_checkpoint(tmp_path)


# -- folder-level errors ------------------------------------------------------------------


def test_no_safetensors_bin_only(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(QWEN2))
    (tmp_path / "pytorch_model.bin").write_bytes(b"\0" * 16)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path)
    message = str(info.value)
    assert f"no *.safetensors in {tmp_path}" in message
    assert ".bin checkpoints are not supported" in message
    assert "save_pretrained" in message


def test_stray_shards_without_index(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").rename(tmp_path / "model-00001-of-00002.safetensors")
    with pytest.raises(CheckpointError, match=r"neither model\.safetensors nor"):
        load_checkpoint(tmp_path)


def test_no_config_json(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path)
    assert str(info.value) == f"{tmp_path}: no config.json; pass a Hugging Face checkpoint folder"


@pytest.mark.parametrize("text", ["{", "[1, 2]", "\xff"], ids=["truncated", "array", "binary"])
def test_unparsable_config_json(tmp_path: Path, text: str) -> None:
    make_checkpoint(tmp_path)
    (tmp_path / "config.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(CheckpointError, match=r"config\.json"):
        load_checkpoint(tmp_path)


def test_unparsable_generation_config(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    (tmp_path / "generation_config.json").write_text("{,")
    with pytest.raises(CheckpointError, match=r"generation_config\.json: not valid JSON"):
        load_checkpoint(tmp_path)


def test_unsupported_architecture_names_the_file(tmp_path: Path) -> None:
    make_checkpoint(tmp_path, {**QWEN2, "architectures": ["MistralForCausalLM"]})
    with pytest.raises(UnsupportedArchitectureError) as info:
        load_checkpoint(tmp_path)
    assert str(tmp_path / "config.json") in str(info.value)
    assert "supported: Qwen2ForCausalLM, Qwen3ForCausalLM" in str(info.value)


@pytest.mark.parametrize("src", ["./no/such/dir", "/no/such/dir", "~/no-such-qwen-dir-x"])
def test_missing_local_folder(src: str) -> None:
    with pytest.raises(CheckpointError, match="no such folder"):
        load_checkpoint(src)


def test_missing_path_object_is_local_even_if_it_looks_like_a_hub_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="no such folder"):
        load_checkpoint(Path("Qwen/Qwen2.5-0.5B-Instruct"))


def test_file_instead_of_folder(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="not a folder"):
        load_checkpoint(tmp_path / "config.json")


def test_neither_folder_nor_hub_id() -> None:
    with pytest.raises(CheckpointError, match="not a hub id"):
        load_checkpoint("no such thing")


def test_revision_with_local_folder(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    with pytest.raises(ConfigError, match="revision"):
        load_checkpoint(tmp_path, revision="main")


def test_never_imports_torch(tmp_path: Path) -> None:
    """Export runs without torch: reading and synthesizing checkpoints must not import it."""
    code = (
        "import sys\n"
        "import qwen_edge.export.checkpoint, qwen_edge.export.synth\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
        cwd=tmp_path,  # not the repository root, which would shadow the installed package
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- hub ----------------------------------------------------------------------------------


def test_existing_relative_folder_wins_over_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")
    make_checkpoint(tmp_path / "Qwen" / "tiny")
    monkeypatch.chdir(tmp_path)

    def fail(*_args: Any, **_kwargs: Any) -> str:
        raise AssertionError("the hub must not be asked for an existing folder")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    assert load_checkpoint("Qwen/tiny").path == Path("Qwen/tiny")


def test_hub_id_downloads_with_patterns_and_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")
    make_checkpoint(tmp_path / "snapshot")
    calls = []

    def fake(repo_id: str, **kwargs: Any) -> str:
        calls.append((repo_id, kwargs))
        return str(tmp_path / "snapshot")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    ckpt = load_checkpoint("Qwen/Qwen2.5-0.5B-Instruct", revision="abc123")
    ckpt.validate()
    assert calls == [
        ("Qwen/Qwen2.5-0.5B-Instruct", {"revision": "abc123", "allow_patterns": HUB_ALLOW_PATTERNS})
    ]
    assert HUB_ALLOW_PATTERNS == [
        "*.json",
        "*.safetensors",
        "*.txt",
        "*.model",
        "*.tiktoken",
        "*.jinja",
    ]


def _bare(cls: type[BaseException], message: str) -> BaseException:
    """An instance of a hub error without the HTTP response its constructor wants."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


def _unreachable(kind: str) -> BaseException:
    from huggingface_hub import errors as utils

    if kind == "connection":
        return ConnectionError("Name or service not known")
    if kind == "timeout":
        return TimeoutError("timed out")
    if kind == "no-cache":
        return utils.LocalEntryNotFoundError("Cannot find an appropriate cached snapshot folder")
    if kind == "http-503":
        return _bare(utils.HfHubHTTPError, "503 Service Unavailable")
    import huggingface_hub

    return _bare(huggingface_hub.errors.HTTPError, "ConnectError: [Errno -2]")  # transport


@pytest.mark.parametrize("kind", ["connection", "timeout", "no-cache", "http-503", "transport"])
def test_hub_unreachable(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")
    if kind == "transport" and not hasattr(getattr(huggingface_hub, "errors", None), "HTTPError"):
        pytest.skip("this huggingface_hub has no transport error class")
    error = _unreachable(kind)

    def fake(_repo_id: str, **_kwargs: Any) -> str:
        raise error

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    with pytest.raises(HubUnavailableError) as info:
        load_checkpoint("Qwen/Qwen2.5-0.5B-Instruct")
    message = str(info.value)
    assert message.startswith("Qwen/Qwen2.5-0.5B-Instruct: the Hugging Face hub cannot be reached")
    assert "hf download Qwen/Qwen2.5-0.5B-Instruct --local-dir" in message
    assert "pass its path instead of the hub id" in message
    assert info.value.__cause__ is error


def test_hub_offline_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1 with an empty cache: no network, HubUnavailableError."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    # huggingface_hub reads both at import time; it may be imported already.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(HubUnavailableError, match="cannot be reached"):
        load_checkpoint("Qwen/Qwen2.5-0.5B-Instruct")


def test_hub_offline_mode_in_a_fresh_process(tmp_path: Path) -> None:
    """The same, as a user runs it: the environment variable set before anything is imported."""
    pytest.importorskip("huggingface_hub")
    code = (
        "from qwen_edge.errors import HubUnavailableError\n"
        "from qwen_edge.export.checkpoint import load_checkpoint\n"
        "try:\n    load_checkpoint('Qwen/Qwen3-0.6B')\n"
        "except HubUnavailableError as exc:\n    print('OK', exc)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK Qwen/Qwen3-0.6B: the Hugging Face hub cannot be reached")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("GatedRepoError", "gated"),
        ("RepositoryNotFoundError", "no such model"),
        ("RevisionNotFoundError", "revision 'v9' not found"),
    ],
)
def test_hub_answers_not_found(monkeypatch: pytest.MonkeyPatch, name: str, fragment: str) -> None:
    """The hub answered: that is not 'unreachable'; the message says what is wrong instead."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    from huggingface_hub import errors as utils

    error = _bare(getattr(utils, name), "404 Client Error")

    def fake(_repo_id: str, **_kwargs: Any) -> str:
        raise error

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    with pytest.raises(CheckpointError, match=fragment) as info:
        load_checkpoint("Qwen/Nope", revision="v9")
    assert not isinstance(info.value, HubUnavailableError)


# -- memory -------------------------------------------------------------------------------


def test_reading_one_tensor_touches_only_its_bytes(tmp_path: Path) -> None:
    """A 200 MB file: reading its small tensor allocates that tensor, not the file."""
    make_checkpoint(tmp_path)
    big_shape, big_bytes = (50, 1_000_000), 200_000_000
    small = np.random.default_rng(1).standard_normal((256, 256)).astype(np.float32)
    header = {
        "big": {"dtype": "F32", "shape": list(big_shape), "data_offsets": [0, big_bytes]},
        "small": {
            "dtype": "F32",
            "shape": [256, 256],
            "data_offsets": [big_bytes, big_bytes + small.nbytes],
        },
    }
    blob = json.dumps(header).encode().ljust(256)
    with (tmp_path / "model.safetensors").open("wb") as f:
        f.write(len(blob).to_bytes(8, "little") + blob)
        f.seek(8 + len(blob) + big_bytes)  # the big tensor is a hole: never written
        f.write(small.tobytes())
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.nbytes("big") == big_bytes

    tracemalloc.start()
    try:
        out = ckpt.tensor("small")
        small_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        big = ckpt.tensor("big")
        big_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(out, small)
    assert small_peak < 4 * small.nbytes  # 256 KB result; the file is 200 MB
    assert big.shape == big_shape
    assert not big.any()
    assert big_peak < 1.05 * big_bytes + small_peak  # the float32 result and no second copy


# -- parity with transformers -------------------------------------------------------------


def _transformers_checkpoint(
    folder: Path, architecture: str, dtype: str, shard_size: str | None, tie: bool
) -> Any:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    common = {
        "vocab_size": 64,
        "hidden_size": 16,
        "intermediate_size": 40,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "tie_word_embeddings": tie,
    }
    if architecture == "Qwen3ForCausalLM":
        config = transformers.Qwen3Config(**common, head_dim=8)
        model = transformers.Qwen3ForCausalLM(config)
    else:
        config = transformers.Qwen2Config(**common)
        model = transformers.Qwen2ForCausalLM(config)
    with torch.no_grad():  # random norms and biases, so a swapped tensor cannot go unnoticed
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    model = model.to(getattr(torch, dtype))
    kwargs = {"max_shard_size": shard_size} if shard_size else {}
    model.save_pretrained(folder, **kwargs)
    return model


@pytest.mark.parity
@pytest.mark.parametrize(
    ("architecture", "dtype", "shard_size", "tie"),
    [
        ("Qwen2ForCausalLM", "float32", None, True),
        ("Qwen2ForCausalLM", "bfloat16", "5KB", False),
        ("Qwen3ForCausalLM", "bfloat16", None, True),
        ("Qwen3ForCausalLM", "float16", "5KB", False),
    ],
)
def test_reads_what_transformers_saved(
    tmp_path: Path, architecture: str, dtype: str, shard_size: str | None, tie: bool
) -> None:
    model = _transformers_checkpoint(tmp_path, architecture, dtype, shard_size, tie)
    assert (tmp_path / "model.safetensors.index.json").exists() == bool(shard_size)

    ckpt = load_checkpoint(tmp_path)
    ckpt.validate()
    assert ckpt.config.architecture == architecture
    assert ckpt.config.dtype == dtype
    assert ckpt.config.head_dim == (8 if architecture == "Qwen3ForCausalLM" else 4)
    assert ckpt.config.tie_word_embeddings is tie
    state = model.state_dict()
    assert dict(expected_tensors(ckpt.config)) == {
        k: tuple(v.shape) for k, v in state.items() if not (tie and k == "lm_head.weight")
    }
    assert set(ckpt.names()) == set(expected_tensors(ckpt.config))
    for name in ckpt.names():
        reference = state[name].float().numpy()
        np.testing.assert_array_equal(ckpt.tensor(name), reference, err_msg=name)


@pytest.mark.parity
def test_transformers_reads_what_we_parse(tmp_path: Path) -> None:
    """The same folder, both readers: transformers' loaded weights equal ours, name by name."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    arrays = make_checkpoint(tmp_path, QWEN3, random_tensors(QWEN3_TENSORS), dtype="BF16")
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    state = model.state_dict()
    ckpt = load_checkpoint(tmp_path)
    assert set(state) == set(arrays)
    for name in arrays:
        np.testing.assert_array_equal(ckpt.tensor(name), state[name].numpy(), err_msg=name)
    assert model.config.head_dim == ckpt.config.head_dim
    assert math.isclose(model.config.rope_parameters["rope_theta"], ckpt.config.rope_theta)

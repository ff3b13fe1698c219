"""The Qwen3.5 part of checkpoint reading: its config.json layout and the tensors it needs.

Qwen3.5 ships in two checkpoint classes; both hold the same language model::

    Qwen3_5ForConditionalGeneration   config.json {"text_config": {...}, "vision_config": {...}}
        model.language_model.*        the decoder        (exported)
        model.visual.*                the vision tower   (ignored: named in the manifest)
        lm_head.weight                absent when tie_word_embeddings
        mtp.*                         the multi-token-prediction layer (kept out of the graph)
    Qwen3_5ForCausalLM                config.json holds the text config at the top level
        model.*, lm_head.weight, mtp.*

Every fourth layer (``layer_types``) is gated full attention; the others are Gated DeltaNet
linear attention with fixed-size conv and recurrent states (``GatedDeltaNetConfig``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwen_edge.errors import CheckpointError

if TYPE_CHECKING:
    from .hf_config import QwenConfig

__all__ = [
    "QWEN35_ARCHITECTURES",
    "GatedDeltaNetConfig",
    "parse_qwen35",
    "qwen35_expected_tensors",
    "rotary_dim",
]

QWEN35_ARCHITECTURES = ("Qwen3_5ForCausalLM", "Qwen3_5ForConditionalGeneration")
_LAYER_TYPES = ("linear_attention", "full_attention")
# Prefixes of the tensors the exporter leaves out, by architecture (named in the manifest).
_IGNORED = {
    "Qwen3_5ForCausalLM": ("mtp.",),
    "Qwen3_5ForConditionalGeneration": ("model.visual.", "mtp."),
}
_PREFIX = {"Qwen3_5ForCausalLM": "model.", "Qwen3_5ForConditionalGeneration": "model.language_model."}


@dataclass(frozen=True, slots=True, kw_only=True)
class GatedDeltaNetConfig:
    """The linear-attention (Gated DeltaNet) dimensions of a Qwen3.5 checkpoint.

    ``num_key_heads`` query/key heads share ``num_value_heads`` recurrent states (a value head
    ``j`` reads key head ``j // (num_value_heads // num_key_heads)``).
    """

    num_key_heads: int
    num_value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_kernel: int

    def __post_init__(self) -> None:
        for name in ("num_key_heads", "num_value_heads", "key_head_dim", "value_head_dim",
                     "conv_kernel"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise CheckpointError(f"linear_{name}={value!r}: must be a positive integer")
        if self.num_value_heads % self.num_key_heads:
            raise CheckpointError(
                f"linear_num_value_heads={self.num_value_heads}: must be a multiple of "
                f"linear_num_key_heads={self.num_key_heads}"
            )
        if self.conv_kernel < 2:
            raise CheckpointError(f"linear_conv_kernel_dim={self.conv_kernel}: must be >= 2")

    @property
    def key_dim(self) -> int:
        return self.num_key_heads * self.key_head_dim

    @property
    def value_dim(self) -> int:
        return self.num_value_heads * self.value_head_dim

    @property
    def conv_dim(self) -> int:
        """Channels of the causal conv: q, k and v side by side."""
        return 2 * self.key_dim + self.value_dim

    @property
    def conv_state_shape(self) -> tuple[int, int, int]:
        """[batch, conv_dim, kernel - 1]: the last inputs the next step's conv looks back at."""
        return (1, self.conv_dim, self.conv_kernel - 1)

    @property
    def recurrent_state_shape(self) -> tuple[int, int, int, int]:
        """[batch, value heads, key_head_dim, value_head_dim]: the delta-rule memory."""
        return (1, self.num_value_heads, self.key_head_dim, self.value_head_dim)


def _required(d: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = d.get(key, default)
    if value is None:
        raise CheckpointError(f"missing {key}")
    return value


def parse_qwen35(d: Mapping[str, Any], architecture: str) -> dict[str, Any]:
    """QwenConfig keyword arguments from a Qwen3.5 ``config.json`` (either class).

    Raises:
        CheckpointError: a missing or invalid value (named), or a feature the exporter lacks
            (MoE layers, scaled RoPE, attention biases).
    """
    text = d.get("text_config", d) if architecture == "Qwen3_5ForConditionalGeneration" else d
    if not isinstance(text, Mapping):
        raise CheckpointError("text_config must be an object")
    if text.get("num_experts"):
        raise CheckpointError(
            f"num_experts={text['num_experts']}: Qwen3.5 MoE checkpoints are not supported "
            "(only the dense 0.8B / 2B / 4B / 9B family)"
        )
    if text.get("attention_bias", False):
        raise CheckpointError("attention_bias=true: not supported for Qwen3.5")
    if text.get("attn_output_gate", True) is not True:
        raise CheckpointError("attn_output_gate=false: not supported (Qwen3.5 gates attention)")
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads"):
        _required(text, key)
    layers = text["num_hidden_layers"]
    interval = text.get("full_attention_interval", 4)
    layer_types = text.get("layer_types")
    if layer_types is None and isinstance(layers, int) and isinstance(interval, int) and interval > 0:
        layer_types = ["full_attention" if (i + 1) % interval == 0 else "linear_attention"
                       for i in range(layers)]
    if (not isinstance(layer_types, list) or len(layer_types) != layers
            or any(t not in _LAYER_TYPES for t in layer_types)):
        raise CheckpointError(
            f"layer_types={layer_types!r}: must list num_hidden_layers={layers} entries of "
            f"{' / '.join(_LAYER_TYPES)}"
        )
    rope = text.get("rope_parameters") or {}
    if not isinstance(rope, Mapping):
        raise CheckpointError(f"rope_parameters={rope!r}: must be an object")
    if rope.get("rope_type", "default") != "default":
        raise CheckpointError(
            f"rope_type {rope.get('rope_type')!r} is not supported (only the default RoPE)"
        )
    theta = rope.get("rope_theta", text.get("rope_theta", 10_000_000.0))
    partial = rope.get("partial_rotary_factor", text.get("partial_rotary_factor", 0.25))
    linear = GatedDeltaNetConfig(
        num_key_heads=_required(text, "linear_num_key_heads", 16),
        num_value_heads=_required(text, "linear_num_value_heads", 32),
        key_head_dim=_required(text, "linear_key_head_dim", 128),
        value_head_dim=_required(text, "linear_value_head_dim", 128),
        conv_kernel=_required(text, "linear_conv_kernel_dim", 4),
    )
    heads = text["num_attention_heads"]
    head_dim = text.get("head_dim", 256)
    if not isinstance(partial, (int, float)) or not 0 < partial <= 1 or not isinstance(
            head_dim, int) or (head_dim * partial) % 2 or not float(head_dim * partial).is_integer():
        raise CheckpointError(
            f"partial_rotary_factor={partial!r}: must give an even number of rotary dims of "
            f"head_dim={head_dim}"
        )
    if int(head_dim * partial) % 16:
        raise CheckpointError(
            f"head_dim={head_dim} x partial_rotary_factor={partial} = {head_dim * partial:g} "
            "rotary dims: onnxruntime's GroupQueryAttention needs a multiple of 16"
        )
    eos = text.get("eos_token_id", d.get("eos_token_id"))
    eos_ids = () if eos is None else tuple(eos) if isinstance(eos, list) else (eos,)
    dtype = text.get("dtype") or text.get("torch_dtype") or d.get("dtype") or d.get(
        "torch_dtype") or "float32"
    # A ConditionalGeneration checkpoint ties at the top level (text_config repeats it).
    tie = d.get("tie_word_embeddings", text.get("tie_word_embeddings", False))
    return {
        "architecture": architecture,
        "model_type": str(d.get("model_type", "qwen3_5")),
        "vocab_size": text["vocab_size"],
        "hidden_size": text["hidden_size"],
        "intermediate_size": text["intermediate_size"],
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": text.get("num_key_value_heads", heads),
        "head_dim": head_dim,
        "max_position_embeddings": text.get("max_position_embeddings", 262_144),
        "rope_theta": float(theta) if isinstance(theta, (int, float)) else theta,
        "rms_norm_eps": text.get("rms_norm_eps", 1e-6),
        "tie_word_embeddings": tie,
        "attention_bias": False,
        "qk_norm": True,
        "dtype": dtype.removeprefix("torch.") if isinstance(dtype, str) else dtype,
        "hidden_act": text.get("hidden_act", "silu"),
        "bos_token_id": text.get("bos_token_id"),
        "eos_token_id": eos_ids,
        "layer_types": tuple(layer_types),
        "linear": linear,
        "partial_rotary_factor": float(partial),
        "attn_output_gate": True,
        "norm_offset": True,
        "prefix": _PREFIX[architecture],
        "ignored_prefixes": _IGNORED[architecture],
    }


def qwen35_expected_tensors(cfg: QwenConfig) -> dict[str, tuple[int, ...]]:
    """Every language-model tensor a Qwen3.5 checkpoint needs, by name, with its shape.

    Weights are ``[out_features, in_features]``; the full-attention ``q_proj`` holds query and
    output gate per head (``[heads, 2 * head_dim]`` rows), hence twice the query width.
    """
    assert cfg.linear is not None
    lin = cfg.linear
    p0 = cfg.prefix
    hidden, inter = cfg.hidden_size, cfg.intermediate_size
    q_dim = cfg.num_attention_heads * cfg.head_dim
    kv_dim = cfg.num_key_value_heads * cfg.head_dim
    shapes: dict[str, tuple[int, ...]] = {f"{p0}embed_tokens.weight": (cfg.vocab_size, hidden)}
    for i, kind in enumerate(cfg.layer_types):
        p = f"{p0}layers.{i}"
        shapes[f"{p}.input_layernorm.weight"] = (hidden,)
        if kind == "linear_attention":
            a = f"{p}.linear_attn"
            shapes[f"{a}.in_proj_qkv.weight"] = (lin.conv_dim, hidden)
            shapes[f"{a}.in_proj_z.weight"] = (lin.value_dim, hidden)
            shapes[f"{a}.in_proj_b.weight"] = (lin.num_value_heads, hidden)
            shapes[f"{a}.in_proj_a.weight"] = (lin.num_value_heads, hidden)
            shapes[f"{a}.conv1d.weight"] = (lin.conv_dim, 1, lin.conv_kernel)
            shapes[f"{a}.dt_bias"] = (lin.num_value_heads,)
            shapes[f"{a}.A_log"] = (lin.num_value_heads,)
            shapes[f"{a}.norm.weight"] = (lin.value_head_dim,)
            shapes[f"{a}.out_proj.weight"] = (hidden, lin.value_dim)
        else:
            a = f"{p}.self_attn"
            shapes[f"{a}.q_proj.weight"] = (2 * q_dim, hidden)
            shapes[f"{a}.k_proj.weight"] = (kv_dim, hidden)
            shapes[f"{a}.v_proj.weight"] = (kv_dim, hidden)
            shapes[f"{a}.o_proj.weight"] = (hidden, q_dim)
            shapes[f"{a}.q_norm.weight"] = (cfg.head_dim,)
            shapes[f"{a}.k_norm.weight"] = (cfg.head_dim,)
        shapes[f"{p}.post_attention_layernorm.weight"] = (hidden,)
        shapes[f"{p}.mlp.gate_proj.weight"] = (inter, hidden)
        shapes[f"{p}.mlp.up_proj.weight"] = (inter, hidden)
        shapes[f"{p}.mlp.down_proj.weight"] = (hidden, inter)
    shapes[f"{p0}norm.weight"] = (hidden,)
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (cfg.vocab_size, hidden)
    return shapes


def rotary_dim(cfg: QwenConfig) -> int:
    """Dims of each full-attention head that are rotated (the first ones; the rest pass)."""
    return math.floor(cfg.head_dim * cfg.partial_rotary_factor)

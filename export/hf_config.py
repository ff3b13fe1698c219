"""Parse a Hugging Face Qwen ``config.json`` into the typed config the exporter builds from.

One parser for every source: a checkpoint folder hands it ``config.json``, a GGUF file hands it
the same dict rebuilt from its metadata (``gguf.hf_config_dict``), so the fields, their
defaults and their checks are known in this one place. Unknown keys are dropped (mlx-lm
``BaseModelArgs.from_dict``); features the exporter lacks are refused with the field named.

::

    QwenConfig.from_dict(json.loads("config.json")) -> QwenConfig (frozen, validated)
    expected_tensors(cfg)       every tensor the architecture needs -> its shape
    check_tensors(cfg, shapes)  the same list, compared with what a file holds
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qwen_edge.errors import CheckpointError, UnsupportedArchitectureError

from .qwen35_config import (
    QWEN35_ARCHITECTURES,
    GatedDeltaNetConfig,
    parse_qwen35,
    qwen35_expected_tensors,
)

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "QwenConfig",
    "check_tensors",
    "expected_tensors",
]

SUPPORTED_ARCHITECTURES = ("Qwen2ForCausalLM", "Qwen3ForCausalLM", *QWEN35_ARCHITECTURES)

_ROPE_SUPPORTED = (None, "default")
_POSITIVE_INTS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "max_position_embeddings",
)
_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True, slots=True)
class _Arch:
    """What an architecture fixes, as flags (``qwen.build_decoder`` reads them from QwenConfig)."""

    model_type: str
    qk_norm: bool  # Qwen3: RMSNorm over each head of q and k
    qkv_bias: bool | None  # Qwen2: q/k/v always have biases; None: read attention_bias
    default_head_dim: int | None  # None: hidden_size // num_attention_heads
    hybrid: bool = False  # Qwen3.5: linear-attention layers; parsed by qwen35_config


_ARCHITECTURES = {
    "Qwen2ForCausalLM": _Arch(
        model_type="qwen2", qk_norm=False, qkv_bias=True, default_head_dim=None
    ),
    "Qwen3ForCausalLM": _Arch(
        model_type="qwen3", qk_norm=True, qkv_bias=None, default_head_dim=128
    ),
    "Qwen3_5ForCausalLM": _Arch(
        model_type="qwen3_5_text", qk_norm=True, qkv_bias=False, default_head_dim=256,
        hybrid=True,
    ),
    "Qwen3_5ForConditionalGeneration": _Arch(
        model_type="qwen3_5", qk_norm=True, qkv_bias=False, default_head_dim=256, hybrid=True,
    ),
}
_BY_MODEL_TYPE = {arch.model_type: name for name, arch in _ARCHITECTURES.items()}



@dataclass(frozen=True, slots=True, kw_only=True)
class QwenConfig:
    """The parts of a Qwen ``config.json`` the exporter uses, validated.

    ``attention_bias`` means q/k/v carry biases (always for Qwen2, where o_proj has none);
    ``qk_norm`` means per-head RMSNorm on q and k (Qwen3). ``rope_scaling`` is ``None`` once
    parsed: a ``"default"`` entry is plain RoPE and scaled variants (yarn, dynamic, ...) are
    rejected. ``dtype`` is the checkpoint's ``torch_dtype`` / ``dtype`` string.

    Example:
        >>> cfg = QwenConfig.from_dict(json.loads(Path("ckpt/config.json").read_text()))
        >>> cfg.num_attention_heads // cfg.num_key_value_heads   # queries per kv head
        7
    """

    architecture: str
    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    max_position_embeddings: int
    rope_theta: float
    rms_norm_eps: float
    tie_word_embeddings: bool
    attention_bias: bool
    qk_norm: bool
    dtype: str = "float32"
    rope_scaling: dict[str, Any] | None = None
    hidden_act: str = "silu"
    bos_token_id: int | None = None
    eos_token_id: tuple[int, ...] = ()
    # Qwen3.5 (hybrid) only; the defaults describe Qwen2 / Qwen3.
    layer_types: tuple[str, ...] = ()  # per layer: "linear_attention" | "full_attention"
    linear: GatedDeltaNetConfig | None = None  # the linear-attention dimensions
    partial_rotary_factor: float = 1.0  # fraction of head_dim that RoPE rotates
    attn_output_gate: bool = False  # q_proj also yields a sigmoid gate on attention's output
    norm_offset: bool = False  # RMSNorm scales by (1 + w); the export folds the 1 in
    prefix: str = "model."  # of the language model's tensors
    ignored_prefixes: tuple[str, ...] = ()  # tensors the export leaves out (vision, MTP)

    @property
    def full_attention_layers(self) -> tuple[int, ...]:
        """Indices of the layers with a KV cache (every layer but Qwen3.5's linear ones)."""
        if not self.layer_types:
            return tuple(range(self.num_hidden_layers))
        return tuple(i for i, t in enumerate(self.layer_types) if t == "full_attention")

    @property
    def linear_attention_layers(self) -> tuple[int, ...]:
        return tuple(i for i, t in enumerate(self.layer_types) if t == "linear_attention")

    def __post_init__(self) -> None:
        if self.architecture not in _ARCHITECTURES:
            raise UnsupportedArchitectureError(_unsupported(self.architecture))
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise CheckpointError(f"{name}={value!r}: must be a positive integer")
        if self.num_attention_heads % self.num_key_value_heads:
            raise CheckpointError(
                f"num_attention_heads={self.num_attention_heads}: must be a multiple of "
                f"num_key_value_heads={self.num_key_value_heads}"
            )
        for name in ("rope_theta", "rms_norm_eps"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 < value < math.inf:
                raise CheckpointError(f"{name}={value!r}: must be a positive number")
        for name in ("tie_word_embeddings", "attention_bias", "qk_norm"):
            if not isinstance(getattr(self, name), bool):
                raise CheckpointError(f"{name}={getattr(self, name)!r}: must be true or false")
        if self.dtype not in _DTYPES:
            raise CheckpointError(
                f"torch_dtype={self.dtype!r}: must be one of {', '.join(_DTYPES)}"
            )
        if self.hidden_act != "silu":
            raise CheckpointError(f"hidden_act={self.hidden_act!r}: not supported (Qwen uses silu)")
        rope_type = _rope_type(self.rope_scaling)
        if rope_type not in _ROPE_SUPPORTED:
            raise CheckpointError(
                f"rope_scaling type {rope_type!r} is not supported (only the default RoPE); "
                "remove rope_scaling from config.json to export for the native context length"
            )
        if self.bos_token_id is not None and not _is_int(self.bos_token_id):
            raise CheckpointError(f"bos_token_id={self.bos_token_id!r}: must be an integer")
        if not all(_is_int(t) for t in self.eos_token_id):
            raise CheckpointError(f"eos_token_id={list(self.eos_token_id)!r}: must be integers")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "config.json") -> QwenConfig:
        """Parse a Hugging Face ``config.json`` dict (transformers 4.x or 5.x layout).

        Unknown keys are dropped. A missing ``architectures`` falls back to ``model_type``.

        Args:
            d: the parsed ``config.json``.
            source: named in error messages (the file the dict came from).

        Raises:
            UnsupportedArchitectureError: not Qwen2ForCausalLM / Qwen3ForCausalLM.
            CheckpointError: a missing or invalid value, or a feature the exporter lacks
                (sliding-window attention, scaled RoPE, quantized weights); names the field.
        """
        try:
            return cls._from_dict(d)
        except UnsupportedArchitectureError as exc:
            raise UnsupportedArchitectureError(f"{source}: {exc}") from None
        except CheckpointError as exc:
            raise CheckpointError(f"{source}: {exc}") from None

    @classmethod
    def _from_dict(cls, d: Mapping[str, Any]) -> QwenConfig:
        if not isinstance(d, Mapping):
            raise CheckpointError(f"must be a JSON object, not {type(d).__name__}")
        architecture = _architecture(d)
        arch = _ARCHITECTURES[architecture]
        if arch.hybrid:
            _reject_quantized(d)
            return cls(**parse_qwen35(d, architecture))
        model_type = d.get("model_type", arch.model_type)
        if model_type != arch.model_type:
            raise CheckpointError(
                f"model_type={model_type!r} does not match architecture {architecture} "
                f"(expected {arch.model_type!r})"
            )
        _reject_quantized(d)
        layer_types = d.get("layer_types") or []
        if d.get("use_sliding_window") or any(t != "full_attention" for t in layer_types):
            raise CheckpointError(
                "use_sliding_window=true: sliding-window attention is not supported; "
                "set use_sliding_window to false in config.json"
            )
        for key in _POSITIVE_INTS[:5]:  # the dimensions without a default
            if key not in d:
                raise CheckpointError(f"missing {key}")
        heads = d["num_attention_heads"]
        kv_heads = d.get("num_key_value_heads")
        head_dim = d.get("head_dim")
        if head_dim is None:
            head_dim = arch.default_head_dim
        if head_dim is None:  # Qwen2: derived, as transformers' Qwen2Attention does
            hidden = d["hidden_size"]
            if _is_int(hidden) and _is_int(heads) and heads > 0 and hidden % heads:
                raise CheckpointError(
                    f"hidden_size={hidden}: must be a multiple of num_attention_heads={heads} "
                    "(or config.json must give head_dim)"
                )
            head_dim = hidden // heads if _is_int(hidden) and _is_int(heads) and heads > 0 else 0
        if arch.qkv_bias is None and d.get("attention_bias", False) is True:
            raise CheckpointError(
                f"attention_bias=true: not supported for {architecture} (published Qwen3 "
                "checkpoints have none)"
            )
        rope_theta, rope_scaling = _rope(d)
        eos = d.get("eos_token_id")
        eos_ids = () if eos is None else tuple(eos) if isinstance(eos, list) else (eos,)
        dtype = d.get("dtype") or d.get("torch_dtype") or "float32"
        return cls(
            architecture=architecture,
            model_type=model_type,
            vocab_size=d["vocab_size"],
            hidden_size=d["hidden_size"],
            intermediate_size=d["intermediate_size"],
            num_hidden_layers=d["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=heads if kv_heads is None else kv_heads,
            head_dim=head_dim,
            max_position_embeddings=d.get("max_position_embeddings", 32768),
            rope_theta=float(rope_theta) if _is_number(rope_theta) else rope_theta,
            rms_norm_eps=d.get("rms_norm_eps", 1e-6),
            tie_word_embeddings=d.get("tie_word_embeddings", False),
            attention_bias=bool(arch.qkv_bias),
            qk_norm=arch.qk_norm,
            dtype=dtype.removeprefix("torch.") if isinstance(dtype, str) else dtype,
            rope_scaling=rope_scaling,
            hidden_act=d.get("hidden_act", "silu"),
            bos_token_id=d.get("bos_token_id"),
            eos_token_id=eos_ids,
        )


def _reject_quantized(d: Mapping[str, Any]) -> None:
    quantization = d.get("quantization_config")
    if quantization is not None:
        method = quantization.get("quant_method") if isinstance(quantization, dict) else None
        raise CheckpointError(
            f"quantization_config ({method}): quantized checkpoints are not supported; "
            "pass the original bfloat16 checkpoint (qwen-edge quantizes on export)"
        )


def _architecture(d: Mapping[str, Any]) -> str:
    architectures = d.get("architectures")
    if isinstance(architectures, list) and architectures:
        name = architectures[0]
    elif d.get("model_type") in _BY_MODEL_TYPE:
        name = _BY_MODEL_TYPE[d["model_type"]]
    else:
        name = f"model_type={d.get('model_type')!r} (no architectures)"
    if name not in _ARCHITECTURES:
        raise UnsupportedArchitectureError(_unsupported(str(name)))
    return str(name)


def _unsupported(name: str) -> str:
    return f"{name} is not supported; supported: {', '.join(SUPPORTED_ARCHITECTURES)}"


def _rope(d: Mapping[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """(rope_theta, rope_scaling) from the 4.x keys or transformers 5's ``rope_parameters``."""
    theta = d.get("rope_theta", 10000.0)  # transformers' default when absent
    scaling = d.get("rope_scaling")
    params = d.get("rope_parameters")
    if isinstance(params, Mapping):
        theta = params.get("rope_theta", theta)
        if params.get("rope_type", "default") != "default":
            scaling = dict(params)
    if scaling is not None and not isinstance(scaling, Mapping):
        raise CheckpointError(f"rope_scaling={scaling!r}: must be an object or null")
    if scaling is not None and _rope_type(scaling) in _ROPE_SUPPORTED:
        scaling = None  # a "default" entry is plain RoPE
    return theta, (dict(scaling) if scaling is not None else None)


def _rope_type(scaling: Mapping[str, Any] | None) -> Any:
    if scaling is None:
        return None
    return scaling.get("rope_type", scaling.get("type"))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def expected_tensors(cfg: QwenConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor the architecture needs, by Hugging Face name, with its shape (in file order).

    Weights are ``[out_features, in_features]`` as ``torch.nn.Linear`` stores them.
    """
    if cfg.linear is not None:
        return qwen35_expected_tensors(cfg)
    hidden, inter = cfg.hidden_size, cfg.intermediate_size
    q_dim = cfg.num_attention_heads * cfg.head_dim
    kv_dim = cfg.num_key_value_heads * cfg.head_dim
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (cfg.vocab_size, hidden)}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}"
        shapes[f"{p}.input_layernorm.weight"] = (hidden,)
        for proj, out_features in (("q", q_dim), ("k", kv_dim), ("v", kv_dim)):
            shapes[f"{p}.self_attn.{proj}_proj.weight"] = (out_features, hidden)
            if cfg.attention_bias:
                shapes[f"{p}.self_attn.{proj}_proj.bias"] = (out_features,)
        shapes[f"{p}.self_attn.o_proj.weight"] = (hidden, q_dim)
        if cfg.qk_norm:
            shapes[f"{p}.self_attn.q_norm.weight"] = (cfg.head_dim,)
            shapes[f"{p}.self_attn.k_norm.weight"] = (cfg.head_dim,)
        shapes[f"{p}.post_attention_layernorm.weight"] = (hidden,)
        shapes[f"{p}.mlp.gate_proj.weight"] = (inter, hidden)
        shapes[f"{p}.mlp.up_proj.weight"] = (inter, hidden)
        shapes[f"{p}.mlp.down_proj.weight"] = (hidden, inter)
    shapes["model.norm.weight"] = (hidden,)
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (cfg.vocab_size, hidden)
    return shapes



def check_tensors(
    cfg: QwenConfig,
    found: Mapping[str, tuple[str, tuple[int, ...], str | None]],
    *,
    source: str,
    mismatch: str,
) -> None:
    """Compare a file's tensors with ``expected_tensors(cfg)``; one error listing what is wrong.

    Shared by every checkpoint reader so that a safetensors folder and a GGUF file are held to
    the same list. Extra tensors (for example a tied ``lm_head.weight``) are ignored.

    Args:
        found: Hugging Face name -> (the name the file uses, shape, why it cannot be read or
            ``None``), for every tensor in the file.
        source: the file or folder, named first in the message.
        mismatch: what disagrees, e.g. ``"the checkpoint does not match its config.json"``.

    Raises:
        CheckpointError: names up to five missing tensors, shape mismatches or unreadable
            types, with the expected and actual shape.
    """
    problems = []
    for name, shape in expected_tensors(cfg).items():
        entry = found.get(name)
        if entry is None:
            problems.append(f"missing tensor {name} (expected shape {list(shape)})")
            continue
        label, actual, unreadable = entry
        if actual != shape:
            problems.append(f"tensor {label} has shape {list(actual)}, expected {list(shape)}")
        elif unreadable is not None:
            problems.append(f"tensor {label} {unreadable}")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise CheckpointError(
            f"{source}: {'; '.join(problems[:5])}{more}; {mismatch} ({cfg.architecture})"
        )

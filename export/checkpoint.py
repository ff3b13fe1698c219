"""Read a Hugging Face Qwen2 / Qwen2.5 / Qwen3 checkpoint: its config, then weights one by one.

::

    load_checkpoint("ckpt/" | "Qwen/Qwen2.5-0.5B-Instruct") -> Checkpoint
        .config            QwenConfig (frozen; parsed from config.json, unknown keys dropped)
        .validate()        every tensor the architecture needs exists with the derived shape
        .tensor(name)      float32 [*shape], read on demand from a memory map of its file

The safetensors files are parsed here (no torch, no safetensors package)::

    [u64 little-endian: N][N bytes: JSON header, space padded][data area ..................]
    header = {"model.norm.weight": {"dtype": "BF16", "shape": [896], "data_offsets": [b, e]},
              "__metadata__": {"format": "pt"}}       offsets are relative to the data area

``tensor`` maps only the pages that hold one tensor, converts them to float32 (bf16 through
``ml_dtypes``) and unmaps them, so the exporter's peak memory stays near one tensor in fp32.
"""

from __future__ import annotations

import itertools
import json
import math
import mmap
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

from qwen_edge.errors import (
    CheckpointError,
    ConfigError,
    HubUnavailableError,
    UnsupportedArchitectureError,
)

from .qwen35_config import (
    QWEN35_ARCHITECTURES,
    GatedDeltaNetConfig,
    parse_qwen35,
    qwen35_expected_tensors,
)

__all__ = [
    "HUB_ALLOW_PATTERNS",
    "SUPPORTED_ARCHITECTURES",
    "Checkpoint",
    "QwenConfig",
    "expected_tensors",
    "load_checkpoint",
]

SUPPORTED_ARCHITECTURES = ("Qwen2ForCausalLM", "Qwen3ForCausalLM", *QWEN35_ARCHITECTURES)

# What snapshot_download fetches: configs, weights and tokenizer files; never *.bin / *.pth.
HUB_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]

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
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors reference reader's limit
_READ_STEP = 1 << 22  # values converted per step by Checkpoint.tensor

# Bytes per element of every safetensors dtype, for the header's size check.
_ITEM_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
    "C64": 8,
}  # fmt: skip
# The dtypes ``tensor`` converts to float32 (the file is little-endian, as safetensors requires).
_READABLE = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype(ml_dtypes.bfloat16)}


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


# -- config -------------------------------------------------------------------------------


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


# -- checkpoint ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _TensorInfo:
    file: Path
    dtype: str  # safetensors dtype string
    shape: tuple[int, ...]
    offset: int  # absolute byte offset in ``file``
    nbytes: int


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Checkpoint:
    """A Hugging Face checkpoint folder: config, tokenizer files and lazily read tensors.

    Only the safetensors headers are read by ``load_checkpoint``; ``tensor(name)`` reads one
    tensor's bytes when it is called.

    Example:
        >>> ckpt = load_checkpoint("ckpt/")
        >>> ckpt.validate()
        >>> ckpt.tensor("model.norm.weight").dtype
        dtype('float32')
    """

    path: Path
    config: QwenConfig
    raw_config: dict[str, Any]
    generation_config: dict[str, Any]
    tokenizer_json: Path | None
    tokenizer_config: dict[str, Any]
    chat_template: str | None
    _tensors: Mapping[str, _TensorInfo] = field(repr=False)

    def tokenizer_text(self) -> str | None:
        """The folder's tokenizer.json, or ``None`` if it has none."""
        if self.tokenizer_json is None:
            return None
        return self.tokenizer_json.read_text(encoding="utf-8")

    def names(self) -> list[str]:
        """Every tensor in the checkpoint's safetensors files, sorted."""
        return sorted(self._tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._info(name).shape

    def dtype(self, name: str) -> str:
        """The safetensors dtype string (``"BF16"``, ``"F32"``, ...)."""
        return self._info(name).dtype

    def nbytes(self, name: str) -> int:
        """Bytes the tensor takes in its file."""
        return self._info(name).nbytes

    def tensor(self, name: str) -> np.ndarray:
        """One tensor as a C-contiguous float32 array, read from a memory map of its file.

        Only the pages holding this tensor are mapped, and they are unmapped before returning.

        Raises:
            CheckpointError: unknown name, a dtype other than F32/F16/BF16, or a file that
                changed on disk since ``load_checkpoint``.
        """
        info = self._info(name)
        source = _READABLE.get(info.dtype)
        if source is None:
            supported = ", ".join(_READABLE)
            raise CheckpointError(
                f"{info.file}: tensor {name} has dtype {info.dtype}; supported: {supported}"
            )
        if info.nbytes == 0:
            return np.zeros(info.shape, np.float32)
        start = info.offset - info.offset % mmap.ALLOCATIONGRANULARITY
        try:
            with info.file.open("rb") as f:
                if os.fstat(f.fileno()).st_size < info.offset + info.nbytes:  # mmap would SIGBUS
                    raise CheckpointError(f"{info.file}: changed on disk since it was loaded")
                length = info.offset + info.nbytes - start
                with mmap.mmap(f.fileno(), length, offset=start, access=mmap.ACCESS_READ) as mapped:
                    out = _convert(mapped, info.offset - start, source, math.prod(info.shape))
        except OSError as exc:
            raise CheckpointError(f"{info.file}: cannot read tensor {name}: {exc}") from exc
        return out.reshape(info.shape)

    def validate(self) -> None:
        """Check that every tensor the architecture needs exists, with its derived shape.

        Extra tensors (for example a tied ``lm_head.weight``) are ignored.

        Raises:
            CheckpointError: lists the missing tensors and shape or dtype mismatches, each
                with the tensor name, expected and actual shape.
        """
        problems = []
        for name, shape in expected_tensors(self.config).items():
            info = self._tensors.get(name)
            if info is None:
                problems.append(f"missing tensor {name} (expected shape {list(shape)})")
            elif info.shape != shape:
                problems.append(
                    f"tensor {name} has shape {list(info.shape)}, expected {list(shape)}"
                )
            elif info.dtype not in _READABLE:
                problems.append(
                    f"tensor {name} has dtype {info.dtype}; supported: {', '.join(_READABLE)}"
                )
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise CheckpointError(
                f"{self.path}: {'; '.join(problems[:5])}{more}; the checkpoint does not match "
                f"its config.json ({self.config.architecture})"
            )

    def _info(self, name: str) -> _TensorInfo:
        try:
            return self._tensors[name]
        except KeyError:
            raise CheckpointError(f"{self.path}: no tensor named {name!r}") from None


def _convert(mapped: mmap.mmap, offset: int, source: np.dtype[Any], count: int) -> np.ndarray:
    """float32 copy of ``count`` values at ``offset`` in the map (bf16 -> f32 through ml_dtypes).

    Converts in steps and drops each step's pages from the mapping, so the resident memory is
    the float32 result plus one step, not plus the whole mapped tensor.
    """
    raw = np.frombuffer(mapped, source, count, offset)
    try:
        out = np.empty(count, np.float32)
        page = mmap.PAGESIZE
        for begin in range(0, count, _READ_STEP):
            end = min(begin + _READ_STEP, count)
            out[begin:end] = raw[begin:end]
            if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
                first = (offset + begin * source.itemsize) // page * page
                last = (offset + end * source.itemsize) // page * page  # pages wholly consumed
                if last > first:
                    mapped.madvise(mmap.MADV_DONTNEED, first, last - first)
    finally:
        del raw  # release the buffer before the map closes
    return out


# -- loading ------------------------------------------------------------------------------

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def load_checkpoint(src: str | os.PathLike[str], *, revision: str | None = None) -> Checkpoint:
    """Open a Hugging Face Qwen checkpoint: a local folder, or a hub id (``org/name``).

    A hub id is fetched with ``huggingface_hub.snapshot_download`` (configs, safetensors and
    tokenizer files only). Only headers are read here; tensors are read by ``tensor``.

    Args:
        src: a checkpoint folder, or a hub id that is not an existing path.
        revision: a hub branch, tag or commit (hub ids only).

    Raises:
        CheckpointError: a missing folder, config.json or safetensors file, or a corrupt one.
        UnsupportedArchitectureError: config.json describes another architecture.
        HubUnavailableError: a hub id was given and the hub cannot be reached.
        ConfigError: ``revision`` was given with a local folder.

    Example:
        >>> ckpt = load_checkpoint("Qwen/Qwen2.5-0.5B-Instruct")
        >>> ckpt.config.hidden_size
        896
    """
    text = os.fspath(src)
    if isinstance(src, os.PathLike) or _looks_local(text):
        if revision is not None:
            raise ConfigError(f"revision={revision!r}: only applies to hub ids, not to {text}")
        return _load_folder(Path(text).expanduser())
    if _HUB_ID.fullmatch(text):
        return _load_folder(_download(text, revision))
    raise CheckpointError(
        f"{text}: no such folder, and not a hub id; pass a Hugging Face checkpoint folder "
        "or a hub id like Qwen/Qwen2.5-0.5B-Instruct"
    )


def _looks_local(text: str) -> bool:
    path = Path(text).expanduser()
    return text.startswith((".", "/", "~", "\\")) or path.is_absolute() or path.exists()


def _download(repo_id: str, revision: str | None) -> Path:
    folder_name = repo_id.rpartition("/")[2]
    hint = (
        f"download it where the hub is reachable (`hf download {repo_id} --local-dir "
        f"{folder_name}`), copy the folder here and pass its path instead of the hub id"
    )
    try:
        import huggingface_hub
        from huggingface_hub import errors  # huggingface_hub >= 0.24
    except ImportError as exc:
        raise HubUnavailableError(
            f"{repo_id}: the Hugging Face hub cannot be reached: huggingface_hub is not "
            f"installed (pip install 'qwen-edge[export]'); or {hint}"
        ) from exc
    # Connection errors, offline mode and HTTP errors are OSErrors; newer versions raise
    # their transport errors (HTTPError) and Xet download errors outside that tree.
    unreachable: tuple[type[BaseException], ...] = (
        OSError,
        *(
            cls
            for cls in (getattr(errors, name, None) for name in ("HTTPError", "XetDownloadError"))
            if isinstance(cls, type) and issubclass(cls, BaseException)
        ),
    )
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id, revision=revision, allow_patterns=HUB_ALLOW_PATTERNS
        )
    except errors.GatedRepoError as exc:
        raise CheckpointError(
            f"{repo_id}: gated on the Hugging Face hub; accept its terms on huggingface.co and "
            f"log in (`hf auth login`), or {hint}"
        ) from exc
    except errors.RepositoryNotFoundError as exc:
        raise CheckpointError(
            f"{repo_id}: no such model on the Hugging Face hub (private models need "
            "`hf auth login`); check the id, or pass a local checkpoint folder"
        ) from exc
    except errors.RevisionNotFoundError as exc:
        raise CheckpointError(f"{repo_id}: revision {revision!r} not found on the hub") from exc
    except errors.HFValidationError as exc:
        raise CheckpointError(f"{repo_id}: not a valid hub id ({exc})") from exc
    except unreachable as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise HubUnavailableError(
            f"{repo_id}: the Hugging Face hub cannot be reached ({type(exc).__name__}: "
            f"{reason}); to export offline, {hint}"
        ) from exc
    return Path(folder)


def _load_folder(path: Path) -> Checkpoint:
    if not path.exists():
        raise CheckpointError(
            f"{path}: no such folder; pass a Hugging Face checkpoint folder (config.json and "
            "*.safetensors) or a hub id like Qwen/Qwen2.5-0.5B-Instruct"
        )
    if not path.is_dir():
        if path.suffix.lower() == ".gguf":
            raise CheckpointError(
                f"{path}: a GGUF file, not a Hugging Face folder; export it with "
                "export_model / `qwen-edge export` (or open it with qwen_edge.export.gguf.load_gguf)"
            )
        raise CheckpointError(f"{path}: not a folder; pass the checkpoint folder that holds it")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path}: no config.json; pass a Hugging Face checkpoint folder")
    raw_config = _read_json_object(config_file)
    config = QwenConfig.from_dict(raw_config, source=str(config_file))
    tokenizer_config = _read_optional(path / "tokenizer_config.json")
    tokenizer_json = path / "tokenizer.json"
    return Checkpoint(
        path=path,
        config=config,
        raw_config=raw_config,
        generation_config=_read_optional(path / "generation_config.json"),
        tokenizer_json=tokenizer_json if tokenizer_json.is_file() else None,
        tokenizer_config=tokenizer_config,
        chat_template=_chat_template(path, tokenizer_config),
        _tensors=_index_tensors(path),
    )


def _read_json_object(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{file}: not valid JSON ({exc})") from exc
    except OSError as exc:
        raise CheckpointError(f"{file}: cannot read ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: must hold a JSON object, not {type(data).__name__}")
    return data


def _read_optional(file: Path) -> dict[str, Any]:
    return _read_json_object(file) if file.is_file() else {}


def _chat_template(path: Path, tokenizer_config: Mapping[str, Any]) -> str | None:
    """chat_template.jinja (transformers >= 4.50 saves it there) or tokenizer_config's entry."""
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default", next(iter(named.values()), None))
    return template if isinstance(template, str) else None


def _index_tensors(path: Path) -> dict[str, _TensorInfo]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        return _index_shards(path, index)
    single = path / "model.safetensors"
    if single.is_file():
        return _read_header(single)
    found = sorted(p.name for p in path.glob("*.safetensors"))
    if found:
        raise CheckpointError(
            f"{path}: has {', '.join(found[:3])} but neither model.safetensors nor "
            "model.safetensors.index.json; download the checkpoint again"
        )
    raise CheckpointError(
        f"no *.safetensors in {path}; .bin checkpoints are not supported: convert with "
        f'`python -c "from transformers import AutoModelForCausalLM as M; '
        f"M.from_pretrained('{path}').save_pretrained('{path}-safetensors')\"`"
    )


def _index_shards(path: Path, index: Path) -> dict[str, _TensorInfo]:
    weight_map = _read_json_object(index).get("weight_map")
    if (
        not isinstance(weight_map, dict)
        or not weight_map
        or not all(isinstance(v, str) for v in weight_map.values())
    ):
        raise CheckpointError(f"{index}: no weight_map of tensor name -> shard file")
    tensors: dict[str, _TensorInfo] = {}
    for shard in sorted(set(weight_map.values())):
        shard_file = path / shard
        if Path(shard).name != shard or not shard_file.is_file():
            raise CheckpointError(
                f"{index}: names shard {shard}, which is missing from {path}; "
                "download the checkpoint again"
            )
        for name, info in _read_header(shard_file).items():
            if name in tensors:
                raise CheckpointError(
                    f"{shard_file}: tensor {name} is also in {tensors[name].file}"
                )
            tensors[name] = info
    for name, shard in weight_map.items():
        if name not in tensors or tensors[name].file.name != shard:
            raise CheckpointError(f"{index}: maps {name} to {shard}, which has no such tensor")
    return tensors


def _read_header(file: Path) -> dict[str, _TensorInfo]:
    """Parse and check one safetensors header; the data area is not read."""
    try:
        size = file.stat().st_size
        with file.open("rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{file}: {size} bytes is too short for a safetensors file")
            header_len = int.from_bytes(prefix, "little")
            if header_len > size - 8 or header_len > _MAX_HEADER_BYTES:
                raise CheckpointError(
                    f"{file}: header length {header_len} is beyond the end of the file "
                    f"({size} bytes); the file is truncated or not safetensors"
                )
            blob = f.read(header_len)
    except OSError as exc:
        raise CheckpointError(f"{file}: cannot read ({exc})") from exc
    try:
        header = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{file}: header is not valid JSON ({exc}); the file is corrupt"
        ) from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{file}: header is not a JSON object; the file is corrupt")
    data_start = 8 + header_len
    data_size = size - data_start
    tensors: dict[str, _TensorInfo] = {}
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, begin, end = _parse_entry(file, name, entry)
        if end > data_size:
            raise CheckpointError(
                f"{file}: tensor {name} ends at byte {end} of a data area of {data_size} bytes; "
                "the file is truncated or its data_offsets are corrupt"
            )
        item = _ITEM_BYTES.get(dtype)
        if item is not None and end - begin != math.prod(shape) * item:
            raise CheckpointError(
                f"{file}: tensor {name} has data_offsets [{begin}, {end}] ({end - begin} bytes) "
                f"but shape {list(shape)} x {dtype} takes {math.prod(shape) * item} bytes"
            )
        tensors[name] = _TensorInfo(file, dtype, shape, data_start + begin, end - begin)
        spans.append((begin, end, name))
    spans.sort()
    for (_, end, first), (begin, _, second) in itertools.pairwise(spans):
        if begin < end:
            raise CheckpointError(
                f"{file}: tensors {first} and {second} overlap; the file is corrupt"
            )
    return tensors


def _parse_entry(file: Path, name: str, entry: Any) -> tuple[str, tuple[int, ...], int, int]:
    try:
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        begin, end = offsets
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(
            f"{file}: header entry for {name} needs dtype, shape and data_offsets [begin, end]"
        ) from None
    if (
        not isinstance(dtype, str)
        or not isinstance(shape, list)
        or not all(_is_int(n) and n >= 0 for n in shape)
        or not (_is_int(begin) and _is_int(end) and 0 <= begin <= end)
    ):
        raise CheckpointError(
            f"{file}: header entry for {name} is malformed (dtype={dtype!r}, shape={shape!r}, "
            f"data_offsets={offsets!r})"
        )
    return dtype, tuple(shape), begin, end

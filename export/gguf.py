"""Read a GGUF checkpoint (llama.cpp / Ollama) as the exporter's checkpoint interface.

::

    load_gguf("model.Q4_1.gguf") -> GGUFCheckpoint       same interface as checkpoint.Checkpoint
        .config            QwenConfig from the GGUF metadata ({arch}.embedding_length, ...)
        .tensor(name)      float32 by Hugging Face name, dequantized with the ``gguf`` package
        .tokenizer_text()  a tokenizer.json rebuilt from tokenizer.ggml.{tokens,merges,...}
        .chat_template     tokenizer.chat_template
    write_hf_checkpoint("model.gguf", "ckpt/")     config.json + model.safetensors + tokenizer

Architectures (``general.architecture``)::

    qwen2, qwen3   names map one to one (blk.{i}.attn_q -> model.layers.{i}.self_attn.q_proj)
    llama          the Qwen2 layout without q/k/v biases; GGUF stores q/k rows permuted for
                   llama.cpp's interleaved RoPE, so they are un-permuted back to Hugging Face's
                   rotate-half order (the inverse of convert_hf_to_gguf.py's ``permute``)

GGUF dimensions are listed fastest-first (``ne0`` = in_features), so a tensor's numpy / Hugging
Face shape is the reverse of the GGUF shape. The file is memory-mapped by ``GGUFReader``; one
tensor is dequantized at a time, so the exporter never holds an fp32 copy of the model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qwen_edge.errors import CheckpointError, UnsupportedArchitectureError

from .gguf_tokenizer import build_tokenizer, tokenizer_config
from .hf_config import QwenConfig, check_tensors, expected_tensors

__all__ = [
    "GGUF_ARCHITECTURES",
    "GGUFCheckpoint",
    "hf_config_dict",
    "is_gguf",
    "load_gguf",
    "write_hf_checkpoint",
]

_MAGIC = b"GGUF"
_INSTALL_HINT = 'pip install "qwen-edge[gguf]"'


@dataclass(frozen=True, slots=True)
class _GGUFArch:
    """How one ``general.architecture`` maps onto a Hugging Face architecture."""

    architecture: str  # the Hugging Face class the exporter builds
    permuted_qk: bool  # q/k rows stored in llama.cpp's interleaved-RoPE order
    qkv_bias: bool  # the file carries q/k/v biases


GGUF_ARCHITECTURES = {
    "qwen2": _GGUFArch("Qwen2ForCausalLM", permuted_qk=False, qkv_bias=True),
    "qwen3": _GGUFArch("Qwen3ForCausalLM", permuted_qk=False, qkv_bias=False),
    "llama": _GGUFArch("Qwen2ForCausalLM", permuted_qk=True, qkv_bias=False),
}
"""``general.architecture`` values that can be read, and what each becomes."""

# GGUF tensor name (after "blk.{i}.") -> Hugging Face name (after "model.layers.{i}.").
_LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_BLOCK = re.compile(r"blk\.(\d+)\.(.+)")

# Tensor types the gguf package dequantizes in numpy (by GGMLQuantizationType name).
_SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                    "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")

def is_gguf(src: str | os.PathLike[str]) -> bool:
    """Whether ``src`` is an existing file that starts with the GGUF magic."""
    path = Path(src).expanduser()
    if not path.is_file():
        return False
    try:
        with path.open("rb") as f:
            return f.read(4) == _MAGIC
    except OSError:
        return False


# -- reading ------------------------------------------------------------------------------


def _reader(path: Path) -> Any:
    try:
        from gguf import GGUFReader
    except ImportError as exc:
        msg = f"{path}: reading GGUF files needs the gguf package ({_INSTALL_HINT})"
        raise CheckpointError(msg) from exc
    if not path.is_file():
        msg = f"{path}: no such file; pass a .gguf file or a Hugging Face checkpoint folder"
        raise CheckpointError(msg)
    try:
        return GGUFReader(path, "r")
    except (ValueError, IndexError, KeyError, OSError, OverflowError) as exc:
        msg = (f"{path}: not a readable GGUF file ({type(exc).__name__}: {exc}); the file is "
               "truncated or corrupt, download it again")
        raise CheckpointError(msg) from exc


def _metadata(reader: Any) -> dict[str, Any]:
    """Every metadata field as a Python value (strings decoded, arrays as lists)."""
    out: dict[str, Any] = {}
    for name, fld in reader.fields.items():
        if name.startswith("GGUF."):  # the header's own counts
            continue
        out[name] = fld.contents()
    return out


def hf_config_dict(path: Path, meta: Mapping[str, Any], arch_name: str, *,
                   has_output: bool, vocab_size: int) -> dict[str, Any]:
    """The Hugging Face ``config.json`` dict that the GGUF metadata describes.

    Only translates key names (``{arch}.embedding_length`` -> ``hidden_size``, ...): the dict
    goes through ``QwenConfig.from_dict`` like a checkpoint folder's config.json, so defaults
    and checks live in ``hf_config`` alone, and ``write_hf_checkpoint`` saves this same dict.
    """
    arch = GGUF_ARCHITECTURES[arch_name]

    def get(key: str, default: Any = None) -> Any:
        value = meta.get(f"{arch_name}.{key}", default)
        if value is None:
            msg = f"{path}: metadata has no {arch_name}.{key}; the GGUF file is incomplete"
            raise CheckpointError(msg)
        return value

    scaling = meta.get(f"{arch_name}.rope.scaling.type")
    if scaling not in (None, "none"):
        msg = (f"{path}: {arch_name}.rope.scaling.type={scaling!r} is not supported (only the "
               "default RoPE)")
        raise CheckpointError(msg)
    hidden, heads = get("embedding_length"), get("attention.head_count")
    head_dim = meta.get(f"{arch_name}.attention.key_length")
    if head_dim is None:  # llama.cpp's own default (Qwen3's config default would be 128)
        head_dim = hidden // heads if isinstance(hidden, int) and isinstance(heads, int) else 0
    raw: dict[str, Any] = {
        "architectures": [arch.architecture],
        "model_type": arch.architecture.removesuffix("ForCausalLM").lower(),
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": get("feed_forward_length"),
        "num_hidden_layers": get("block_count"),
        "num_attention_heads": heads,
        "num_key_value_heads": get("attention.head_count_kv", heads),
        "head_dim": head_dim,
        "max_position_embeddings": get("context_length"),
        "rope_theta": _f32(get("rope.freq_base", 10000.0)),
        "rms_norm_eps": _f32(get("attention.layer_norm_rms_epsilon")),
        "tie_word_embeddings": not has_output,
        "hidden_act": "silu",
        "torch_dtype": "float32",
        "bos_token_id": meta.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": meta.get("tokenizer.ggml.eos_token_id"),
        "use_sliding_window": False,
    }
    return raw


def _f32(value: Any) -> Any:
    """A float32 metadata value as the decimal it was written from (9.99999975e-06 -> 1e-05)."""
    return float(f"{value:.7g}") if isinstance(value, float) else value


@dataclass(frozen=True, slots=True)
class _GGUFTensor:
    gguf_name: str
    type_name: str
    shape: tuple[int, ...]  # numpy / Hugging Face order
    data: Any  # the reader's memory-mapped view
    unpermute_heads: int | None  # llama q/k: the head count to un-permute by


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class GGUFCheckpoint:
    """A GGUF file read as a Hugging Face checkpoint: the interface of ``checkpoint.Checkpoint``.

    Tensors are named and shaped as in the Hugging Face checkpoint of the same model and are
    dequantized to float32 when ``tensor`` is called.

    Example:
        >>> ckpt = load_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
        >>> ckpt.config.architecture
        'Qwen2ForCausalLM'
    """

    path: Path
    config: QwenConfig
    raw_config: dict[str, Any]
    generation_config: dict[str, Any]
    tokenizer_config: dict[str, Any]
    chat_template: str | None
    metadata: dict[str, Any] = field(repr=False)
    _tensors: Mapping[str, _GGUFTensor] = field(repr=False)

    def names(self) -> list[str]:
        """Every tensor in the file, by Hugging Face name, sorted."""
        return sorted(self._tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._info(name).shape

    def dtype(self, name: str) -> str:
        """The GGUF tensor type name (``"Q4_1"``, ``"F32"``, ...)."""
        return self._info(name).type_name

    def nbytes(self, name: str) -> int:
        """Bytes the tensor takes in the file."""
        return int(self._info(name).data.nbytes)

    def tokenizer_text(self) -> str:
        """The tokenizer.json rebuilt from the GGUF vocabulary and merges."""
        return str(build_tokenizer(self.metadata, source=str(self.path)).to_str())

    def tensor(self, name: str) -> np.ndarray:
        """One tensor as a C-contiguous float32 array (dequantized, q/k un-permuted for llama).

        Raises:
            CheckpointError: unknown name, or a tensor type the gguf package cannot dequantize.
        """
        info = self._info(name)
        if info.type_name not in _SUPPORTED_TYPES:
            msg = (f"{self.path}: tensor {info.gguf_name} has type {info.type_name}; supported: "
                   f"{', '.join(_SUPPORTED_TYPES)} (re-quantize the file with llama-quantize)")
            raise CheckpointError(msg)
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize

        try:
            out = dequantize(np.asarray(info.data), GGMLQuantizationType[info.type_name])
            out = np.asarray(out, np.float32).reshape(info.shape)
        except (ValueError, NotImplementedError) as exc:
            msg = f"{self.path}: cannot dequantize tensor {info.gguf_name} ({exc})"
            raise CheckpointError(msg) from exc
        if info.unpermute_heads is not None:
            out = _unpermute(out, info.unpermute_heads)
        # F32 tensors come back as views of the read-only memory map: hand out a copy
        return np.array(out, np.float32, order="C", copy=True) if out.base is not None else out

    def validate(self) -> None:
        """Check that every tensor the architecture needs exists, with its derived shape.

        Raises:
            CheckpointError: lists missing tensors, shape mismatches and unsupported types.
        """
        found = {
            name: (t.gguf_name, t.shape, None if t.type_name in _SUPPORTED_TYPES else
                   f"has type {t.type_name}; supported: {', '.join(_SUPPORTED_TYPES)}")
            for name, t in self._tensors.items()
        }
        check_tensors(self.config, found, source=str(self.path),
                      mismatch="the GGUF tensors do not match its metadata")

    def _info(self, name: str) -> _GGUFTensor:
        try:
            return self._tensors[name]
        except KeyError:
            raise CheckpointError(f"{self.path}: no tensor named {name!r}") from None


def _unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo convert_hf_to_gguf.py's ``permute``: per head, rows (pairs interleaved) -> halves.

    GGUF row order within a head is [x0, x_half, x1, x_half+1, ...]; Hugging Face's is
    [x0, x1, ..., x_half, x_half+1, ...] (rotate-half RoPE).
    """
    rows = w.shape[0]
    pairs = w.reshape(heads, rows // heads // 2, 2, *w.shape[1:])
    return np.asarray(pairs.swapaxes(1, 2).reshape(w.shape))


def _hf_name(gguf_name: str) -> str | None:
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    match = _BLOCK.fullmatch(gguf_name)
    if match and match.group(2) in _LAYER_NAMES:
        return f"model.layers.{match.group(1)}.{_LAYER_NAMES[match.group(2)]}"
    return None


def load_gguf(src: str | os.PathLike[str]) -> GGUFCheckpoint:
    """Open a GGUF file: metadata, tokenizer and a table of its (memory-mapped) tensors.

    Args:
        src: a ``.gguf`` file (llama.cpp / Ollama), of a Qwen2, Qwen2.5, Qwen3 or Llama model.

    Raises:
        CheckpointError: a missing, truncated or corrupt file, missing metadata, or a tensor
            the architecture does not have.
        UnsupportedArchitectureError: ``general.architecture`` is not qwen2, qwen3 or llama.

    Example:
        >>> ckpt = load_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
        >>> ckpt.config.num_hidden_layers
        30
    """
    path = Path(src).expanduser()
    reader = _reader(path)
    try:
        meta = _metadata(reader)
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt GGUF metadata ({exc})") from exc
    arch_name = meta.get("general.architecture")
    arch = GGUF_ARCHITECTURES.get(str(arch_name))
    if arch is None:
        msg = (f"{path}: general.architecture={arch_name!r} is not supported; supported: "
               f"{', '.join(GGUF_ARCHITECTURES)} (Qwen2, Qwen2.5, Qwen3 and Llama-layout models)")
        raise UnsupportedArchitectureError(msg)
    tokens = meta.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens:
        raise CheckpointError(f"{path}: metadata has no tokenizer.ggml.tokens (no vocabulary)")
    size = path.stat().st_size
    heads = meta.get(f"{arch_name}.attention.head_count")
    kv_heads = meta.get(f"{arch_name}.attention.head_count_kv", heads)
    tensors: dict[str, _GGUFTensor] = {}
    for t in reader.tensors:
        if int(t.data_offset) + int(t.n_bytes) > size or t.data.nbytes != int(t.n_bytes):
            msg = (f"{path}: tensor {t.name} ends beyond the end of the file ({size} bytes); "
                   "the file is truncated, download it again")
            raise CheckpointError(msg)
        name = _hf_name(t.name)
        if name is None:
            if t.name == "rope_freqs.weight":
                msg = f"{path}: has rope_freqs (scaled RoPE), which is not supported"
                raise CheckpointError(msg)
            msg = f"{path}: tensor {t.name} has no counterpart in {arch.architecture}"
            raise CheckpointError(msg)
        unpermute = None
        if arch.permuted_qk and name.endswith(("q_proj.weight", "k_proj.weight")):
            unpermute = heads if "q_proj" in name else kv_heads
        shape = tuple(int(n) for n in reversed(t.shape.tolist()))
        tensors[name] = _GGUFTensor(t.name, t.tensor_type.name, shape, t.data, unpermute)
    if "model.embed_tokens.weight" not in tensors:
        raise CheckpointError(f"{path}: no token_embd.weight tensor")
    vocab_size = tensors["model.embed_tokens.weight"].shape[0]
    raw = hf_config_dict(path, meta, str(arch_name), has_output="lm_head.weight" in tensors,
                         vocab_size=vocab_size)
    cfg = QwenConfig.from_dict(raw, source=str(path))
    if not arch.qkv_bias and cfg.attention_bias:  # llama layout: Qwen2 without q/k/v biases
        cfg = dataclasses.replace(cfg, attention_bias=False)
    template = meta.get("tokenizer.chat_template")
    tok_config = tokenizer_config(meta, template if isinstance(template, str) else None)
    generation = {"eos_token_id": raw["eos_token_id"]} if raw["eos_token_id"] is not None else {}
    return GGUFCheckpoint(
        path=path,
        config=cfg,
        raw_config=raw,
        generation_config=generation,
        tokenizer_config=tok_config,
        chat_template=template if isinstance(template, str) else None,
        metadata=meta,
        _tensors=tensors,
    )


# -- Hugging Face folder ------------------------------------------------------------------


def write_hf_checkpoint(src: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write a GGUF model as a Hugging Face checkpoint folder (float32), e.g. to fine-tune it.

    Writes ``config.json``, ``model.safetensors`` (via ``safetensors.numpy``),
    ``tokenizer.json``, ``tokenizer_config.json`` (with the chat template) and
    ``generation_config.json``. Llama-layout files become ``Qwen2ForCausalLM`` with zero q/k/v
    biases, which transformers' Qwen2 always has.

    Raises:
        CheckpointError, UnsupportedArchitectureError: as ``load_gguf``.

    Example:
        >>> write_hf_checkpoint("SmolLM2-135M-Instruct.Q4_1.gguf", "ckpt/smollm2")
    """
    from safetensors.numpy import save_file

    ckpt = load_gguf(src)
    ckpt.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights: dict[str, np.ndarray] = {}
    for name in expected_tensors(ckpt.config):
        weights[name] = ckpt.tensor(name)
    if ckpt.config.architecture == "Qwen2ForCausalLM" and not ckpt.config.attention_bias:
        for i in range(ckpt.config.num_hidden_layers):
            for proj in ("q", "k", "v"):
                w = weights[f"model.layers.{i}.self_attn.{proj}_proj.weight"]
                weights[f"model.layers.{i}.self_attn.{proj}_proj.bias"] = np.zeros(
                    w.shape[0], np.float32)
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(ckpt.raw_config, indent=2) + "\n",
                                     encoding="utf-8")
    (out / "tokenizer.json").write_text(ckpt.tokenizer_text(), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(
        json.dumps(ckpt.tokenizer_config, indent=2) + "\n", encoding="utf-8")
    generation = {"bos_token_id": ckpt.raw_config["bos_token_id"], **ckpt.generation_config}
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n",
                                                encoding="utf-8")
    return out

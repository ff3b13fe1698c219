"""Random-weight checkpoints with the exact shapes of the published Qwen models (no torch).

``synth_checkpoint(shape, out_dir)`` writes a folder that ``transformers.AutoModelForCausalLM``
and ``load_checkpoint`` both load, so export, runtime and benchmarks can run without
downloading weights::

    out_dir/
      config.json                   the published config.json, torch_dtype = the synth dtype
      generation_config.json        the published sampling defaults
      model.safetensors             or model-0000i-of-0000N.safetensors + ...index.json
      tokenizer.json, tokenizer_config.json       (export/tokenizer.py, with the chat template)

Each tensor is drawn from its own stream, seeded by ``(seed, crc32(name))``, in chunks written
straight to the file, so memory stays at one chunk (qwen3-4b is 8 GB in bf16) and a tensor's
values do not depend on sharding, dtype or which other tensors exist::

    matrices  N(0, initializer_range)      norms  1 + N(0, 0.1)      biases  N(0, 0.02)

Norms and biases are random, not 1 and 0, so numerical parity tests exercise them. Qwen3.5
stores most RMSNorm scales as offsets from 1 (drawn N(0, 0.1)); its ``A_log`` and ``conv1d``
have their own spreads (``_draw``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

from qwen_edge.errors import (
    CheckpointError,
    ConfigError,
    OutputExistsError,
    UnsupportedArchitectureError,
)

from .hf_config import QwenConfig, expected_tensors
from .synth_qwen35 import QWEN35, extra_tensors

__all__ = ["SHAPES", "synth_checkpoint"]

# The published config.json of each model, key for key. Sources: huggingface.co/Qwen/<model>/
# blob/main/config.json, read through verbatim copies found with code search (the copies are
# named per entry); every number was checked against at least two of them.
_QWEN25_COMMON: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "max_position_embeddings": 32768,
    "model_type": "qwen2",
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.43.1",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 151936,
}
_QWEN3_COMMON: dict[str, Any] = {
    "architectures": ["Qwen3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "head_dim": 128,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "max_position_embeddings": 40960,
    "model_type": "qwen3",
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "sliding_window": None,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.51.0",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 151936,
}

SHAPES: dict[str, dict[str, Any]] = {
    # Qwen/Qwen2.5-0.5B-Instruct: a README quoting the file in full (DongfuJiang's chunking
    # fork), a verl training log's Qwen2Config dump, and a pinned-config validator.
    "qwen2.5-0.5b": {
        **_QWEN25_COMMON,
        "hidden_size": 896,
        "intermediate_size": 4864,
        "max_window_layers": 21,
        "num_attention_heads": 14,
        "num_hidden_layers": 24,
        "num_key_value_heads": 2,
    },
    # Qwen/Qwen2.5-1.5B-Instruct: a C++ config-loader test fixture ("mirrors config.json of the
    # pinned checkpoint"), a Rust test constant QWEN25_CONFIG and a LLaMA-Factory load log.
    "qwen2.5-1.5b": {
        **_QWEN25_COMMON,
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "max_window_layers": 21,
        "num_attention_heads": 12,
        "num_hidden_layers": 28,
        "num_key_value_heads": 2,
    },
    # Qwen/Qwen2.5-3B-Instruct: a test helper qwen25_3b_args ("the published config.json
    # fields") and the text_config of mlx-community/LocateAnything-3B (built on it).
    "qwen2.5-3b": {
        **_QWEN25_COMMON,
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "max_window_layers": 70,
        "num_attention_heads": 16,
        "num_hidden_layers": 36,
        "num_key_value_heads": 2,
    },
    # Qwen/Qwen3-0.6B: a Rust comment quoting .../Qwen3-0.6B/raw/main/config.json in full and a
    # model-card dump; torchtune's qwen3_0_6b_instruct builder agrees.
    "qwen3-0.6b": {
        **_QWEN3_COMMON,
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "max_window_layers": 28,
        "num_attention_heads": 16,
        "num_hidden_layers": 28,
        "num_key_value_heads": 8,
    },
    # Qwen/Qwen3-1.7B: a capacity planner's fixture ("config.json, fields the planner reads")
    # and a checkpoint inspector's test; ACE-Step's 1.7B LM (a Qwen3-1.7B) has the same dims.
    "qwen3-1.7b": {
        **_QWEN3_COMMON,
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "max_window_layers": 28,
        "num_attention_heads": 16,
        "num_hidden_layers": 28,
        "num_key_value_heads": 8,
    },
    # Qwen/Qwen3-4B (not the -2507 refresh: that one has 262144 positions, rope_theta 5e6): the
    # planner fixture QWEN3_4B and a genesis spec pinning rope_theta 1000000 / 40960 positions.
    "qwen3-4b": {
        **_QWEN3_COMMON,
        "hidden_size": 2560,
        "intermediate_size": 9728,
        "max_window_layers": 36,
        "num_attention_heads": 32,
        "num_hidden_layers": 36,
        "num_key_value_heads": 8,
    },
}

# Tiny shapes for tests: the real vocabulary (the real tokenizer works), 2 layers, hidden 64,
# intermediate sizes that are not multiples of 32 (quantization blocks must pad).
_TINY = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_window_layers": 2,
}
# tiny-qwen2: GQA 4 q / 2 kv heads, head_dim 16 derived, tied (untied: its own lm_head).
SHAPES["tiny-qwen2"] = {**SHAPES["qwen2.5-0.5b"], **_TINY, "intermediate_size": 88}
SHAPES["tiny-qwen2-untied"] = {**SHAPES["tiny-qwen2"], "tie_word_embeddings": False}
# tiny-qwen3: explicit head_dim 32 != 64 / 4, q/k norm; -mha: GQA ratio 1.
SHAPES["tiny-qwen3"] = {**SHAPES["qwen3-0.6b"], **_TINY, "head_dim": 32, "intermediate_size": 120}
SHAPES["tiny-qwen3-mha"] = {
    **SHAPES["qwen3-0.6b"],
    **_TINY,
    "num_key_value_heads": 4,
    "head_dim": 16,
    "intermediate_size": 72,
}

# Qwen3.5 0.8b / 2b / 4b and tiny-qwen3.5*: synth_qwen35.py (with the sources of each number).
SHAPES.update(QWEN35)
QWEN35_SHAPES = tuple(QWEN35)


# generation_config.json as published. Qwen2.5-0.5B/1.5B-Instruct use repetition_penalty 1.1,
# 3B uses 1.05 (read from copies of each file: a doctest printing the 0.5B file, a C++ fixture
# of the 1.5B file, a vLLM tutorial's `cat` of the 3B file). Qwen3's are shared by 0.6B-4B
# (a doctest and a LLaMA-Factory log printing Qwen3-0.6B/generation_config.json).
_QWEN25_GENERATION: dict[str, Any] = {
    "bos_token_id": 151643,
    "pad_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "repetition_penalty": 1.1,
    "temperature": 0.7,
    "top_p": 0.8,
    "top_k": 20,
    "transformers_version": "4.37.0",
}
_QWEN3_GENERATION: dict[str, Any] = {
    "bos_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "pad_token_id": 151643,
    "temperature": 0.6,
    "top_k": 20,
    "top_p": 0.95,
    "transformers_version": "4.51.0",
}
_GENERATION: dict[str, dict[str, Any]] = {
    **dict.fromkeys(
        ("qwen2.5-0.5b", "qwen2.5-1.5b", "tiny-qwen2", "tiny-qwen2-untied"), _QWEN25_GENERATION
    ),
    "qwen2.5-3b": {**_QWEN25_GENERATION, "repetition_penalty": 1.05},
    **dict.fromkeys(
        ("qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "tiny-qwen3", "tiny-qwen3-mha"), _QWEN3_GENERATION
    ),
    # Qwen3.5's own sampling defaults, with the stop ids of the tokenizer a synth checkpoint
    # carries (Qwen3's; see _TOKENIZER_VARIANT): <|im_end|>, <|endoftext|>.
    **{name: {**_QWEN3_GENERATION, "transformers_version": "4.57.0.dev0"}
       for name in QWEN35_SHAPES},
}
# The real Qwen3.5 tokenizer (248,077 tokens, new special ids) cannot be built offline: a synth
# Qwen3.5 checkpoint carries the Qwen3 tokenizer and chat template (151,669 tokens; the
# 248,320-row embedding is larger than both, as in the real model).
_TOKENIZER_VARIANT = {"qwen2": "qwen2.5", "qwen3": "qwen3", "qwen3_5": "qwen3",
                      "qwen3_5_text": "qwen3"}

# dtype -> (safetensors dtype, numpy dtype written)
_DTYPES: dict[str, tuple[str, np.dtype[Any]]] = {
    "bfloat16": ("BF16", np.dtype(ml_dtypes.bfloat16)),
    "float32": ("F32", np.dtype("<f4")),
    "float16": ("F16", np.dtype("<f2")),
}
_CHUNK_VALUES = 1 << 22  # values drawn per call: 16 MB of fp32; fixed, so streams are stable
DEFAULT_MAX_SHARD_BYTES = 2 * 10**9


def synth_checkpoint(
    shape: str,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    dtype: str = "bfloat16",
    overrides: Mapping[str, Any] | None = None,
    force: bool = False,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Write a random-weight Hugging Face checkpoint of a published (or tiny) Qwen shape.

    The folder is written next to ``out_dir`` and renamed into place when complete.

    Args:
        shape: a key of ``SHAPES`` (``"qwen2.5-0.5b"``, ``"tiny-qwen3"``, ...).
        out_dir: the folder to create.
        seed: weights are a pure function of (seed, tensor name).
        dtype: ``"bfloat16"`` (as published), ``"float32"`` or ``"float16"``.
        overrides: config.json values to change (``{"num_hidden_layers": 1}``).
        force: replace ``out_dir`` if it exists and is not empty.
        max_shard_bytes: above this the weights are split into shards plus an index.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ConfigError: unknown shape or dtype, or overrides that make an invalid config.
        OutputExistsError: ``out_dir`` is not empty and ``force`` is false.

    Example:
        >>> ckpt_dir = synth_checkpoint("qwen2.5-0.5b", "ckpt/")
        >>> load_checkpoint(ckpt_dir).validate()
    """
    if shape not in SHAPES:
        raise ConfigError(f"shape={shape!r}: unknown; choose one of {', '.join(SHAPES)}")
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype={dtype!r}: must be one of {', '.join(_DTYPES)}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed={seed!r}: must be an integer >= 0")
    if not isinstance(max_shard_bytes, int) or max_shard_bytes <= 0:
        raise ConfigError(f"max_shard_bytes={max_shard_bytes!r}: must be a positive integer")
    raw = {**SHAPES[shape], **(overrides or {}), "torch_dtype": dtype}
    if "text_config" in raw:  # Qwen3.5 ConditionalGeneration: overrides describe the text model
        raw["text_config"] = {**raw["text_config"], **(overrides or {}), "dtype": dtype}
    elif "linear_num_value_heads" in raw:
        raw["dtype"] = dtype
    try:
        cfg = QwenConfig.from_dict(raw, source=f"synth shape {shape}")
    except (CheckpointError, UnsupportedArchitectureError) as exc:
        raise ConfigError(f"overrides={dict(overrides or {})!r}: {exc}") from exc
    out = Path(out_dir)
    if (out.exists() or out.is_symlink()) and not force and not _is_empty_dir(out):
        raise OutputExistsError(f"{out}: exists and is not empty; pass force=True to replace it")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        from .tokenizer import write_tokenizer_files

        write_tokenizer_files(tmp, _TOKENIZER_VARIANT[cfg.model_type])  # first: fails fast
        _write_json(tmp / "config.json", raw, sort_keys=True)
        _write_json(tmp / "generation_config.json", _GENERATION[shape], sort_keys=False)
        _write_weights(tmp, cfg, raw, seed=seed, dtype=dtype, max_shard_bytes=max_shard_bytes)
        if out.is_symlink() or out.is_file():
            out.unlink()
        elif out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and next(path.iterdir(), None) is None


def _write_json(file: Path, data: Mapping[str, Any], *, sort_keys: bool) -> None:
    file.write_text(json.dumps(data, indent=2, sort_keys=sort_keys) + "\n", encoding="utf-8")


def _write_weights(
    folder: Path,
    cfg: QwenConfig,
    raw: Mapping[str, Any],
    *,
    seed: int,
    dtype: str,
    max_shard_bytes: int,
) -> None:
    st_dtype, np_dtype = _DTYPES[dtype]
    shapes = {**expected_tensors(cfg), **extra_tensors(cfg, raw)}
    shards = _plan_shards(shapes, np_dtype.itemsize, max_shard_bytes)
    std = float(raw.get("initializer_range", 0.02))
    if len(shards) == 1:
        _write_shard(folder / "model.safetensors", shards[0], shapes, st_dtype, np_dtype, seed, std,
                     offset_norms=cfg.norm_offset)
        return
    weight_map = {}
    for i, names in enumerate(shards, 1):
        file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        _write_shard(folder / file, names, shapes, st_dtype, np_dtype, seed, std,
                     offset_norms=cfg.norm_offset)
        weight_map.update(dict.fromkeys(names, file))
    total = sum(math.prod(s) for s in shapes.values()) * np_dtype.itemsize
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    _write_json(folder / "model.safetensors.index.json", index, sort_keys=False)


def _plan_shards(
    shapes: Mapping[str, tuple[int, ...]], itemsize: int, max_shard_bytes: int
) -> list[list[str]]:
    """Consecutive tensors, greedily, in files of at most max_shard_bytes (bigger tensors alone)."""
    shards: list[list[str]] = [[]]
    size = 0
    for name, shape in shapes.items():
        nbytes = math.prod(shape) * itemsize
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    return shards


def _write_shard(
    file: Path,
    names: list[str],
    shapes: Mapping[str, tuple[int, ...]],
    st_dtype: str,
    np_dtype: np.dtype[Any],
    seed: int,
    std: float,
    *,
    offset_norms: bool = False,
) -> None:
    """One safetensors file: header first (every size is known), then each tensor streamed."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in names:
        nbytes = math.prod(shapes[name]) * np_dtype.itemsize
        header[name] = {
            "dtype": st_dtype,
            "shape": list(shapes[name]),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the data area starts 8-byte aligned
    with file.open("wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for name in names:
            for chunk in _draw(name, shapes[name], seed, std, offset_norms=offset_norms):
                f.write(chunk.astype(np_dtype).view(np.uint8).data)


def _draw(name: str, shape: tuple[int, ...], seed: int, std: float, *,
          offset_norms: bool = False) -> Iterator[np.ndarray]:
    """The tensor's values in row-major order, as float32 chunks of at most _CHUNK_VALUES."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if name.endswith("norm.weight") and offset_norms and not name.endswith("linear_attn.norm.weight"):
        loc, scale = 0.0, 0.1  # Qwen3.5 stores RMSNorm scales as offsets from 1
    elif name.endswith("norm.weight"):
        loc, scale = 1.0, 0.1
    elif name.endswith(".A_log"):
        # log of the decay rate A: mostly slow decays (long memory, as trained heads have), so
        # the recurrent state still matters dozens of tokens later; transformers' init draws
        # A in [0.01, 16], whose fast half forgets a token within a few steps.
        loc, scale = -2.0, 1.5
    elif name.endswith("conv1d.weight"):  # a kernel of 4 taps: large enough to matter
        loc, scale = 0.0, 0.3
    elif name.endswith(".bias"):
        loc, scale = 0.0, 0.02
    else:
        loc, scale = 0.0, std
    total = math.prod(shape)
    for start in range(0, total, _CHUNK_VALUES):
        chunk = rng.standard_normal(min(_CHUNK_VALUES, total - start), dtype=np.float32)
        chunk *= np.float32(scale)
        if loc:
            chunk += np.float32(loc)
        yield chunk

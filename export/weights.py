"""Stream the weights of a Hugging Face checkpoint folder from its safetensors files.

The safetensors format is parsed here (no torch, no safetensors package)::

    [u64 little-endian: N][N bytes: JSON header, space padded][data area ..................]
    header = {"model.norm.weight": {"dtype": "BF16", "shape": [896], "data_offsets": [b, e]},
              "__metadata__": {"format": "pt"}}       offsets are relative to the data area

Only headers are read up front. ``Checkpoint.tensor`` maps only the pages that hold one tensor,
converts them to float32 (bf16 through ``ml_dtypes``) and unmaps them, so the exporter's peak
memory stays near one tensor in fp32 rather than a copy of the model.
"""

from __future__ import annotations

import itertools
import json
import math
import mmap
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

from qwen_edge.errors import CheckpointError

from .hf_config import QwenConfig, check_tensors

__all__ = ["Checkpoint", "index_tensors", "read_json_object"]

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
        found = {
            name: (name, t.shape, None if t.dtype in _READABLE else
                   f"has dtype {t.dtype}; supported: {', '.join(_READABLE)}")
            for name, t in self._tensors.items()
        }
        check_tensors(self.config, found, source=str(self.path),
                      mismatch="the checkpoint does not match its config.json")

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


def read_json_object(file: Path) -> dict[str, Any]:
    """A JSON file that must hold an object, read with a CheckpointError naming the file."""
    try:
        data = json.loads(file.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{file}: not valid JSON ({exc})") from exc
    except OSError as exc:
        raise CheckpointError(f"{file}: cannot read ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: must hold a JSON object, not {type(data).__name__}")
    return data



def index_tensors(path: Path) -> dict[str, _TensorInfo]:
    """Every tensor of a folder (one file or an index of shards), from the headers only."""
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
    weight_map = read_json_object(index).get("weight_map")
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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

"""KVCache: one preallocated key/value buffer per layer, shared by the graph's past and present.

The buffers are numpy arrays wrapped (zero-copy) as onnxruntime values; GroupQueryAttention
writes the new keys/values in place at ``offset``, so decoding never copies or reallocates
the cache. ``trim`` is O(1): rows past ``offset`` are ignored by the graph (it reads
``seqlens_k``), and overwritten by the next step.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Collection

import numpy as np
import onnxruntime as ort

from .errors import ConfigError, ContextLengthError

__all__ = ["KVCache", "match_text_prefix"]


_ALIGN_FLOATS = 16  # 64 bytes: a cache line, and one AVX-512 register


def _small_pages(n: int) -> np.ndarray:
    """``n`` zeroed float32 values that become resident page by page as they are written.

    numpy advises transparent huge pages for its own large arrays, and a [kv_heads, context,
    head_dim] buffer puts each head's rows in one 1-2 MiB stretch: on huge pages the first
    token would make the whole cache resident (940 MB for qwen3-0.6b at 4,096 tokens). A
    private anonymous mapping advised MADV_NOHUGEPAGE grows by 4 KiB pages instead. Where
    that advice does not exist (not Linux), np.zeros.
    """
    advice = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if advice is None or not hasattr(mmap, "MAP_PRIVATE"):
        return np.zeros(n, np.float32)
    region = mmap.mmap(-1, n * 4, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    region.madvise(advice)
    return np.frombuffer(region, np.float32)  # zero-filled by the kernel; keeps region alive


class KVCache:
    """Key/value buffers ``[1, kv_heads, max_context, head_dim]`` x 2 x layers, and ``offset``.

    Example:
        >>> cache = KVCache(layers=24, kv_heads=2, head_dim=64, max_context=4096)
        >>> cache.nbytes / 2**20
        96.0
    """

    def __init__(self, *, layers: int, kv_heads: int, head_dim: int, max_context: int) -> None:
        if max_context < 1:
            msg = f"max_context={max_context}: must be >= 1"
            raise ConfigError(msg)
        self.layers = layers
        self.max_context = max_context
        self.offset = 0
        shape = (1, kv_heads, max_context, head_dim)  # [B, kv_heads, max_seq, head_dim]
        # One zeroed block, cut into 64-byte-aligned buffers (a cache line, as onnxruntime
        # aligns its own), on small pages so that RSS grows with the tokens actually cached.
        size = kv_heads * max_context * head_dim
        stride = -(-size // _ALIGN_FLOATS) * _ALIGN_FLOATS
        block = _small_pages(2 * layers * stride + _ALIGN_FLOATS)
        start = (-block.ctypes.data % (_ALIGN_FLOATS * 4)) // 4
        self.arrays = [block[start + i * stride: start + i * stride + size].reshape(shape)
                       for i in range(2 * layers)]
        self.values = [ort.OrtValue.ortvalue_from_numpy(a) for a in self.arrays]

    @property
    def nbytes(self) -> int:
        """Bytes reserved for the whole context (resident only as it fills)."""
        return sum(a.nbytes for a in self.arrays)

    @property
    def free(self) -> int:
        """Tokens that still fit."""
        return self.max_context - self.offset

    def reserve(self, n: int) -> None:
        """Raise ContextLengthError unless ``n`` more tokens fit."""
        if n > self.free:
            msg = (
                f"{n} new tokens do not fit: {self.offset} cached + {n} > max_context "
                f"{self.max_context}"
            )
            raise ContextLengthError(msg)

    def trim(self, n: int) -> None:
        """Keep only the first ``n`` cached tokens."""
        if not 0 <= n <= self.offset:
            msg = f"trim({n}): the cache holds {self.offset} tokens"
            raise ConfigError(msg)
        self.offset = n

    def reset(self) -> None:
        self.offset = 0

    def state(self) -> list[np.ndarray]:
        """Copies of the filled part of every buffer (for saving a session)."""
        return [a[:, :, : self.offset].copy() for a in self.arrays]

    def load_state(self, state: list[np.ndarray]) -> None:
        """Restore buffers saved by ``state()``."""
        if len(state) != len(self.arrays):
            msg = f"saved cache has {len(state)} buffers, this model needs {len(self.arrays)}"
            raise ConfigError(msg)
        n = state[0].shape[2]
        if n > self.max_context:
            msg = f"saved cache holds {n} tokens; max_context is {self.max_context}"
            raise ContextLengthError(msg)
        pairs = list(zip(self.arrays, state, strict=True))
        for dst, src in pairs:  # check every buffer before writing any
            if src.ndim != dst.ndim or src.shape[2] != n or \
                    src.shape[:2] + src.shape[3:] != dst.shape[:2] + dst.shape[3:]:
                msg = (f"saved cache buffer of shape {src.shape} does not fit {dst.shape} "
                       f"with {n} tokens")
                raise ConfigError(msg)
        for dst, src in pairs:
            dst[:, :, :n] = src
        self.offset = n


def match_text_prefix(cached: list[int], new: list[int], decode: Callable[[list[int]], str],
                      special: Collection[int]) -> tuple[int, int]:
    """The longest ``(k, j)`` such that ``cached[:k]`` and ``new[:j]`` are the same text.

    Same text means: the same special tokens at the same places, and between them runs of
    ordinary tokens that decode to the same string (never a partial UTF-8 character). Where
    the token ids differ but the text does not (a model's own tokenization of its answer
    against the canonical one of the re-rendered history), the cached tokens can stand for
    the new ones: the model sees the text it wrote, and its keys and values are reused.
    """
    i = j = 0
    while True:
        ei, ej = i, j
        while ei < len(cached) and cached[ei] not in special:
            ei += 1
        while ej < len(new) and new[ej] not in special:
            ej += 1
        text = decode(cached[i:ei])
        if text == decode(new[j:ej]) and "\ufffd" not in text:
            if ei < len(cached) and ej < len(new) and cached[ei] == new[ej]:
                i, j = ei + 1, ej + 1  # the runs and the special token after them match
                continue
            return ei, ej
        # the runs differ: the longest cached prefix whose text is a prefix of the new run
        prefixes: dict[str, int] = {}
        for end in range(j + 1, ej + 1):
            piece = decode(new[j:end])
            if "\ufffd" not in piece:
                prefixes.setdefault(piece, end)
        for end in range(ei, i, -1):
            piece = decode(cached[i:end])
            if piece in prefixes:
                return end, prefixes[piece]
        return i, j

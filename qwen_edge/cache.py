"""KVCache: one preallocated key/value buffer per layer, shared by the graph's past and present.

The buffers are numpy arrays wrapped (zero-copy) as onnxruntime values; GroupQueryAttention
writes the new keys/values in place at ``offset``, so decoding never copies or reallocates
the cache. ``trim`` is O(1): rows past ``offset`` are ignored by the graph (it reads
``seqlens_k``), and overwritten by the next step.

HybridCache (Qwen3.5) adds, per linear-attention layer, a conv state and a recurrent state of
fixed size, also bound in place as past and present. They summarize every token seen and
cannot be rewound, so the cache keeps **snapshots** of them at reuse points (``snapshot``:
the session takes one at every ``<|im_start|>`` inside a prefill, i.e. the end of the
system + tools prefix and of each message, at the end of the prompt and at the end of each
turn). ``rewind(n)`` restores the longest snapshot at or before ``n`` and trims the KV cache
to it; the session then prefills only the rest. Snapshots live under ``snapshot_budget_bytes``;
over it, the one evicted first is the oldest that is neither the shortest (the system
prefix, shared by every request) nor the newest (the previous turn): those two go last.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Collection

import numpy as np
import onnxruntime as ort

from .errors import ConfigError, ContextLengthError

__all__ = ["DEFAULT_SNAPSHOT_BUDGET", "HybridCache", "KVCache", "match_text_prefix"]

DEFAULT_SNAPSHOT_BUDGET = 128 * 2**20  # bytes of state snapshots per hybrid session


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

    # A KV cache rewinds exactly, so it needs no snapshots; HybridCache overrides these.
    rewindable = True  # trim(n) to any n <= offset is exact (speculative decoding needs it)

    @property
    def num_buffers(self) -> int:
        """Arrays in ``state()`` (what ``Session.save`` writes)."""
        return len(self.arrays)

    def rewind(self, n: int) -> int:
        """Go back to the first ``n`` tokens, or as close below as possible; returns where."""
        self.trim(n)
        return n

    def snapshot(self) -> None:
        """Remember the current position as a reuse point (nothing to keep for a KV cache)."""

    def reuse_points(self, tokens: np.ndarray) -> list[int]:
        """Indices into ``tokens`` (about to be prefilled) at which to take a snapshot."""
        del tokens
        return []

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


class HybridCache(KVCache):
    """KV buffers for the full-attention layers, plus fixed-size states for the linear ones.

    Args:
        layers: full-attention layers (each has a key and a value buffer).
        states: the shape of every state buffer, in graph order (conv, recurrent, ... per
            linear layer).
        reuse_marker: the token id that opens a chat message (``<|im_start|>``); a snapshot is
            taken before each one inside a prefill. None: only at the ends of prompts and turns.
        snapshot_budget_bytes: the most the snapshots may take together (0: none are kept).

    Example:
        >>> cache = engine.new_cache()          # a HybridCache for a Qwen3.5 package
        >>> cache.snapshot_nbytes, cache.snapshot_budget_bytes
        (0, 134217728)
    """

    rewindable = False

    def __init__(self, *, layers: int, kv_heads: int, head_dim: int, max_context: int,
                 states: list[tuple[int, ...]], reuse_marker: int | None = None,
                 snapshot_budget_bytes: int = DEFAULT_SNAPSHOT_BUDGET) -> None:
        if snapshot_budget_bytes < 0:
            msg = f"snapshot_budget_bytes={snapshot_budget_bytes}: must be >= 0"
            raise ConfigError(msg)
        super().__init__(layers=layers, kv_heads=kv_heads, head_dim=head_dim,
                         max_context=max_context)
        self.state_arrays = [np.zeros(shape, np.float32) for shape in states]
        self.state_values = [ort.OrtValue.ortvalue_from_numpy(a) for a in self.state_arrays]
        self.reuse_marker = reuse_marker
        self.snapshot_budget_bytes = snapshot_budget_bytes
        self._snapshots: dict[int, list[np.ndarray]] = {}  # offset -> copies of the states

    @property
    def nbytes(self) -> int:
        return super().nbytes + self.state_nbytes

    @property
    def state_nbytes(self) -> int:
        """Bytes of the linear layers' states (one snapshot costs this much)."""
        return sum(a.nbytes for a in self.state_arrays)

    @property
    def snapshot_nbytes(self) -> int:
        """Bytes the snapshots take now (always <= ``snapshot_budget_bytes``)."""
        return len(self._snapshots) * self.state_nbytes

    @property
    def snapshot_offsets(self) -> list[int]:
        """Token counts at which a snapshot is kept, ascending."""
        return sorted(self._snapshots)

    @property
    def num_buffers(self) -> int:
        return len(self.arrays) + len(self.state_arrays)

    def trim(self, n: int) -> None:
        """Only a no-op trim is possible: the states hold every token seen (use ``rewind``)."""
        if n != self.offset:
            msg = (f"trim({n}): a hybrid (Qwen3.5) cache at {self.offset} tokens cannot drop "
                   "tokens from its recurrent state; rewind(n) restores a snapshot instead")
            raise ConfigError(msg)

    def reset(self) -> None:
        super().reset()
        for a in self.state_arrays:
            a.fill(0.0)  # the graph reads the past state: a fresh sequence starts from zeros
        self._snapshots.clear()

    def rewind(self, n: int) -> int:
        if not 0 <= n <= self.offset:
            msg = f"rewind({n}): the cache holds {self.offset} tokens"
            raise ConfigError(msg)
        if n == self.offset:
            return n
        best = max((o for o in self._snapshots if o <= n), default=0)
        if best == 0:
            self.reset()
            return 0
        for dst, src in zip(self.state_arrays, self._snapshots[best], strict=True):
            np.copyto(dst, src)
        self.offset = best  # the KV rows before it still hold the same tokens
        for o in [o for o in self._snapshots if o > best]:
            del self._snapshots[o]  # their tokens are about to be overwritten
        return best

    def snapshot(self) -> None:
        n = self.offset
        if n == 0 or n in self._snapshots or self.state_nbytes > self.snapshot_budget_bytes:
            return
        self._snapshots[n] = [a.copy() for a in self.state_arrays]
        while self.snapshot_nbytes > self.snapshot_budget_bytes:
            offsets = sorted(self._snapshots)
            # oldest that is neither the shortest nor the newest; then the shortest
            victim = offsets[1] if len(offsets) > 2 else offsets[0]
            del self._snapshots[victim]

    def reuse_points(self, tokens: np.ndarray) -> list[int]:
        if self.reuse_marker is None:
            return []
        return [int(i) for i in np.flatnonzero(np.asarray(tokens) == self.reuse_marker) if i > 0]

    def state(self) -> list[np.ndarray]:
        """The KV cache's filled part, then copies of the states (snapshots are not saved)."""
        return super().state() + [a.copy() for a in self.state_arrays]

    def load_state(self, state: list[np.ndarray]) -> None:
        if len(state) != self.num_buffers:
            msg = f"saved cache has {len(state)} buffers, this model needs {self.num_buffers}"
            raise ConfigError(msg)
        kv, states = state[: len(self.arrays)], state[len(self.arrays):]
        for dst, src in zip(self.state_arrays, states, strict=True):
            if src.shape != dst.shape:
                msg = f"saved state of shape {src.shape} does not fit {dst.shape}"
                raise ConfigError(msg)
        if kv:
            super().load_state(kv)
        else:
            self.offset = 0
        for dst, src in zip(self.state_arrays, states, strict=True):
            np.copyto(dst, src)
        self._snapshots.clear()


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

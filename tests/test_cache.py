"""qwen_edge.cache.KVCache: offsets, trimming, state round trips (against numpy copies)."""

from __future__ import annotations

import numpy as np
import pytest

from qwen_edge.cache import KVCache
from qwen_edge.errors import ConfigError, ContextLengthError

SHAPE = {"layers": 2, "kv_heads": 2, "head_dim": 8, "max_context": 16}


def _filled(n: int) -> KVCache:
    cache = KVCache(**SHAPE)
    rng = np.random.default_rng(0)
    for a in cache.arrays:
        a[:, :, :n] = rng.standard_normal(a[:, :, :n].shape, dtype=np.float32)
    cache.offset = n
    return cache


def test_buffers_have_the_shape_and_size_of_the_model() -> None:
    cache = KVCache(**SHAPE)
    assert len(cache.arrays) == 2 * SHAPE["layers"]
    assert {a.shape for a in cache.arrays} == {(1, 2, 16, 8)}
    assert cache.nbytes == 2 * 2 * (2 * 16 * 8) * 4  # k and v, per layer, float32
    assert all(a.ctypes.data % 64 == 0 for a in cache.arrays)  # cache-line aligned
    assert not any(np.shares_memory(a, b) for i, a in enumerate(cache.arrays)
                   for b in cache.arrays[i + 1:])


def test_free_reserve_trim_reset() -> None:
    cache = _filled(10)
    assert cache.free == 6
    cache.reserve(6)
    with pytest.raises(ContextLengthError, match="do not fit"):
        cache.reserve(7)
    cache.trim(4)
    assert (cache.offset, cache.free) == (4, 12)
    with pytest.raises(ConfigError, match="holds 4 tokens"):
        cache.trim(5)
    cache.reset()
    assert cache.offset == 0


def test_state_round_trip_restores_exactly_the_filled_part() -> None:
    cache = _filled(5)
    state = cache.state()
    assert [s.shape for s in state] == [(1, 2, 5, 8)] * 4
    expected = [a[:, :, :5].copy() for a in cache.arrays]
    for a in cache.arrays:  # state() made copies: later writes do not change them
        a[...] = 0
    assert all(np.array_equal(s, e) for s, e in zip(state, expected, strict=True))
    other = KVCache(**SHAPE)
    other.load_state(state)
    assert other.offset == 5
    assert all(np.array_equal(a[:, :, :5], e) for a, e in zip(other.arrays, expected,
                                                               strict=True))


def test_load_state_rejects_a_foreign_state() -> None:
    with pytest.raises(ConfigError, match="needs 4"):
        KVCache(**SHAPE).load_state(_filled(3).state()[:2])
    big = KVCache(**{**SHAPE, "max_context": 32})
    big.offset = 20
    with pytest.raises(ContextLengthError, match="max_context is 16"):
        KVCache(**SHAPE).load_state(big.state())
    with pytest.raises(ConfigError, match="max_context=0"):
        KVCache(**{**SHAPE, "max_context": 0})

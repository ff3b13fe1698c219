"""The sampler's results against numpy, to the bit where the math allows, on every architecture.

The kernels in csrc/sampler_kernels.cpp are compiled per architecture: on x86-64 for the
baseline and for AVX2+FMA and AVX-512 (picked at run time), on aarch64 for armv8-a, where
NEON and FMA are part of the baseline and the compiler may fuse a * b + c. These tests pin
what must not depend on that, and run unchanged natively and under scripts/test-aarch64:

* bit-exact: logit_bias, penalties and masks (float32 operations, each rounded on its
  own, as numpy and torch do), the greedy token, and the exact set of tokens that top_k,
  top_p and min_p keep (tokens are chosen so that no set boundary is a rounding call);
* within tolerances: logprob and entropy go through exp/log. The core's exp has a
  relative error of about 1e-7 and sums in float lanes flushed to double, so
  |logprob - numpy| <= 2e-5 nats and the entropy is within a relative 2e-5 (+ 1e-6 abs).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import ref_entropy, ref_log_softmax

from qwen_edge import _core

QWEN_VOCAB = 151_936
LOGPROB_ABS = 2e-5
ENTROPY_REL = 2e-5
ENTROPY_ABS = 1e-6


def ref_process(x: np.ndarray, history: np.ndarray, *, logit_bias: dict[int, float] | None = None,
                repetition_penalty: float = 1.0, presence_penalty: float = 0.0,
                frequency_penalty: float = 0.0, mask: np.ndarray | None = None) -> np.ndarray:
    """logit_bias -> HF repetition penalty -> OpenAI presence/frequency -> llguidance mask."""
    f32 = np.float32
    x = x.astype(f32)  # a copy
    for token, bias in (logit_bias or {}).items():
        x[token] += f32(bias)
    ids, counts = np.unique(history, return_counts=True)
    if ids.size and (repetition_penalty, presence_penalty, frequency_penalty) != (1.0, 0.0, 0.0):
        v = x[ids]
        if repetition_penalty != 1.0:
            rep = f32(repetition_penalty)
            v = np.where(v > 0, v / rep, v * rep)
        x[ids] = v - (f32(frequency_penalty) * counts.astype(f32) + f32(presence_penalty))
    if mask is not None:
        bits = (mask.view(np.uint32)[:, None] >> np.arange(32, dtype=np.uint32)) & 1
        allowed = np.zeros(x.size, dtype=bool)
        flat = bits.reshape(-1).astype(bool)[: x.size]
        allowed[: flat.size] = flat
        x[~allowed] = -np.inf
    return x


def ref_support(x: np.ndarray, temperature: float, top_k: int = 0, top_p: float = 1.0,
                min_p: float = 0.0) -> tuple[set[int], float]:
    """HF warpers (temperature -> top_k -> top_p -> min_p): the kept tokens, and how far the
    nearest top_p / min_p boundary is from deciding otherwise (relative)."""
    z = x.astype(np.float64) / temperature
    order = np.lexsort((np.arange(z.size), -z))
    keep = np.isfinite(z)
    if top_k:
        keep[order[top_k:]] = False
    p = np.where(keep, np.exp(z - z.max()), 0.0)
    p /= p.sum()
    margin = np.inf
    if top_p < 1.0:
        before = np.cumsum(p[order]) - p[order]
        margin = min(margin, float(np.min(np.abs(before[keep[order]] - top_p))))
        keep[order[before >= top_p]] = False
        p = np.where(keep, p, 0.0) / p[keep].sum()
    if min_p > 0.0:
        ratio = p[keep] / p.max()
        margin = min(margin, float(np.min(np.abs(ratio - min_p))))
        keep &= p >= min_p * p.max()
    return set(np.flatnonzero(keep).tolist()), margin


def peaked(vocab: int, heavy: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """N(0, 1) logits with `heavy` tokens lifted 12..16 nats above, at spread-out ids
    (the last token among them, to cover a partial last block)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, vocab).astype(np.float32)
    ids = rng.choice(vocab - 1, heavy - 1, replace=False)
    ids = np.append(ids, vocab - 1)
    x[ids] = np.linspace(16.0, 12.0, heavy, dtype=np.float32)
    return x, ids


# ---- bit-exact ------------------------------------------------------------------------

PENALTIES = [
    {"repetition_penalty": 1.2, "presence_penalty": 0.3, "frequency_penalty": 0.2},
    {"repetition_penalty": 0.7, "presence_penalty": 0.4},
    {"repetition_penalty": 1.3, "frequency_penalty": 0.3, "presence_penalty": 0.1},
    {"frequency_penalty": 0.7, "presence_penalty": -0.35},
    {"repetition_penalty": 1.1, "frequency_penalty": 1.1, "presence_penalty": 0.9,
     "logit_bias": {0: 2.5, 17: -0.3, 999: -np.inf}},
]


@pytest.mark.parametrize("options", PENALTIES)
@pytest.mark.parametrize("masked", [False, True])
def test_processed_logits_are_bit_exact(options: dict, masked: bool) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(0, 4, 1000).astype(np.float32)
    history = rng.integers(0, 400, 1500).astype(np.int32)  # counts up to ~12
    mask = rng.integers(0, 2**32, 32, dtype=np.uint64).astype(np.uint32) if masked else None
    got = _core.Sampler(_core.SamplerConfig(**options)).process_logits(x, history, mask)
    np.testing.assert_array_equal(got, ref_process(x, history, mask=mask, **options))


@pytest.mark.parametrize("vocab", [33, 1000, QWEN_VOCAB])
def test_greedy_token_is_the_reference_argmax_of_processed_logits(vocab: int) -> None:
    rng = np.random.default_rng(vocab)
    x = rng.normal(0, 3, vocab).astype(np.float32)
    history = rng.integers(0, vocab, 64).astype(np.int32)
    mask = rng.integers(0, 2**32, (vocab + 31) // 32, dtype=np.uint64).astype(np.uint32)
    options = PENALTIES[0]
    ref = ref_process(x, history, mask=mask, **options)
    sampler = _core.Sampler(_core.SamplerConfig(temperature=0.0, **options))
    token, logprob, entropy = sampler.sample(x, history, mask)
    assert token == int(np.argmax(ref))
    assert abs(logprob - ref_log_softmax(ref)[token]) <= LOGPROB_ABS
    assert entropy == pytest.approx(ref_entropy(ref), rel=ENTROPY_REL, abs=ENTROPY_ABS)


def test_a_token_alone_above_the_exp_floor_has_logprob_and_entropy_exactly_zero() -> None:
    # Every other logit is more than 87 nats below: its exp is taken as 0 on every ISA.
    x = np.full(QWEN_VOCAB, -200.0, dtype=np.float32)
    x[12_346] = 3.0
    x[::5] = -np.inf
    assert _core.log_softmax_stats(x) == (12_346, 0.0, 0.0)
    assert _core.Sampler(_core.SamplerConfig(top_p=0.5, seed=1)).sample(x) == (12_346, 0.0, 0.0)


TRUNCATIONS = [
    {"temperature": 1.0, "top_k": 7},
    {"temperature": 0.8, "top_k": 12, "top_p": 0.8},
    {"temperature": 1.0, "top_p": 0.7},
    {"temperature": 1.5, "top_p": 0.45},
    {"temperature": 1.0, "min_p": 0.2},
    {"temperature": 0.7, "top_p": 0.95, "min_p": 0.1},
    {"temperature": 1.2, "top_k": 9, "top_p": 0.9, "min_p": 0.15},
]


@pytest.mark.parametrize("options", TRUNCATIONS)
def test_truncation_keeps_exactly_the_reference_tokens(options: dict) -> None:
    x, _ = peaked(QWEN_VOCAB + 17, heavy=24, seed=3)
    support, margin = ref_support(x, **options)
    assert margin > 1e-3, "a boundary of the reference set is a rounding call"
    assert 2 <= len(support) <= 12
    # Each kept token has p >= ~2 % here, so 400 draws miss one with probability < 1e-3
    # (seeded: the outcome is fixed).
    sampler = _core.Sampler(_core.SamplerConfig(seed=5, **options))
    drawn = [sampler.sample(x) for _ in range(400)]
    assert {t for t, _, _ in drawn} == support
    token, logprob, entropy = drawn[0]
    assert abs(logprob - ref_log_softmax(x)[token]) <= LOGPROB_ABS
    assert entropy == pytest.approx(ref_entropy(x), rel=ENTROPY_REL, abs=ENTROPY_ABS)


def test_top_p_on_a_flat_distribution_never_leaves_the_nucleus() -> None:
    # The p >= 1e-4 prefilter holds too little mass: the whole-vocab histogram path runs.
    x = np.random.default_rng(9).normal(0, 0.3, 40_000).astype(np.float32)
    support, margin = ref_support(x, 1.0, top_p=0.3)
    assert margin > 1e-6
    sampler = _core.Sampler(_core.SamplerConfig(top_p=0.3, seed=2))
    assert {sampler.sample(x)[0] for _ in range(300)} <= support


@pytest.mark.parametrize("vocab", [1, 31, 32, 33, 4096 + 7, QWEN_VOCAB])
def test_log_softmax_stats_within_the_stated_tolerance(vocab: int) -> None:
    rng = np.random.default_rng(vocab + 1)
    for scale in (0.1, 3.0, 40.0):  # flat, typical, near one-hot
        x = (rng.normal(0, 1, vocab) * scale).astype(np.float32)
        x[1::9] = -np.inf
        index, logprob, entropy = _core.log_softmax_stats(x)
        assert index == int(np.argmax(x))
        assert abs(logprob - ref_log_softmax(x)[index]) <= LOGPROB_ABS
        assert entropy == pytest.approx(ref_entropy(x), rel=ENTROPY_REL, abs=ENTROPY_ABS)

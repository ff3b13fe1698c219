"""qwen_edge._core (csrc/) through its bindings, each against a small numpy reference.

Distribution tests draw N = 20,000 tokens and compare counts with the reference
probabilities by a chi-square statistic over bins with >= 5 expected draws (rarer
tokens pooled into one bin), bounded by df + 6 * sqrt(2 * df) (about 5 sigma).
Tokens the reference excludes must never be drawn. Seeds are fixed, so the tests
are deterministic.
"""

from __future__ import annotations

import ast
import math
import mmap
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import ref_entropy, ref_log_softmax, smaps_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_edge import _core

N_DRAWS = 20_000
QWEN_VOCAB = 151_936


# ---- numpy references -------------------------------------------------------------


def ref_process(
    logits: np.ndarray,
    history: list[int] | np.ndarray = (),
    *,
    logit_bias: dict[int, float] | None = None,
    repetition_penalty: float = 1.0,
    presence_penalty: float = 0.0,
    frequency_penalty: float = 0.0,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """HF RepetitionPenaltyLogitsProcessor + OpenAI presence/frequency + llguidance mask."""
    x = np.asarray(logits, dtype=np.float32).copy()
    for token, bias in (logit_bias or {}).items():
        x[token] += np.float32(bias)
    ids, counts = np.unique(np.asarray(history, dtype=np.int64), return_counts=True)
    if ids.size:
        v = x[ids]
        rep = np.float32(repetition_penalty)
        v = np.where(v > 0, v / rep, v * rep)
        v = v - (
            np.float32(frequency_penalty) * counts.astype(np.float32) + np.float32(presence_penalty)
        )
        x[ids] = v
    if mask is not None:
        x[~ref_allowed(mask, x.size)] = -np.inf
    return x


def ref_allowed(mask: np.ndarray, vocab: int) -> np.ndarray:
    """llguidance layout: token i allowed iff bit i % 32 of word i // 32 is set."""
    words = np.asarray(mask).view(np.uint32)
    bits = (words[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    allowed = np.zeros(vocab, dtype=bool)
    flat = bits.reshape(-1).astype(bool)[:vocab]
    allowed[: flat.size] = flat
    return allowed


def ref_probs(
    x: np.ndarray, temperature: float, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0
) -> np.ndarray:
    """HF warpers in order: temperature -> top_k -> top_p -> min_p (float64)."""
    z = np.asarray(x, dtype=np.float64) / temperature
    order = np.lexsort((np.arange(z.size), -z))  # rank: higher logit, then lower id
    keep = np.isfinite(z)
    if top_k:
        keep[order[top_k:]] = False
    p = np.where(keep, np.exp(z - z.max()), 0.0)
    p /= p.sum()
    if top_p < 1.0:
        before = np.cumsum(p[order]) - p[order]  # mass ranked strictly before
        keep[order[before >= top_p]] = False
        p = np.where(keep, p, 0.0)
        p /= p.sum()
    if min_p > 0.0:
        p = np.where(p >= min_p * p.max(), p, 0.0)
        p /= p.sum()
    return p


def draw(sampler: _core.Sampler, logits: np.ndarray, n: int = N_DRAWS, **kw: object) -> np.ndarray:
    return np.array([sampler.sample(logits, **kw)[0] for _ in range(n)])


def assert_distribution(tokens: np.ndarray, p: np.ndarray) -> None:
    counts = np.bincount(tokens, minlength=p.size)
    assert counts.size == p.size
    assert counts[p == 0].sum() == 0, f"drew excluded tokens {np.flatnonzero(counts * (p == 0))}"
    expected = p * tokens.size
    big = expected >= 5
    obs = np.append(counts[big], counts[~big & (p > 0)].sum())
    exp = np.append(expected[big], expected[~big & (p > 0)].sum())
    obs, exp = obs[exp > 0], exp[exp > 0]
    df = obs.size - 1
    if df == 0:
        return
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    assert chi2 < df + 6 * math.sqrt(2 * df), f"chi2={chi2:.1f} with df={df}"


@pytest.fixture
def logits50() -> np.ndarray:
    return np.random.default_rng(50).normal(0.0, 1.5, 50).astype(np.float32)


# ---- greedy, logprob, entropy -----------------------------------------------------


def test_greedy_is_argmax_with_reference_logprob_and_entropy() -> None:
    x = np.random.default_rng(0).normal(0, 3, QWEN_VOCAB).astype(np.float32)
    token, logprob, entropy = _core.Sampler(_core.SamplerConfig(temperature=0.0)).sample(x)
    assert token == int(np.argmax(x))
    assert logprob == pytest.approx(ref_log_softmax(x)[token], abs=1e-5)
    assert entropy == pytest.approx(ref_entropy(x), rel=1e-5)


def test_greedy_ties_go_to_lowest_id() -> None:
    x = np.zeros(1000, dtype=np.float32)
    x[[700, 37, 999]] = 5.0
    assert _core.Sampler(_core.SamplerConfig(temperature=0.0)).sample(x)[0] == 37
    assert _core.log_softmax_stats(x)[0] == 37


@pytest.mark.parametrize("vocab", [1, 31, 32, 33, 1000, QWEN_VOCAB + 5])
def test_log_softmax_stats_matches_numpy(vocab: int) -> None:
    x = np.random.default_rng(vocab).normal(0, 4, vocab).astype(np.float32)
    x[::7] = -np.inf  # masked tokens have p = 0
    x[0] = 1.0
    index, logprob, entropy = _core.log_softmax_stats(x)
    assert index == int(np.argmax(x))
    assert logprob == pytest.approx(ref_log_softmax(x)[index], abs=1e-5)
    assert entropy == pytest.approx(ref_entropy(x), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([-np.inf] * 40, "finite"),
        ([0.0, np.nan, 1.0], "NaN"),
        ([0.0, np.inf, 1.0], r"\+inf"),
        ([], "empty"),
    ],
)
def test_log_softmax_stats_rejects_bad_logits(values: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _core.log_softmax_stats(np.array(values, dtype=np.float32))


def test_sample_logprob_and_entropy_are_of_processed_logits_at_temperature_1() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, 300).astype(np.float32)
    history = rng.integers(0, 300, 40).astype(np.int32)
    mask = rng.integers(0, 2**32, 10, dtype=np.uint64).astype(np.uint32)
    cfg = _core.SamplerConfig(
        temperature=0.5,
        top_k=10,
        top_p=0.8,
        repetition_penalty=1.3,
        presence_penalty=0.4,
        frequency_penalty=0.1,
        logit_bias={5: 2.0},
        seed=3,
    )
    ref = ref_process(
        x,
        history,
        logit_bias={5: 2.0},
        repetition_penalty=1.3,
        presence_penalty=0.4,
        frequency_penalty=0.1,
        mask=mask,
    )
    sampler = _core.Sampler(cfg)
    for _ in range(50):
        token, logprob, entropy = sampler.sample(x, history, mask)
        assert logprob == pytest.approx(ref_log_softmax(ref)[token], abs=1e-5)
        assert entropy == pytest.approx(ref_entropy(ref), rel=1e-5)


# ---- each option changes the distribution as specified ----------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"temperature": 0.7},
        {"temperature": 1.0},  # T = 1 reuses the softmax block sums
        {"temperature": 1.3, "top_k": 5},
        {"temperature": 1.0, "top_k": 1},
        {"temperature": 1.0, "top_p": 0.8},
        {"temperature": 0.6, "top_p": 0.5},
        {"temperature": 1.0, "min_p": 0.1},
        {"temperature": 2.0, "top_p": 0.9, "min_p": 0.05},
        {"temperature": 0.8, "top_k": 20, "top_p": 0.9, "min_p": 0.05},
    ],
)
def test_sampling_distribution_matches_reference(
    logits50: np.ndarray, options: dict[str, float]
) -> None:
    p = ref_probs(logits50, **options)  # type: ignore[arg-type]
    if options.get("top_p", 1.0) < 1.0:  # the nucleus edge must not be a rounding call
        q = np.sort(ref_probs(logits50, options["temperature"], int(options.get("top_k", 0))))[::-1]
        assert np.min(np.abs(np.cumsum(q) - q - options["top_p"])) > 1e-4
    sampler = _core.Sampler(_core.SamplerConfig(seed=11, **options))  # type: ignore[arg-type]
    assert_distribution(draw(sampler, logits50), p)


@pytest.mark.parametrize("top_k", [0, 3])  # the top_p-only and the top_k code paths
def test_top_p_keeps_the_token_that_crosses_the_threshold(top_k: int) -> None:
    x = np.log(np.array([0.2, 0.5, 0.3, 1e-9], dtype=np.float32))  # ranked 1, 2, 0, 3
    below = _core.Sampler(_core.SamplerConfig(top_k=top_k, top_p=0.79, seed=1))
    assert set(draw(below, x, 3000)) == {1, 2}  # token 0 starts at mass 0.8 >= 0.79
    above = _core.Sampler(_core.SamplerConfig(top_k=top_k, top_p=0.81, seed=1))
    assert set(draw(above, x, 3000)) == {0, 1, 2}


def test_top_p_on_a_flat_large_vocab_matches_reference_by_rank_group() -> None:
    # Tokens with p >= 1e-4 hold far less than top_p, so the prefilter fails and
    # the whole-vocab histogram path runs.
    vocab = 20_000
    x = np.random.default_rng(2).normal(0, 0.2, vocab).astype(np.float32)
    full = ref_probs(x, 1.0)
    assert full[full >= 1e-4].sum() < 0.5
    p = ref_probs(x, 1.0, top_p=0.5)
    tokens = draw(_core.Sampler(_core.SamplerConfig(top_p=0.5, seed=5)), x)
    assert np.all(p[tokens] > 0), "drew a token outside the nucleus"
    # Compare by rank deciles of the nucleus: each group's share of the draws.
    nucleus = np.flatnonzero(p)[np.argsort(-x[np.flatnonzero(p)])]
    group = np.zeros(vocab, dtype=np.int64)
    group[nucleus] = np.arange(nucleus.size) * 10 // nucleus.size
    group_p = np.bincount(group[nucleus], weights=p[nucleus], minlength=10)
    assert_distribution(group[tokens], group_p)


def test_large_vocab_truncation_matches_reference() -> None:
    vocab = QWEN_VOCAB + 17  # not a multiple of 32: a partial last block
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, vocab).astype(np.float32)
    heavy = rng.choice(vocab, 30, replace=False)
    heavy[0] = vocab - 1
    x[heavy] += rng.uniform(8, 14, 30).astype(np.float32)
    for options in (
        {"temperature": 0.9, "top_k": 20},
        {"temperature": 0.9, "top_p": 0.9},
        {"temperature": 0.9, "min_p": 0.02},
    ):
        p = ref_probs(x, **options)  # type: ignore[arg-type]
        sampler = _core.Sampler(_core.SamplerConfig(seed=4, **options))  # type: ignore[arg-type]
        assert_distribution(draw(sampler, x, 3000), p)


# ---- penalties and logit_bias -----------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"repetition_penalty": 1.3},
        {"repetition_penalty": 0.7},
        {"presence_penalty": 0.5},
        {"frequency_penalty": 0.25},
        {"presence_penalty": -0.5, "frequency_penalty": 1.5},
        {"repetition_penalty": 1.2, "presence_penalty": 0.3, "frequency_penalty": 0.2},
        {"logit_bias": {0: 5.0, 7: -100.0, 49: -math.inf}},
        {"logit_bias": {3: 1.5}, "repetition_penalty": 1.5, "frequency_penalty": 0.5},
    ],
)
def test_process_logits_matches_reference(logits50: np.ndarray, options: dict) -> None:
    history = np.array([3, 3, 3, 7, 12, 12, 49, 0, 3], dtype=np.int32)  # repeats count
    got = _core.Sampler(_core.SamplerConfig(**options)).process_logits(logits50, history)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref_process(logits50, history, **options), rtol=1e-6, atol=1e-6)


def test_penalties_ignore_an_empty_history(logits50: np.ndarray) -> None:
    sampler = _core.Sampler(_core.SamplerConfig(repetition_penalty=2.0, presence_penalty=1.0))
    np.testing.assert_array_equal(sampler.process_logits(logits50), logits50)
    np.testing.assert_array_equal(sampler.process_logits(logits50, []), logits50)


def test_penalized_sampling_follows_processed_logits(logits50: np.ndarray) -> None:
    history = np.arange(0, 50, 3, dtype=np.int32)
    options = {"repetition_penalty": 1.5, "presence_penalty": 0.5, "logit_bias": {1: 2.0}}
    p = ref_probs(ref_process(logits50, history, **options), 0.9)  # type: ignore[arg-type]
    sampler = _core.Sampler(_core.SamplerConfig(temperature=0.9, seed=9, **options))
    assert_distribution(draw(sampler, logits50, history=history), p)


def test_out_of_range_token_ids_raise_index_error(logits50: np.ndarray) -> None:
    penalized = _core.Sampler(_core.SamplerConfig(repetition_penalty=1.1))
    with pytest.raises(IndexError, match="history token 50"):
        penalized.sample(logits50, [1, 50])
    with pytest.raises(IndexError, match="history token -1"):
        penalized.sample(logits50, [-1])
    with pytest.raises(IndexError, match="logit_bias token id 50"):
        _core.Sampler(_core.SamplerConfig(logit_bias={50: 1.0})).sample(logits50)


# ---- seeds and state ---------------------------------------------------------------


def test_same_seed_same_tokens_different_seed_different_tokens(logits50: np.ndarray) -> None:
    def run(seed: int) -> list[int]:
        sampler = _core.Sampler(_core.SamplerConfig(temperature=1.0, top_p=0.95, seed=seed))
        return [sampler.sample(logits50)[0] for _ in range(200)]

    assert run(123) == run(123)
    assert run(123) != run(124)


def test_callers_arrays_are_not_modified() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, 1000).astype(np.float32)
    history = rng.integers(0, 1000, 100).astype(np.int32)
    mask = np.full(32, 0x0F0F0F0F, dtype=np.uint32)
    x_before, history_before, mask_before = x.copy(), history.copy(), mask.copy()
    sampler = _core.Sampler(
        _core.SamplerConfig(temperature=0.7, top_k=5, repetition_penalty=1.5, logit_bias={1: 3.0})
    )
    for _ in range(3):
        sampler.sample(x, history, mask)
        sampler.process_logits(x, history, mask)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(history, history_before)
    np.testing.assert_array_equal(mask, mask_before)


@pytest.mark.parametrize("options", [
    {"temperature": 0.0},
    {"temperature": 1.0},
    {"temperature": 0.7, "top_k": 40},
    {"temperature": 0.8, "top_p": 0.9, "min_p": 0.01},
])
def test_in_place_and_copied_logits_sample_identically(options: dict) -> None:
    """With nothing to rewrite, the sampler reads the caller's logits in place; an all-ones
    mask (or a zero logit_bias) sends the same logits through the processed copy instead.
    Both paths must draw the same tokens with the same logprob and entropy, bit for bit,
    and leave the caller's array as it was."""
    rng = np.random.default_rng(11)
    steps = [rng.normal(0, 3, QWEN_VOCAB).astype(np.float32) for _ in range(20)]
    before = [x.copy() for x in steps]
    all_ones = np.full(-(-QWEN_VOCAB // 32), 0xFFFFFFFF, dtype=np.uint32)
    in_place = _core.Sampler(_core.SamplerConfig(seed=5, **options))
    masked = _core.Sampler(_core.SamplerConfig(seed=5, **options))
    biased = _core.Sampler(_core.SamplerConfig(seed=5, logit_bias={7: 0.0}, **options))
    for x in steps:
        got = in_place.sample(x)
        assert masked.sample(x, None, all_ones) == got
        assert biased.sample(x) == got
    for x, x0 in zip(steps, before, strict=True):
        np.testing.assert_array_equal(x, x0)


# ---- masks -----------------------------------------------------------------------


def test_mask_only_allowed_tokens_are_drawn() -> None:
    vocab = 1000
    rng = np.random.default_rng(5)
    x = rng.normal(0, 2, vocab).astype(np.float32)
    mask = rng.integers(0, 2**32, 32, dtype=np.uint64).astype(np.uint32)
    allowed = ref_allowed(mask, vocab)
    for options in (
        {"temperature": 0.0},
        {"temperature": 1.5},
        {"top_k": 50},
        {"top_p": 0.9},
        {"min_p": 0.01},
    ):
        sampler = _core.Sampler(_core.SamplerConfig(seed=6, **options))  # type: ignore[arg-type]
        tokens = draw(sampler, x, 2000, mask=mask)
        assert allowed[tokens].all()
    p = ref_probs(ref_process(x, mask=mask), 1.5)
    assert_distribution(draw(_core.Sampler(_core.SamplerConfig(temperature=1.5)), x, mask=mask), p)


def test_mask_that_allows_nothing_raises(logits50: np.ndarray) -> None:
    sampler = _core.Sampler(_core.SamplerConfig())
    with pytest.raises(ValueError, match="grammar mask allows no token"):
        sampler.sample(logits50, mask=np.zeros(2, dtype=np.uint32))
    # Bits past the vocab do not count as allowed.
    with pytest.raises(ValueError, match="grammar mask allows no token"):
        sampler.sample(logits50, mask=np.array([0, 0xFFFFFFFF << 18 & 0xFFFFFFFF], np.uint32))


def test_mask_shorter_than_vocab_disallows_the_tail_and_longer_is_rejected() -> None:
    x = np.zeros(100, dtype=np.float32)
    x[90] = 10.0
    sampler = _core.Sampler(_core.SamplerConfig(temperature=0.0))
    assert sampler.sample(x, mask=np.array([0xFFFFFFFF], np.uint32))[0] == 0
    with pytest.raises(ValueError, match="needs 4"):
        sampler.sample(x, mask=np.full(5, 0xFFFFFFFF, np.uint32))


@pytest.mark.parametrize("vocab", [1, 32, 50, 1000, QWEN_VOCAB])
def test_apply_token_mask_matches_llguidance_numpy_reference(vocab: int) -> None:
    llg_numpy = pytest.importorskip("llguidance.numpy")
    rng = np.random.default_rng(vocab)
    x = rng.normal(0, 1, vocab).astype(np.float32)
    mask = rng.integers(-(2**31), 2**31, (vocab + 31) // 32, dtype=np.int64).astype(np.int32)
    expected = x[None, :].copy()
    llg_numpy.apply_token_bitmask_inplace(expected, mask[None, :])
    ours = x.copy()
    _core.apply_token_mask(ours, mask)  # int32 words, as llguidance allocates them
    np.testing.assert_array_equal(ours, expected[0])
    ours_u32 = x.copy()
    _core.apply_token_mask(ours_u32, mask.view(np.uint32))
    np.testing.assert_array_equal(ours_u32, expected[0])


@pytest.mark.parametrize(
    ("logits", "message"),
    [
        (np.zeros(64, np.float64), "float32"),
        (np.zeros(128, np.float32)[::2], "C-contiguous"),
        (np.zeros((1, 64), np.float32), "1-D"),
    ],
)
def test_apply_token_mask_rejects_arrays_it_cannot_modify_in_place(
    logits: np.ndarray, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _core.apply_token_mask(logits, np.zeros(2, np.uint32))


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.zeros(2, np.float32), "uint32 or int32"),
        (np.zeros(2, np.int64), "uint32 or int32"),
        (np.zeros(2, bool), "uint32 or int32"),
        (np.zeros((1, 2), np.int32), "1-D"),
    ],
)
def test_bad_masks_are_rejected(logits50: np.ndarray, mask: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _core.Sampler(_core.SamplerConfig()).sample(logits50, mask=mask)


def test_llguidance_matcher_bitmask_drives_the_sampler() -> None:
    llguidance = pytest.importorskip("llguidance")
    llg_numpy = pytest.importorskip("llguidance.numpy")

    class ByteTokenizer:
        # 40 tokens: 0 = <eos>, 1..10 = '0'..'9', 11..36 = 'a'..'z', 37 '{', 38 '}', 39 ' '
        def __init__(self) -> None:
            chars = b"0123456789abcdefghijklmnopqrstuvwxyz{} "
            self.tokens = [b"<eos>"] + [bytes([c]) for c in chars]
            self.eos_token_id = 0
            self.bos_token_id = None
            self.special_token_ids = [0]

        def __call__(self, s: str | bytes) -> list[int]:
            data = s.encode() if isinstance(s, str) else s
            return [self.tokens.index(bytes([b])) for b in data]

    tok = llguidance.LLTokenizer(llguidance.TokenizerWrapper(ByteTokenizer()), slices=[])
    grammar = llguidance.LLMatcher.grammar_from_regex(r"[p-z}]+")  # tokens 26..36 and 38
    matcher = llguidance.LLMatcher(tok, grammar, log_level=0)
    assert not matcher.is_error(), matcher.get_error()
    bitmask = llg_numpy.allocate_token_bitmask(1, tok.vocab_size)  # int32 [1, 2]
    llg_numpy.fill_next_token_bitmask(matcher, bitmask)
    allowed = ref_allowed(bitmask[0], tok.vocab_size)
    assert np.flatnonzero(allowed).tolist() == [*range(26, 37), 38]  # spans both words

    x = np.random.default_rng(7).normal(0, 1, tok.vocab_size).astype(np.float32)
    x[5] = 50.0  # the unconstrained favourite, disallowed by the grammar
    sampler = _core.Sampler(_core.SamplerConfig(temperature=1.0, seed=2))
    tokens = draw(sampler, x, 4000, mask=bitmask[0])
    assert set(tokens.tolist()) == set(np.flatnonzero(allowed).tolist())
    assert_distribution(tokens, ref_probs(ref_process(x, mask=bitmask[0]), 1.0))
    for token in tokens[:20]:  # every drawn token is one the matcher accepts
        assert matcher.validate_tokens([int(token)]) == 1


# ---- config validation and input handling ----------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -0.1),
        ("temperature", math.nan),
        ("temperature", math.inf),
        ("top_k", -1),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("top_p", math.nan),
        ("min_p", -0.1),
        ("min_p", 1.01),
        ("repetition_penalty", 0.0),
        ("repetition_penalty", -1.0),
        ("repetition_penalty", math.inf),
        ("presence_penalty", math.inf),
        ("frequency_penalty", math.nan),
        ("logit_bias", {-1: 1.0}),
        ("logit_bias", {3: math.nan}),
        ("logit_bias", {3: math.inf}),
    ],
)
def test_invalid_config_raises_value_error_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        _core.SamplerConfig(**{field: value})


def test_config_defaults_are_off_readonly_and_keyword_only() -> None:
    cfg = _core.SamplerConfig()
    assert (cfg.temperature, cfg.top_k, cfg.top_p, cfg.min_p) == (1.0, 0, 1.0, 0.0)
    assert (cfg.repetition_penalty, cfg.presence_penalty, cfg.frequency_penalty) == (1.0, 0.0, 0.0)
    assert (cfg.logit_bias, cfg.seed) == ({}, 0)
    assert _core.SamplerConfig(top_p=0.9).top_p == 0.9  # stored as double, no float32 rounding
    with pytest.raises(AttributeError):
        cfg.temperature = 0.5  # type: ignore[misc]
    with pytest.raises(TypeError):
        _core.SamplerConfig(0.5)  # type: ignore[misc]
    assert _core.Sampler(_core.SamplerConfig(top_k=7)).config.top_k == 7


def test_forcecast_and_non_contiguous_inputs_give_the_same_result() -> None:
    x = np.random.default_rng(8).normal(0, 1, 400).astype(np.float32)
    history = [1, 2, 2, 300]
    cfg = _core.SamplerConfig(top_k=20, repetition_penalty=1.4, seed=5)

    def run(logits: object, hist: object) -> list[tuple[int, float, float]]:
        sampler = _core.Sampler(cfg)
        return [sampler.sample(logits, hist) for _ in range(20)]  # type: ignore[arg-type]

    expected = run(x, np.array(history, np.int32))
    assert run(x.astype(np.float64), history) == expected  # float64 + list
    strided = np.zeros(800, np.float32)
    strided[::2] = x
    assert run(strided[::2], np.array(history, np.int64)) == expected  # non-contiguous + int64
    assert run(x, np.array(history, np.uint16)) == expected


@pytest.mark.parametrize(
    ("logits", "history", "error", "message"),
    [
        (np.zeros((2, 50), np.float32), None, ValueError, "1-D"),
        (np.array(["a"] * 50), None, ValueError, "float"),
        (np.zeros(0, np.float32), None, ValueError, "empty"),
        (np.zeros(50, np.float32), np.array([1.0, 2.0]), ValueError, "integer"),
        (np.zeros(50, np.float32), np.array([[1, 2]]), ValueError, "1-D"),
        (np.zeros(50, np.float32), np.array([2**40]), IndexError, "int32"),
    ],
)
def test_bad_inputs_are_rejected_clearly(
    logits: np.ndarray, history: object, error: type[Exception], message: str
) -> None:
    sampler = _core.Sampler(_core.SamplerConfig(repetition_penalty=1.2))
    with pytest.raises(error, match=message):
        sampler.sample(logits, history)


def test_nan_logits_raise(logits50: np.ndarray) -> None:
    x = logits50.copy()
    x[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _core.Sampler(_core.SamplerConfig()).sample(x)


# ---- n-gram drafting --------------------------------------------------------------


def ref_ngram_draft(tokens: list[int], max_ngram: int, min_ngram: int, k: int) -> list[int]:
    n = len(tokens)
    for m in range(max_ngram, min_ngram - 1, -1):
        if m >= n:
            continue
        suffix = tokens[n - m :]
        for start in range(n - m - 1, -1, -1):  # most recent earlier occurrence first
            if tokens[start : start + m] == suffix:
                return tokens[start + m : start + m + k]
    return []


@pytest.mark.parametrize(
    ("tokens", "kwargs", "expected"),
    [
        ([1, 2, 3, 4], {}, []),  # no earlier match
        ([], {}, []),
        ([7], {}, []),
        # The 3-gram [1, 2, 3] wins over the more recent 1-gram match of [3].
        ([1, 2, 3, 9, 9, 7, 3, 8, 5, 1, 2, 3], {}, [9, 9, 7, 3, 8]),
        ([1, 2, 3, 9, 9, 7, 3, 8, 5, 1, 2, 3], {"max_ngram": 1}, [8, 5, 1, 2, 3]),
        # Most recent of two equal-length matches; the draft stops at the end.
        ([5, 6, 1, 5, 6, 2, 5, 6], {}, [2, 5, 6]),
        ([5, 6, 1, 5, 6, 2, 5, 6], {"k": 2}, [2, 5]),
        ([5, 6, 1, 5, 6, 2, 5, 6], {"min_ngram": 3}, []),
        ([4, 4, 4, 4], {"k": 3}, [4]),  # overlapping match: the repeat continues
        ([1, 2, 1, 2, 1, 2], {"max_ngram": 4, "k": 10}, [1, 2]),
        ([1, 2, 3, 1, 2], {"k": 0}, []),
    ],
)
def test_ngram_draft_cases(tokens: list[int], kwargs: dict[str, int], expected: list[int]) -> None:
    draft = _core.ngram_draft(np.array(tokens, dtype=np.int32), **kwargs)
    assert draft.dtype == np.int32
    assert draft.tolist() == expected
    args = {"max_ngram": 3, "min_ngram": 1, "k": 5, **kwargs}
    assert ref_ngram_draft(tokens, **args) == expected


@settings(max_examples=300, deadline=None)
@given(
    tokens=st.lists(st.integers(0, 4), max_size=60),
    max_ngram=st.integers(1, 5),
    min_ngram=st.integers(1, 5),
    k=st.integers(0, 8),
)
def test_ngram_draft_matches_reference(
    tokens: list[int], max_ngram: int, min_ngram: int, k: int
) -> None:
    if min_ngram > max_ngram:
        min_ngram, max_ngram = max_ngram, min_ngram
    got = _core.ngram_draft(tokens, max_ngram=max_ngram, min_ngram=min_ngram, k=k)
    assert got.tolist() == ref_ngram_draft(tokens, max_ngram, min_ngram, k)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_ngram": 0}, "min_ngram"),
        ({"max_ngram": 1, "min_ngram": 2}, "max_ngram"),
        ({"k": -1}, "k must be"),
    ],
)
def test_ngram_draft_rejects_bad_arguments(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _core.ngram_draft([1, 2, 1], **kwargs)


@pytest.mark.parametrize(
    ("draft", "target", "accepted"),
    [
        ([1, 2, 3], [1, 2, 4, 5], 2),
        ([1, 2, 3], [1, 2, 3, 9], 3),  # all accepted; target[3] is the bonus token
        ([1, 2, 3], [0, 2, 3, 9], 0),
        ([], [7], 0),
    ],
)
def test_accept_draft(draft: list[int], target: list[int], accepted: int) -> None:
    assert _core.accept_draft(np.array(draft, np.int32), np.array(target, np.int32)) == accepted


def test_accept_draft_requires_one_more_target_token() -> None:
    with pytest.raises(ValueError, match=r"len\(draft\) \+ 1"):
        _core.accept_draft([1, 2], [1, 2])


# ---- huge pages ----------------------------------------------------------------------


def _private_memory(size: int) -> np.ndarray:
    """Private anonymous memory that numpy did not allocate (numpy advises huge pages on its
    own large arrays, which would make the test pass without the collapse)."""
    region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(region, np.uint8)


def _huge_bytes_over(array: np.ndarray) -> int:
    """AnonHugePages of the mappings that overlap ``array``, in bytes."""
    return smaps_bytes(array.ctypes.data, array.ctypes.data + array.nbytes, "AnonHugePages")


def _chunks_inside(array: np.ndarray) -> list[int]:
    lo, size = array.ctypes.data, _core.huge_page_size()
    return [c for c in _core.resident_huge_chunks() if lo <= c and c + size <= lo + array.nbytes]


def _collapse_supported() -> bool:
    release = os.uname().release.split("-")[0].split(".")
    return (sys.platform == "linux" and _core.huge_page_size() > 0
            and (int(release[0]), int(release[1])) >= (6, 1))


def test_huge_page_size_is_the_kernels() -> None:
    thp = Path("/sys/kernel/mm/transparent_hugepage")
    if not (thp / "hpage_pmd_size").exists() or "[never]" in (thp / "enabled").read_text():
        assert _core.huge_page_size() == 0
        assert _core.resident_huge_chunks() == []
    else:
        assert _core.huge_page_size() == int((thp / "hpage_pmd_size").read_text())


@pytest.mark.skipif(not _collapse_supported(), reason="needs Linux >= 6.1 with THP enabled")
def test_collapse_moves_only_resident_memory_onto_huge_pages() -> None:
    """Untouched memory is never listed (collapsing it would grow the resident set); once
    written it is, and collapsing it keeps its contents while the process's huge-page total
    grows by the bytes reported."""
    size = _core.huge_page_size()
    untouched = _private_memory(12 * size)
    assert _chunks_inside(untouched) == []
    data = _private_memory(12 * size)
    data[:] = np.random.default_rng(0).integers(0, 255, data.size, dtype=np.uint8)
    copy = data.copy()
    chunks = _chunks_inside(data)
    assert len(chunks) >= 10
    collapse = _core.HugePageCollapse(chunks)
    collapsed = collapse.wait()
    assert collapse.done
    assert collapse.requested_bytes == len(chunks) * size
    assert collapsed + collapse.failed_chunks * size == collapse.requested_bytes
    assert collapsed >= size  # on a fresh machine all of them; fragmentation may refuse a few
    assert _huge_bytes_over(data) >= collapsed
    np.testing.assert_array_equal(data, copy)
    assert _chunks_inside(untouched) == []  # still not resident: nothing was filled in


def test_collapse_of_nothing_and_early_destruction() -> None:
    empty = _core.HugePageCollapse([])
    assert empty.done
    assert empty.wait() == 0
    assert empty.requested_bytes == 0
    data = _private_memory(8 * max(_core.huge_page_size(), 1 << 21))
    data[:] = 1
    collapse = _core.HugePageCollapse(_chunks_inside(data))
    del collapse  # stops between chunks and joins; nothing left running on freed memory
    del data


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_never_waits_for_the_parents_thread() -> None:
    """The collapsing thread does not exist in a child forked while it runs: the child's
    wait() and destructor return at once instead of hanging."""
    data = _private_memory(64 * max(_core.huge_page_size(), 1 << 21))
    data[:] = 1
    collapse = _core.HugePageCollapse(_chunks_inside(data))
    pid = os.fork()
    if pid == 0:  # child: only async-safe-enough work, then leave without cleanup
        collapse.wait()
        del collapse
        os._exit(0)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung in HugePageCollapse")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert collapse.wait() + collapse.failed_chunks * _core.huge_page_size() == (
        collapse.requested_bytes)


# ---- module surface ----------------------------------------------------------------


def test_version_and_stub_match_the_module() -> None:
    assert _core.__version__ == "0.1.0"
    stub = Path(_core.__file__).with_name("_core.pyi")
    tree = ast.parse(stub.read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
    names |= {
        n.target.id
        for n in tree.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }
    public = {n for n in dir(_core) if not n.startswith("_")}
    assert names - {"__version__"} == public
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        members = {f.name for f in cls.body if isinstance(f, ast.FunctionDef)} - {"__init__"}
        assert members == {n for n in dir(getattr(_core, cls.name)) if not n.startswith("_")}

"""qwen_edge.sampling.make_sampler: the Python layer over the core's kernels, against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from qwen_edge.config import SamplingConfig
from qwen_edge.sampling import make_sampler

VOCAB = 64


@pytest.fixture
def logits() -> np.ndarray:
    return np.random.default_rng(1).standard_normal(VOCAB).astype(np.float32) * 3


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x - x.max() - np.log(np.exp(x - x.max()).sum())


def _none() -> np.ndarray:
    return np.zeros(0, np.int32)


def test_greedy_is_argmax_with_the_reference_logprob_and_entropy(logits: np.ndarray) -> None:
    token, logprob, entropy = make_sampler(SamplingConfig(temperature=0))(logits, _none(), None)
    ref = _log_softmax(logits)
    assert token == int(np.argmax(logits))
    assert logprob == pytest.approx(ref[token], abs=1e-5)
    assert entropy == pytest.approx(-(np.exp(ref) * ref).sum(), abs=1e-5)


def test_logit_bias_is_applied_before_the_draw(logits: np.ndarray) -> None:
    low = int(np.argmin(logits))
    sample = make_sampler(SamplingConfig(temperature=0, logit_bias={low: 100.0}))
    assert sample(logits, _none(), None)[0] == low
    banned = int(np.argmax(logits))
    sample = make_sampler(SamplingConfig(temperature=0, logit_bias={banned: -100.0}))
    assert sample(logits, _none(), None)[0] == int(np.argsort(logits)[-2])


def test_the_mask_allows_only_its_tokens(logits: np.ndarray) -> None:
    allowed = [3, 17, 40]
    mask = np.zeros((VOCAB + 31) // 32, np.uint32)  # llguidance layout: bit i%32 of word i//32
    for t in allowed:
        mask[t // 32] |= np.uint32(1 << (t % 32))
    sample = make_sampler(SamplingConfig(temperature=1.0, seed=0))
    drawn = {sample(logits.copy(), _none(), mask)[0] for _ in range(200)}
    assert drawn <= set(allowed)
    assert len(drawn) > 1
    greedy = make_sampler(SamplingConfig(temperature=0))
    assert greedy(logits.copy(), _none(), mask)[0] == max(allowed, key=lambda t: logits[t])


def test_top_k_draws_only_the_k_most_likely(logits: np.ndarray) -> None:
    sample = make_sampler(SamplingConfig(temperature=1.0, top_k=3, seed=7))
    drawn = {sample(logits.copy(), _none(), None)[0] for _ in range(300)}
    assert drawn == {int(t) for t in np.argsort(logits)[-3:]}


def test_a_seed_fixes_the_sequence_of_draws(logits: np.ndarray) -> None:
    def draws(seed: int) -> list[int]:
        sample = make_sampler(SamplingConfig(temperature=1.0, seed=seed))
        return [sample(logits.copy(), _none(), None)[0] for _ in range(20)]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)


def test_repetition_penalty_uses_the_history() -> None:
    logits = np.zeros(VOCAB, np.float32)
    logits[[5, 9]] = [2.0, 1.9]  # HF semantics: a positive logit is divided by the penalty
    sample = make_sampler(SamplingConfig(temperature=0, repetition_penalty=1.5))
    assert sample(logits.copy(), _none(), None)[0] == 5
    assert sample(logits.copy(), np.asarray([5], np.int32), None)[0] == 9  # 2.0 / 1.5 < 1.9
    assert sample(logits.copy(), np.asarray([9], np.int32), None)[0] == 5

"""How sure the local model was: ``score_confidence``, and picking a threshold (``calibrate``)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._validate import check as _check
from .._validate import is_number as _is_number

if TYPE_CHECKING:
    from ..types import ChatResponse

__all__ = ["calibrate", "confidence_of", "roc_auc", "score_confidence"]

logger = logging.getLogger(__name__)


def score_confidence(completion: ChatResponse) -> float:
    """How sure the local model was of its answer, in [0, 1].

    ``exp((mean(logprobs) - max(entropies)) / 2)``: the geometric mean of

    - ``exp(mean logprob)``, the geometric-mean probability of the sampled tokens, and
    - ``exp(-max entropy)``, one over the effective number of choices (perplexity) at the
      answer's least certain step,

    over every generated token including the stop token. Both are 1 for a certain answer and
    fall towards 0 as the model guesses; the entropy is that of the distribution after
    penalties and the grammar mask, before temperature, so it does not depend on sampling.
    A completion without per-token data scores 0. Compare scores only within one model.
    """
    return confidence_of(completion.logprobs, completion.entropies)


def confidence_of(logprobs: Sequence[float], entropies: Sequence[float]) -> float:
    """``score_confidence`` from per-token logprobs and entropies (see there)."""
    if not logprobs:
        return 0.0
    mean_logprob = float(np.mean(logprobs))
    max_entropy = float(max(entropies, default=0.0))
    return float(min(1.0, max(0.0, math.exp((mean_logprob - max(max_entropy, 0.0)) / 2))))


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (True = should stay local).

    The probability that a random True example scores above a random False one (ties count
    half): 1 separates perfectly, 0.5 is chance.
    """
    s, y = _scored(scores, labels)
    ranks = _average_ranks(s)
    n_true = int(y.sum())
    n_false = len(y) - n_true
    u = ranks[y].sum() - n_true * (n_true + 1) / 2
    return float(u / (n_true * n_false))


def calibrate(scores: Sequence[float], labels: Sequence[bool], *,
              target_local_rate: float | None = None) -> float:
    """Pick ``RoutingPolicy.threshold`` from labelled examples.

    Args:
        scores: ``score_confidence`` of local answers.
        labels: True when the local answer was good enough (should stay local).
        target_local_rate: if given, only thresholds that keep at least this fraction of the
            examples local are considered (a budget for remote calls).

    Returns:
        The threshold (escalate when score < threshold) with the best balanced accuracy, the
        mean of the rate of good answers kept and of bad answers escalated; candidates are
        0, 1 and the midpoints between consecutive distinct scores. Ties go to the higher
        threshold (more escalations, better answers). Logs the ROC AUC of the scores.

    Raises:
        ConfigError: mismatched or empty inputs, scores outside [0, 1], a single class, or a
            target outside (0, 1].

    Example:
        >>> threshold = calibrate([0.9, 0.2, 0.7, 0.1], [True, False, True, False])
        >>> policy = RoutingPolicy(threshold=threshold)
    """
    s, y = _scored(scores, labels)
    _check(target_local_rate is None or (_is_number(target_local_rate)
                                         and 0 < target_local_rate <= 1),
           "target_local_rate", target_local_rate, "None or in (0, 1]")
    distinct = np.unique(s)
    candidates = np.concatenate([[0.0], (distinct[1:] + distinct[:-1]) / 2, [1.0]])
    local = s[None, :] >= candidates[:, None]  # [candidates, examples] stays local?
    kept_good = (local & y).sum(axis=1) / y.sum()
    escalated_bad = (~local & ~y).sum(axis=1) / (~y).sum()
    balanced = (kept_good + escalated_bad) / 2
    if target_local_rate is not None:
        allowed = local.mean(axis=1) >= target_local_rate - 1e-12
        balanced = np.where(allowed, balanced, -1.0)
    best = len(candidates) - 1 - int(np.argmax(balanced[::-1]))  # last maximum: highest
    threshold = float(candidates[best])
    logger.info("calibrated threshold %.4f: balanced accuracy %.3f, %.1f%% local, ROC AUC %.3f",
                threshold, balanced[best], 100 * local[best].mean(), roc_auc(scores, labels))
    return threshold


def _scored(scores: Sequence[float], labels: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    _check(len(s) == len(labels) and len(s) > 0, "labels", f"{len(labels)} labels",
           f"one per score ({len(s)} scores), at least one")
    _check(bool(np.all((s >= 0) & (s <= 1))), "scores", "values outside [0, 1]", "in [0, 1]")
    y = np.asarray([bool(v) for v in labels], dtype=bool)
    _check(bool(y.any() and (~y).any()), "labels", "a single class",
           "both True (stay local) and False (escalate) examples")
    return s, y


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2
            start = end
    return ranks

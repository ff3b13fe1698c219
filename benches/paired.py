"""Paired rounds for A/B timing on a noisy host: the round order and the ratio statistics.

Several engines or graphs take turns within each round; on a shared machine whose speed drifts
by +-10 % between minutes, the per-round ratio to a reference is steadier than either median.
Used by ab_engines.py, compare_graphs.py and compare_peers.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def round_order(items: Sequence[T], r: int) -> list[T]:
    """Round ``r``'s order: rotated by ``r`` and reversed on odd rounds, so no item always
    follows the same neighbour or runs first."""
    order = list(items[r % len(items):]) + list(items[: r % len(items)])
    return order[::-1] if r % 2 else order


def paired_ratio(values: Sequence[float], reference: Sequence[float]) -> str:
    """``median [bootstrap 95 % interval of the median], faster in k/n`` of values / reference,
    round by round (seeded: the same rounds give the same interval)."""
    ratio = np.asarray(values, float) / np.asarray(reference, float)
    rng = np.random.default_rng(0)
    boot = [np.median(rng.choice(ratio, ratio.size)) for _ in range(2000)]
    low, high = np.percentile(boot, [2.5, 97.5])
    return (f"{np.median(ratio):.3f} [{low:.3f}, {high:.3f}], faster in "
            f"{int((ratio > 1).sum())}/{ratio.size}")

"""make_sampler: a SamplingConfig becomes a callable over logits, backed by the C++ core.

The hot path (bias, penalties, grammar mask, temperature, top-k/top-p/min-p, the draw, and the
chosen token's logprob plus the distribution's entropy) runs in ``_core`` with the GIL
released; this module only translates configs and errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from . import _core
from .config import SamplingConfig
from .errors import ConfigError, GrammarError

__all__ = ["SampleFn", "Sampled", "make_sampler"]

# (token, logprob, entropy): logprob and entropy (nats) come from the distribution after
# logit_bias, penalties and the mask, before temperature and truncation.
Sampled = tuple[int, float, float]
SampleFn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], Sampled]


def make_sampler(cfg: SamplingConfig) -> SampleFn:
    """Build a sampler: ``sample(logits f32[vocab], history i32[n], mask u32[words] | None)``.

    The same ``cfg.seed`` gives the same draws; ``seed=None`` seeds from the OS.
    """
    seed = cfg.seed if cfg.seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
    try:
        core_cfg = _core.SamplerConfig(
            temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p, min_p=cfg.min_p,
            repetition_penalty=cfg.repetition_penalty, presence_penalty=cfg.presence_penalty,
            frequency_penalty=cfg.frequency_penalty,
            logit_bias={int(k): float(v) for k, v in cfg.logit_bias.items()}, seed=seed,
        )
        sampler = _core.Sampler(core_cfg)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc

    def sample(logits: np.ndarray, history: np.ndarray, mask: np.ndarray | None = None) -> Sampled:
        try:
            token, logprob, entropy = sampler.sample(logits, history, mask)
        except ValueError as exc:
            if "grammar mask allows no token" in str(exc):
                msg = f"the constraint allows no token here: {exc}"
                raise GrammarError(msg) from exc
            raise ConfigError(str(exc)) from exc
        except IndexError as exc:  # a logit_bias or history id outside the vocabulary
            raise ConfigError(str(exc)) from exc
        return int(token), float(logprob), float(entropy)

    return sample

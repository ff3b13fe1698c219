"""Stubs for the native core (csrc/bindings.cpp). Private: use qwen_edge.sampling.

Token masks use llguidance's layout: token i is allowed iff bit (i % 32) of word
(i // 32) is set; uint32 or int32 words (llguidance allocates int32), 1-D.
"""

import numpy as np
import numpy.typing as npt

__version__: str

class SamplerConfig:
    """Sampling options with HF/OpenAI names; validated on construction (ValueError).

    Defaults mean "off". temperature < 1e-5 (including 0) is greedy.
    """

    def __init__(
        self,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        repetition_penalty: float = 1.0,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        logit_bias: dict[int, float] = ...,
        seed: int = 0,
    ) -> None: ...
    @property
    def temperature(self) -> float: ...
    @property
    def top_k(self) -> int: ...
    @property
    def top_p(self) -> float: ...
    @property
    def min_p(self) -> float: ...
    @property
    def repetition_penalty(self) -> float: ...
    @property
    def presence_penalty(self) -> float: ...
    @property
    def frequency_penalty(self) -> float: ...
    @property
    def logit_bias(self) -> dict[int, float]: ...
    @property
    def seed(self) -> int: ...

class Sampler:
    """A SamplerConfig, its own RNG (std::mt19937_64 seeded from config.seed) and
    scratch buffers reused across calls. Use one per sequence."""

    def __init__(self, config: SamplerConfig) -> None: ...
    @property
    def config(self) -> SamplerConfig: ...
    def sample(
        self,
        logits: npt.ArrayLike,
        history: npt.ArrayLike | None = None,
        mask: npt.NDArray[np.uint32] | npt.NDArray[np.int32] | None = None,
    ) -> tuple[int, float, float]:
        """Process logits[vocab] and draw one token -> (token, logprob, entropy).

        Order: logit_bias -> repetition/presence/frequency penalties over `history`
        -> mask -> temperature -> top_k -> top_p -> min_p -> draw. `logits` is not
        modified. logprob = log p(token) and entropy = -sum p log p (nats) with
        p = softmax(processed logits) at temperature 1: after bias, penalties and
        mask, before temperature and truncation.

        Raises:
            ValueError: bad shape/dtype, NaN or +inf logits, or the mask allows no
                token ("grammar mask allows no token").
            IndexError: a history or logit_bias token id outside [0, vocab).
        """
    def process_logits(
        self,
        logits: npt.ArrayLike,
        history: npt.ArrayLike | None = None,
        mask: npt.NDArray[np.uint32] | npt.NDArray[np.int32] | None = None,
    ) -> npt.NDArray[np.float32]:
        """The logits after logit_bias, penalties and mask (before temperature)."""

def apply_token_mask(
    logits: npt.NDArray[np.float32],
    mask: npt.NDArray[np.uint32] | npt.NDArray[np.int32],
) -> None:
    """Set logits[i] = -inf in place where mask bit i is clear; tokens past the
    mask's last word are disallowed. logits must be writeable C-contiguous float32."""

def log_softmax_stats(logits: npt.ArrayLike) -> tuple[int, float, float]:
    """(argmax with ties to the lowest id, log-softmax at it, entropy in nats)."""

def ngram_draft(
    tokens: npt.ArrayLike, max_ngram: int = 3, min_ngram: int = 1, k: int = 5
) -> npt.NDArray[np.int32]:
    """Prompt-lookup draft: for m = max_ngram down to min_ngram, find the most recent
    earlier occurrence of the last m tokens and return up to k tokens that followed
    it (int32; empty if nothing matches)."""

def accept_draft(draft: npt.ArrayLike, target: npt.ArrayLike) -> int:
    """Length of the longest prefix of draft equal to target.

    target[i] is the verify pass's greedy token after context + draft[:i], so
    len(target) == len(draft) + 1. With a = accept_draft(draft, target), append
    target[:a + 1] and trim the KV cache to context + a + 1 positions.
    """

def huge_page_size() -> int:
    """Transparent huge page size in bytes; 0 without THP or with THP set to "never"."""

def resident_huge_chunks() -> list[int]:
    """Addresses of the huge-page-aligned chunks of private anonymous memory whose every
    page is resident (collapsing them never grows the resident set)."""

class HugePageCollapse:
    """Collapses chunks into huge pages on a background thread (MADV_COLLAPSE).

    Destroying it asks the (detached) thread to stop after its current chunk, without
    waiting; in a forked child wait() returns at once. Does nothing off Linux, before
    Linux 6.1 (every chunk fails) or with THP set to "never".
    """

    def __init__(self, chunks: list[int]) -> None: ...
    def wait(self) -> int:
        """Block until every chunk was tried; the bytes collapsed."""
    @property
    def done(self) -> bool: ...
    @property
    def requested_bytes(self) -> int: ...
    @property
    def failed_chunks(self) -> int: ...

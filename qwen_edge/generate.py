"""The token loop: ``generate_step`` (tokens -> tokens) and ``stream_generate`` (-> text chunks).

``generate_step`` knows tokens and logits, never text; ``stream_generate`` knows text (stop
strings, incremental detokenization), never chat. Chat and tool parsing sit above both.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from . import _core
from .cache import KVCache
from .config import GenerationConfig
from .constrain import TokenProcessor
from .engine import Engine
from .errors import ConfigError
from .sampling import Sampled, SampleFn
from .tokenizer import StreamDecoder, Tokenizer
from .types import Timings, Usage

__all__ = ["GenerationChunk", "generate_step", "stream_generate"]


def generate_step(
    engine: Engine,
    cache: KVCache,
    new_tokens: np.ndarray,
    *,
    sample: SampleFn,
    context: Sequence[int] = (),
    constraint: TokenProcessor | None = None,
    speculative_tokens: int = 0,
) -> Generator[Sampled, None, None]:
    """Prefill ``new_tokens`` into ``cache``, then yield (token, logprob, entropy) forever.

    The caller stops by closing the generator; tokens it consumed after the last forward are
    not in the cache (``cache.offset`` counts what the graph has seen).

    Args:
        engine: the model's onnxruntime engine.
        cache: the KV cache; ``new_tokens`` are appended at ``cache.offset``.
        new_tokens: tokens not yet in the cache (at least one).
        sample: from ``make_sampler``.
        context: the tokens already in the cache (for n-gram drafting).
        constraint: grammar state and/or thinking budget (``TokenProcessor``); its mask
            is applied to every draw.
        speculative_tokens: n-gram draft length (0 = off). Drafts are verified in one
            forward pass returning k+1 logits; each position is sampled exactly as without
            speculation (penalties, grammar mask, one RNG draw per token, in order) and the
            draft is kept while it agrees, so the output is token-identical to decoding
            without speculation, greedy or sampled with a seed. Refused for a cache that
            cannot rewind (Qwen3.5's ``HybridCache``): a rejected draft token has already
            entered the recurrent state, and undoing it would mean a copy of every state per
            verified draft.

    Raises:
        ConfigError: ``speculative_tokens`` with a cache that cannot rewind.
    """
    if speculative_tokens and not cache.rewindable:
        msg = (f"speculative_tokens={speculative_tokens}: speculative decoding is not supported "
               "for hybrid (Qwen3.5) models, whose recurrent state cannot drop rejected draft "
               "tokens; set speculative_tokens=0")
        raise ConfigError(msg)
    history: list[int] = []  # generated tokens: the penalties' window

    def pick(logits: np.ndarray) -> Sampled:
        mask = constraint.mask() if constraint is not None else None
        token, logprob, entropy = sample(logits, np.asarray(history, np.int32), mask)
        if constraint is not None:
            constraint.advance(token)
        history.append(token)
        return token, logprob, entropy

    seen = list(context) + [int(t) for t in new_tokens]
    logits = _prefill(engine, cache, np.asarray(new_tokens))
    forced: Sampled | None = None  # a verified token that is not in the cache yet
    while True:
        step = forced if forced is not None else pick(logits)
        forced = None
        yield step
        token = step[0]
        seen.append(token)
        if cache.free < 1:
            return  # the context is full: this token cannot be fed
        draft: list[int] = []
        if speculative_tokens and cache.free > 1:
            k = min(speculative_tokens, cache.free - 1)
            draft = [int(t) for t in _core.ngram_draft(np.asarray(seen, np.int32), k=k)]
        rows = engine.forward(np.asarray([token, *draft], np.int64), cache,
                              num_logits=len(draft) + 1)
        for i, proposed in enumerate(draft):
            step = pick(rows[i])
            if step[0] != proposed:  # the target disagrees: keep its token, drop the rest
                cache.trim(cache.offset - (len(draft) - i))
                forced = step
                break
            yield step
            seen.append(proposed)
        if forced is None:
            logits = rows[len(draft)]


def _prefill(engine: Engine, cache: KVCache, tokens: np.ndarray) -> np.ndarray:
    """Feed the prompt; a hybrid cache pauses at its reuse points to take state snapshots
    (before each chat message, and after the whole prompt). Returns the last logits."""
    start = 0
    for point in cache.reuse_points(tokens):
        engine.forward(tokens[start:point], cache, num_logits=1)
        cache.snapshot()
        start = point
    logits: np.ndarray = engine.forward(tokens[start:], cache, num_logits=1)[-1]
    cache.snapshot()
    return logits


@dataclass(frozen=True, slots=True)
class GenerationChunk:
    """One step of ``stream_generate``.

    Attributes:
        text: the new text (may be "" while a character or a possible stop string is held).
        token: the sampled token (None for the final flush chunk).
        logprob / entropy: of the sampled token's distribution (nats).
        finish_reason: None while generating; then "stop" or "length".
        usage / timings: on the final chunk only (as mlx-lm's ``GenerationResponse``): the
            token counts and speeds of the whole call, so no caller needs a side channel.
    """

    text: str
    token: int | None
    logprob: float | None
    entropy: float | None
    finish_reason: str | None = None
    usage: Usage | None = None
    timings: Timings | None = None


def _split_stop(text: str, stops: Sequence[str]) -> tuple[str, str, bool]:
    """(emit now, hold back, stopped): cut at the first stop string, hold a possible prefix."""
    if not stops:
        return text, "", False
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    if cut >= 0:
        return text[:cut], "", True
    hold = 0
    for s in stops:  # longest suffix of text that is a proper prefix of a stop string
        for n in range(min(len(s) - 1, len(text)), hold, -1):
            if text.endswith(s[:n]):
                hold = n
                break
    return text[: len(text) - hold], text[len(text) - hold:], False


def stream_generate(
    engine: Engine,
    tokenizer: Tokenizer,
    cache: KVCache,
    new_tokens: np.ndarray,
    cfg: GenerationConfig,
    *,
    sample: SampleFn,
    stop_token_ids: Sequence[int],
    context: Sequence[int] = (),
    constraint: TokenProcessor | None = None,
    start_s: float | None = None,
) -> Iterator[GenerationChunk]:
    """Generate text chunks until a stop token, a stop string, ``max_tokens`` or a full context.

    The concatenated ``text`` of all chunks is the completion, with stop strings removed. The
    final chunk carries the call's ``usage`` (``context`` counts as cached prompt tokens) and
    ``timings``; ``start_s`` (a ``time.perf_counter()`` value) is when the caller's call
    began, so the time to the first token includes the caller's own preparation.
    """
    stops = set(stop_token_ids)
    decoder = StreamDecoder(tokenizer)
    pending = ""
    start = time.perf_counter()
    called = start if start_s is None else start_s
    prefill_s = first_s = decode_s = 0.0
    completion = 0
    steps = generate_step(engine, cache, new_tokens, sample=sample, context=context,
                          constraint=constraint,
                          speculative_tokens=cfg.speculative_tokens)
    finish = "length"
    cut = False  # a stop string ended the text: drop whatever followed it
    try:
        for n, (token, logprob, entropy) in enumerate(steps, start=1):
            if n == 1:
                now = time.perf_counter()
                prefill_s, first_s = now - start, now - called
            completion = n
            if token in stops:
                finish = "stop"
                yield GenerationChunk("", token, logprob, entropy)
                break
            emit, pending, cut = _split_stop(pending + decoder.add(token), cfg.stop)
            done = constraint is not None and constraint.done
            yield GenerationChunk(emit, token, logprob, entropy)
            if cut or done:
                finish = "stop"
                break
            if (cfg.max_tokens is not None and n >= cfg.max_tokens) or cache.free < 1:
                break
    finally:
        steps.close()
        decode_s = time.perf_counter() - start - prefill_s  # first token to last
    tail = ""
    if not cut:  # flush held-back bytes and a partial stop-string prefix: no more tokens come
        emit, held, cut = _split_stop(pending + decoder.finish(), cfg.stop)
        tail = emit if cut else emit + held
        finish = "stop" if cut else finish
    decoded = max(completion - 1, 0)
    timings = Timings(ttft_s=first_s,
                      prefill_tokens_per_s=len(new_tokens) / prefill_s if prefill_s else 0.0,
                      decode_tokens_per_s=decoded / max(decode_s, 1e-9) if decoded else 0.0)
    usage = Usage(prompt_tokens=len(context) + len(new_tokens), completion_tokens=completion,
                  cached_tokens=len(context))
    yield GenerationChunk(tail, None, None, None, finish_reason=finish, usage=usage,
                          timings=timings)

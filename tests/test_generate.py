"""qwen_edge.generate: generate_step and stream_generate on the tiny model, against
references computed from scratch (argmax of a fresh forward, the tokenizer's decode)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import qwen_edge
from qwen_edge.config import GenerationConfig, SamplingConfig
from qwen_edge.generate import generate_step, stream_generate
from qwen_edge.sampling import make_sampler

GREEDY = SamplingConfig(temperature=0)


@pytest.fixture(scope="module")
def tiny(package: Callable[..., Path]) -> qwen_edge.Model:
    return qwen_edge.load(package("tiny-qwen2", "fp32"), threads=1)


def _prompt(tiny: qwen_edge.Model) -> np.ndarray:
    return tiny.tokenizer.encode("The quick brown fox jumps over")


def _steps(tiny: qwen_edge.Model, n: int, **kwargs: int) -> list[int]:
    cache = tiny.engine.new_cache(256)
    steps = generate_step(tiny.engine, cache, _prompt(tiny), sample=make_sampler(GREEDY),
                          **kwargs)
    tokens = [next(steps)[0] for _ in range(n)]
    steps.close()
    return tokens


def test_generate_step_is_greedy_decoding_from_scratch(tiny: qwen_edge.Model) -> None:
    """Each token is the argmax of a fresh forward over the whole sequence (no cache reuse)."""
    tokens = _steps(tiny, 6)
    sequence = list(_prompt(tiny))
    for token in tokens:
        fresh = tiny.engine.new_cache(256)
        logits = tiny.engine.forward(np.asarray(sequence), fresh)[-1]
        assert token == int(np.argmax(logits))
        sequence.append(token)


def test_speculative_drafts_change_nothing(tiny: qwen_edge.Model) -> None:
    assert _steps(tiny, 24, speculative_tokens=4) == _steps(tiny, 24)


def _stream(tiny: qwen_edge.Model, cfg: GenerationConfig) -> list[qwen_edge.GenerationChunk]:
    cache = tiny.engine.new_cache(256)
    return list(stream_generate(tiny.engine, tiny.tokenizer, cache, _prompt(tiny), cfg,
                                sample=make_sampler(cfg.sampling), stop_token_ids=()))


def test_stream_text_is_the_decoded_tokens_and_the_last_chunk_has_usage(
        tiny: qwen_edge.Model) -> None:
    chunks = _stream(tiny, GenerationConfig(max_tokens=12, sampling=GREEDY))
    tokens = [c.token for c in chunks if c.token is not None]
    assert tokens == _steps(tiny, 12)
    assert "".join(c.text for c in chunks) == tiny.tokenizer.decode(tokens)
    *body, last = chunks
    assert all(c.finish_reason is None and c.usage is None for c in body)
    assert last.finish_reason == "length"
    assert last.token is None
    assert last.usage is not None
    assert last.timings is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (len(_prompt(tiny)), 12)
    assert last.usage.cached_tokens == 0
    assert last.timings.decode_tokens_per_s > 0
    assert last.timings.prefill_tokens_per_s > 0


def test_a_stop_string_cuts_the_text_where_it_starts(tiny: qwen_edge.Model) -> None:
    full = "".join(c.text for c in _stream(tiny, GenerationConfig(max_tokens=16,
                                                                  sampling=GREEDY)))
    stop = full[5:8]  # a string the greedy text contains (possibly across tokens)
    cut = _stream(tiny, GenerationConfig(max_tokens=16, stop=(stop,), sampling=GREEDY))
    assert "".join(c.text for c in cut) == full[: full.find(stop)]
    assert cut[-1].finish_reason == "stop"


def test_a_stop_token_ends_the_stream(tiny: qwen_edge.Model) -> None:
    tokens = _steps(tiny, 8)
    cfg = GenerationConfig(max_tokens=16, sampling=GREEDY)
    cache = tiny.engine.new_cache(256)
    chunks = list(stream_generate(tiny.engine, tiny.tokenizer, cache, _prompt(tiny), cfg,
                                  sample=make_sampler(GREEDY), stop_token_ids=[tokens[3]]))
    assert [c.token for c in chunks if c.token is not None] == tokens[: tokens.index(tokens[3]) + 1]
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == tokens.index(tokens[3]) + 1

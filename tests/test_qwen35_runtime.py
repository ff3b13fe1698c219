"""Qwen3.5 at runtime: the hybrid cache (KV + recurrent states), state snapshots for prefix
reuse, session save / restore, and greedy generation against transformers."""

from __future__ import annotations

import json

import numpy as np
import pytest

import qwen_edge
from qwen_edge.cache import HybridCache
from qwen_edge.errors import ConfigError

GREEDY = {"temperature": 0, "repetition_penalty": 1.0, "stop_token_ids": ()}
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


@pytest.fixture(scope="module")
def hybrid(package):  # type: ignore[no-untyped-def]
    return qwen_edge.load(package("tiny-qwen3.5-text", "fp32"), threads=1)  # untied: varied tokens


def _turns() -> list[list[dict[str, str]]]:
    """Three agent-style requests: each repeats the conversation so far and adds to it."""
    first = [{"role": "system", "content": "You are a weather assistant."},
             {"role": "user", "content": "What is the weather in Paris?"}]
    second = [*first, {"role": "assistant", "content": CALL},
              {"role": "tool", "content": '{"temperature_c": 21, "sky": "clear"}'}]
    third = [*second, {"role": "assistant", "content": "It is 21 C and clear in Paris."},
             {"role": "user", "content": "And tomorrow?"}]
    return [first, second, third]


def _tokens(model, messages):  # type: ignore[no-untyped-def]
    return model.encode_chat(messages, tools=TOOLS)


@pytest.mark.parity
@pytest.mark.parametrize("shape", ["tiny-qwen3.5", "tiny-qwen3.5-text", "tiny-qwen3.5-odd"])
def test_greedy_generate_matches_transformers(shape, checkpoint, package):  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = qwen_edge.load(package(shape, "fp32"), threads=1)
    ids = model.encode_prompt([{"role": "user", "content": "What is the weather in Paris?"}])
    config = json.loads((checkpoint(shape) / "config.json").read_text())
    hf = getattr(transformers, config["architectures"][0]).from_pretrained(
        checkpoint(shape), dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        out = hf.generate(torch.tensor([ids.tolist()]), do_sample=False, max_new_tokens=32,
                          min_new_tokens=32, repetition_penalty=1.0, temperature=None,
                          top_p=None, top_k=None, pad_token_id=0)
    got = model.generate(ids, max_tokens=32, **GREEDY)
    assert got.token_ids == out[0, len(ids):].tolist()


def test_prefix_reuse_across_agent_turns_equals_cold_runs(hybrid):  # type: ignore[no-untyped-def]
    session = hybrid.session()
    previous_prompt = 0
    for i, messages in enumerate(_turns()):
        ids = _tokens(hybrid, messages)
        warm = session.generate(ids, max_tokens=8, **GREEDY)
        cold = hybrid.generate(ids, max_tokens=8, **GREEDY)
        assert warm.token_ids == cold.token_ids, i
        # The history re-rendered by the template differs from the generated reply, so the
        # KV prefix alone cannot be reused: a snapshot at the end of the previous prompt is.
        assert warm.usage.cached_tokens >= previous_prompt, i
        assert warm.usage.cached_tokens < len(ids)
        previous_prompt = len(ids)
    assert session.cache.snapshot_nbytes <= session.cache.snapshot_budget_bytes


def test_first_turn_snapshots_the_system_prefix(hybrid):  # type: ignore[no-untyped-def]
    session = hybrid.session()
    first = _tokens(hybrid, _turns()[0])
    session.generate(first, max_tokens=4, **GREEDY)
    im_start = hybrid.tokenizer.token_to_id("<|im_start|>")
    starts = [int(i) for i in np.flatnonzero(first == im_start) if i > 0]
    offsets = session.cache.snapshot_offsets
    assert starts[0] in offsets  # end of system + tools
    assert len(first) in offsets  # end of the prompt
    assert offsets[-1] == len(first) + 3  # end of the turn (the 4th token was never fed)
    # A new conversation on the same system prompt restores the system-prefix snapshot.
    other = _tokens(hybrid, [_turns()[0][0], {"role": "user", "content": "Hi there"}])
    result = session.generate(other, max_tokens=4, **GREEDY)
    assert result.usage.cached_tokens == starts[0]
    assert result.token_ids == hybrid.generate(other, max_tokens=4, **GREEDY).token_ids


def test_snapshot_budget_is_honoured(hybrid):  # type: ignore[no-untyped-def]
    probe = hybrid.session()
    assert isinstance(probe.cache, HybridCache)
    per_snapshot = probe.cache.state_nbytes
    session = hybrid.session(snapshot_budget_bytes=2 * per_snapshot + per_snapshot // 2)
    none = hybrid.session(snapshot_budget_bytes=0)
    for messages in _turns():
        ids = _tokens(hybrid, messages)
        kept = session.generate(ids, max_tokens=6, **GREEDY)
        assert session.cache.snapshot_nbytes <= 2 * per_snapshot
        assert len(session.cache.snapshot_offsets) <= 2
        without = none.generate(ids, max_tokens=6, **GREEDY)
        assert none.cache.snapshot_nbytes == 0
        assert without.token_ids == kept.token_ids  # correct, only slower
    # the shortest (system prefix) is kept over the middle ones
    first = _tokens(hybrid, _turns()[0])
    im_start = hybrid.tokenizer.token_to_id("<|im_start|>")
    assert session.cache.snapshot_offsets[0] == int(np.flatnonzero(first == im_start)[1])


def test_saved_session_continues_identically(hybrid, tmp_path):  # type: ignore[no-untyped-def]
    first, second, _ = _turns()
    session = hybrid.session()
    session.generate(_tokens(hybrid, first), max_tokens=6, **GREEDY)
    session.save(tmp_path / "s.npz")
    restored = hybrid.load_session(tmp_path / "s.npz")
    assert restored.tokens == session.tokens
    ids = _tokens(hybrid, second)
    a = session.generate(ids, max_tokens=8, **GREEDY)
    b = restored.generate(ids, max_tokens=8, **GREEDY)
    assert a.token_ids == b.token_ids == hybrid.generate(ids, max_tokens=8, **GREEDY).token_ids
    # and continuing the saved history exactly (no re-prefill): the states were saved
    cont = hybrid.load_session(tmp_path / "s.npz")
    saved = list(cont.tokens)
    extended = np.asarray([*saved, *_tokens(hybrid, [{"role": "user", "content": "x"}])])
    result = cont.generate(extended, max_tokens=4, **GREEDY)
    assert result.usage.cached_tokens == len(saved)
    assert result.token_ids == hybrid.generate(extended, max_tokens=4, **GREEDY).token_ids


def test_speculative_decoding_is_refused(hybrid):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="not supported for hybrid"):
        hybrid.generate("Hello", max_tokens=4, speculative_tokens=4, **GREEDY)


def test_hybrid_cache_rewind_restores_states_exactly() -> None:
    cache = HybridCache(layers=1, kv_heads=1, head_dim=4, max_context=32,
                        states=[(1, 3, 2), (1, 2, 2, 2)], snapshot_budget_bytes=10_000)
    rng = np.random.default_rng(0)
    saved = {}
    for n in (5, 9, 14):
        cache.offset = n
        for a in cache.state_arrays:
            a[...] = rng.standard_normal(a.shape)
        saved[n] = [a.copy() for a in cache.state_arrays]
        cache.snapshot()
    assert cache.snapshot_offsets == [5, 9, 14]
    assert cache.rewind(12) == 9
    for got, want in zip(cache.state_arrays, saved[9], strict=True):
        np.testing.assert_array_equal(got, want)
    assert cache.snapshot_offsets == [5, 9]  # 14 is past the rewind: its tokens are gone
    assert cache.rewind(4) == 0  # before every snapshot: a fresh start, zero states
    assert all(not a.any() for a in cache.state_arrays)
    with pytest.raises(ConfigError, match="rewind"):
        cache.trim(0) if cache.offset else cache.trim(1)


def test_hybrid_cache_eviction_keeps_shortest_and_newest() -> None:
    cache = HybridCache(layers=1, kv_heads=1, head_dim=4, max_context=64,
                        states=[(1, 4)], snapshot_budget_bytes=3 * 16)  # three snapshots
    for n in (3, 10, 20, 30, 40):
        cache.offset = n
        cache.snapshot()
        assert cache.snapshot_nbytes <= cache.snapshot_budget_bytes
    assert cache.snapshot_offsets == [3, 30, 40]

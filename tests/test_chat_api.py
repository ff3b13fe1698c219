"""qwen_edge.chat_api: the one chat path (tools, tool_choice, truncation, usage) on a real
tiny model, plus fixed model outputs for the cases a random model cannot be steered into."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import qwen_edge
from qwen_edge.agents.tools import tool
from qwen_edge.chat_api import plan_chat, run_chat
from qwen_edge.errors import ConfigError
from qwen_edge.generate import GenerationChunk
from qwen_edge.model import Session
from qwen_edge.types import collect

MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Oslo?"}]


@tool
def record(city: str) -> str:
    """Records a city.

    Args:
        city: the city.
    """
    return city


@pytest.fixture(scope="module")
def model(package: Callable[..., Path]) -> qwen_edge.Model:
    return qwen_edge.load(package("tiny-qwen2", "int4"), threads=1)


def _written(monkeypatch: pytest.MonkeyPatch, text: str, finish: str = "stop") -> None:
    """Make every local generation write ``text``, then end with ``finish``."""

    def stream_chunks(self: Session, prompt: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ARG001
        for i in range(0, len(text), 7):
            yield GenerationChunk(text[i:i + 7], 1, -0.1, 0.1)
        yield GenerationChunk("", None, None, None, finish_reason=finish)

    monkeypatch.setattr(Session, "stream_chunks", stream_chunks)


CALL = '<tool_call>\n{"name": "record", "arguments": {"city": "Oslo"}}\n</tool_call>'


def test_chat_without_tools_is_generate(model: qwen_edge.Model) -> None:
    reference = model.generate(MESSAGES, max_tokens=12, temperature=0)
    out = model.chat(MESSAGES, max_tokens=12, temperature=0)
    assert (out.content, out.finish_reason, out.token_ids) == (
        reference.text, reference.finish_reason, reference.token_ids)
    assert out.usage == reference.usage
    assert out.usage is not None
    assert out.usage.completion_tokens == len(out.logprobs)
    assert out.timings is not None
    assert out.timings.decode_tokens_per_s > 0
    assert out.timings.prefill_tokens_per_s > 0
    assert out.timings.ttft_s > 0
    assert out.to_openai()["usage"]["total_tokens"] == out.usage.total_tokens


def test_the_final_delta_carries_usage_and_timings(model: qwen_edge.Model) -> None:
    deltas = list(model.stream_chat(MESSAGES, max_tokens=6, temperature=0))
    assert all(d.finish_reason is None and d.usage is None for d in deltas[:-1])
    last = deltas[-1]
    assert last.finish_reason == "length"
    assert last.usage is not None
    assert last.usage.completion_tokens == 6 == sum(len(d.token_ids) for d in deltas)
    assert last.timings is not None


@pytest.mark.parametrize("max_tokens", [3, 8, 15])
def test_cut_inside_a_call_is_length_without_markup(model: qwen_edge.Model,
                                                     max_tokens: int) -> None:
    """A forced call cut by max_tokens: finish_reason "length", no raw markup in content."""
    for tool_choice in ("required", {"type": "function", "function": {"name": "record"}}):
        out = model.chat(MESSAGES, tools=[record], tool_choice=tool_choice,
                         max_tokens=max_tokens, temperature=1.0, seed=0)
        assert out.finish_reason == "length"
        assert "<tool_call>" not in out.content
        assert out.tool_calls == []
        deltas = list(model.stream_chat(MESSAGES, tools=[record], tool_choice=tool_choice,
                                        max_tokens=max_tokens, temperature=1.0, seed=0))
        assert "".join(d.content for d in deltas) == out.content
        assert deltas[-1].finish_reason == "length"


def test_complete_but_unterminated_final_call_is_parsed(model: qwen_edge.Model,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    unterminated = CALL.removesuffix("</tool_call>")
    _written(monkeypatch, "On it.\n" + unterminated, finish="stop")
    out = model.chat(MESSAGES, tools=[record])
    assert [(c.name, c.arguments) for c in out.tool_calls] == [("record", {"city": "Oslo"})]
    assert (out.content, out.finish_reason) == ("On it.", "tool_calls")
    _written(monkeypatch, "On it.\n" + unterminated, finish="length")
    out = model.chat(MESSAGES, tools=[record])
    assert len(out.tool_calls) == 1
    assert out.finish_reason == "length"
    _written(monkeypatch, "On it.\n" + unterminated[:30], finish="length")  # cut mid-JSON
    out = model.chat(MESSAGES, tools=[record])
    assert (out.content, out.tool_calls, out.finish_reason) == ("On it.", [], "length")


def test_none_parses_nothing_and_masks_the_call_token(model: qwen_edge.Model,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_chat(model, MESSAGES, tools=[record], tool_choice="none",
                     config=model.config(max_tokens=4))
    token = model.tokenizer.token_to_id("<tool_call>")
    assert plan.config.sampling.logit_bias == {token: -100.0}
    assert plan.config.tool_grammar is None
    assert not plan.parse_tools
    _written(monkeypatch, CALL)
    out = model.chat(MESSAGES, tools=[record], tool_choice="none")
    assert (out.content, out.tool_calls, out.finish_reason) == (CALL, [], "stop")
    out = model.chat(MESSAGES, tools=[record], tool_choice="auto")
    assert (out.content, [c.name for c in out.tool_calls]) == ("", ["record"])


def test_a_named_function_gives_exactly_one_call(model: qwen_edge.Model,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _written(monkeypatch, CALL + "\n" + CALL)
    named = {"type": "function", "function": {"name": "record"}}
    assert len(model.chat(MESSAGES, tools=[record], tool_choice=named).tool_calls) == 1
    assert len(model.chat(MESSAGES, tools=[record], tool_choice="required").tool_calls) == 2
    plan = plan_chat(model, MESSAGES, tools=[record], parallel_tool_calls=False)
    assert len(collect(run_chat(model.session(), plan)).tool_calls) == 1


def test_plan_errors(model: qwen_edge.Model) -> None:
    with pytest.raises(ConfigError, match="needs tools"):
        plan_chat(model, MESSAGES, tool_choice="required")
    with pytest.raises(ConfigError, match="not one of the tools"):
        plan_chat(model, MESSAGES, tools=[record],
                  tool_choice={"type": "function", "function": {"name": "nope"}})
    with pytest.raises(ConfigError, match="two tools are named"):
        plan_chat(model, MESSAGES, tools=[record, record])
    with pytest.raises(ConfigError, match="cannot be combined with tools"):
        plan_chat(model, MESSAGES, tools=[record], config=model.config(regex="a+"))
    with pytest.raises(ConfigError, match="chat messages"):
        plan_chat(model, "hello", tools=[record])
    plan_chat(model, MESSAGES, tools=[record], tool_choice="none",
              config=model.config(regex="a+"))  # nothing to call: the user's constraint holds

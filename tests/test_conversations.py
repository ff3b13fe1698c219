"""Qwen3 and Qwen3.5 conversations through every surface: the model's tool format, thinking on
and off, reasoning split from the answer, in ``generate``, streams, the agent, the CLI and the
OpenAI server (read with the official ``openai`` client).

Two tiny random-weight packages: ``qwen3`` (Qwen3's template, Hermes calls, the model opens
``<think>`` itself) and ``qwen35`` (the same weights exported with Qwen3.5's template: the
exporter detects the XML format, and the prompt ends inside ``<think>``). Random weights write
garbage, so the tests assert structure: what the grammar guarantees, and that the reasoning is
exactly the text between the markers and the content what follows.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers import ServeApp

import qwen_edge
from qwen_edge.chat import builtin_template
from qwen_edge.chat_api import plan_chat
from qwen_edge.errors import ConfigError
from qwen_edge.reasoning import split_reasoning

WEATHER = {"type": "object",
           "properties": {"city": {"type": "string", "enum": ["Paris", "Tokyo", "Lima"]},
                          "days": {"type": "integer", "minimum": 1, "maximum": 7}},
           "required": ["city", "days"], "additionalProperties": False}
TIMER = {"type": "object",
         "properties": {"minutes": {"type": "integer", "minimum": 1, "maximum": 60},
                        "loud": {"type": "boolean"}},
         "required": ["minutes", "loud"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                           "parameters": WEATHER}},
         {"type": "function", "function": {"name": "set_timer", "description": "A timer",
                                           "parameters": TIMER}}]
SCHEMAS = {"get_weather": WEATHER, "set_timer": TIMER}
USER = [{"role": "user", "content": "Weather in Paris for 2 days?"}]
NAMED = {"type": "function", "function": {"name": "set_timer"}}


@pytest.fixture(scope="module")
def qwen35_package(tmp_path_factory: pytest.TempPathFactory,
                   checkpoint: Callable[[str], Path]) -> Path:
    """tiny-qwen3's weights with Qwen3.5's chat template, exported as a user would."""
    from qwen_edge.export import ExportConfig, export_model

    src = tmp_path_factory.mktemp("ckpt35") / "tiny-qwen3.5-template"
    shutil.copytree(checkpoint("tiny-qwen3"), src)
    (src / "chat_template.jinja").write_text(builtin_template("Qwen3_5ForCausalLM"))
    out = tmp_path_factory.mktemp("pkg35") / "pkg"
    export_model(src, out, ExportConfig(quant="int4", max_context=2048))
    return out


@pytest.fixture(scope="module")
def qwen3(package: Callable[..., Path]) -> qwen_edge.Model:
    return qwen_edge.load(package("tiny-qwen3", "int4"), threads=1)


@pytest.fixture(scope="module")
def qwen35(qwen35_package: Path) -> qwen_edge.Model:
    return qwen_edge.load(qwen35_package, threads=1)


def _ids(model: qwen_edge.Model, *tokens: str) -> list[int]:
    return [model.tokenizer.token_to_id(t) for t in tokens]


def _check(calls: Any, names: set[str]) -> None:
    assert calls
    for call in calls:
        assert call.name in names
        jsonschema.validate(call.arguments, SCHEMAS[call.name])


# -- the tool format comes from the model ------------------------------------------------------


def test_the_exporter_detects_the_xml_format_from_the_template(qwen35: qwen_edge.Model,
                                                               qwen3: qwen_edge.Model) -> None:
    assert qwen35.tool_format.name == "qwen3_xml"
    assert qwen3.tool_format.name == "hermes"


@pytest.mark.parametrize("choice", ["required", NAMED, "auto"], ids=["required", "named", "auto"])
def test_chat_calls_in_the_models_format_parse_and_validate(qwen35: qwen_edge.Model,
                                                            choice: Any) -> None:
    """Random weights under the XML grammar: every call is valid, in chat and in its stream,
    and the streamed fragments rebuild each call (name first, then the arguments JSON)."""
    call_token = _ids(qwen35, "<tool_call>")[0]
    names = {"set_timer"} if isinstance(choice, dict) else set(SCHEMAS)
    for seed in range(3):
        # enable_thinking=False: the answer starts at once (a thought would use the tokens)
        options: dict[str, Any] = {"seed": seed, "temperature": 1.0, "max_tokens": 300,
                                   "enable_thinking": False}
        if choice == "auto":  # make the noise "decide" to call; the grammar starts there
            options["logit_bias"] = {call_token: 100.0}
        out = qwen35.chat(USER, tools=TOOLS, tool_choice=choice, **options)
        assert out.finish_reason == "tool_calls", out.content
        assert "<function=" not in out.content
        _check(out.tool_calls, names)
        if isinstance(choice, dict):
            assert len(out.tool_calls) == 1
        deltas = list(qwen35.stream_chat(USER, tools=TOOLS, tool_choice=choice, **options))
        streamed = [c for d in deltas for c in d.tool_calls]
        assert [(c.name, c.arguments) for c in streamed] == \
            [(c.name, c.arguments) for c in out.tool_calls]
        fragments = [f for d in deltas for f in d.tool_call_deltas]
        for i, call in enumerate(streamed):
            mine = [f for f in fragments if f.index == i]
            assert mine[0].name == call.name
            assert mine[0].id == f"call_{i}"
            assert all(f.name is None for f in mine[1:])
            assert json.loads("".join(f.arguments for f in mine)) == call.arguments
        first_fragment = next(i for i, d in enumerate(deltas) if d.tool_call_deltas)
        first_call = next(i for i, d in enumerate(deltas) if d.tool_calls)
        assert first_fragment < first_call  # the name goes out before the call ends


def test_tool_choice_none_masks_the_formats_call_token(qwen35: qwen_edge.Model) -> None:
    call_token = _ids(qwen35, qwen35.tool_format.call_start)[0]
    plan = plan_chat(qwen35, USER, tools=TOOLS, tool_choice="none",
                     config=qwen35.config(logit_bias={call_token: 100.0}))
    assert plan.config.sampling.logit_bias[call_token] == -100.0
    assert not plan.parse_tools
    assert plan.config.tool_grammar is None
    out = qwen35.chat(USER, tools=TOOLS, tool_choice="none", max_tokens=8, seed=0,
                      logit_bias={call_token: 100.0}, enable_thinking=False)
    assert call_token not in out.token_ids
    assert out.tool_calls == []


def test_a_call_cut_by_max_tokens_leaves_no_markup(qwen35: qwen_edge.Model) -> None:
    for max_tokens in (2, 6, 11):
        out = qwen35.chat(USER, tools=TOOLS, tool_choice="required", max_tokens=max_tokens,
                          seed=0, enable_thinking=False)
        assert out.finish_reason == "length"
        assert out.tool_calls == []
        assert out.tool_call_errors == []
        assert "<tool_call>" not in out.content
        assert "<function=" not in out.content


# -- thinking ----------------------------------------------------------------------------------


def test_enable_thinking_reaches_the_template_on_every_entry_point(
        qwen35: qwen_edge.Model) -> None:
    on = plan_chat(qwen35, USER, config=qwen35.config())
    off = plan_chat(qwen35, USER, config=qwen35.config(enable_thinking=False))
    kwargs = plan_chat(qwen35, USER, config=qwen35.config(
        chat_template_kwargs={"enable_thinking": False}))
    assert qwen35.tokenizer.decode(on.prompt.tolist()).endswith("assistant\n<think>\n")
    assert qwen35.tokenizer.decode(off.prompt.tolist()).endswith("<think>\n\n</think>\n\n")
    assert kwargs.prompt.tolist() == off.prompt.tolist()
    assert on.thinking_started
    assert not off.thinking_started
    session = qwen35.session()
    session.generate(USER, max_tokens=1, enable_thinking=False)
    assert session.tokens[:len(off.prompt)] == off.prompt.tolist()
    with pytest.raises(ConfigError, match="chat_template_kwargs"):
        qwen35.config(chat_template_kwargs={"messages": 1})
    with pytest.raises(ConfigError, match="JSON scalar"):
        qwen35.config(chat_template_kwargs={"x": [1]})


def _never_stop(model: qwen_edge.Model) -> dict[int, float]:
    return dict.fromkeys(_ids(model, "</think>", "<|im_end|>", "<|endoftext|>", "<tool_call>"), -100.0)


@pytest.mark.parametrize("budget", [0, 3, 9])
def test_reasoning_is_split_in_generate_and_stream(qwen35: qwen_edge.Model, budget: int) -> None:
    """The prompt ends inside the thought (Qwen3.5): the budget forces ``</think>``; the
    reasoning is the text before it, the content the text after, in chat and in the stream."""
    end = _ids(qwen35, "</think>")[0]
    options = {"thinking_budget": budget, "max_tokens": budget + 6, "seed": 1,
               "temperature": 1.0, "logit_bias": _never_stop(qwen35)}
    out = qwen35.chat(USER, **options)
    assert out.token_ids[budget] == end
    before = qwen35.tokenizer.decode(out.token_ids[:budget])
    after = qwen35.tokenizer.decode(out.token_ids[budget + 1:])
    assert out.reasoning == before.strip("\n")
    assert out.content == after.lstrip("\n")
    assert "</think>" not in out.content
    deltas = list(qwen35.stream_chat(USER, **options))
    assert "".join(d.reasoning for d in deltas) == out.reasoning
    assert "".join(d.content for d in deltas) == out.content
    assert out.to_openai()["message"]["reasoning_content"] == out.reasoning
    off = qwen35.chat(USER, max_tokens=6, seed=1, enable_thinking=False,
                      logit_bias=_never_stop(qwen35))
    assert off.reasoning is None
    assert "reasoning_content" not in off.to_openai()["message"]


def test_qwen3_model_opens_its_own_thought(qwen3: qwen_edge.Model) -> None:
    think, end = _ids(qwen3, "<think>", "</think>")
    bias = {**_never_stop(qwen3), think: 100.0}
    out = qwen3.chat(USER, thinking_budget=4, max_tokens=10, seed=0, temperature=1.0,
                     logit_bias=bias)
    assert out.token_ids[0] == think
    assert out.token_ids[5] == end
    reasoning, content = split_reasoning(qwen3.tokenizer.decode(out.token_ids))
    assert (out.reasoning, out.content) == (reasoning, content)
    assert out.reasoning is not None
    plain = qwen3.generate("Hi", max_tokens=4, seed=0)  # raw text is a completion: no split
    assert plain.reasoning is None


def test_tool_calls_are_parsed_from_the_answer_only(qwen35: qwen_edge.Model) -> None:
    """A thought, then a forced call: the reasoning holds no markup, the call validates."""
    end = _ids(qwen35, "</think>")[0]
    for seed in range(2):
        out = qwen35.chat(USER, tools=TOOLS, tool_choice="auto", thinking_budget=4, seed=seed,
                          temperature=1.0, max_tokens=300,
                          logit_bias={_ids(qwen35, "<tool_call>")[0]: 50.0})
        assert end in out.token_ids or out.tool_calls  # a call may end the thought itself
        assert out.reasoning is not None
        assert "<tool_call>" not in out.reasoning
        assert out.finish_reason == "tool_calls", out.content
        _check(out.tool_calls, set(SCHEMAS))


def test_agent_passes_enable_thinking_and_keeps_the_thought(qwen35: qwen_edge.Model) -> None:
    from qwen_edge.agents.agent import Agent

    seen: list[str] = []

    def set_timer(minutes: int, loud: bool) -> str:
        """Set a timer.

        Args:
            minutes: how long.
            loud: ring loudly.
        """
        seen.append(f"{minutes} {loud}")
        return "ok"

    agent = Agent(qwen35, [set_timer], max_steps=2, tool_choice="required",
                  thinking_budget=2, seed=0, temperature=1.0, max_tokens=200)
    result = agent.run("Timer for 5 minutes")
    assert seen
    assert result.steps[0].tool_calls[0].name == "set_timer"
    assistant = agent.messages[1]
    assert assistant["role"] == "assistant"
    assert "reasoning_content" in assistant
    quiet = Agent(qwen35, [set_timer], max_steps=1, tool_choice="required",
                  enable_thinking=False, seed=0, max_tokens=200)
    quiet.run("Timer for 5 minutes")
    assert "reasoning_content" not in quiet.messages[1]


def test_cli_no_thinking(qwen35_package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qwen_edge.cli import main

    argv = ["run", str(qwen35_package), "Hi", "--chat", "--max-tokens", "5", "--threads", "1",
            "--seed", "0", "--thinking-budget", "2"]
    assert main(argv) == 0
    thinking = capsys.readouterr()
    assert thinking.err.strip()  # the thought goes to stderr, the answer to stdout
    assert "</think>" not in thinking.out
    assert main([*argv, "--no-thinking"]) == 0
    assert capsys.readouterr().err == ""


# -- the OpenAI server, read with the official client -----------------------------------------


@pytest.fixture(scope="module")
def server(qwen35: qwen_edge.Model, live_server: ServeApp) -> Iterator[str]:
    from qwen_edge.server import create_app

    with live_server(create_app(qwen35, max_queue=4, model_name="tiny")) as base:
        yield base


@pytest.fixture
def client(server: str) -> Any:
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"{server}/v1", api_key="none", max_retries=0, timeout=60)


def _reasoning(message: Any) -> Any:
    extra = message.model_extra or {}
    return extra.get("reasoning_content", getattr(message, "reasoning_content", None))


@pytest.mark.network
@pytest.mark.parametrize("choice", ["required", NAMED], ids=["required", "named"])
def test_server_xml_tool_calls_and_their_stream(client: Any, choice: Any) -> None:
    names = {"set_timer"} if isinstance(choice, dict) else set(SCHEMAS)
    extra = {"chat_template_kwargs": {"enable_thinking": False}}
    for seed in (0, 1):
        options = {"model": "tiny", "messages": USER, "tools": TOOLS, "tool_choice": choice,
                   "max_tokens": 300, "seed": seed, "extra_body": extra}
        message = client.chat.completions.create(**options).choices[0].message
        calls = [(c.function.name, json.loads(c.function.arguments))
                 for c in message.tool_calls]
        assert calls
        assert {n for n, _ in calls} <= names
        for name, arguments in calls:
            jsonschema.validate(arguments, SCHEMAS[name])
        parts: dict[int, dict[str, str]] = {}
        finish = []
        named_before_end = False
        for chunk in client.chat.completions.create(stream=True, **options):
            for part in chunk.choices[0].delta.tool_calls or []:
                entry = parts.setdefault(part.index, {"name": "", "arguments": ""})
                entry["name"] += part.function.name or ""
                entry["arguments"] += part.function.arguments or ""
                if part.function.name and not named_before_end:
                    named_before_end = True
                    assert part.id.startswith("call_")
            finish.append(chunk.choices[0].finish_reason)
        assert finish[-1] == "tool_calls"
        assert [(e["name"], json.loads(e["arguments"])) for _, e in sorted(parts.items())] \
            == calls


@pytest.mark.network
def test_server_reasoning_content_on_the_message_and_the_stream(client: Any,
                                                                qwen35: qwen_edge.Model) -> None:
    bias = {str(t): -100 for t in _never_stop(qwen35)}
    options = {"model": "tiny", "messages": USER, "max_tokens": 9, "seed": 3,
               "logit_bias": bias, "extra_body": {"thinking_budget": 4}}
    local = qwen35.chat(USER, max_tokens=9, seed=3, logit_bias=_never_stop(qwen35),
                        thinking_budget=4)
    assert local.reasoning
    assert local.content
    message = client.chat.completions.create(**options).choices[0].message
    assert _reasoning(message) == local.reasoning
    assert message.content == local.content
    streamed = list(client.chat.completions.create(stream=True, **options))
    deltas = [c.choices[0].delta for c in streamed if c.choices]
    assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas) \
        == local.reasoning
    assert "".join(d.content or "" for d in deltas) == local.content
    off = client.chat.completions.create(
        **{**options, "extra_body": {"chat_template_kwargs": {"enable_thinking": False}}})
    assert _reasoning(off.choices[0].message) is None


@pytest.mark.network
def test_server_validates_chat_template_kwargs(client: Any) -> None:
    openai = pytest.importorskip("openai")
    for bad in ({"enable_thinking": [1]}, {"messages": "x"}, "on"):
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="tiny", messages=USER, max_tokens=2,
                                           extra_body={"chat_template_kwargs": bad})
    # an unknown key goes to the template (which ignores it)
    ok = client.chat.completions.create(model="tiny", messages=USER, max_tokens=2,
                                        extra_body={"chat_template_kwargs": {"tone": "dry"}})
    assert ok.choices[0].finish_reason in ("stop", "length")


# -- the router: the same with both formats ---------------------------------------------------


@pytest.mark.network
def test_router_local_and_remote_answer_the_same_calls(server: str, qwen35: qwen_edge.Model,
                                                      qwen3: qwen_edge.Model) -> None:
    """Local answers parse the model's own format (XML or Hermes); a remote server's come as
    OpenAI tool_calls; the router gives the same ChatResponse either way."""
    from qwen_edge.routing.backend import LocalBackend, RemoteBackend
    from qwen_edge.routing.policy import RoutingPolicy
    from qwen_edge.routing.remote import Remote
    from qwen_edge.routing.router import Router

    config = qwen35.config(seed=0, max_tokens=300, enable_thinking=False)
    remote = Remote(f"{server}/v1", model="tiny")
    try:
        remote_answer = RemoteBackend(remote, defaults=qwen35.config()).chat(
            USER, tools=TOOLS, tool_choice=NAMED, config=config)
        for local_model in (qwen35, qwen3):
            router = Router(LocalBackend(local_model), remote, RoutingPolicy(cascade=False))
            local = router.chat(USER, tools=TOOLS, tool_choice=NAMED,
                                config=local_model.config(seed=0, max_tokens=300,
                                                          enable_thinking=False))
            assert local.route == "local"
            assert local.finish_reason == "tool_calls"
            _check(local.tool_calls, {"set_timer"})
            routed = router.chat(USER, tools=TOOLS, tool_choice=NAMED, config=config,
                                 hard=True)
            assert routed.route == "remote"
            assert routed.reasoning is None  # enable_thinking=False went to the server
            thought = router.chat(USER, config=qwen35.config(seed=0, max_tokens=8,
                                                             thinking_budget=2), hard=True)
            assert thought.reasoning is not None  # the server's reasoning_content came back
            assert [(c.name, c.arguments) for c in routed.tool_calls] == \
                [(c.name, c.arguments) for c in remote_answer.tool_calls]
        same = LocalBackend(qwen35).chat(USER, tools=TOOLS, tool_choice=NAMED, config=config)
        assert [(c.name, c.arguments) for c in same.tool_calls] == \
            [(c.name, c.arguments) for c in remote_answer.tool_calls]
    finally:
        remote.close()


# -- prefix reuse past a re-tokenized answer ---------------------------------------------------


def test_match_text_prefix_keeps_special_tokens_apart(qwen3: qwen_edge.Model) -> None:
    from qwen_edge.cache import match_text_prefix

    tok = qwen3.tokenizer
    special = tok.added_ids
    canonical = tok.encode("Hello world, again").tolist()
    pieces = [int(t) for part in ("Hel", "lo", " wor", "ld, again") for t in tok.encode(part)]
    assert pieces != canonical
    end = tok.token_to_id("<|im_end|>")
    # the same text: everything matches, up to and including the special token after it
    assert match_text_prefix([*pieces, end, 5], [*canonical, end, 6], tok.decode, special) \
        == (len(pieces) + 1, len(canonical) + 1)
    # the texts part after "Hello": the match stops at the last common boundary
    other = tok.encode("Hello there").tolist()
    k, j = match_text_prefix(pieces, other, tok.decode, special)
    assert tok.decode(pieces[:k]) == tok.decode(other[:j]) == "Hello"
    # a control token never stands for the same characters written as text
    think = tok.token_to_id("<think>")
    as_text = tok.encode("<think>", special=False).tolist()
    assert match_text_prefix([think], as_text, tok.decode, special) == (0, 0)


def test_session_reuses_its_own_tokens_of_the_same_text(qwen3: qwen_edge.Model) -> None:
    """The cache holds a non-canonical tokenization of the text the next prompt renders (a
    model's own answer): the session reuses it instead of prefilling it again."""
    tok = qwen3.tokenizer
    session = qwen3.session()
    head = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    pieces = [*tok.encode(head).tolist(),
              *[int(t) for part in ("Hel", "lo", " wor", "ld") for t in tok.encode(part)]]
    session.generate(pieces, max_tokens=1, temperature=0)
    follow = head + "Hello world<|im_end|>\n<|im_start|>user\nMore<|im_end|>\n"
    out = session.generate(follow, max_tokens=1, temperature=0)
    assert out.usage is not None
    assert out.usage.cached_tokens == len(pieces)
    assert session.tokens[:len(pieces)] == pieces

"""Chat with tools, written once: ``plan_chat`` (validate, render, constrain) and ``run_chat``.

    messages, tools, tool_choice, config
        --plan_chat--> ChatPlan: prompt ids + a frozen config holding the tool grammar
        --run_chat(session)--> ChatDelta ... ChatDelta(finish_reason, usage, timings)

Every surface uses these two functions: ``Model.generate`` / ``Session.chat``, the agent
(through ``LocalBackend``), the router and the HTTP server (which plans in its request thread
and runs in its generation worker). So ``tool_choice`` means one thing everywhere:

- ``"none"``: the format's call-start token is masked and nothing is parsed: whatever the
  model writes is content, and no tool runs.
- ``"auto"``: decoding is free until the model writes ``<tool_call>``, then the grammar holds
  the call to a tool's schema (lazy constraint).
- ``"required"`` or ``{"type": "function", "function": {"name": ...}}``: the grammar holds
  the message from its first token; a named function gives exactly one call.

How calls are written, parsed, streamed and constrained is the model's tool format
(``model.tool_format``: Hermes JSON or Qwen3.5's XML, ``qwen_edge.tool_formats``). Output cut
by ``max_tokens`` inside a call ends with ``finish_reason="length"`` and leaves no raw call
markup in the content (the format's ``finish(truncated=True)``); a final call that is complete
but lacks its end marker is parsed, as vLLM and Qwen-Agent do.

A thinking model's ``<think>...</think>`` is split off first (``reasoning.ReasoningSplitter``;
a prompt that ends inside a thought, Qwen3.5's, is read off its tokens): the thought goes to
``ChatDelta.reasoning``, and only the answer is parsed for tool calls.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .agents.tools import Tool, as_tool
from .chat import ToolCall
from .config import GenerationConfig, ToolGrammar
from .errors import ConfigError
from .reasoning import THINK_END, THINK_START, ReasoningSplitter, thinking_started
from .tool_formats import ToolFormat
from .tool_formats.base import (
    Event,
    StreamParser,
    TextDelta,
    ToolCallDelta,
    ToolCallError,
    ToolCallEvent,
)
from .tool_formats.grounding import grounding_texts
from .types import ChatDelta

if TYPE_CHECKING:
    from .model import Model, Prompt, Session

__all__ = ["ChatPlan", "ToolChoice", "ToolSpec", "check_tool_choice", "openai_tool", "plan_chat",
           "run_chat"]

logger = logging.getLogger(__name__)

ToolChoice = str | Mapping[str, Any]  # "auto" | "none" | "required" | {"type": "function", ...}
ToolSpec = Tool | Callable[..., Any] | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChatPlan:
    """A validated request, ready to run on a session of the model that planned it.

    Attributes:
        prompt: the rendered, tokenized conversation.
        config: the resolved options, the tool grammar or the call-start mask included.
        parse_tools: split tool calls out of the output (False for "none" and no tools).
        max_calls: keep at most this many calls (1 for a named function or
            ``parallel_tool_calls=False``; None = all).
        stop_token_ids: the tokens that end the message (not part of ``token_ids``).
        tool_format: how the model writes calls (the model's ``tool_format``).
        tools: the offered tools (the XML format types values by their schemas).
        split_reasoning: split ``<think>...</think>`` off the answer (chat messages on a
            tokenizer with thinking tokens).
        thinking_started: the prompt ends inside a thought (Qwen3.5 with thinking on).
    """

    prompt: np.ndarray
    config: GenerationConfig
    parse_tools: bool = False
    max_calls: int | None = None
    stop_token_ids: tuple[int, ...] = ()
    tool_format: ToolFormat | None = None
    tools: tuple[Tool, ...] = ()
    split_reasoning: bool = False
    thinking_started: bool = False


def check_tool_choice(choice: object, names: Sequence[str]) -> None:
    """Raise ``ConfigError`` unless ``choice`` is OpenAI's tool_choice for these tools."""
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            msg = f"tool_choice={choice!r}: must be 'auto', 'none', 'required' or a function"
            raise ConfigError(msg)
        return
    function = choice.get("function") if isinstance(choice, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(choice, Mapping) or choice.get("type", "function") != "function" \
            or not isinstance(name, str):
        msg = (f"tool_choice={choice!r}: expected 'auto', 'none', 'required' or "
               "{'type': 'function', 'function': {'name': ...}}")
        raise ConfigError(msg)
    if name not in names:
        msg = f"tool_choice names {name!r}, which is not one of the tools {list(names)}"
        raise ConfigError(msg)


def openai_tool(spec: ToolSpec, tool: Tool) -> dict[str, Any]:
    """The tool as the chat template shows it: an OpenAI dict as given (without qwen-edge's
    ``x-grounded``), or a ``Tool``'s own OpenAI form."""
    if isinstance(spec, Mapping):
        function = spec.get("function")
        if isinstance(function, Mapping):
            return {**spec, "function": {k: v for k, v in function.items()
                                         if k != "x-grounded"}}
        return dict(spec)
    return tool.to_openai()


def plan_chat(model: Model, prompt: Prompt, *, tools: Sequence[ToolSpec] | None = None,
              tool_choice: ToolChoice | None = None, config: GenerationConfig | None = None,
              parallel_tool_calls: bool = True) -> ChatPlan:
    """Validate and prepare one answer of ``model`` (all errors are raised here).

    Args:
        prompt: chat messages (text and token ids are accepted without tools).
        tools: ``@tool`` functions, plain typed functions or OpenAI tool dicts.
        tool_choice: "auto" (the default with tools), "none", "required" or a named function.
        config: resolved options (default: the package's).
        parallel_tool_calls: False keeps only the first call.

    Raises:
        ConfigError: a bad tool_choice, duplicate tool names, tools without messages, or a
            json_schema / regex / grammar with tools that may be called.
        ToolError: a malformed tool.
    """
    cfg = config if config is not None else model.config()
    stops = tuple(cfg.stop_token_ids if cfg.stop_token_ids is not None
                  else model.stop_token_ids)
    chat = isinstance(prompt, Sequence) and not isinstance(prompt, (str, bytes)) \
        and bool(prompt) and isinstance(prompt[0], Mapping)
    if not tools:
        if tool_choice not in (None, "none", "auto"):
            msg = f"tool_choice={tool_choice!r} needs tools; pass the function in `tools`"
            raise ConfigError(msg)
        if not chat:
            return ChatPlan(model.encode_prompt(prompt), cfg, stop_token_ids=stops)
        ids = model.encode_chat(prompt, template_kwargs=cfg.template_kwargs())  # type: ignore[arg-type]
        return _with_reasoning(model, ChatPlan(ids, cfg, stop_token_ids=stops))
    offered = [as_tool(t) for t in tools]
    names = [t.name for t in offered]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        msg = f"two tools are named {', '.join(map(repr, twice))}; each tool needs its own name"
        raise ConfigError(msg)
    choice: ToolChoice = "auto" if tool_choice is None else tool_choice
    check_tool_choice(choice, names)
    if not chat:
        msg = "tools need chat messages as the prompt (a list of {'role', 'content'} dicts)"
        raise ConfigError(msg)
    messages: Sequence[Mapping[str, Any]] = prompt  # type: ignore[assignment]
    fmt = model.tool_format
    ids = model.encode_chat(messages, tools=[openai_tool(s, t)
                                             for s, t in zip(tools, offered, strict=True)],
                            template_kwargs=cfg.template_kwargs())
    if choice == "none":  # the model cannot open a call; text that looks like one is content
        token = model.tokenizer.token_to_id(fmt.call_start)
        if token is not None:
            bias = {**cfg.sampling.logit_bias, token: -100.0}
            cfg = dataclasses.replace(cfg, sampling=dataclasses.replace(cfg.sampling,
                                                                        logit_bias=bias))
        return _with_reasoning(model, ChatPlan(ids, cfg, stop_token_ids=stops,
                                               tool_format=fmt))
    if cfg.json_schema is not None or cfg.regex is not None or cfg.grammar is not None:
        msg = ("json_schema / regex / grammar cannot be combined with tools unless "
               "tool_choice='none'")
        raise ConfigError(msg)
    grounding = grounding_texts(messages) if any(t.grounded for t in offered) else None
    lark = fmt.grammar(offered, choice, grounding)
    trigger = fmt.call_start if choice == "auto" else None
    cfg = dataclasses.replace(cfg, tool_grammar=ToolGrammar(grammar=lark, trigger=trigger))
    single = isinstance(choice, Mapping) or not parallel_tool_calls
    return _with_reasoning(model, ChatPlan(
        ids, cfg, parse_tools=True, max_calls=1 if single else None, stop_token_ids=stops,
        tool_format=fmt, tools=tuple(offered)))


def _with_reasoning(model: Model, plan: ChatPlan) -> ChatPlan:
    """Split the thought off a chat answer when the tokenizer has ``<think>`` / ``</think>``."""
    start = model.tokenizer.token_to_id(THINK_START)
    end = model.tokenizer.token_to_id(THINK_END)
    if start is None or end is None:
        return plan
    started = thinking_started([int(t) for t in plan.prompt], start, end)
    return dataclasses.replace(plan, split_reasoning=True, thinking_started=started)


def run_chat(session: Session, plan: ChatPlan, *,
             start_s: float | None = None) -> Iterator[ChatDelta]:
    """Generate ``plan`` on ``session``: one delta per token, then the final delta.

    ``start_s`` (``time.perf_counter()``) is when the caller's call began: the final delta's
    ``timings.ttft_s`` counts from there.
    """
    start_s = time.perf_counter() if start_s is None else start_s
    parser: StreamParser | None = None
    if plan.parse_tools and plan.tool_format is not None:
        parser = plan.tool_format.stream_parser(plan.tools)
    splitter = ReasoningSplitter(started=plan.thinking_started) if plan.split_reasoning \
        else None
    stops = set(plan.stop_token_ids)
    n_calls = 0
    for chunk in session.stream_chunks(plan.prompt, plan.config, start_s=start_s):
        final = chunk.finish_reason is not None
        finish = chunk.finish_reason or "length"
        reasoning, answer = chunk.text, ""
        if splitter is None:
            reasoning, answer = "", chunk.text
        else:
            reasoning, answer = splitter.feed(chunk.text) if chunk.text else ("", "")
            if final:
                more_reasoning, more_answer = splitter.finish()
                reasoning, answer = reasoning + more_reasoning, answer + more_answer
        events: list[Event] = []
        if parser is None:
            events = [TextDelta(answer)] if answer else []
        else:
            events = parser.feed(answer) if answer else []
            if final:
                events += parser.finish(truncated=finish == "length")
        content: list[str] = []
        calls: list[ToolCall] = []
        fragments: list[ToolCallDelta] = []
        errors: list[str] = []
        for event in events:
            if isinstance(event, TextDelta):
                content.append(event.text)
            elif isinstance(event, ToolCallDelta):
                if plan.max_calls is None or event.index < plan.max_calls:
                    fragments.append(event)
            elif isinstance(event, ToolCallEvent):
                if plan.max_calls is not None and n_calls >= plan.max_calls:
                    logger.info("dropped a tool call beyond the %d allowed", plan.max_calls)
                    continue
                calls.append(event.call)
                n_calls += 1
            elif isinstance(event, ToolCallError):
                logger.warning("malformed tool call left in the content: %s", event.message)
                errors.append(event.message)
        token = chunk.token
        delta = ChatDelta(
            content="".join(content), reasoning=reasoning, tool_calls=tuple(calls),
            tool_call_deltas=tuple(fragments), tool_call_errors=tuple(errors),
            token_ids=(token,) if token is not None and token not in stops else (),
            logprobs=(chunk.logprob or 0.0,) if token is not None else (),
            entropies=(chunk.entropy or 0.0,) if token is not None else ())
        if final:
            delta = dataclasses.replace(
                delta, finish_reason="tool_calls" if n_calls and finish == "stop" else finish,
                usage=chunk.usage, timings=chunk.timings,
                thought=splitter is not None and splitter.saw_thought)
        yield delta

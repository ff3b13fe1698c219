"""Agent: a function-calling loop over Python tools, on the device.

    chat (render messages + tool schemas) -> generate (calls valid by construction)
        -> parse tool calls -> policy -> run (with a timeout) -> tool messages -> repeat

One ``Session`` per agent keeps the conversation's KV cache, so the system prompt and the tool
schemas are prefilled once, not on every step or turn. Calls are constrained lazily: decoding
is free until the model opens ``<tool_call>``, then llguidance holds it to
``{"name": <a tool>, "arguments": <that tool's schema>}``.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .chat import ToolCall
from .errors import ConfigError, ToolError
from .model import Model
from .tool_formats import hermes
from .tools import Tool, as_tool

__all__ = [
    "Agent",
    "AgentResult",
    "AgentStep",
    "FinalEvent",
    "TextEvent",
    "ToolCallEvent",
    "ToolResult",
    "ToolResultEvent",
]

logger = logging.getLogger(__name__)

ToolChoice = str | Mapping[str, Any]  # "auto" | "none" | "required" | {"type": "function", ...}
_TOOL_CALL_TOKEN = "<tool_call>"


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What one call produced: ``output`` (JSON-able) or ``error``, and how it was decided."""

    call: ToolCall
    output: Any = None
    error: str | None = None
    decision: str = "allow"  # allow | deny | confirm-approved | confirm-denied | confirm-edited
    duration_s: float = 0.0

    @property
    def content(self) -> str:
        """The text the model sees inside ``<tool_response>``."""
        if self.error is not None:
            return json.dumps({"error": self.error}, ensure_ascii=False)
        if isinstance(self.output, str):
            return self.output
        return json.dumps(self.output, ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class AgentStep:
    """One model turn: its text, the calls it made and their results."""

    content: str
    tool_calls: list[ToolCall]
    results: list[ToolResult]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    duration_s: float
    ttft_s: float = 0.0  # time to the first generated token (prefill of the new tokens)
    remote: bool = False


@dataclass(frozen=True, slots=True)
class AgentResult:
    """The outcome of ``Agent.run``.

    Attributes:
        text: the final answer.
        steps: every model turn, in order.
        finish_reason: "stop" (answered), "max_steps", "repeated_failure" or "length".
        remote: whether any step ran on a remote server.
    """

    text: str
    steps: list[AgentStep]
    finish_reason: str
    remote: bool = False

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [c for s in self.steps for c in s.tool_calls]

    @property
    def usage(self) -> dict[str, int]:
        prompt = sum(s.prompt_tokens for s in self.steps)
        completion = sum(s.completion_tokens for s in self.steps)
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "cached_tokens": sum(s.cached_tokens for s in self.steps),
                "total_tokens": prompt + completion}


# Text deltas and completed calls are the tool-call parser's own events (the agent re-ids the
# calls); the agent adds tool results and the final result.
TextEvent = hermes.TextDelta
ToolCallEvent = hermes.ToolCallEvent


@dataclass(frozen=True, slots=True)
class ToolResultEvent:
    result: ToolResult


@dataclass(frozen=True, slots=True)
class FinalEvent:
    result: AgentResult


AgentEvent = TextEvent | ToolCallEvent | ToolResultEvent | FinalEvent


def _check_tool_choice(choice: ToolChoice, names: Sequence[str]) -> None:
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            msg = f"tool_choice={choice!r}: must be 'auto', 'none', 'required' or a function"
            raise ConfigError(msg)
        return
    name = choice.get("function", {}).get("name") if isinstance(choice, Mapping) else None
    if name not in names:
        msg = f"tool_choice names {name!r}, which is not one of the tools {list(names)}"
        raise ConfigError(msg)


@dataclass
class _Turn:
    """Bookkeeping of one ``run``: failed calls seen, steps so far."""

    steps: list[AgentStep] = field(default_factory=list)
    failures: set[str] = field(default_factory=set)


class Agent:
    """A function-calling agent over Python tools, with permissions and an audit log.

    Args:
        model: a loaded ``Model``.
        tools: ``@tool`` functions, plain typed functions, or OpenAI tool dicts with a function.
        system: the system message.
        max_steps: model turns per ``run`` before giving up ("max_steps").
        tool_timeout: seconds a tool may run; then its result is a timeout error.
        policy: a ``Policy`` deciding allow / deny / confirm per tool (default: allow all).
        audit: an ``AuditLog`` recording every call.
        tool_choice: "auto", "none", "required" or ``{"type": "function", "function":
            {"name": ...}}`` (OpenAI semantics); overridable per ``run``.
        **generation: default generation options (``temperature``, ``max_tokens``, ...).

    Example:
        >>> agent = qwen_edge.Agent(model, [get_weather, set_timer], system="You run a home.")
        >>> agent.run("Set a timer for 5 minutes").text
    """

    def __init__(
        self,
        model: Model,
        tools: Sequence[Tool | Callable[..., Any] | Mapping[str, Any]],
        *,
        system: str | None = None,
        max_steps: int = 8,
        tool_timeout: float = 30.0,
        policy: Any = None,
        audit: Any = None,
        tool_choice: ToolChoice = "auto",
        **generation: Any,
    ) -> None:
        if max_steps < 1:
            msg = f"max_steps={max_steps}: must be >= 1"
            raise ConfigError(msg)
        if tool_timeout <= 0:
            msg = f"tool_timeout={tool_timeout}: must be > 0"
            raise ConfigError(msg)
        self.model = model
        self.tools: dict[str, Tool] = {}
        for spec in tools:
            t = as_tool(spec)
            if t.name in self.tools:
                msg = f"two tools are named {t.name!r}"
                raise ConfigError(msg)
            self.tools[t.name] = t
        _check_tool_choice(tool_choice, list(self.tools))
        self.system = system
        self.max_steps = max_steps
        self.tool_timeout = tool_timeout
        self.policy = policy
        self.audit = audit
        self.tool_choice = tool_choice
        self.generation = dict(generation)
        model._config(self.generation)  # validate the defaults now, not at the first run
        self.session = model.session()
        self.run_id = uuid.uuid4().hex[:12]
        self.messages: list[dict[str, Any]] = []
        self._schemas = [t.to_openai() for t in self.tools.values()]
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                               thread_name_prefix="qwen-edge-tool")
        self._call_index = 0

    # -- public -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the conversation (the cached system + tools prefix stays reusable)."""
        self.messages = []

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def run(self, message: str, *, tool_choice: ToolChoice | None = None,
            **generation: Any) -> AgentResult:
        """Add a user message, loop until the model answers; return the whole turn."""
        for event in self.stream(message, tool_choice=tool_choice, **generation):
            if isinstance(event, FinalEvent):
                return event.result
        msg = "agent stream ended without a final event"  # unreachable by construction
        raise ToolError(msg)

    def stream(self, message: str, *, tool_choice: ToolChoice | None = None,
               **generation: Any) -> Iterator[AgentEvent]:
        """Like ``run``, yielding text deltas, tool calls, tool results and the final result."""
        choice = self.tool_choice if tool_choice is None else tool_choice
        _check_tool_choice(choice, list(self.tools))
        options = {**self.generation, **generation}
        self.messages.append({"role": "user", "content": message})
        turn = _Turn()
        for index in range(self.max_steps):
            # After the first step, "required" / a named function would loop forever: the
            # model must be free to answer once it has results (OpenAI does the same).
            step_choice = choice if index == 0 else ("auto" if choice != "none" else "none")
            step = yield from self._step(step_choice, options)
            turn.steps.append(step)
            if not step.tool_calls:
                yield FinalEvent(AgentResult(text=step.content, steps=turn.steps,
                                             finish_reason="stop"))
                return
            for result in step.results:
                if result.error is None:
                    continue
                key = f"{result.call.name}:{json.dumps(result.call.arguments, sort_keys=True)}"
                if key in turn.failures:  # the same failing call again: stop the loop
                    text = (f"Stopped: the call {result.call.name} failed twice with the same "
                            f"arguments ({result.error}).")
                    yield FinalEvent(AgentResult(text=text, steps=turn.steps,
                                                 finish_reason="repeated_failure"))
                    return
                turn.failures.add(key)
        text = f"Stopped after {self.max_steps} steps without a final answer."
        yield FinalEvent(AgentResult(text=text, steps=turn.steps, finish_reason="max_steps"))

    # -- one step ---------------------------------------------------------------------------

    def _messages(self) -> list[dict[str, Any]]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + self.messages

    def _constraint_options(self, choice: ToolChoice) -> dict[str, Any]:
        return hermes.constraint_options(
            list(self.tools.values()), choice,
            tool_call_token=self.model.tokenizer.token_to_id(_TOOL_CALL_TOKEN))

    def _step(self, choice: ToolChoice, options: dict[str, Any],
              ) -> Iterator[AgentEvent]:  # returns AgentStep via StopIteration
        start = time.perf_counter()
        messages = self._messages()
        prompt = self.model.encode_chat(messages, tools=self._schemas or None)
        parser = hermes.ToolCallStreamParser()
        raw: list[str] = []
        calls: list[ToolCall] = []
        errors: list[str] = []

        def handle(events: Sequence[Any]) -> Iterator[AgentEvent]:
            for event in events:
                if isinstance(event, hermes.TextDelta):
                    if event.text:
                        yield TextEvent(event.text)
                elif isinstance(event, hermes.ToolCallEvent):
                    call = ToolCall(event.call.name, event.call.arguments,
                                    id=f"call_{self._call_index}")
                    self._call_index += 1
                    calls.append(call)
                    yield ToolCallEvent(call)
                else:
                    errors.append(event.message)

        chunks = self.session.stream_chunks(prompt, **{**options,
                                                        **self._constraint_options(choice)})
        for chunk in chunks:
            raw.append(chunk.text)
            yield from handle(parser.feed(chunk.text))
        yield from handle(parser.finish())
        content, _, _ = hermes.parse_tool_calls("".join(raw), strict=False)
        usage = self.session.last_stats

        assistant: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            assistant["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                "name": c.name, "arguments": c.arguments}} for c in calls]
        self.messages.append(assistant)
        results: list[ToolResult] = []
        for call in calls:
            result = self._execute(call, step=len(self.messages))
            results.append(result)
            yield ToolResultEvent(result)
            self.messages.append({"role": "tool", "content": result.content,
                                  "tool_call_id": call.id, "name": call.name})
        for error in errors:  # unparsable call text: tell the model what went wrong
            logger.warning("tool call parse error: %s", error)
            self.messages.append({"role": "tool", "content": json.dumps({"error": error})})
        if errors and not calls:
            fake = ToolCall("<parse error>", {}, id=f"call_{self._call_index}")
            results.append(ToolResult(fake, error=errors[0]))
            calls = [fake]
        return AgentStep(content=content, tool_calls=calls, results=results,
                         prompt_tokens=usage.prompt_tokens,
                         completion_tokens=usage.completion_tokens,
                         cached_tokens=usage.reused_tokens, duration_s=time.perf_counter() - start,
                         ttft_s=usage.prefill_s)

    # -- tools ------------------------------------------------------------------------------

    def _execute(self, call: ToolCall, *, step: int) -> ToolResult:
        start = time.perf_counter()
        decision = "allow"
        tool = self.tools.get(call.name)
        arguments = call.arguments
        output: Any = None
        error: str | None = None
        try:
            if tool is None:
                error = f"unknown tool {call.name!r}; available: {', '.join(self.tools)}"
            else:
                arguments = tool.validate(arguments)
                if self.policy is not None:
                    verdict = self.policy.check(call.name, arguments)
                    decision = verdict.outcome  # allow | deny | confirm-approved|denied|edited
                    arguments = verdict.arguments
                    if not verdict.allowed:
                        error = f"denied by policy: {verdict.reason}"
                if error is None:
                    future = self._executor.submit(tool.invoke, arguments)
                    try:
                        output = future.result(timeout=self.tool_timeout)
                    except concurrent.futures.TimeoutError:
                        error = f"timed out after {self.tool_timeout:g} s"
                        # The worker thread cannot be killed; use a fresh one for the next call.
                        self._executor.shutdown(wait=False, cancel_futures=True)
                        self._executor = concurrent.futures.ThreadPoolExecutor(
                            max_workers=1, thread_name_prefix="qwen-edge-tool")
        except ToolError as exc:  # e.g. arguments that do not match the schema
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a tool's own failure is data for the model
            error = f"{type(exc).__name__}: {exc}"
        result = ToolResult(ToolCall(call.name, arguments, call.id), output=output, error=error,
                            decision=decision, duration_s=time.perf_counter() - start)
        if self.audit is not None:
            self.audit.record(
                run_id=self.run_id, step=step, tool=call.name, arguments=arguments,
                decision=result.decision, result_nbytes=len(result.content.encode()),
                duration_ms=result.duration_s * 1000, error=error, remote=False,
            )
        return result

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
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .chat import ToolCall
from .errors import ConfigError, RemoteError, ToolError
from .generate import StreamStats
from .model import Model
from .remote import Remote
from .router import DEFAULT_REDACT, Router, confidence_of, redact_text
from .tool_formats import hermes
from .tools import Tool, as_tool, grounding_texts

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
_REMOTE_OPTIONS = ("temperature", "top_p", "max_tokens", "seed", "stop", "presence_penalty",
                   "frequency_penalty")


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
    route: str = "local"  # "local" | "remote" | "local-fallback"
    route_reason: str = ""
    confidence: float | None = None  # of the local answer (None if none was generated)

    @property
    def remote(self) -> bool:
        return self.route == "remote"


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

    @property
    def remote(self) -> bool:
        return any(s.remote for s in self.steps)


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
        remote: a ``Router`` (its server, confidence threshold and redaction rules) or a
            ``Remote``. A step escalates when the run is ``hard=True`` or, with a Router whose
            policy cascades, when the local answer's confidence is below the threshold; the
            server gets the conversation and the tool schemas (redacted), and the calls it
            returns still run here, under the same policy. A failing server means the local
            step, marked ``route="local-fallback"``.
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
        remote: Router | Remote | None = None,
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
        self.routing = remote.policy if isinstance(remote, Router) else None
        self.remote = remote.remote if isinstance(remote, Router) else remote
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

    def run(self, message: str, *, tool_choice: ToolChoice | None = None, hard: bool = False,
            **generation: Any) -> AgentResult:
        """Add a user message, loop until the model answers; return the whole turn.

        ``hard=True`` sends every step of this turn to the remote server (if one is set).
        """
        for event in self.stream(message, tool_choice=tool_choice, hard=hard, **generation):
            if isinstance(event, FinalEvent):
                return event.result
        msg = "agent stream ended without a final event"  # unreachable by construction
        raise ToolError(msg)

    def stream(self, message: str, *, tool_choice: ToolChoice | None = None, hard: bool = False,
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
            step = yield from self._step(step_choice, options, hard=hard)
            turn.steps.append(step)
            if not step.tool_calls:
                yield FinalEvent(AgentResult(text=step.content, steps=turn.steps,
                                             finish_reason="stop", remote=turn.remote))
                return
            for result in step.results:
                if result.error is None:
                    continue
                key = f"{result.call.name}:{json.dumps(result.call.arguments, sort_keys=True)}"
                if key in turn.failures:  # the same failing call again: stop the loop
                    text = (f"Stopped: the call {result.call.name} failed twice with the same "
                            f"arguments ({result.error}).")
                    yield FinalEvent(AgentResult(text=text, steps=turn.steps,
                                                 finish_reason="repeated_failure",
                                                 remote=turn.remote))
                    return
                turn.failures.add(key)
        text = f"Stopped after {self.max_steps} steps without a final answer."
        yield FinalEvent(AgentResult(text=text, steps=turn.steps, finish_reason="max_steps",
                                     remote=turn.remote))

    # -- one step ---------------------------------------------------------------------------

    def _messages(self) -> list[dict[str, Any]]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + self.messages

    def _constraint_options(self, choice: ToolChoice) -> dict[str, Any]:
        tools = list(self.tools.values())
        # Grounded parameters quote the user's turns of this conversation (tools.py).
        grounding = grounding_texts(self.messages) if any(t.grounded for t in tools) else None
        return hermes.constraint_options(
            tools, choice, tool_call_token=self.model.tokenizer.token_to_id(_TOOL_CALL_TOKEN),
            grounding=grounding)

    def _step(self, choice: ToolChoice, options: dict[str, Any], *, hard: bool = False,
              ) -> Iterator[AgentEvent]:  # returns AgentStep via StopIteration
        start = time.perf_counter()
        messages = self._messages()
        calls: list[ToolCall] = []
        errors: list[str] = []
        route, reason, confidence = "local", "", None
        usage = None
        content = ""
        local_only = self.routing is not None and self.routing.local_only
        if hard and local_only:
            route, reason = "local", "local_only (would escalate: hard=True)"
        elif hard:
            remote = self._remote_step(messages, choice, options, "hard=True")
            if isinstance(remote, str):
                route, reason = "local-fallback", remote
            else:
                route, reason = "remote", "hard=True"
                content, calls = remote
                for call in calls:
                    yield ToolCallEvent(call)
                if content:
                    yield TextEvent(content)
        if route != "remote":
            # With a cascading router, the local text is held until it is scored: text
            # already shown could not be taken back if the step escalates. A router without
            # a server still scores: a step it would escalate is a "local-fallback".
            cascade = (not hard and not local_only and self.routing is not None
                       and self.routing.cascade)
            held: list[AgentEvent] = []
            local = self._local_step(messages, choice, options, calls, errors)
            while True:
                try:
                    event = next(local)
                except StopIteration as done:  # the generator returns its summary
                    content, confidence, usage = done.value
                    break
                if cascade:
                    held.append(event)
                else:
                    yield event
            if cascade and not calls and self.routing is not None and \
                    confidence < self.routing.threshold:
                why = f"confidence {confidence:.3f} < threshold {self.routing.threshold}"
                remote = self._remote_step(messages, choice, options, why)
                if isinstance(remote, str):
                    route, reason = "local-fallback", remote
                else:
                    route, reason = "remote", why
                    content, calls = remote
                    held = [TextEvent(content)] if content else []
                    held += [ToolCallEvent(c) for c in calls]
            yield from held
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
                         prompt_tokens=usage.prompt_tokens if usage else 0,
                         completion_tokens=usage.completion_tokens if usage else 0,
                         cached_tokens=usage.reused_tokens if usage else 0,
                         duration_s=time.perf_counter() - start,
                         ttft_s=usage.prefill_s if usage else 0.0,
                         route=route, route_reason=reason, confidence=confidence)

    def _local_step(self, messages: list[dict[str, Any]], choice: ToolChoice,
                    options: dict[str, Any], calls: list[ToolCall], errors: list[str],
                    ) -> Generator[AgentEvent, None, tuple[str, float, StreamStats]]:
        """Generate one step on the device; returns (content, confidence, stats)."""
        prompt = self.model.encode_chat(messages, tools=self._schemas or None)
        # "none": no call runs, whatever the model writes (call-shaped text is content).
        parser = hermes.ToolCallStreamParser() if choice != "none" else None
        raw: list[str] = []
        logprobs: list[float] = []
        entropies: list[float] = []

        def handle(events: Sequence[Any]) -> Iterator[AgentEvent]:
            for event in events:
                if isinstance(event, hermes.TextDelta):
                    if event.text:
                        yield TextEvent(event.text)
                elif isinstance(event, hermes.ToolCallEvent):
                    calls.append(self._new_call(event.call.name, event.call.arguments))
                    yield ToolCallEvent(calls[-1])
                else:
                    errors.append(event.message)

        chunks = self.session.stream_chunks(prompt, **{**options,
                                                        **self._constraint_options(choice)})
        for chunk in chunks:
            raw.append(chunk.text)
            if chunk.logprob is not None and chunk.entropy is not None:
                logprobs.append(chunk.logprob)
                entropies.append(chunk.entropy)
            if parser is None:
                yield from handle([hermes.TextDelta(chunk.text)])
            else:
                yield from handle(parser.feed(chunk.text))
        if parser is None:
            return "".join(raw), confidence_of(logprobs, entropies), self.session.last_stats
        yield from handle(parser.finish())
        content, _, _ = hermes.parse_tool_calls("".join(raw), strict=False)
        return content, confidence_of(logprobs, entropies), self.session.last_stats

    def _new_call(self, name: str, arguments: dict[str, Any]) -> ToolCall:
        call = ToolCall(name, arguments, id=f"call_{self._call_index}")
        self._call_index += 1
        return call

    def _remote_step(self, messages: list[dict[str, Any]], choice: ToolChoice,
                     options: dict[str, Any], why: str) -> tuple[str, list[ToolCall]] | str:
        """Ask the server for this step: (content, calls), or the fallback reason."""
        if self.remote is None:
            return f"would escalate ({why}); no server configured"
        outgoing = [self._outgoing(m) for m in messages]
        sampling = {k: options[k] for k in _REMOTE_OPTIONS if options.get(k) is not None}
        if self.audit is not None:
            self.audit.record(event="escalation", run_id=self.run_id, remote=True,
                              arguments={"reason": why, "route": "remote"})
        try:
            answer = self.remote.chat(outgoing, tools=self._schemas or None,
                                      tool_choice=choice if self._schemas else None, **sampling)
        except RemoteError as exc:
            return f"remote unavailable: {exc}"
        if choice == "none":  # the server was told; if it called anyway, nothing runs
            return answer.text, []
        return answer.text, [self._new_call(c.name, c.arguments) for c in answer.tool_calls]

    def _outgoing(self, message: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI message as the server wants it: JSON-text arguments, redacted contents."""
        out = dict(message)
        rules = self.routing.redact if self.routing is not None else DEFAULT_REDACT
        if isinstance(out.get("content"), str):
            out["content"], counts = redact_text(out["content"], rules)
            if counts:
                logger.info("redacted before sending: %s", counts)
        if out.get("tool_calls"):
            out["tool_calls"] = [
                {**c, "function": {**c["function"], "arguments": redact_text(json.dumps(
                    c["function"]["arguments"], ensure_ascii=False), rules)[0]}}
                for c in out["tool_calls"]]
        return out

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

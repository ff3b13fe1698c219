"""Agent: a function-calling loop over Python tools, on any ``Backend``.

    backend.stream_chat(messages, tools, tool_choice) -> calls -> permissions -> run (with a
        timeout) -> audit -> tool messages -> repeat

The agent owns only the tool loop. Generating the calls (constraints, grounding, the trigger
token, the stream parser) is the core chat path (``qwen_edge.chat_api``), and where a step is
answered is the backend's business: a ``LocalBackend`` over the agent's own ``Session`` (the
system prompt and tool schemas are prefilled once, not on every step), or a ``Router``, whose
every rule (local_only, hard, keywords, scripts, prompt size, cascade, redaction, fallback,
errors) applies to agents exactly as to a single request.
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

from ..chat import ToolCall
from ..chat_api import ToolChoice, check_tool_choice
from ..config import GenerationConfig
from ..errors import ConfigError, ToolError
from ..model import Model
from ..routing.backend import Backend, LocalBackend
from ..routing.policy import RoutingPolicy
from ..routing.remote import Remote
from ..routing.router import Router
from ..tool_formats.base import TextDelta
from ..tool_formats.base import ToolCallEvent as _CallEvent
from ..types import Usage
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

_AGENT_POLICY = RoutingPolicy(cascade=False)  # a plain server: only hard=True escalates


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
    ttft_s: float = 0.0  # from the step's start to its first generated token (local)
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
    def usage(self) -> Usage:
        """Token counts of every step together."""
        return Usage(prompt_tokens=sum(s.prompt_tokens for s in self.steps),
                     completion_tokens=sum(s.completion_tokens for s in self.steps),
                     cached_tokens=sum(s.cached_tokens for s in self.steps))


# Text deltas and completed calls are the tool-call parser's own events (the agent re-ids the
# calls); the agent adds tool results and the final result.
TextEvent = TextDelta
ToolCallEvent = _CallEvent


@dataclass(frozen=True, slots=True)
class ToolResultEvent:
    result: ToolResult


@dataclass(frozen=True, slots=True)
class FinalEvent:
    result: AgentResult


AgentEvent = TextEvent | ToolCallEvent | ToolResultEvent | FinalEvent


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
        backend: a loaded ``Model`` (the agent keeps its own session on it), or any
            ``Backend``: a ``LocalBackend``, a ``RemoteBackend`` or a ``Router``.
        tools: ``@tool`` functions, plain typed functions, or OpenAI tool dicts with a function.
        system: the system message.
        max_steps: model turns per ``run`` before giving up ("max_steps").
        tool_timeout: seconds a tool may run; then its result is a timeout error.
        policy: a ``Policy`` deciding allow / deny / confirm per tool (default: allow all).
        audit: an ``AuditLog`` recording every call (and, through the router, every
            escalation).
        tool_choice: "auto", "none", "required" or ``{"type": "function", "function":
            {"name": ...}}`` (OpenAI semantics, the same as the server's); overridable per
            ``run``. "none" means no tool runs, whatever the model (or a server) writes.
        remote: with a ``Model``: a ``Router`` (its server, policy and audit log are used
            over the agent's session) or a ``Remote`` (a plain server: only ``hard=True``
            escalates). The calls a server returns still run here, under the same policy.
        config: the generation options (default: the package's); ``**generation``
            overrides single fields (``temperature``, ``max_tokens``, ...).

    Example:
        >>> agent = qwen_edge.Agent(model, [get_weather, set_timer], system="You run a home.")
        >>> agent.run("Set a timer for 5 minutes").text
    """

    def __init__(
        self,
        backend: Model | Backend,
        tools: Sequence[Tool | Callable[..., Any] | Mapping[str, Any]],
        *,
        system: str | None = None,
        max_steps: int = 8,
        tool_timeout: float = 30.0,
        policy: Any = None,
        audit: Any = None,
        tool_choice: ToolChoice = "auto",
        remote: Router | Remote | None = None,
        config: GenerationConfig | None = None,
        **generation: Any,
    ) -> None:
        if max_steps < 1:
            msg = f"max_steps={max_steps}: must be >= 1"
            raise ConfigError(msg)
        if tool_timeout <= 0:
            msg = f"tool_timeout={tool_timeout}: must be > 0"
            raise ConfigError(msg)
        self.tools: dict[str, Tool] = {}
        for spec in tools:
            t = as_tool(spec)
            if t.name in self.tools:
                msg = f"two tools are named {t.name!r}"
                raise ConfigError(msg)
            self.tools[t.name] = t
        check_tool_choice(tool_choice, list(self.tools))
        self.backend = self._backend(backend, remote, audit)
        model = self.backend.model if isinstance(self.backend, (Router, LocalBackend)) else None
        self.model = model
        self.session = getattr(getattr(self.backend, "local", self.backend), "session", None)
        # validated now, not at the first run
        self.config = (model.config(config, **generation) if model is not None
                       else (config or GenerationConfig.resolve()).override(**generation))
        self.system = system
        self.max_steps = max_steps
        self.tool_timeout = tool_timeout
        self.policy = policy
        self.audit = audit
        self.tool_choice = tool_choice
        self.run_id = uuid.uuid4().hex[:12]
        self.messages: list[dict[str, Any]] = []
        self._specs = list(tools)
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                               thread_name_prefix="qwen-edge-tool")
        self._call_index = 0

    @staticmethod
    def _backend(backend: Model | Backend, remote: Router | Remote | None,
                 audit: Any) -> Backend:
        if not isinstance(backend, Model):
            if remote is not None:
                msg = "remote= goes with a Model; pass a Router as the backend instead"
                raise ConfigError(msg)
            return backend
        local = LocalBackend(backend.session())
        if isinstance(remote, Router):
            return Router(local, remote.remote, remote.policy,
                          audit=remote.audit if remote.audit is not None else audit)
        return Router(local, remote, _AGENT_POLICY, audit=audit)

    # -- public -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the conversation (the cached system + tools prefix stays reusable)."""
        self.messages = []

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def run(self, message: str, *, tool_choice: ToolChoice | None = None, hard: bool = False,
            config: GenerationConfig | None = None, **generation: Any) -> AgentResult:
        """Add a user message, loop until the model answers; return the whole turn.

        ``hard=True`` sends every step of this turn to the router's server (unless its
        policy is ``local_only``).
        """
        for event in self.stream(message, tool_choice=tool_choice, hard=hard, config=config,
                                 **generation):
            if isinstance(event, FinalEvent):
                return event.result
        msg = "agent stream ended without a final event"  # unreachable by construction
        raise ToolError(msg)

    def stream(self, message: str, *, tool_choice: ToolChoice | None = None, hard: bool = False,
               config: GenerationConfig | None = None, **generation: Any,
               ) -> Iterator[AgentEvent]:
        """Like ``run``, yielding text deltas, tool calls, tool results and the final result."""
        choice = self.tool_choice if tool_choice is None else tool_choice
        check_tool_choice(choice, list(self.tools))
        cfg = (config or self.config).override(**generation)
        if hard and not isinstance(self.backend, Router):
            msg = "hard=True needs a Router backend (a server to escalate to)"
            raise ConfigError(msg)
        self.messages.append({"role": "user", "content": message})
        turn = _Turn()
        for index in range(self.max_steps):
            # After the first step, "required" / a named function would loop forever: the
            # model must be free to answer once it has results (OpenAI does the same).
            step_choice = choice if index == 0 else ("auto" if choice != "none" else "none")
            step = yield from self._step(step_choice, cfg, hard=hard)
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

    def _step(self, choice: ToolChoice, cfg: GenerationConfig, *, hard: bool,
              ) -> Generator[AgentEvent, None, AgentStep]:
        start = time.perf_counter()
        extra = {"hard": hard} if hard else {}
        deltas = self.backend.stream_chat(self._messages(), tools=self._specs or None,
                                          tool_choice=choice if self._specs else None,
                                          config=cfg, **extra)
        content: list[str] = []
        reasoning: list[str] = []
        thought = False
        calls: list[ToolCall] = []
        errors: list[str] = []
        usage, ttft = None, 0.0
        route, reason, confidence = "local", "", None
        for delta in deltas:
            if delta.content:
                content.append(delta.content)
                yield TextEvent(delta.content)
            reasoning.append(delta.reasoning)
            thought = thought or delta.thought or bool(delta.reasoning)
            for call in delta.tool_calls:
                if choice == "none":  # a server that called anyway: nothing runs
                    logger.info("tool_choice='none': ignored a call of %s", call.name)
                    continue
                calls.append(self._new_call(call.name, call.arguments))
                yield ToolCallEvent(calls[-1])
            errors += delta.tool_call_errors
            if delta.route is not None:
                route, reason, confidence = delta.route, delta.route_reason or "", delta.confidence
            if delta.finish_reason is not None:
                usage = delta.usage
                ttft = delta.timings.ttft_s if delta.timings is not None else 0.0
        text = "".join(content)
        assistant: dict[str, Any] = {"role": "assistant", "content": text}
        if thought:
            # Qwen3's template shows the thoughts of the turns after the last user message:
            # kept, the history renders as it was generated and the session reuses its cache
            assistant["reasoning_content"] = "".join(reasoning)
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
            self.messages.append({"role": "tool", "content": json.dumps({"error": error})})
        if errors and not calls:
            fake = ToolCall("<parse error>", {}, id=f"call_{self._call_index}")
            results.append(ToolResult(fake, error=errors[0]))
            calls = [fake]
        return AgentStep(content=text, tool_calls=calls, results=results,
                         prompt_tokens=usage.prompt_tokens if usage else 0,
                         completion_tokens=usage.completion_tokens if usage else 0,
                         cached_tokens=usage.cached_tokens if usage else 0,
                         duration_s=time.perf_counter() - start, ttft_s=ttft,
                         route=route, route_reason=reason, confidence=confidence)

    def _new_call(self, name: str, arguments: dict[str, Any]) -> ToolCall:
        call = ToolCall(name, arguments, id=f"call_{self._call_index}")
        self._call_index += 1
        return call

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
                parameters=tool.parameters if tool is not None else None,
            )
        return result

"""Hybrid routing: answer on the device, escalate to an OpenAI-compatible server when needed.

    router = Router(model, Remote("http://gpu:8000/v1", "qwen2.5-7b"),
                    RoutingPolicy(threshold=0.4, keywords=(r"\\bcontract\\b",)))
    out = router.chat(messages, tools=[get_weather], config=model.config(max_tokens=256))
    out.content, out.tool_calls, out.route, out.route_reason, out.confidence

``Router`` is itself a ``Backend``: ``Agent(router, tools)`` inherits every rule below. How a
request is routed (``chat`` / ``stream_chat``, and ``generate`` / ``stream`` for text):

1. It stays on the device, whatever else says, when ``local_only`` is set (policy or call),
   when the prompt is token ids, or when it uses a ``regex`` / ``grammar`` constraint (the
   server could not honour it).
2. It goes to the server before generating when the prompt plus ``max_tokens`` does not fit
   the local context, when ``hard=True``, or when a rule matches the latest user text: a
   ``keywords`` regex, a share of letters in the listed ``scripts``, or at least
   ``min_prompt_tokens`` prompt tokens.
3. Otherwise it is generated locally; with ``cascade`` the answer is scored
   (``score_confidence``) and escalated when the score is below ``threshold`` (an answer
   that calls a tool is not second-guessed).
4. Before anything leaves the device, every string of every message (contents, tool results,
   tool-call arguments) is redacted (``redact``: e-mail, phone, IBAN and custom regexes).
5. When the server is down, slow, answers 408/429/5xx or breaks its stream, the answer is
   local (``route == "local-fallback"``): the local answer already made by the cascade, or a
   new one; a stream that broke mid-way is continued locally from the text already shown.
   Other 4xx statuses (a bad key, an unknown model) raise ``RemoteResponseError``: they are a
   configuration to fix, not an outage to hide.

The router keeps no conversation state of its own (a ``LocalBackend`` over a session keeps
the KV cache), and the caller's messages are never modified (redaction works on copies).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validate import check as _check
from ..chat_api import ChatPlan, ToolChoice, ToolSpec
from ..config import GenerationConfig
from ..errors import ContextLengthError, RemoteError, RemoteResponseError, RemoteUnavailableError
from ..model import Model, Prompt
from ..redaction import redact_value
from ..types import ChatDelta, ChatResponse, collect
from .backend import Backend, LocalBackend, RemoteBackend
from .confidence import confidence_of
from .policy import RoutingPolicy, script_share
from .remote import Remote

if TYPE_CHECKING:
    from ..agents.audit import AuditLog

__all__ = ["RoutedCompletion", "RoutedStream", "Router"]

logger = logging.getLogger(__name__)

_FALLBACK_STATUSES = (408, 429)  # plus every 5xx
_DEFAULT_POLICY = RoutingPolicy()

RoutedCompletion = ChatResponse  # a routed answer is a ChatResponse with its route set


class RoutedStream(Iterator[str]):
    """The text deltas of ``Router.stream``, plus where they come from.

    ``route`` / ``route_reason`` are set before the first delta and may change once, to
    "local-fallback", if the server fails mid-way; ``confidence`` is set when a local
    answer was scored. All are final when the iterator is exhausted.
    """

    def __init__(self, deltas: Iterator[ChatDelta]) -> None:
        self.route: str | None = None
        self.route_reason: str | None = None
        self.confidence: float | None = None
        self._deltas = deltas

    def __next__(self) -> str:
        while True:
            delta = next(self._deltas)
            if delta.route is not None:
                self.route, self.route_reason = delta.route, delta.route_reason
                self.confidence = delta.confidence
            if delta.content:
                return delta.content

    def __iter__(self) -> RoutedStream:
        return self

    def close(self) -> None:
        """Stop generating (closes the underlying local or remote stream)."""
        _close(self._deltas)


@dataclass(frozen=True, slots=True)
class _Request:
    plan: ChatPlan  # the local rendering, validated
    messages: list[dict[str, Any]] | None  # what a server would get (None: token ids)
    tools: Sequence[ToolSpec] | None
    tool_choice: ToolChoice | None
    config: GenerationConfig
    escalate: str | None  # why a rule sends it remote before generating
    stay_local: str | None  # why it must not leave the device
    stream: bool  # the caller reads deltas (a broken remote stream is continued locally)


class Router:
    """Generate on the device, escalate to a server by policy, fall back when it fails.

    Args:
        local: the on-device model, or a ``LocalBackend`` (e.g. over an agent's session).
        remote: the server (``Remote`` or any ``Backend``), or None: requests that would
            escalate are answered locally (route "local-fallback").
        policy: the routing rules.
        audit: an ``AuditLog``; every escalation (before anything is sent) and every
            fallback is recorded as ``event="escalation"`` with ``{"reason", "route"}`` and
            redaction counts, never message content. If it cannot be written, nothing is sent.

    Example:
        >>> router = Router(qwen_edge.load("pkg/"), Remote("http://gpu:8000/v1", "qwen-7b"))
        >>> out = router.chat([{"role": "user", "content": "Summarize ..."}])
        >>> out.route, out.route_reason, out.confidence
    """

    def __init__(self, local: Model | LocalBackend, remote: Remote | Backend | None,
                 policy: RoutingPolicy = _DEFAULT_POLICY, *, audit: AuditLog | None = None,
                 ) -> None:
        _check(isinstance(policy, RoutingPolicy), "policy", type(policy).__name__,
               "a RoutingPolicy")
        self.local = local if isinstance(local, LocalBackend) else LocalBackend(local)
        self.model = self.local.model
        self.remote = remote
        self.policy = policy
        self.audit = audit
        self.max_context = self.model.max_context or min(self.model.package.max_context, 4096)
        self._server: Backend | None = (
            RemoteBackend(remote, defaults=self.model.config()) if isinstance(remote, Remote)
            else remote)

    # -- the Backend protocol ----------------------------------------------------------------

    def chat(self, messages: Prompt, *, tools: Sequence[ToolSpec] | None = None,
             tool_choice: ToolChoice | None = None, config: GenerationConfig | None = None,
             hard: bool = False, local_only: bool = False) -> ChatResponse:
        """Answer locally or remotely (see the module doc); the response names its route.

        Args:
            messages: chat messages, raw text (sent as one user message) or token ids
                (never sent).
            tools / tool_choice / config: as ``Model.chat``.
            hard: send it to the server (unless it must stay local).
            local_only: never send this request (``policy.local_only`` applies too).

        Raises:
            ConfigError: an invalid option.
            ContextLengthError: the prompt does not fit locally and cannot be sent.
            RemoteResponseError: the server refused the request (4xx other than 408/429).
        """
        request = self._prepare(messages, tools, tool_choice, config, hard, local_only,
                                stream=False)
        return collect(self._route(request))

    def stream_chat(self, messages: Prompt, *, tools: Sequence[ToolSpec] | None = None,
                    tool_choice: ToolChoice | None = None,
                    config: GenerationConfig | None = None, hard: bool = False,
                    local_only: bool = False) -> Iterator[ChatDelta]:
        """Like ``chat``, as deltas: the first names the route, the last has it final.

        Options are checked here, before the first delta; errors while generating are
        raised by the iterator. With ``cascade`` the local answer is held until scored.
        """
        request = self._prepare(messages, tools, tool_choice, config, hard, local_only,
                                stream=True)
        return self._route(request)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    # -- text ----------------------------------------------------------------------------------

    def generate(self, prompt: Prompt, config: GenerationConfig | None = None, *,
                 hard: bool = False, local_only: bool = False,
                 **overrides: Any) -> ChatResponse:
        """``chat`` without tools, with ``Model.generate``'s options."""
        return self.chat(prompt, config=self.model.config(config, **overrides), hard=hard,
                         local_only=local_only)

    def stream(self, prompt: Prompt, config: GenerationConfig | None = None, *,
               hard: bool = False, local_only: bool = False, **overrides: Any) -> RoutedStream:
        """Like ``generate`` but yields text deltas; see ``RoutedStream`` for the route."""
        return RoutedStream(self.stream_chat(prompt, config=self.model.config(
            config, **overrides), hard=hard, local_only=local_only))

    # -- routing -----------------------------------------------------------------------------

    def _prepare(self, prompt: Prompt, tools: Sequence[ToolSpec] | None,
                 tool_choice: ToolChoice | None, config: GenerationConfig | None, hard: bool,
                 local_only: bool, *, stream: bool) -> _Request:
        _check(isinstance(hard, bool), "hard", hard, "True or False")
        _check(isinstance(local_only, bool), "local_only", local_only, "True or False")
        cfg = config if config is not None else self.model.config()
        plan = self.local.plan(prompt, tools=tools, tool_choice=tool_choice, config=cfg)
        text = _user_text(prompt)
        stay_local = None
        if self.policy.local_only or local_only:
            stay_local = "local_only"
        elif text is None:
            stay_local = "token-id prompts are not sent"
        elif cfg.regex is not None or cfg.grammar is not None:
            stay_local = "regex/grammar constraints run only on the device"
        messages = None
        if isinstance(prompt, str):
            messages = [{"role": "user", "content": prompt}]
        elif text is not None:
            messages = [dict(m) for m in prompt if isinstance(m, Mapping)]
        return _Request(plan, messages, tools, tool_choice, cfg,
                        self._rule(len(plan.prompt), cfg.max_tokens, text or "", hard),
                        stay_local, stream)

    def _rule(self, n_tokens: int, max_tokens: int | None, text: str, hard: bool) -> str | None:
        """Why the request goes remote before generating, or None."""
        if max_tokens is None and n_tokens >= self.max_context:
            return (f"prompt ({n_tokens} tokens) leaves no room in the local context "
                    f"({self.max_context} tokens)")
        if max_tokens is not None and n_tokens + max_tokens > self.max_context:
            return (f"prompt ({n_tokens} tokens) + max_tokens ({max_tokens}) exceed the local "
                    f"context ({self.max_context} tokens)")
        if hard:
            return "hard=True"
        for pattern in self.policy.keywords:
            if re.search(pattern, text, re.IGNORECASE):
                return f"keyword /{pattern}/ matched"
        if self.policy.scripts:
            share = script_share(text, self.policy.scripts)
            if share >= self.policy.min_script_share:
                return f"{share:.0%} of the letters are {'/'.join(self.policy.scripts)}"
        if self.policy.min_prompt_tokens is not None and n_tokens >= self.policy.min_prompt_tokens:
            return f"prompt has {n_tokens} >= {self.policy.min_prompt_tokens} tokens"
        return None

    def _local_reason(self, confidence: float) -> str:
        if self.policy.cascade:
            return f"confidence {confidence:.3f} >= threshold {self.policy.threshold:g}"
        return "no routing rule matched"

    def _route(self, request: _Request) -> Iterator[ChatDelta]:
        why = request.escalate
        got: list[ChatDelta] = []  # the local answer's deltas
        shown = False  # ... already yielded (else held: a cascade's answer until scored)
        if why is None:
            if self.policy.cascade and request.stay_local is None and self._server is not None:
                got = list(self.local.run(request.plan))
            else:  # the answer stays local whatever its score: stream it as it comes
                yield ChatDelta(route="local", route_reason="generating locally")
                yield from _relay(self.local.run(request.plan), got)
                shown = True
            local = collect(got)
            confidence = _score(local)
            if not (self.policy.cascade and confidence < self.policy.threshold
                    and not local.tool_calls):
                yield from _end(got, "local", self._local_reason(confidence), confidence,
                                replay=not shown)
                return
            why = f"confidence {confidence:.3f} < threshold {self.policy.threshold:g}"
        if request.stay_local is not None or self._server is None:
            route, reason = self._unsent(request, why)
            if not got:
                yield ChatDelta(route=route, route_reason=reason)
                yield from _relay(self.local.run(request.plan), got)
                shown = True
            yield from _end(got, route, reason, _score(collect(got)), replay=not shown)
            return
        yield from self._escalate(request, why, got)

    def _escalate(self, request: _Request, why: str, held: list[ChatDelta],
                  ) -> Iterator[ChatDelta]:
        """Send the request remote; fall back locally when the server fails."""
        server, messages = self._server, request.messages
        if server is None or messages is None:  # excluded by _route (stay_local)
            msg = "internal: a request that must stay local reached _escalate"
            raise RemoteError(msg)
        confidence = _score(collect(held)) if held else None
        outgoing = self._outgoing(messages, why)
        yield ChatDelta(route="remote", route_reason=why, confidence=confidence)
        received: list[str] = []
        try:
            if request.stream:
                deltas = server.stream_chat(outgoing, tools=request.tools,
                                            tool_choice=request.tool_choice,
                                            config=request.config)
                try:
                    for delta in deltas:
                        received.append(delta.content)
                        yield _with_route(delta, "remote", why, confidence)
                finally:
                    _close(deltas)
            else:
                answer = server.chat(outgoing, tools=request.tools,
                                     tool_choice=request.tool_choice, config=request.config)
                yield ChatDelta(content=answer.content, tool_calls=tuple(answer.tool_calls),
                                reasoning=answer.reasoning or "",
                                thought=answer.reasoning is not None,
                                logprobs=tuple(answer.logprobs),
                                finish_reason=answer.finish_reason, usage=answer.usage,
                                route="remote", route_reason=why, confidence=confidence)
            return
        except RemoteError as exc:
            reason = self._fallback_reason(exc, why)
            failure = exc
        got: list[ChatDelta] = []
        partial = "".join(received)
        if partial:  # continue the answer already shown, locally
            reason = f"{reason}; continued locally after {len(partial)} characters"
            yield ChatDelta(route="local-fallback", route_reason=reason)
            yield from _relay(self._continue(request, partial), got)
        elif held:
            yield from _end(held, "local-fallback", reason, confidence or 0.0, replay=True)
            return
        else:
            yield ChatDelta(route="local-fallback", route_reason=reason)
            yield from _relay(self._fallback(request, failure), got)
        yield from _end(got, "local-fallback", reason, _score(collect(got)), replay=False)

    def _fallback(self, request: _Request, exc: RemoteError) -> Iterator[ChatDelta]:
        try:
            yield from self.local.run(request.plan)
        except ContextLengthError as local_exc:
            msg = f"{local_exc}, and the server failed: {exc}"
            raise ContextLengthError(msg) from exc

    def _continue(self, request: _Request, partial: str) -> Iterator[ChatDelta]:
        """The local continuation of a remote answer that broke after ``partial``."""
        done = self.model.tokenizer.encode(partial, special=False)
        cfg = request.config
        if cfg.max_tokens is not None:
            cfg = dataclasses.replace(cfg, max_tokens=max(1, cfg.max_tokens - len(done)))
        plan = dataclasses.replace(request.plan, prompt=np.concatenate([request.plan.prompt,
                                                                        done]), config=cfg)
        try:
            yield from self.local.run(plan, start_s=time.perf_counter())
        except ContextLengthError as exc:
            msg = f"{exc}; cannot continue the broken remote stream locally"
            raise ContextLengthError(msg) from exc

    # -- helpers -----------------------------------------------------------------------------

    def _outgoing(self, messages: list[dict[str, Any]], why: str) -> list[dict[str, Any]]:
        """Redacted messages; records the escalation before anything is sent."""
        counts: Counter[str] = Counter()
        redacted = [redact_value(m, self.policy.redact, counts) for m in messages]
        if counts:
            logger.info("redacted before sending: %s",
                        ", ".join(f"{n} {name}" for name, n in sorted(counts.items())))
        self._record("remote", why, remote=True, redacted=dict(sorted(counts.items())))
        logger.info("escalating to the server: %s", why)
        return redacted

    def _unsent(self, request: _Request, why: str) -> tuple[str, str]:
        """(route, reason) of a request that would escalate but is not sent."""
        if request.stay_local is not None:
            return "local", f"{request.stay_local} (would escalate: {why})"
        reason = f"would escalate ({why}); no server configured"
        self._record("local-fallback", reason, remote=False)
        return "local-fallback", reason

    def _fallback_reason(self, exc: RemoteError, why: str) -> str:
        status = exc.status if isinstance(exc, RemoteResponseError) else None
        if status is not None and status not in _FALLBACK_STATUSES and status < 500:
            raise exc  # the request or the configuration is wrong: not an outage
        kind = "remote unavailable" if isinstance(exc, RemoteUnavailableError) else "remote error"
        reason = f"{kind}: {exc}"
        logger.warning("%s; answering locally (escalated because %s)", reason, why)
        self._record("local-fallback", reason, remote=False, error=str(exc), escalated=why)
        return reason

    def _record(self, route: str, reason: str, *, remote: bool, error: str | None = None,
                **extra: Any) -> None:
        if self.audit is not None:
            self.audit.record(event="escalation", arguments={"reason": reason, "route": route,
                                                             **extra},
                              error=error, remote=remote)


def _score(response: ChatResponse) -> float:
    return confidence_of(response.logprobs, response.entropies)


def _relay(deltas: Iterator[ChatDelta], into: list[ChatDelta]) -> Iterator[ChatDelta]:
    """Yield local deltas as they come, all but the last (``_end`` sends it with the route);
    every delta is also kept in ``into``."""
    try:
        for delta in deltas:
            into.append(delta)
            if delta.finish_reason is None:
                yield delta
    finally:
        _close(deltas)


def _end(got: list[ChatDelta], route: str, reason: str, confidence: float, *,
         replay: bool) -> Iterator[ChatDelta]:
    """The end of a local answer: its held deltas (``replay``), then its last one, routed."""
    if replay:
        yield ChatDelta(route=route, route_reason=reason, confidence=confidence)
        yield from (d for d in got if d.finish_reason is None)
    last = next((d for d in reversed(got) if d.finish_reason is not None),
                ChatDelta(finish_reason="length"))
    yield _with_route(last, route, reason, confidence)


def _with_route(delta: ChatDelta, route: str, reason: str,
                confidence: float | None) -> ChatDelta:
    if delta.finish_reason is None:
        return delta
    return dataclasses.replace(delta, route=route, route_reason=reason, confidence=confidence)


def _close(iterator: Iterator[Any]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def _user_text(prompt: Prompt) -> str | None:
    """The latest user text: the prompt itself, or the last user message (None for ids)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, np.ndarray) or not prompt or not isinstance(prompt[0], Mapping):
        return None
    for message in reversed(prompt):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
            return content if isinstance(content, str) else ""
    return ""

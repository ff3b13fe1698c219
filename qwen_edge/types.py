"""The result types every surface shares: ``Usage``, ``Timings``, ``ChatDelta``, ``ChatResponse``.

One shape for one idea: ``Model.generate``, ``Session.chat``, ``Router.chat``, the remote
client's answers and the HTTP server all produce a ``ChatResponse`` (streams produce
``ChatDelta``\\ s whose last one carries the finish reason, usage and timings), with OpenAI's
field names, so ``to_openai()`` is a rename-free translation for the server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .chat import ToolCall

if TYPE_CHECKING:
    from .tool_formats.base import ToolCallDelta

__all__ = ["ChatDelta", "ChatResponse", "Timings", "Usage", "collect"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts (OpenAI's ``usage``)."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens reused from the session's cache

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_openai(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens,
                "prompt_tokens_details": {"cached_tokens": self.cached_tokens}}


@dataclass(frozen=True, slots=True)
class Timings:
    """How long a local generation took, as the caller saw it."""

    ttft_s: float  # from the call to the first token: prompt rendering, setup, prefill, draw
    prefill_tokens_per_s: float  # new (uncached) prompt tokens / the prefill's own time
    decode_tokens_per_s: float  # tokens after the first / their time


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """One step of a streamed answer.

    Attributes:
        content: new content text ("" while tool-call text is buffered).
        reasoning: new thinking text (what the model writes inside ``<think>``).
        tool_calls: calls completed in this step (whole, never partial).
        tool_call_deltas: OpenAI-style fragments of calls in progress (a call's id and name
            as soon as the name is written, then pieces of its arguments JSON); the finished
            call still comes whole in ``tool_calls``.
        tool_call_errors: blocks that did not parse (what is wrong, for the model to read).
        token_ids / logprobs / entropies: of the tokens sampled in this step (a stop token
            has a logprob and an entropy but no id; remote answers have none).
        thought: the output opened a thought (on the last delta; the reasoning may be "").
        finish_reason: None until the last delta: "stop", "length" or "tool_calls".
        usage / timings: on the last delta (None when unknown, e.g. a server sent none).
        route / route_reason / confidence: set by a ``Router`` when the route is decided
            (before the first content) and again on the last delta.
    """

    content: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_deltas: tuple[ToolCallDelta, ...] = ()
    tool_call_errors: tuple[str, ...] = ()
    token_ids: tuple[int, ...] = ()
    logprobs: tuple[float, ...] = ()
    entropies: tuple[float, ...] = ()
    thought: bool = False
    finish_reason: str | None = None
    usage: Usage | None = None
    timings: Timings | None = None
    route: str | None = None
    route_reason: str | None = None
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """A whole answer, local or remote (OpenAI field names where OpenAI has them).

    Attributes:
        content: the message text outside tool calls (and after the thought).
        reasoning: what a thinking model wrote inside ``<think>...</think>`` (None when the
            output opened no thought; vLLM's and DeepSeek's ``reasoning_content``).
        tool_calls: the calls the model made.
        finish_reason: "stop", "length" (max_tokens or a full context, also when cut inside
            a call) or "tool_calls".
        usage: token counts (None when a server sent none).
        timings: of a local generation (None for a remote one).
        route / route_reason / confidence: where the answer came from when a ``Router``
            chose ("local", "remote" or "local-fallback"), why, and the local answer's
            ``score_confidence``; None without a router.
        token_ids / logprobs / entropies: per generated token (the stop token has a logprob
            and an entropy but no id).
        tool_call_errors: blocks that did not parse; their text stays in ``content``.
        raw: the decoded response body of a remote answer (empty for a local one).
    """

    content: str
    finish_reason: str
    usage: Usage | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    timings: Timings | None = field(repr=False, default=None)
    route: str | None = None
    route_reason: str | None = None
    confidence: float | None = None
    token_ids: list[int] = field(repr=False, default_factory=list)
    logprobs: list[float] = field(repr=False, default_factory=list)
    entropies: list[float] = field(repr=False, default_factory=list)
    tool_call_errors: list[str] = field(repr=False, default_factory=list)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)  # a server's decoded body
    reasoning: str | None = None

    @property
    def text(self) -> str:
        """``content`` (the name ``generate`` callers know)."""
        return self.content

    def to_openai(self) -> dict[str, Any]:
        """The ``choices[0]`` + ``usage`` part of an OpenAI chat completion.

        A routed answer adds a ``route`` block: ``{"name", "reason", "confidence"}``.
        """
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message = {"role": "assistant", "content": self.content or None,
                       "tool_calls": [c.to_openai() for c in self.tool_calls]}
        if self.reasoning is not None:
            message["reasoning_content"] = self.reasoning
        out: dict[str, Any] = {"message": message, "finish_reason": self.finish_reason}
        if self.usage is not None:
            out["usage"] = self.usage.to_openai()
        if self.route is not None:
            out["route"] = {"name": self.route, "reason": self.route_reason,
                            "confidence": self.confidence}
        return out


def collect(deltas: Iterable[ChatDelta]) -> ChatResponse:
    """Join a stream of deltas into the response it describes (the last delta ends it)."""
    content: list[str] = []
    reasoning: list[str] = []
    thought = False
    calls: list[ToolCall] = []
    errors: list[str] = []
    ids: list[int] = []
    logprobs: list[float] = []
    entropies: list[float] = []
    last = ChatDelta(finish_reason="length")
    route: tuple[str | None, str | None, float | None] = (None, None, None)
    for delta in deltas:
        content.append(delta.content)
        reasoning.append(delta.reasoning)
        calls += delta.tool_calls
        errors += delta.tool_call_errors
        ids += delta.token_ids
        logprobs += delta.logprobs
        entropies += delta.entropies
        if delta.route is not None:
            route = (delta.route, delta.route_reason, delta.confidence)
        if delta.finish_reason is not None:
            last = delta
        thought = thought or bool(delta.reasoning) or delta.thought
    return ChatResponse(content="".join(content), finish_reason=last.finish_reason or "length",
                        usage=last.usage, tool_calls=calls, timings=last.timings,
                        route=route[0], route_reason=route[1], confidence=route[2],
                        token_ids=ids, logprobs=logprobs, entropies=entropies,
                        tool_call_errors=errors,
                        reasoning="".join(reasoning) if thought else None)

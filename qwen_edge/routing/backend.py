"""The ``Backend`` protocol and its two implementations: on the device, and over HTTP.

    Backend.chat(messages, *, tools=, tool_choice=, config=) -> ChatResponse
    Backend.stream_chat(...)                                 -> Iterator[ChatDelta]
    Backend.close()

``LocalBackend`` runs the one chat path (``chat_api``) on a ``Session``; ``RemoteBackend``
sends the same request to an OpenAI-compatible server (``Remote``); ``Router`` is a Backend
that composes the two. ``Agent`` takes any of them, so every surface answers the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..agents.tools import as_tool
from ..chat_api import ChatPlan, ToolChoice, ToolSpec, openai_tool, plan_chat, run_chat
from ..config import GenerationConfig, SamplingConfig
from ..model import Model, Prompt, Session
from ..types import ChatDelta, ChatResponse, collect

if TYPE_CHECKING:
    from .remote import Remote

__all__ = ["Backend", "LocalBackend", "RemoteBackend", "remote_options"]

_SENT_SAMPLING = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty",
                  "presence_penalty", "frequency_penalty", "seed")


class Backend(Protocol):
    """Anything that answers a conversation: local, remote, or a router over both."""

    def chat(self, messages: Sequence[Mapping[str, Any]], *,
             tools: Sequence[ToolSpec] | None = None, tool_choice: ToolChoice | None = None,
             config: GenerationConfig | None = None) -> ChatResponse: ...

    def stream_chat(self, messages: Sequence[Mapping[str, Any]], *,
                    tools: Sequence[ToolSpec] | None = None,
                    tool_choice: ToolChoice | None = None,
                    config: GenerationConfig | None = None) -> Iterator[ChatDelta]: ...

    def close(self) -> None: ...


class LocalBackend:
    """The model on this device.

    Args:
        model: a ``Model`` (each call gets a fresh session: no state between calls) or a
            ``Session`` (calls share its KV cache: an agent's conversation).
    """

    def __init__(self, model: Model | Session) -> None:
        self.session: Session | None = model if isinstance(model, Session) else None
        self.model: Model = model.model if isinstance(model, Session) else model

    def plan(self, prompt: Prompt, *, tools: Sequence[ToolSpec] | None = None,
             tool_choice: ToolChoice | None = None, config: GenerationConfig | None = None,
             parallel_tool_calls: bool = True) -> ChatPlan:
        """Validate and render a request (``chat_api.plan_chat``); raises before any work."""
        return plan_chat(self.model, prompt, tools=tools, tool_choice=tool_choice,
                         config=config, parallel_tool_calls=parallel_tool_calls)

    def run(self, plan: ChatPlan, *, start_s: float | None = None) -> Iterator[ChatDelta]:
        session = self.session if self.session is not None else self.model.session()
        return run_chat(session, plan, start_s=start_s)

    def stream_chat(self, messages: Sequence[Mapping[str, Any]], *,
                    tools: Sequence[ToolSpec] | None = None,
                    tool_choice: ToolChoice | None = None,
                    config: GenerationConfig | None = None) -> Iterator[ChatDelta]:
        start_s = time.perf_counter()
        return self.run(self.plan(messages, tools=tools, tool_choice=tool_choice,
                                  config=config), start_s=start_s)

    def chat(self, messages: Sequence[Mapping[str, Any]], *,
             tools: Sequence[ToolSpec] | None = None, tool_choice: ToolChoice | None = None,
             config: GenerationConfig | None = None) -> ChatResponse:
        return collect(self.stream_chat(messages, tools=tools, tool_choice=tool_choice,
                                        config=config))

    def close(self) -> None:
        """Nothing to release: the model outlives its backends."""


def remote_options(config: GenerationConfig, defaults: GenerationConfig | None = None,
                   ) -> dict[str, Any]:
    """Request fields for ``config``: the options that differ from ``defaults`` (the local
    package's own, so a server keeps its defaults for what the caller did not choose), plus
    ``max_tokens``. Device details (token ids, logit biases, drafting, grammars) stay here;
    a ``json_schema`` becomes ``response_format``."""
    base = defaults if defaults is not None else GenerationConfig()
    out: dict[str, Any] = {}
    for name in _SENT_SAMPLING:
        value = getattr(config.sampling, name)
        if value != getattr(base.sampling, name) or (
                name == "seed" and value is not None):
            out[name] = value
    if config.stop:
        out["stop"] = list(config.stop)
    if config.max_tokens is not None:
        out["max_tokens"] = config.max_tokens
    template_kwargs = config.template_kwargs()
    if template_kwargs:  # enable_thinking and the like (vLLM's request field)
        out["chat_template_kwargs"] = template_kwargs
    schema = config.json_schema
    if schema is not None:
        out["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "response", "schema": json.loads(schema) if isinstance(schema, str)
            else dict(schema)}}
    return out


class RemoteBackend:
    """An OpenAI-compatible server, through ``Remote`` (timeouts, retries, breaker).

    Args:
        remote: the client.
        defaults: the options a caller leaves alone are not sent (see ``remote_options``).
    """

    def __init__(self, remote: Remote, *, defaults: GenerationConfig | None = None) -> None:
        self.remote = remote
        self.defaults = defaults if defaults is not None else GenerationConfig(
            sampling=SamplingConfig())

    def stream_chat(self, messages: Sequence[Mapping[str, Any]], *,
                    tools: Sequence[ToolSpec] | None = None,
                    tool_choice: ToolChoice | None = None,
                    config: GenerationConfig | None = None) -> Iterator[ChatDelta]:
        """Text deltas as the server streams them; with tools, the whole answer at once
        (its calls arrive complete). Raises ``RemoteError`` (``BrokenStreamError`` mid-way)."""
        if tools:
            return iter([self._delta(self.chat(messages, tools=tools, tool_choice=tool_choice,
                                               config=config))])
        options = remote_options(config or self.defaults, self.defaults)
        return self._stream(self.remote.stream_chat(_wire(messages), **options))

    def chat(self, messages: Sequence[Mapping[str, Any]], *,
             tools: Sequence[ToolSpec] | None = None, tool_choice: ToolChoice | None = None,
             config: GenerationConfig | None = None) -> ChatResponse:
        options = remote_options(config or self.defaults, self.defaults)
        if tools:
            options["tools"] = [openai_tool(spec, as_tool(spec)) for spec in tools]
            options["tool_choice"] = tool_choice if tool_choice is not None else "auto"
        return self.remote.chat(_wire(messages), **options)

    def close(self) -> None:
        self.remote.close()

    @staticmethod
    def _delta(answer: ChatResponse) -> ChatDelta:
        return ChatDelta(content=answer.content, reasoning=answer.reasoning or "",
                         thought=answer.reasoning is not None,
                         tool_calls=tuple(answer.tool_calls),
                         finish_reason=answer.finish_reason, usage=answer.usage,
                         logprobs=tuple(answer.logprobs))

    @staticmethod
    def _stream(deltas: Iterator[str]) -> Iterator[ChatDelta]:
        try:
            for text in deltas:
                yield ChatDelta(content=text)
        finally:
            close = getattr(deltas, "close", None)
            if close is not None:
                close()
        yield ChatDelta(finish_reason="stop")


def _wire(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages as OpenAI sends them: tool-call arguments as JSON text (the chat template
    takes them as objects)."""
    out = []
    for original in messages:
        message = dict(original)
        calls = message.get("tool_calls")
        if calls:
            message["tool_calls"] = [
                {**c, "function": {**c["function"], "arguments": c["function"]["arguments"]
                                   if isinstance(c["function"].get("arguments"), str)
                                   else json.dumps(c["function"].get("arguments", {}),
                                                   ensure_ascii=False)}}
                for c in calls]
        out.append(message)
    return out

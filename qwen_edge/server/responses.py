"""A planned request's events -> OpenAI's JSON completion or its server-sent event chunks.

The worker sends ``ChatDelta`` events and a last ``_Done``; this module only shapes them (ids,
chunk framing, usage) and ends the job when the client has what it asked for or went away.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
from starlette.types import Receive

from ..types import ChatDelta, ChatResponse, Usage, collect
from .worker import _api_error, _Done, _Event, _Job, _Worker

__all__ = ["_cancel_on_disconnect", "_collect", "_completion", "_release", "_stream"]


def _usage(done: _Done) -> dict[str, Any]:
    return Usage(done.prompt_tokens, done.completion_tokens, done.cached_tokens).to_openai()


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _sse(data: Mapping[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


async def _collect(first: _Event, job: _Job) -> tuple[ChatResponse, _Done]:
    """The whole answer, and the job's last event."""
    deltas: list[ChatDelta] = []
    event = first
    while not isinstance(event, _Done):
        if isinstance(event, BaseException):
            raise _api_error(event)
        deltas.append(event)
        event = await job.next()
    return collect(deltas), event


def _completion(head: dict[str, Any], answer: ChatResponse, done: _Done) -> dict[str, Any]:
    choice = answer.to_openai()
    message = choice["message"]
    if answer.tool_calls:  # ids unique across requests, as OpenAI's are
        message["tool_calls"] = [{**c, "id": _call_id()} for c in message["tool_calls"]]
    return {**head, "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": answer.finish_reason}],
            "usage": _usage(done)}


async def _stream(first: _Event, job: _Job, head: dict[str, Any], include_usage: bool,
                  release: Callable[[], Awaitable[None]]) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chunk format: ``reasoning_content`` and ``content``
    deltas, and each tool call as OpenAI streams it (id and name once the name is written,
    then fragments of the arguments JSON)."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        data = {**head, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}]}
        return _sse({**data, "usage": None} if include_usage else data)

    calls, finish, event = 0, "length", first
    streamed: set[int] = set()  # calls whose fragments went out (their whole call does not)
    try:
        yield chunk({"role": "assistant", "content": ""})
        while not isinstance(event, _Done):
            if isinstance(event, BaseException):
                yield _sse(_api_error(event).body())
                return
            if event.reasoning:
                yield chunk({"reasoning_content": event.reasoning})
            if event.content:
                yield chunk({"content": event.content})
            for piece in event.tool_call_deltas:  # the name first, then argument fragments
                if piece.name is not None:
                    streamed.add(piece.index)
                    yield chunk({"tool_calls": [{
                        "index": piece.index, "id": _call_id(), "type": "function",
                        "function": {"name": piece.name, "arguments": piece.arguments}}]})
                elif piece.arguments:
                    yield chunk({"tool_calls": [{"index": piece.index,
                                                 "function": {"arguments": piece.arguments}}]})
            for call in event.tool_calls:
                if calls not in streamed:
                    yield chunk({"tool_calls": [{**call.to_openai(), "index": calls,
                                                 "id": _call_id()}]})
                calls += 1
            finish = event.finish_reason or finish
            event = await job.next()
        if event.cancelled:
            return
        yield chunk({}, finish)
        if include_usage:
            yield _sse({**head, "object": "chat.completion.chunk", "choices": [],
                        "usage": _usage(event)})
        yield _sse("[DONE]")
    finally:
        await release()


async def _cancel_on_disconnect(receive: Receive, worker: _Worker, job: _Job) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    worker.cancel(job)


async def _release(worker: _Worker, job: _Job, watch: asyncio.Task[None], state: Any) -> None:
    """End a request's job: cancel it unless done, wait (shielded) until the worker has let
    go of it, and leave its token counts for the access log."""
    watch.cancel()
    if not job.ended:
        worker.cancel(job)
        with anyio.CancelScope(shield=True), anyio.move_on_after(30):
            while not job.ended:
                await job.next()
    state.usage = job.done

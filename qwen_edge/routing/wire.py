"""The OpenAI wire format, read defensively: server-sent events, completions, errors.

What some servers leave out (``usage``, ``logprobs``, the final ``data: [DONE]``) is
optional; a body that is not a chat completion is a ``RemoteUnavailableError`` (the request
was fine, the server could not answer), a tool call whose arguments are not JSON a
``ToolCallParseError``.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx

from ..chat import ToolCall
from ..errors import RemoteError, RemoteUnavailableError, ToolCallParseError
from ..types import ChatResponse, Usage

__all__: list[str] = []  # private to the routing package


def _sse_events(lines: Iterable[str]) -> Iterator[str]:
    """The ``data`` of each server-sent event.

    WHATWG rules: ``data:`` lines (one optional space after the colon) are joined by newlines
    and dispatched at a blank line; comments (``:``) and other fields (``event``, ``id``,
    ``retry``) are ignored. Data pending at the end of the body is dispatched too.
    """
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value.removeprefix(" "))
    if data:
        yield "\n".join(data)


def _decode_event(data: str, where: str) -> list[Any]:
    """The JSON chunks of one event, None for ``[DONE]``.

    Tolerates servers that end events with single newlines (several ``data:`` lines, each a
    chunk, then arrive as one event).
    """
    def decode(text: str) -> Any:
        return None if text.strip() == "[DONE]" else json.loads(text)

    try:
        return [decode(data)]
    except ValueError as exc:
        if "\n" in data:
            with contextlib.suppress(ValueError):
                return [decode(line) for line in data.split("\n") if line.strip()]
        raise RemoteUnavailableError(f"{where}: malformed JSON in a stream chunk ({exc})"
                                     ) from None


def _parse_chunk(chunk: Any, where: str) -> tuple[str, bool]:
    """(content delta, finished) of one ``chat.completion.chunk``."""
    if not isinstance(chunk, dict):
        raise RemoteUnavailableError(f"{where}: a stream chunk is not a JSON object")
    if chunk.get("error") is not None:
        msg = f"{where}: the server reported an error mid-stream: {_error_text(chunk)}"
        raise RemoteUnavailableError(msg)
    choices = chunk.get("choices") or []  # the usage-only chunk has none
    if not isinstance(choices, list):
        raise RemoteUnavailableError(f"{where}: a stream chunk's choices is not a list")
    text, finished = "", False
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str):
            text += content
        finished = finished or bool(choice.get("finish_reason"))
    return text, finished


def _decode_json(content: bytes, where: str, content_type: str = "") -> Any:
    try:
        return json.loads(content)
    except ValueError as exc:
        kind = f" ({content_type})" if content_type else ""
        msg = f"{where}: the response{kind} is not JSON ({exc})"
        raise RemoteUnavailableError(msg) from None


def _parse_completion(data: Any, where: str) -> ChatResponse:
    def malformed(why: str) -> RemoteUnavailableError:
        return RemoteUnavailableError(f"{where}: the response is not a chat completion ({why})")

    if not isinstance(data, dict):
        raise malformed("not a JSON object")
    if data.get("error") is not None and not data.get("choices"):
        raise malformed(f"error: {_error_text(data)}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise malformed("no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise malformed("choices[0] has no message")
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content is not None and not isinstance(content, str):
        raise malformed("message.content is not text")
    tool_calls = _parse_tool_calls(message.get("tool_calls"), malformed)
    finish = choice.get("finish_reason")
    if not isinstance(finish, str) or not finish:
        finish = "tool_calls" if tool_calls else "stop"
    reasoning = message.get("reasoning_content")  # vLLM / DeepSeek; "reasoning" in newer vLLM
    if reasoning is None:
        reasoning = message.get("reasoning")
    return ChatResponse(content=content or "", tool_calls=tool_calls, finish_reason=finish,
                        usage=_parse_usage(data.get("usage")),
                        logprobs=_parse_logprobs(choice.get("logprobs")), raw=data,
                        reasoning=reasoning if isinstance(reasoning, str) else None)


def _parse_tool_calls(calls: Any, malformed: Callable[[str], RemoteError]) -> list[ToolCall]:
    if not calls:
        return []
    if not isinstance(calls, list):
        raise malformed("tool_calls is not a list")
    parsed = []
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise malformed(f"tool_calls[{i}] has no function name")
        arguments = function.get("arguments") or {}  # type: ignore[union-attr]
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError as exc:
                msg = f"remote tool call {name!r}: arguments are not JSON ({exc})"
                raise ToolCallParseError(msg) from None
        if not isinstance(arguments, dict):
            msg = f"remote tool call {name!r}: arguments are not a JSON object"
            raise ToolCallParseError(msg)
        call_id = call.get("id")
        parsed.append(ToolCall(name, arguments, call_id if isinstance(call_id, str) else ""))
    return parsed


def _parse_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not (isinstance(prompt, int) and isinstance(completion, int)):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(prompt, completion, cached if isinstance(cached, int) else 0)


def _parse_logprobs(logprobs: Any) -> list[float]:
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return []
    values = [item.get("logprob") for item in content if isinstance(item, dict)]
    return [float(v) for v in values if isinstance(v, (int, float))]


def _error_text(data: Mapping[str, Any]) -> str:
    """The message of an OpenAI (``{"error": {"message"}}``), vLLM or FastAPI error body."""
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    for key in ("message", "detail"):
        if isinstance(data.get(key), str):
            return str(data[key])
    return json.dumps(data, ensure_ascii=False)[:300]


def _server_message(response: httpx.Response) -> str:
    try:
        data = json.loads(response.content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return _error_text(data)
    return response.text.strip()[:300] or "(empty body)"


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# -- validation ----------------------------------------------------------------------------



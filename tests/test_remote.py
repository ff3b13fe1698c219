"""qwen_edge.routing.remote.Remote: retries, backoff, the circuit breaker, error translation, SSE.

Unit tests run against ``httpx.MockTransport`` with a fake clock and a recording ``sleep``;
the ``network`` tests inject faults for real with ``FaultServer``, a stdlib HTTP server on
127.0.0.1 in a thread (``test_router.py`` reuses it).
"""

from __future__ import annotations

import email.utils
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")

from qwen_edge.errors import (
    ConfigError,
    RemoteError,
    RemoteResponseError,
    RemoteUnavailableError,
    ToolCallParseError,
)
from qwen_edge.routing.remote import BrokenStreamError, Remote

MESSAGES = [{"role": "user", "content": "Hi"}]
URL = "http://remote.test/v1"


def completion(text: str = "Hello!", **extra: Any) -> dict[str, Any]:
    """An OpenAI chat.completion body."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "big",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }
    body.update(extra)
    return body


def chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "big",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def sse(*events: dict[str, Any] | str, done: bool = True) -> bytes:
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


HELLO_STREAM = (chunk(""), chunk("Hel"), chunk("lo"), chunk(", wor"), chunk("ld"),
                chunk(finish="stop"))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """A MockTransport handler answering from a script (the last entry repeats)."""

    def __init__(self, *replies: httpx.Response | Exception | Callable[[httpx.Request], Any]
                 ) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply) and not isinstance(reply, httpx.Response):
            reply = reply(request)
        return reply  # type: ignore[return-value]

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


def make_remote(handler: Callable[[httpx.Request], httpx.Response], *,
                sleeps: list[float] | None = None, clock: FakeClock | None = None,
                **kwargs: Any) -> Remote:
    return Remote(URL, "big", transport=httpx.MockTransport(handler),
                  sleep=(sleeps.append if sleeps is not None else lambda _: None),
                  clock=clock or FakeClock(), **kwargs)


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


# -- requests and parsing -------------------------------------------------------------------


def test_chat_sends_an_openai_request_and_parses_the_answer() -> None:
    handler = Recorder(json_reply(200, completion("Hello!")))
    with make_remote(handler, api_key="sk-test") as remote:
        out = remote.chat(MESSAGES, temperature=0.2, max_tokens=5, seed=None, stop=["\n"])
    [request] = handler.requests
    assert request.method == "POST"
    assert str(request.url) == "http://remote.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert handler.bodies == [{"model": "big", "messages": MESSAGES, "temperature": 0.2,
                               "max_tokens": 5, "stop": ["\n"], "stream": False}]
    assert (out.text, out.finish_reason, out.tool_calls, out.logprobs) == ("Hello!", "stop", [],
                                                                           [])
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (9, 3)
    assert out.raw["id"] == "chatcmpl-1"
    assert remote.breaker_state == "closed"


# What vLLM, llama.cpp's server and DashScope's compatible mode send differs in details.
SERVER_SHAPES = {
    "vllm": ({**completion("A"), "choices": [{
        "index": 0, "message": {"role": "assistant", "content": "A", "reasoning_content": None},
        "logprobs": {"content": [{"token": "A", "logprob": -0.25, "top_logprobs": []}]},
        "finish_reason": "length", "stop_reason": None}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6,
                  "prompt_tokens_details": {"cached_tokens": 4}}},
        ("A", "length", (5, 1, 4), [-0.25])),
    "llama.cpp": ({**completion("B"), "timings": {"predicted_ms": 1.0}},
                  ("B", "stop", (9, 3, 0), [])),
    "dashscope": ({**completion("C"), "system_fingerprint": None,
                   "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9,
                             "prompt_tokens_details": None}},
                  ("C", "stop", (7, 2, 0), [])),
    "minimal": ({"choices": [{"message": {"content": "D"}}]}, ("D", "stop", None, [])),
    "content parts": ({"choices": [{"message": {"content": [{"type": "text", "text": "E"},
                                                            {"type": "text", "text": "F"}]},
                                    "finish_reason": "stop"}]}, ("EF", "stop", None, [])),
}


@pytest.mark.parametrize("shape", SERVER_SHAPES)
def test_chat_tolerates_each_server_shape(shape: str) -> None:
    body, (text, finish, usage, logprobs) = SERVER_SHAPES[shape]
    with make_remote(Recorder(json_reply(200, body))) as remote:
        out = remote.chat(MESSAGES)
    assert (out.text, out.finish_reason, out.logprobs) == (text, finish, logprobs)
    got = None if out.usage is None else (out.usage.prompt_tokens, out.usage.completion_tokens,
                                          out.usage.cached_tokens)
    assert got == usage


def test_tools_pass_through_and_tool_calls_parse() -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_time", "arguments": {"tz": "UTC"}}}]}
    body = completion(choices=[{"index": 0, "message": message, "finish_reason": "tool_calls"}])
    handler = Recorder(json_reply(200, body))
    fmt = {"type": "json_object"}
    with make_remote(handler) as remote:
        out = remote.chat(MESSAGES, tools=tools, tool_choice="auto", response_format=fmt)
    assert handler.bodies[0]["tools"] == tools
    assert handler.bodies[0]["tool_choice"] == "auto"
    assert handler.bodies[0]["response_format"] == fmt
    assert out.text == ""
    assert out.finish_reason == "tool_calls"
    assert [(c.name, c.arguments, c.id) for c in out.tool_calls] == [
        ("get_weather", {"city": "Oslo"}, "call_1"), ("get_time", {"tz": "UTC"}, "call_2")]


def test_tool_call_arguments_that_are_not_json_raise() -> None:
    message = {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}
    body = completion(choices=[{"index": 0, "message": message, "finish_reason": "tool_calls"}])
    with make_remote(Recorder(json_reply(200, body))) as remote, \
            pytest.raises(ToolCallParseError, match="'f': arguments are not JSON"):
        remote.chat(MESSAGES)
    assert remote.breaker_state == "closed"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"base_url": "ftp://host/v1"}, "base_url"),
    ({"base_url": "not a url"}, "base_url"),
    ({"model": ""}, "model"),
    ({"timeout": 0}, "timeout"),
    ({"max_retries": -1}, "max_retries"),
    ({"backoff_s": -0.1}, "backoff_s"),
    ({"breaker_threshold": 0}, "breaker_threshold"),
    ({"breaker_reset_s": float("nan")}, "breaker_reset_s"),
])
def test_bad_settings_are_config_errors(kwargs: dict[str, Any], field: str) -> None:
    args = {"base_url": URL, "model": "big", **kwargs}
    with pytest.raises(ConfigError, match=field):
        Remote(args.pop("base_url"), args.pop("model"), **args)


def test_unknown_options_and_closed_clients_are_config_errors() -> None:
    handler = Recorder(json_reply(200, completion()))
    remote = make_remote(handler)
    with pytest.raises(ConfigError, match=r"unknown remote option.*json_schema"):
        remote.chat(MESSAGES, json_schema={})
    with pytest.raises(ConfigError, match="messages"):
        remote.chat("Hi")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"unknown remote option.*grammar"):
        remote.stream_chat(MESSAGES, grammar="x")  # checked before the first delta is asked for
    remote.close()
    with pytest.raises(ConfigError, match="closed"):
        remote.chat(MESSAGES)
    assert handler.requests == []


def test_credentials_in_the_url_stay_out_of_messages() -> None:
    handler = Recorder(httpx.ConnectError("refused"))
    with Remote("http://user:s3cret@remote.test/v1", "big", max_retries=0,
                transport=httpx.MockTransport(handler)) as remote, \
            pytest.raises(RemoteUnavailableError) as info:
        remote.chat(MESSAGES)
    assert remote.base_url == URL
    assert "s3cret" not in str(info.value)
    assert str(handler.requests[0].url) == "http://user:s3cret@remote.test/v1/chat/completions"


def test_a_float_timeout_applies_to_every_phase() -> None:
    with make_remote(Recorder(json_reply(200, completion())), timeout=2.5) as remote:
        assert remote.timeout == httpx.Timeout(2.5)
    with make_remote(Recorder(json_reply(200, completion()))) as remote:
        assert (remote.timeout.connect, remote.timeout.read) == (5.0, 30.0)


# -- retries ---------------------------------------------------------------------------------


def test_5xx_is_retried_with_exponential_backoff_and_jitter() -> None:
    handler = Recorder(json_reply(503, {"error": {"message": "busy"}}),
                       json_reply(502, {"error": {"message": "bad gateway"}}),
                       json_reply(200, completion("ok")))
    sleeps: list[float] = []
    with make_remote(handler, sleeps=sleeps, backoff_s=0.2) as remote:
        assert remote.chat(MESSAGES).text == "ok"
    assert len(handler.requests) == 3
    assert 0.1 <= sleeps[0] <= 0.2
    assert 0.2 <= sleeps[1] <= 0.4


def test_retries_are_bounded_and_the_last_error_carries_the_servers_message() -> None:
    handler = Recorder(json_reply(500, {"error": {"message": "engine crashed", "type": "x"}}))
    sleeps: list[float] = []
    with make_remote(handler, sleeps=sleeps, max_retries=2, breaker_threshold=10) as remote, \
            pytest.raises(RemoteResponseError, match=r"HTTP 500.*engine crashed") as info:
        remote.chat(MESSAGES)
    assert info.value.status == 500
    assert len(handler.requests) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_4xx_other_than_429_is_never_retried(status: int) -> None:
    handler = Recorder(json_reply(status, {"error": {"message": f"no ({status})"}}))
    sleeps: list[float] = []
    with make_remote(handler, sleeps=sleeps) as remote, \
            pytest.raises(RemoteResponseError, match=rf"HTTP {status}.*no \({status}\)") as info:
        remote.chat(MESSAGES)
    assert info.value.status == status
    assert len(handler.requests) == 1
    assert sleeps == []
    assert remote.breaker_state == "closed"


def test_429_honours_retry_after_seconds_and_dates() -> None:
    date = email.utils.formatdate(time.time() + 3, usegmt=True)
    handler = Recorder(json_reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "2"}),
                       json_reply(429, {}, {"Retry-After": date}),
                       json_reply(200, completion("ok")))
    sleeps: list[float] = []
    with make_remote(handler, sleeps=sleeps, max_retries=3) as remote:
        assert remote.chat(MESSAGES).text == "ok"
    assert sleeps[0] == 2.0
    assert 1.0 <= sleeps[1] <= 3.0  # an HTTP date, second resolution


def test_a_retry_after_beyond_the_cap_is_not_waited_for() -> None:
    handler = Recorder(json_reply(429, {"error": {"message": "quota"}}, {"Retry-After": "3600"}))
    sleeps: list[float] = []
    with make_remote(handler, sleeps=sleeps, max_retry_after_s=10) as remote, \
            pytest.raises(RemoteResponseError, match=r"quota.*Retry-After 3600 s") as info:
        remote.chat(MESSAGES)
    assert info.value.status == 429
    assert len(handler.requests) == 1
    assert sleeps == []


def test_connection_errors_are_retried_then_translated() -> None:
    handler = Recorder(httpx.ConnectError("[Errno 111] Connection refused"))
    sleeps: list[float] = []
    with make_remote(handler, sleeps=sleeps, breaker_threshold=10) as remote, \
            pytest.raises(RemoteUnavailableError, match=r"cannot connect.*refused") as info:
        remote.chat(MESSAGES)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(handler.requests) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(("error", "message"), [
    (httpx.ReadTimeout("timed out"), "timed out waiting for the server"),
    (httpx.ConnectTimeout("timed out"), "timed out connecting"),
    (httpx.PoolTimeout("no connection"), "timed out waiting for a free connection"),
])
def test_timeouts_are_translated_and_not_retried(error: Exception, message: str) -> None:
    handler = Recorder(error)
    with make_remote(handler) as remote, pytest.raises(RemoteUnavailableError, match=message):
        remote.chat(MESSAGES)
    assert len(handler.requests) == 1


@pytest.mark.parametrize(("reply", "message"), [
    (httpx.Response(200, text="<html>captive portal</html>",
                    headers={"content-type": "text/html"}), r"\(text/html\) is not JSON"),
    (httpx.Response(200, content=b'{"choices": [{"mess'), "is not JSON"),
    (json_reply(200, ["not", "an", "object"]), "not a JSON object"),
    (json_reply(200, {"error": {"message": "overloaded"}}), "error: overloaded"),
    (json_reply(200, {"choices": []}), "no choices"),
    (json_reply(200, {"choices": [{"text": "legacy"}]}), "has no message"),
])
def test_a_2xx_that_is_not_a_completion_is_unavailable(reply: httpx.Response,
                                                       message: str) -> None:
    handler = Recorder(reply)
    with make_remote(handler) as remote, pytest.raises(RemoteUnavailableError, match=message):
        remote.chat(MESSAGES)
    assert len(handler.requests) == 1  # the same server would send the same body


@pytest.mark.parametrize(("body", "expected"), [
    ({"error": {"message": "openai style", "type": "invalid_request_error"}}, "openai style"),
    ({"object": "error", "message": "vllm style", "type": "BadRequestError"}, "vllm style"),
    ({"detail": "fastapi style"}, "fastapi style"),
    ({"error": "plain string"}, "plain string"),
    ("upstream connect error", "upstream connect error"),
    ("", "(empty body)"),
])
def test_error_messages_come_from_the_server(body: Any, expected: str) -> None:
    reply = (json_reply(400, body) if isinstance(body, dict)
             else httpx.Response(400, text=body))
    with make_remote(Recorder(reply)) as remote, pytest.raises(RemoteResponseError) as info:
        remote.chat(MESSAGES)
    assert str(info.value) == f"{URL}: HTTP 400 Bad Request: {expected}"


# -- circuit breaker --------------------------------------------------------------------------


def test_breaker_opens_fails_fast_then_half_opens_and_closes() -> None:
    ok = json_reply(200, completion("ok"))
    down = json_reply(503, {"error": {"message": "down"}})
    script = [down, down, down, down, ok, down]
    calls: list[int] = []

    def handler(_request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return script[len(calls) - 1]

    clock = FakeClock()
    with make_remote(handler, clock=clock, max_retries=0, breaker_threshold=3,
                     breaker_reset_s=30) as remote:
        for _ in range(3):
            with pytest.raises(RemoteResponseError):
                remote.chat(MESSAGES)
        assert remote.breaker_state == "open"
        assert len(calls) == 3
        for _ in range(5):  # open: nothing is sent
            with pytest.raises(RemoteUnavailableError, match=r"circuit open after 3 .*in 30\.0 s"):
                remote.chat(MESSAGES)
        clock.advance(29.9)
        with pytest.raises(RemoteUnavailableError, match="circuit open"):
            remote.chat(MESSAGES)
        assert len(calls) == 3
        clock.advance(0.1)
        assert remote.breaker_state == "half-open"
        with pytest.raises(RemoteResponseError):  # the trial fails: open again at once
            remote.chat(MESSAGES)
        assert len(calls) == 4
        assert remote.breaker_state == "open"
        with pytest.raises(RemoteUnavailableError, match="circuit open after 4"):
            remote.chat(MESSAGES)
        clock.advance(30)
        assert remote.chat(MESSAGES).text == "ok"  # the trial succeeds: closed
        assert remote.breaker_state == "closed"
        assert len(calls) == 5
        with pytest.raises(RemoteResponseError):  # one failure does not reopen it
            remote.chat(MESSAGES)
        assert remote.breaker_state == "closed"


def test_a_dead_server_costs_threshold_attempts_not_one_per_request() -> None:
    handler = Recorder(httpx.ReadTimeout("timed out"))
    with make_remote(handler, breaker_threshold=3) as remote:
        for _ in range(20):
            with pytest.raises(RemoteUnavailableError):
                remote.chat(MESSAGES)
    assert len(handler.requests) == 3


def test_the_breaker_stops_our_own_retries_and_reports_the_real_error() -> None:
    handler = Recorder(httpx.ConnectError("[Errno 111] Connection refused"))
    with make_remote(handler, max_retries=5, breaker_threshold=2) as remote:
        with pytest.raises(RemoteUnavailableError, match="cannot connect"):
            remote.chat(MESSAGES)
        assert len(handler.requests) == 2
        with pytest.raises(RemoteUnavailableError, match="circuit open"):
            remote.chat(MESSAGES)
    assert len(handler.requests) == 2


def test_client_errors_do_not_open_the_breaker() -> None:
    handler = Recorder(json_reply(400, {"error": {"message": "bad"}}))
    with make_remote(handler, breaker_threshold=2) as remote:
        for _ in range(5):
            with pytest.raises(RemoteResponseError):
                remote.chat(MESSAGES)
        assert remote.breaker_state == "closed"
    assert len(handler.requests) == 5


def test_only_one_half_open_trial_at_a_time() -> None:
    entered, release = threading.Event(), threading.Event()
    responses = iter([json_reply(503, {}), None])

    def handler(_request: httpx.Request) -> httpx.Response:
        reply = next(responses)
        if reply is not None:
            return reply
        entered.set()
        release.wait(10)
        return json_reply(200, completion("trial"))

    clock = FakeClock()
    results: list[str] = []
    with make_remote(handler, clock=clock, max_retries=0, breaker_threshold=1,
                     breaker_reset_s=5) as remote:
        with pytest.raises(RemoteResponseError):
            remote.chat(MESSAGES)
        clock.advance(5)
        trial = threading.Thread(target=lambda: results.append(remote.chat(MESSAGES).text))
        trial.start()
        assert entered.wait(10)
        with pytest.raises(RemoteUnavailableError, match="trial request in flight"):
            remote.chat(MESSAGES)
        release.set()
        trial.join(10)
        assert results == ["trial"]
        assert remote.breaker_state == "closed"


# -- streaming --------------------------------------------------------------------------------


def split_stream(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.mark.parametrize("size", [1, 2, 5, 64, 10_000])
def test_sse_parsing_survives_any_split(size: int) -> None:
    body = (b": keep-alive comment\r\n\r\n"
            b"event: message\r\nid: 1\r\n" + sse(chunk("h\u00e9llo"), done=False).replace(
                b"\n\n", b"\r\n\r\n")
            + b"data:" + json.dumps(chunk(" \u4e16\u754c")).encode() + b"\n\n"  # no space
            + sse({"choices": [], "usage": {"prompt_tokens": 1}}, chunk("!", "stop")))
    handler = Recorder(lambda _: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=split_stream(body, size)))
    with make_remote(handler) as remote:
        deltas = list(remote.stream_chat(MESSAGES, max_tokens=3))
    assert deltas == ["h\u00e9llo", " \u4e16\u754c", "!"]
    assert handler.bodies[0]["stream"] is True
    assert handler.bodies[0]["max_tokens"] == 3


@pytest.mark.parametrize(("body", "expected"), [
    (sse(*HELLO_STREAM), "Hello, world"),
    (sse(*HELLO_STREAM, done=False), "Hello, world"),  # older llama.cpp: no [DONE]
    (sse(*HELLO_STREAM).replace(b"\n\n", b"\n"), "Hello, world"),  # single newlines
    (b"data: " + json.dumps(chunk("x", "stop")).encode() + b"\ndata: [DONE]", "x"),  # no blank
])
def test_sse_tolerates_server_variants(body: bytes, expected: str) -> None:
    with make_remote(Recorder(httpx.Response(200, content=body))) as remote:
        assert "".join(remote.stream_chat(MESSAGES)) == expected


def broken_stream(*events: dict[str, Any], error: Exception | None) -> Iterator[bytes]:
    yield sse(*events, done=False)
    if error is not None:
        raise error


@pytest.mark.parametrize(("content", "message"), [
    (lambda: broken_stream(chunk("Hel"), chunk("lo"), error=httpx.ReadError("reset")),
     "broke after 5 characters: the connection broke while reading"),
    (lambda: broken_stream(chunk("Hel"), chunk("lo"), error=httpx.RemoteProtocolError(
        "peer closed connection without sending complete message body")),
     "broke after 5 characters: the server closed the connection"),
    (lambda: broken_stream(chunk("Hel"), chunk("lo"), error=httpx.ReadTimeout("timed out")),
     "timed out waiting for the server"),
    (lambda: broken_stream(chunk("Hel"), chunk("lo"), error=None),
     "ended after 5 characters without a finish_reason or \\[DONE\\]"),
    (lambda: iter([sse(chunk("Hel"), chunk("lo"), done=False), b"data: {oops\n\n"]),
     "malformed JSON in a stream chunk"),
    (lambda: iter([sse(chunk("Hel"), chunk("lo"), {"error": {"message": "OOM"}})]),
     "error mid-stream: OOM"),
])
def test_a_stream_broken_midway_keeps_the_partial_text(content: Callable[[], Iterator[bytes]],
                                                       message: str) -> None:
    handler = Recorder(lambda _: httpx.Response(200, content=content()))
    received: list[str] = []
    with make_remote(handler, breaker_threshold=1) as remote:
        with pytest.raises(BrokenStreamError, match=message) as info:
            received.extend(remote.stream_chat(MESSAGES))
        assert isinstance(info.value, RemoteUnavailableError)
        assert received == ["Hel", "lo"]
        assert info.value.partial == "Hello"
        assert remote.breaker_state == "open"  # a broken stream is a failure
    assert len(handler.requests) == 1  # never retried once text was shown


def test_a_connection_lost_after_the_final_chunk_is_a_complete_answer() -> None:
    content = lambda: broken_stream(*HELLO_STREAM, error=httpx.ReadError("reset"))
    with make_remote(Recorder(lambda _: httpx.Response(200, content=content()))) as remote:
        assert "".join(remote.stream_chat(MESSAGES)) == "Hello, world"
        assert remote.breaker_state == "closed"


def test_a_stream_is_retried_before_it_starts() -> None:
    handler = Recorder(json_reply(503, {}), httpx.ConnectError("refused"),
                       lambda _: httpx.Response(200, content=sse(*HELLO_STREAM)))
    sleeps: list[float] = []
    with make_remote(handler, sleeps=sleeps, breaker_threshold=10) as remote:
        assert "".join(remote.stream_chat(MESSAGES)) == "Hello, world"
    assert len(handler.requests) == 3
    assert len(sleeps) == 2


def test_a_stream_error_status_is_a_response_error() -> None:
    handler = Recorder(json_reply(401, {"error": {"message": "bad key"}}))
    with make_remote(handler) as remote, \
            pytest.raises(RemoteResponseError, match="bad key") as info:
        list(remote.stream_chat(MESSAGES))
    assert info.value.status == 401


# -- real sockets -------------------------------------------------------------------------------


class FaultServer:
    """An HTTP/1.1 server on 127.0.0.1 whose every POST is answered by ``behaviour``.

    ``behaviour(handler, body)`` writes the response (or stalls, or kills the connection);
    ``requests`` collects the decoded request bodies, ``raw`` the request bytes.
    """

    def __init__(self, behaviour: Callable[[BaseHTTPRequestHandler, dict[str, Any]], None],
                 ) -> None:
        self.requests: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.release = threading.Event()  # frees stalled handlers at exit
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.raw.append(raw)
                server.requests.append(json.loads(raw))
                behaviour(self, server.requests[-1])

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a killed connection is the point of the test

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)

    def __enter__(self) -> FaultServer:  # noqa: PYI034
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def reply_json(status: int, body: Any) -> Callable[[BaseHTTPRequestHandler, Any], None]:
    def behaviour(handler: BaseHTTPRequestHandler, _request: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return behaviour


def stall(server_release: Callable[[], threading.Event]) -> Callable[..., None]:
    def behaviour(handler: BaseHTTPRequestHandler, _request: Any) -> None:
        server_release().wait(30)
        handler.close_connection = True

    return behaviour


def stream_then(kill: str, events: tuple[dict[str, Any], ...] = HELLO_STREAM[:4],
                ) -> Callable[[BaseHTTPRequestHandler, Any], None]:
    """Send ``events`` as SSE, then: "eof" (close a close-delimited body), "chunked" (close
    mid chunked body), "reset" (RST), or "complete" (finish properly)."""

    def behaviour(handler: BaseHTTPRequestHandler, _request: Any) -> None:
        chunked = kill in ("chunked", "reset", "complete")
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Connection", "close")
        handler.end_headers()
        for event in (*events, "[DONE]") if kill == "complete" else events:
            data = (f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n"
                    ).encode()
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            handler.wfile.flush()
            time.sleep(0.01)
        if kill == "complete":
            handler.wfile.write(b"0\r\n\r\n")
            return
        if kill == "reset":  # SO_LINGER 0: close() sends RST instead of FIN
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                          struct.pack("ii", 1, 0))
        handler.connection.shutdown(socket.SHUT_RDWR) if kill != "reset" else None
        handler.connection.close()
        handler.close_connection = True

    return behaviour


def free_port() -> int:
    """A port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.network
def test_real_refused_connection() -> None:
    with Remote(f"http://127.0.0.1:{free_port()}/v1", "big", max_retries=1,
                backoff_s=0.01) as remote, \
            pytest.raises(RemoteUnavailableError, match=r"cannot connect.*refused"):
        remote.chat(MESSAGES)


@pytest.mark.network
def test_real_stall_times_out_once_within_the_configured_time() -> None:
    server = FaultServer(stall(lambda: server.release))
    with server, Remote(server.url, "big", timeout=0.5) as remote:
        start = time.monotonic()
        with pytest.raises(RemoteUnavailableError, match="timed out waiting for the server"):
            remote.chat(MESSAGES)
        elapsed = time.monotonic() - start
    assert len(server.requests) == 1  # one read timeout, not retried
    # not earlier than the configured timeout; no upper bound: a loaded machine is slower
    assert elapsed > 0.4


@pytest.mark.network
def test_real_500_is_retried_then_reported() -> None:
    server = FaultServer(reply_json(500, {"error": {"message": "boom"}}))
    with server, Remote(server.url, "big", max_retries=2, backoff_s=0.01) as remote, \
            pytest.raises(RemoteResponseError, match=r"HTTP 500.*boom") as info:
        remote.chat(MESSAGES)
    assert info.value.status == 500
    assert len(server.requests) == 3


@pytest.mark.network
def test_real_malformed_json() -> None:
    server = FaultServer(reply_json(200, b"{\"choices\": [tru"))
    with server, Remote(server.url, "big") as remote, \
            pytest.raises(RemoteUnavailableError, match="not JSON"):
        remote.chat(MESSAGES)
    assert len(server.requests) == 1


@pytest.mark.network
@pytest.mark.parametrize("kill", ["eof", "chunked", "reset"])
def test_real_server_killed_mid_stream(kill: str) -> None:
    server = FaultServer(stream_then(kill))
    received: list[str] = []
    with server, Remote(server.url, "big", timeout=5) as remote, \
            pytest.raises(BrokenStreamError) as info:
        received.extend(remote.stream_chat(MESSAGES))
    assert received == ["Hel", "lo", ", wor"]
    assert info.value.partial == "Hello, wor"


@pytest.mark.network
def test_real_complete_stream() -> None:
    server = FaultServer(stream_then("complete", HELLO_STREAM))
    with server, Remote(server.url, "big") as remote:
        assert "".join(remote.stream_chat(MESSAGES)) == "Hello, world"
        assert "".join(remote.stream_chat(MESSAGES)) == "Hello, world"  # keep-alive reuse


def test_remote_errors_are_one_hierarchy() -> None:
    assert issubclass(BrokenStreamError, RemoteUnavailableError)
    assert issubclass(RemoteUnavailableError, RemoteError)

"""qwen_edge.routing: routing rules, cascade, redaction, fallback, audit, calibration.

The local model is the tiny random-weight package (greedy, so every local answer has a
reference: ``model.generate`` with the same options). The remote is ``Remote`` over
``httpx.MockTransport`` (requests captured) or, in ``network`` tests, a real socket: the
stdlib fault servers of ``test_remote.py`` and ``qwen-edge serve`` as a subprocess.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")

from test_remote import (
    HELLO_STREAM,
    FaultServer,
    chunk,
    completion,
    free_port,
    reply_json,
    sse,
    stall,
    stream_then,
)

import qwen_edge
from qwen_edge.agents.audit import AuditLog
from qwen_edge.errors import (
    ConfigError,
    ContextLengthError,
    RemoteResponseError,
)
from qwen_edge.model import Completion, Session, Timings, Usage
from qwen_edge.routing import (
    DEFAULT_REDACT,
    RoutedStream,
    Router,
    RoutingPolicy,
    calibrate,
    redact_text,
    roc_auc,
    score_confidence,
)
from qwen_edge.routing.remote import Remote

GREEDY: dict[str, Any] = {"max_tokens": 8, "temperature": 0}
REMOTE_TEXT = "REMOTE ANSWER"
RULES_ONLY = {"cascade": False}


@pytest.fixture(scope="module")
def tiny(package: Callable[..., Path]) -> qwen_edge.Model:
    return qwen_edge.load(package("tiny-qwen2", "int4"), threads=1)


class FakeServer:
    """A MockTransport handler: an OpenAI server answering REMOTE_TEXT (or ``fail``)."""

    def __init__(self, fail: Callable[[dict[str, Any]], httpx.Response] | None = None) -> None:
        self.fail = fail
        self.raw: list[bytes] = []

    @property
    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.raw]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.raw.append(request.content)
        body = json.loads(request.content)
        if self.fail is not None:
            return self.fail(body)
        if body["stream"]:
            return httpx.Response(200, content=sse(chunk("REMOTE"), chunk(" ANSWER", "stop")))
        return httpx.Response(200, json=completion(REMOTE_TEXT))


def make_remote(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> Remote:
    return Remote("http://remote.test/v1", "big", transport=httpx.MockTransport(handler),
                  sleep=lambda _: None, **kwargs)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def remote(server: FakeServer) -> Iterator[Remote]:
    with make_remote(server) as client:
        yield client


def run(router: Router, method: str, prompt: Any, **kwargs: Any) -> tuple[str, Any]:
    """(text, result) of generate, or of stream (the RoutedStream, fully consumed)."""
    if method == "generate":
        out = router.generate(prompt, **kwargs)
        return out.text, out
    stream = router.stream(prompt, **kwargs)
    return "".join(stream), stream


def local_text(model: qwen_edge.Model, prompt: Any, **options: Any) -> str:
    return model.generate(prompt, **options).text


# -- routing rules ----------------------------------------------------------------------------

SYSTEM = {"role": "system", "content": "You review contracts."}
KEYWORDS = {**RULES_ONLY, "keywords": (r"\bcontracts?\b",)}
ROUTES: list[tuple[str, dict[str, Any], Any, dict[str, Any], str, str]] = [
    ("no rule", RULES_ONLY, "Hello there", {}, "local", r"^no routing rule matched$"),
    ("hard", RULES_ONLY, "Hello there", {"hard": True}, "remote", r"^hard=True$"),
    ("keyword", KEYWORDS, "Review this CONTRACT", {}, "remote",
     r"^keyword /\\bcontracts\?\\b/ matched$"),
    ("keyword, word boundary", KEYWORDS, "Call the contractor", {}, "local", "no routing rule"),
    ("keyword in the system prompt only", KEYWORDS,
     [SYSTEM, {"role": "user", "content": "Hi"}], {}, "local", "no routing rule"),
    ("keyword in an earlier turn only", KEYWORDS,
     [{"role": "user", "content": "A contract?"}, {"role": "assistant", "content": "Yes."},
      {"role": "user", "content": "Thanks"}], {}, "local", "no routing rule"),
    ("keyword in the latest user message", KEYWORDS,
     [SYSTEM, {"role": "user", "content": "Check my contract"}], {}, "remote", "keyword"),
    ("script", {**RULES_ONLY, "scripts": ("han",)}, "请把这份合同翻译成英文", {}, "remote",
     r"^100% of the letters are Han$"),
    ("script in the minority", {**RULES_ONLY, "scripts": ("Han",)},
     "Translate 合同 into English please", {}, "local", "no routing rule"),
    ("japanese scripts", {**RULES_ONLY, "scripts": ("Han", "Hiragana", "Katakana")},
     "この契約書をチェックしてください", {}, "remote", "Han/Hiragana/Katakana"),
    ("long prompt", {**RULES_ONLY, "min_prompt_tokens": 20}, "word " * 30, {}, "remote",
     r"^prompt has \d+ >= 20 tokens$"),
    ("short prompt", {**RULES_ONLY, "min_prompt_tokens": 20}, "Hi", {}, "local",
     "no routing rule"),
    ("cascade, low confidence", {"threshold": 1.0}, "Hello", {}, "remote",
     r"^confidence 0\.\d{3} < threshold 1$"),
    ("cascade, high enough", {"threshold": 0.0}, "Hello", {}, "local",
     r"^confidence 0\.\d{3} >= threshold 0$"),
    ("local_only policy", {**RULES_ONLY, "local_only": True}, "Hello", {"hard": True}, "local",
     r"^local_only \(would escalate: hard=True\)$"),
    ("local_only call", {**RULES_ONLY, "keywords": ("hello",)}, "Hello", {"local_only": True},
     "local", r"^local_only \(would escalate: keyword /hello/ matched\)$"),
    ("local_only cascade", {"threshold": 1.0}, "Hello", {"local_only": True}, "local",
     r"^local_only \(would escalate: confidence"),
    ("regex stays local", RULES_ONLY, "Hello", {"hard": True, "regex": "[a-z]{1,5}"}, "local",
     r"^regex/grammar constraints run only on the device \(would escalate: hard=True\)$"),
    ("token ids stay local", RULES_ONLY, [9707, 1879, 11, 1246], {"hard": True}, "local",
     r"^token-id prompts are not sent"),
]


@pytest.mark.parametrize("method", ["generate", "stream"])
@pytest.mark.parametrize(("policy", "prompt", "kwargs", "route", "reason"),
                         [case[1:] for case in ROUTES], ids=[case[0] for case in ROUTES])
def test_routing_rules(tiny: qwen_edge.Model, server: FakeServer, remote: Remote, method: str,
                       policy: dict[str, Any], prompt: Any, kwargs: dict[str, Any], route: str,
                       reason: str) -> None:
    router = Router(tiny, remote, RoutingPolicy(**policy))
    text, out = run(router, method, prompt, **GREEDY, **kwargs)
    assert out.route == route
    assert re.search(reason, out.route_reason), out.route_reason
    options = {k: v for k, v in kwargs.items() if k not in ("hard", "local_only")}
    if route == "remote":
        assert text == REMOTE_TEXT
        assert len(server.requests) == 1
    else:
        assert text == local_text(tiny, prompt, **GREEDY, **options)
        assert server.requests == []
        assert 0 <= out.confidence <= 1


def test_a_prompt_that_does_not_fit_goes_remote(package: Callable[..., Path], server: FakeServer,
                                                remote: Remote) -> None:
    small = qwen_edge.load(package("tiny-qwen2", "int4"), threads=1, max_context=64)
    router = Router(small, remote, RoutingPolicy(**RULES_ONLY))
    assert router.generate("Hi", **GREEDY).route == "local"
    long = "word " * 60
    out = router.generate(long, **GREEDY)
    assert out.route == "remote"
    assert out.text == REMOTE_TEXT
    n = len(small.encode_prompt(long))
    assert out.route_reason == (f"prompt ({n} tokens) + max_tokens (8) exceed the local context "
                                "(64 tokens)")
    # max_tokens counts: a short prompt asking for more than the context holds goes remote
    assert router.generate("Hi", max_tokens=100, temperature=0).route == "remote"
    # max_tokens=None means "until the context is full": local while the prompt fits
    assert router.generate("Hi", max_tokens=None, temperature=0).route == "local"
    # the server's options: resolved max_tokens, nothing device-only
    assert server.requests[0]["max_tokens"] == 8
    assert server.requests[0]["temperature"] == 0
    # no server: what fits is answered locally, what does not cannot be
    alone = Router(small, None, RoutingPolicy(**RULES_ONLY))
    fallback = alone.generate("Hi", max_tokens=100, temperature=0)
    assert fallback.route == "local-fallback"
    assert fallback.finish_reason == "length"
    with pytest.raises(ContextLengthError):
        alone.generate("word " * 80, **GREEDY)


@pytest.mark.parametrize("method", ["generate", "stream"])
@pytest.mark.parametrize(("policy", "kwargs", "why"), [
    (RULES_ONLY, {"hard": True}, "hard=True"),
    ({"threshold": 1.0}, {}, r"confidence 0\.\d{3} < threshold 1"),
])
def test_no_server_answers_locally_and_says_why(tiny: qwen_edge.Model, method: str,
                                                policy: dict[str, Any], kwargs: dict[str, Any],
                                                why: str) -> None:
    router = Router(tiny, None, RoutingPolicy(**policy))
    text, out = run(router, method, "Hello", **GREEDY, **kwargs)
    assert out.route == "local-fallback"
    assert re.fullmatch(rf"would escalate \({why}\); no server configured", out.route_reason)
    assert text == local_text(tiny, "Hello", **GREEDY)


def test_json_schema_is_sent_as_response_format(tiny: qwen_edge.Model, server: FakeServer,
                                                remote: Remote) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    router = Router(tiny, remote, RoutingPolicy(**RULES_ONLY))
    router.generate("Hi", hard=True, json_schema=schema, stop="\n", speculative_tokens=2,
                    **GREEDY)
    [body] = server.requests
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "response", "schema": schema}}
    assert body["stop"] == ["\n"]
    assert body["messages"] == [{"role": "user", "content": "Hi"}]
    assert "json_schema" not in body
    assert "speculative_tokens" not in body


def test_unknown_options_fail_before_anything_is_sent(tiny: qwen_edge.Model, server: FakeServer,
                                                      remote: Remote) -> None:
    router = Router(tiny, remote)
    with pytest.raises(ConfigError, match="unknown generation option"):
        router.generate("Hi", hard=True, tools=[])
    with pytest.raises(ConfigError, match="unknown generation option"):
        router.stream("Hi", hard=True, temprature=0)
    with pytest.raises(ConfigError, match="hard"):
        router.generate("Hi", hard="yes")  # type: ignore[arg-type]
    assert server.requests == []


# -- availability -------------------------------------------------------------------------------

FAILURES: dict[str, tuple[Callable[[dict[str, Any]], httpx.Response], str]] = {
    "refused": (lambda _: (_ for _ in ()).throw(httpx.ConnectError("Connection refused")),
                r"^remote unavailable: .*cannot connect \(Connection refused\)"),
    "timeout": (lambda _: (_ for _ in ()).throw(httpx.ReadTimeout("timed out")),
                r"^remote unavailable: .*timed out waiting for the server"),
    "503": (lambda _: httpx.Response(503, json={"error": {"message": "overloaded"}}),
            r"^remote error: .*HTTP 503 Service Unavailable: overloaded"),
    "429": (lambda _: httpx.Response(429, json={"error": {"message": "rate"}}),
            r"^remote error: .*HTTP 429"),
    "malformed JSON": (lambda _: httpx.Response(200, text="<html>"),
                       r"^remote unavailable: .*is not JSON"),
}


@pytest.mark.parametrize("cascade", [False, True], ids=["rule", "cascade"])
@pytest.mark.parametrize("failure", FAILURES)
def test_remote_failures_fall_back_to_the_local_answer(tiny: qwen_edge.Model, failure: str,
                                                       cascade: bool, monkeypatch: Any) -> None:
    fail, reason = FAILURES[failure]
    server = FakeServer(fail)
    messages = [{"role": "user", "content": "Hello"}]
    before = copy.deepcopy(messages)
    calls: list[int] = []
    stream_chunks = Session.stream_chunks

    def counting(self: Session, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return stream_chunks(self, *args, **kwargs)

    monkeypatch.setattr(Session, "stream_chunks", counting)
    policy = RoutingPolicy(threshold=1.0) if cascade else RoutingPolicy(**RULES_ONLY)
    with make_remote(server) as remote:
        out = Router(tiny, remote, policy).generate(messages, hard=not cascade, **GREEDY)
    assert len(calls) == 1  # a cascade's local answer is reused, not generated again
    assert out.route == "local-fallback"
    assert re.search(reason, out.route_reason), out.route_reason
    assert out.text == tiny.generate(messages, **GREEDY).text  # nothing lost
    assert messages == before  # the caller's conversation is untouched
    assert 0 <= out.confidence <= 1


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_raised_not_hidden(tiny: qwen_edge.Model, status: int) -> None:
    server = FakeServer(lambda _: httpx.Response(status, json={"error": {"message": "no"}}))
    with make_remote(server) as remote, pytest.raises(RemoteResponseError) as info:
        Router(tiny, remote, RoutingPolicy(**RULES_ONLY)).generate("Hi", hard=True, **GREEDY)
    assert info.value.status == status


def test_an_open_breaker_falls_back_without_sending(tiny: qwen_edge.Model) -> None:
    server = FakeServer(lambda _: httpx.Response(503, json={}))
    with make_remote(server, max_retries=0, breaker_threshold=2) as remote:
        router = Router(tiny, remote, RoutingPolicy(**RULES_ONLY))
        reasons = [router.generate("Hi", hard=True, **GREEDY).route_reason for _ in range(5)]
    assert len(server.requests) == 2
    assert all("circuit open" in r for r in reasons[2:]), reasons


def test_stream_from_the_remote_sets_the_route_first(tiny: qwen_edge.Model,
                                                     remote: Remote) -> None:
    stream = Router(tiny, remote).stream("Hi", hard=True, **GREEDY)
    assert isinstance(stream, RoutedStream)
    assert stream.route is None  # nothing happens until it is iterated
    assert next(stream) == "REMOTE"
    assert (stream.route, stream.route_reason, stream.confidence) == ("remote", "hard=True", None)
    assert list(stream) == [" ANSWER"]


def test_stream_broken_midway_continues_locally(tiny: qwen_edge.Model) -> None:
    def broken(_body: dict[str, Any]) -> httpx.Response:
        def content() -> Iterator[bytes]:
            yield sse(*HELLO_STREAM[:4], done=False)
            raise httpx.ReadError("connection reset")
        return httpx.Response(200, content=content())

    messages = [{"role": "user", "content": "Hello"}]
    with make_remote(FakeServer(broken)) as remote:
        stream = Router(tiny, remote, RoutingPolicy(**RULES_ONLY)).stream(messages, hard=True,
                                                                          **GREEDY)
        deltas = list(stream)
    assert deltas[:3] == ["Hel", "lo", ", wor"]
    assert stream.route == "local-fallback"
    assert re.fullmatch(r"remote unavailable: .*connection reset.*; continued locally after 10 "
                        r"characters", stream.route_reason), stream.route_reason
    ids = np.concatenate([tiny.encode_prompt(messages),
                          tiny.tokenizer.encode("Hello, wor", special=False)])
    continuation = tiny.generate(ids, max_tokens=8 - 3, temperature=0).text
    assert "".join(deltas) == "Hello, wor" + continuation


def test_stream_failing_before_it_starts_is_answered_locally(tiny: qwen_edge.Model) -> None:
    server = FakeServer(lambda _: httpx.Response(502, json={}))
    with make_remote(server, breaker_threshold=100) as remote:
        for policy in (RoutingPolicy(**RULES_ONLY), RoutingPolicy(threshold=1.0)):
            stream = Router(tiny, remote, policy).stream("Hello", hard=True, **GREEDY)
            assert "".join(stream) == local_text(tiny, "Hello", **GREEDY)
            assert stream.route == "local-fallback"
            assert stream.route_reason.startswith("remote error: ")


def test_cascade_stream_shows_nothing_before_it_is_scored(tiny: qwen_edge.Model,
                                                          remote: Remote) -> None:
    stream = Router(tiny, remote, RoutingPolicy(threshold=1.0)).stream("Hello", **GREEDY)
    assert list(stream) == ["REMOTE", " ANSWER"]  # no local delta leaked before escalating
    assert stream.route == "remote"
    assert 0 <= stream.confidence < 1


def test_audit_records_escalations_and_fallbacks_without_content(tiny: qwen_edge.Model,
                                                                 tmp_path: Path) -> None:
    secret = "Call me at +41 44 668 18 00 about the merger"
    with AuditLog(tmp_path / "audit.db") as audit:
        with make_remote(FakeServer()) as ok:
            Router(tiny, ok, audit=audit).generate(secret, hard=True, **GREEDY)
        down = FakeServer(lambda _: httpx.Response(500, json={"error": {"message": "x"}}))
        with make_remote(down) as remote:
            Router(tiny, remote, audit=audit).generate(secret, hard=True, **GREEDY)
        Router(tiny, None, audit=audit).generate(secret, hard=True, **GREEDY)
        Router(tiny, ok, RoutingPolicy(local_only=True), audit=audit).generate(secret, hard=True)
        records = audit.query(event="escalation")
    rows = [(r.arguments["route"], r.arguments["reason"], r.remote, r.error is None)
            for r in records]
    assert rows == [
        ("remote", "hard=True", True, True),
        ("remote", "hard=True", True, True),
        ("local-fallback", rows[2][1], False, False),
        ("local-fallback", "would escalate (hard=True); no server configured", False, True),
    ]
    assert rows[2][1].startswith("remote error: ")
    assert "HTTP 500" in records[2].error
    assert records[0].arguments["redacted"] == {"phone": 1}
    assert records[2].arguments["escalated"] == "hard=True"
    dumped = json.dumps([r.to_dict() for r in records])
    assert "merger" not in dumped
    # The phone number in any of its forms; not a bare "668", which a timestamp or a
    # duration in the records may contain by chance.
    for fragment in ("+41", "44 668", "668 18 00", "4466818"):
        assert fragment not in dumped


# -- privacy ----------------------------------------------------------------------------------

REDACTIONS = [
    ("mail bob.smith+tag@example.co.uk now", "mail [EMAIL] now", {"email": 1}),
    ("écrire à zoë@exemple.fr", "écrire à [EMAIL]", {"email": 1}),
    ("call +41 44 668 18 00 today", "call [PHONE] today", {"phone": 1}),
    ("(555) 123-4567 or 555.123.4567", "[PHONE] or [PHONE]", {"phone": 2}),
    ("+1-202-555-0143, +4915123456789", "[PHONE], [PHONE]", {"phone": 2}),
    ("mobile 07700 900123", "mobile [PHONE]", {"phone": 1}),
    ("IBAN DE89 3704 0044 0532 0130 00, thanks", "IBAN [IBAN], thanks", {"iban": 1}),
    ("GB82WEST12345698765432", "[IBAN]", {"iban": 1}),
    ("FR14 2004 1010 0505 0001 3M02 606", "[IBAN]", {"iban": 1}),
    # not personal data: left alone
    ("on 2024-01-31 at 12:30, 2019-2023", "on 2024-01-31 at 12:30, 2019-2023", {}),
    ("version 1.2.3 at 192.168.1.1, pi 3.14159265", "version 1.2.3 at 192.168.1.1, pi 3.14159265",
     {}),
    ("order 1234567 costs 1,234,567.89", "order 1234567 costs 1,234,567.89", {}),
    ("ISBN 978-3-16-148410-0", "ISBN 978-3-16-148410-0", {}),
]


@pytest.mark.parametrize(("text", "expected", "counts"), REDACTIONS)
def test_default_redactions(text: str, expected: str, counts: dict[str, int]) -> None:
    assert redact_text(text) == (expected, counts)


def test_custom_redactions_add_to_the_defaults() -> None:
    rules = {**DEFAULT_REDACT, "employee_id": r"\bEMP-\d{6}\b"}
    assert redact_text("EMP-123456 (emp@corp.com)", rules) == (
        "[EMPLOYEE_ID] ([EMAIL])", {"email": 1, "employee_id": 1})


SECRETS = ["alice@example.com", "+41 44 668 18 00", "DE89 3704 0044 0532 0130 00", "EMP-123456",
           "bob@example.org", "(555) 123-4567"]


@pytest.mark.parametrize("method", ["generate", "stream"])
def test_nothing_redacted_reaches_the_server(tiny: qwen_edge.Model, server: FakeServer,
                                             remote: Remote, method: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    messages = [
        {"role": "system", "content": "You are a bank assistant."},
        {"role": "user", "content": "I am alice@example.com, +41 44 668 18 00."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "lookup",
                          "arguments": json.dumps({"email": "bob@example.org"})}}]},
        {"role": "tool", "tool_call_id": "call_1",
         "content": json.dumps({"iban": "DE89 3704 0044 0532 0130 00", "phone": "(555) 123-4567"})},
        {"role": "user", "content": "Employee EMP-123456 asks: move the money."},
    ]
    before = copy.deepcopy(messages)
    policy = RoutingPolicy(**RULES_ONLY, redact={**DEFAULT_REDACT, "employee": r"EMP-\d{6}"})
    caplog.set_level(logging.INFO, logger="qwen_edge.routing")
    text, out = run(Router(tiny, remote, policy), method, messages, hard=True, **GREEDY)
    assert out.route == "remote"
    assert text == REMOTE_TEXT
    [raw] = server.raw
    for secret in SECRETS:
        assert secret.encode() not in raw
        assert json.dumps(secret).encode() not in raw
        assert secret not in caplog.text
    [body] = server.requests
    sent = body["messages"]
    assert sent[1]["content"] == "I am [EMAIL], [PHONE]."
    assert json.loads(sent[2]["tool_calls"][0]["function"]["arguments"]) == {"email": "[EMAIL]"}
    assert json.loads(sent[3]["content"]) == {"iban": "[IBAN]", "phone": "[PHONE]"}
    assert sent[3]["tool_call_id"] == "call_1"
    assert sent[4]["content"].startswith("Employee "
                                                                                  "[EMPLOYEE]")
    assert [m["role"] for m in sent] == [m["role"] for m in messages]
    assert messages == before  # redaction works on copies
    assert "redacted before sending: 2 email, 1 employee, 1 iban, 2 phone" in caplog.text


def test_local_only_never_touches_the_transport(tiny: qwen_edge.Model) -> None:
    opened: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        opened.append(request)
        pytest.fail("local_only sent a request")

    with make_remote(refuse) as remote:
        everything = RoutingPolicy(threshold=1.0, keywords=("hello",), min_prompt_tokens=1)
        for router, kwargs in ((Router(tiny, remote, RoutingPolicy(local_only=True, threshold=1.0,
                                                                   keywords=("hello",))), {}),
                               (Router(tiny, remote, everything), {"local_only": True})):
            out = router.generate("hello", hard=True, **GREEDY, **kwargs)
            assert out.route == "local"
            assert out.route_reason.startswith("local_only")
            stream = router.stream("hello", hard=True, **GREEDY, **kwargs)
            assert "".join(stream) == out.text
            assert stream.route == "local"
    assert opened == []


@pytest.mark.network
def test_local_only_never_opens_a_connection(tiny: qwen_edge.Model) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        with Remote(url, "big") as remote:
            router = Router(tiny, remote, RoutingPolicy(local_only=True, threshold=1.0))
            assert router.generate("Hello", hard=True, **GREEDY).route == "local"
            assert "".join(router.stream("Hello", hard=True, **GREEDY))
        with pytest.raises(BlockingIOError):  # no connection is waiting to be accepted
            listener.accept()


# -- real sockets -------------------------------------------------------------------------------


def die_mid_body(handler: Any, _request: Any) -> None:
    """Promise 1000 bytes of JSON, send 20, close."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b'{"choices": [{"messa')
    handler.wfile.flush()
    handler.connection.shutdown(socket.SHUT_RDWR)
    handler.close_connection = True


@pytest.mark.network
@pytest.mark.parametrize(("fault", "reason"), [
    ("refused", r"^remote unavailable: .*cannot connect .*refused"),
    ("stall", r"^remote unavailable: .*timed out waiting for the server"),
    ("500", r"^remote error: .*HTTP 500 Internal Server Error: engine down"),
    ("malformed JSON", r"^remote unavailable: .*is not JSON"),
    ("killed mid-body", r"^remote unavailable: .*the server closed the connection"),
])
def test_real_faults_fall_back(tiny: qwen_edge.Model, fault: str, reason: str) -> None:
    timeout_s = 0.5
    server = FaultServer({
        "refused": reply_json(200, {}),  # unused: the Remote points at a dead port
        "stall": stall(lambda: server.release),
        "500": reply_json(500, {"error": {"message": "engine down"}}),
        "malformed JSON": reply_json(200, b"{\"choices\": [tru"),
        "killed mid-body": die_mid_body,
    }[fault])
    messages = [{"role": "user", "content": "Hello"}]
    expected = local_text(tiny, messages, **GREEDY)
    with server:
        url = f"http://127.0.0.1:{free_port()}/v1" if fault == "refused" else server.url
        with Remote(url, "big", timeout=timeout_s, backoff_s=0.01) as remote:
            router = Router(tiny, remote, RoutingPolicy(**RULES_ONLY))
            out = router.generate(messages, hard=True, **GREEDY)
            assert out.route == "local-fallback"
            assert re.search(reason, out.route_reason), out.route_reason
            assert out.text == expected
            assert messages == [{"role": "user", "content": "Hello"}]
            if fault == "stall":  # one timeout at most, never one per retry (counted, not timed)
                assert len(server.requests) == 1
            stream = router.stream(messages, hard=True, **GREEDY)
            assert "".join(stream) == expected
            assert stream.route == "local-fallback"


@pytest.mark.network
@pytest.mark.parametrize("kill", ["eof", "chunked", "reset"])
def test_real_server_killed_mid_stream_is_continued_locally(tiny: qwen_edge.Model,
                                                            kill: str) -> None:
    server = FaultServer(stream_then(kill))
    with server, Remote(server.url, "big", timeout=5) as remote:
        stream = Router(tiny, remote, RoutingPolicy(**RULES_ONLY)).stream("Hello", hard=True,
                                                                           **GREEDY)
        deltas = list(stream)
    assert deltas[:3] == ["Hel", "lo", ", wor"]
    assert stream.route == "local-fallback"
    assert stream.route_reason.endswith("continued locally after 10 characters")
    ids = np.concatenate([tiny.encode_prompt("Hello"),
                          tiny.tokenizer.encode("Hello, wor", special=False)])
    assert "".join(deltas) == "Hello, wor" + tiny.generate(ids, max_tokens=5,
                                                             temperature=0).text


# -- confidence and calibration ----------------------------------------------------------------


def fake_completion(logprobs: list[float], entropies: list[float]) -> Completion:
    return Completion(content="x", token_ids=[1] * len(logprobs), finish_reason="stop",
                      usage=Usage(1, len(logprobs)), timings=Timings(0.0, 0.0, 0.0),
                      logprobs=logprobs, entropies=entropies)


@pytest.mark.parametrize(("logprobs", "entropies", "expected"), [
    ([0.0, 0.0], [0.0, 0.0], 1.0),
    ([-1.0], [1.0], math.exp(-1.0)),
    ([-0.5, -1.5], [0.2, 2.0], math.exp((-1.0 - 2.0) / 2)),
    ([-12.0] * 4, [11.9] * 4, math.exp((-12.0 - 11.9) / 2)),
    ([], [], 0.0),
])
def test_score_confidence_formula(logprobs: list[float], entropies: list[float],
                                  expected: float) -> None:
    assert score_confidence(fake_completion(logprobs, entropies)) == pytest.approx(expected)


def test_score_confidence_is_monotone_and_matches_a_real_completion(
        tiny: qwen_edge.Model) -> None:
    base = score_confidence(fake_completion([-1.0, -1.0], [1.0, 1.0]))
    assert score_confidence(fake_completion([-0.5, -1.0], [1.0, 1.0])) > base
    assert score_confidence(fake_completion([-1.0, -1.0], [1.0, 3.0])) < base
    out = tiny.generate("Hello", **GREEDY)
    expected = math.exp((np.mean(out.logprobs) - max(out.entropies)) / 2)
    assert score_confidence(out) == pytest.approx(expected)
    assert Router(tiny, None).generate("Hello", **GREEDY).confidence == pytest.approx(expected)


def _balanced_accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    local = scores >= threshold
    return float((local[labels].mean() + (~local[~labels]).mean()) / 2)


def test_calibrate_separable_scores() -> None:
    scores = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9]
    labels = [False, False, False, True, True, True]
    assert calibrate(scores, labels) == pytest.approx(0.45)
    assert roc_auc(scores, labels) == 1.0
    assert roc_auc(scores, [not v for v in labels]) == 0.0


def test_calibrate_overlapping_scores_finds_the_best_threshold() -> None:
    rng = np.random.default_rng(0)
    good = rng.beta(6, 2, 400)  # local answers that were right score higher
    bad = rng.beta(2, 5, 200)
    scores = np.concatenate([good, bad])
    labels = np.concatenate([np.ones(400, bool), np.zeros(200, bool)])
    threshold = calibrate(scores.tolist(), labels.tolist())
    best = max(_balanced_accuracy(scores, labels, t) for t in np.linspace(0, 1, 2001))
    assert _balanced_accuracy(scores, labels, threshold) >= best - 1e-9
    assert 0.35 < threshold < 0.65
    # a budget: keep at least 90% local, at the best balanced accuracy that allows
    budget = calibrate(scores.tolist(), labels.tolist(), target_local_rate=0.9)
    assert (scores >= budget).mean() >= 0.9
    assert budget < threshold
    feasible = [t for t in np.linspace(0, 1, 2001) if (scores >= t).mean() >= 0.9]
    best_feasible = max(_balanced_accuracy(scores, labels, t) for t in feasible)
    assert _balanced_accuracy(scores, labels, budget) >= best_feasible - 1e-9


def test_roc_auc_matches_pairwise_counting() -> None:
    rng = np.random.default_rng(1)
    scores = np.round(rng.random(60), 1)  # many ties
    labels = rng.random(60) < 0.4
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0)
             for p in scores[labels] for n in scores[~labels]]
    assert roc_auc(scores.tolist(), labels.tolist()) == pytest.approx(np.mean(pairs))
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5


@pytest.mark.parametrize(("scores", "labels", "kwargs", "match"), [
    ([0.1, 0.2], [True], {}, "labels"),
    ([], [], {}, "labels"),
    ([0.1, 0.2], [True, True], {}, "both True"),
    ([0.1, 1.5], [True, False], {}, "scores"),
    ([0.1, 0.9], [False, True], {"target_local_rate": 0.0}, "target_local_rate"),
])
def test_calibrate_rejects_bad_input(scores: list[float], labels: list[bool],
                                     kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        calibrate(scores, labels, **kwargs)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"threshold": 1.5}, "threshold"),
    ({"threshold": float("nan")}, "threshold"),
    ({"min_prompt_tokens": 0}, "min_prompt_tokens"),
    ({"keywords": "contract"}, "keywords"),
    ({"keywords": ("(unclosed",)}, "not a valid regex"),
    ({"scripts": ("Klingon",)}, "scripts"),
    ({"min_script_share": 0}, "min_script_share"),
    ({"redact": {"Bad Name": "x"}}, "redact"),
    ({"redact": {"ok": "["}}, "not a valid regex"),
    ({"cascade": "yes"}, "cascade"),
])
def test_policy_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RoutingPolicy(**kwargs)


def test_policy_is_frozen_and_immutable() -> None:
    policy = RoutingPolicy(keywords=["a"], scripts=["han"])  # type: ignore[arg-type]
    assert policy.keywords == ("a",)
    assert policy.scripts == ("Han",)
    with pytest.raises(TypeError):
        policy.redact["x"] = "y"  # type: ignore[index]
    assert RoutingPolicy() == RoutingPolicy()



# -- against `qwen-edge serve` (a real subprocess on loopback) ---------------------------------

KEY = "router-key"
LONG: dict[str, Any] = {"max_tokens": 1500, "temperature": 0}  # seconds on the tiny model


@contextlib.contextmanager
def serve(package_dir: Path, workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Run ``python -m qwen_edge serve`` on a free loopback port until /health answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / f"serve-{port}.log"
    with log_path.open("wb") as log:
        # cwd=workdir: the repository root must not shadow the package under test
        proc = subprocess.Popen(
            [sys.executable, "-m", "qwen_edge", "serve", str(package_dir), "--port", str(port),
             "--api-key", KEY, "--model-name", "tiny", "--threads", "1"],
            cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, f"serve exited: {log_path.read_text()[-2000:]}"
                assert time.monotonic() < deadline, "serve did not start within 60 s"
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                time.sleep(0.05)
            yield proc, f"{url}/v1"
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


@pytest.fixture(scope="module")
def served(package: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[str]:
    pytest.importorskip("uvicorn", reason="qwen-edge[serve] is not installed")
    with serve(package("tiny-qwen2", "int4"), tmp_path_factory.mktemp("serve")) as (_, url):
        yield url


@pytest.mark.network
def test_remote_against_our_server(tiny: qwen_edge.Model, served: str) -> None:
    messages = [{"role": "user", "content": "Hello"}]
    reference = tiny.generate(messages, **GREEDY)  # the same package: the same greedy tokens
    with Remote(served, "tiny", api_key=KEY, timeout=30) as remote:
        out = remote.chat(messages, **GREEDY)
        assert out.text == reference.text
        assert out.finish_reason == reference.finish_reason
        assert out.usage is not None
        assert out.usage.prompt_tokens == len(tiny.encode_chat(messages))
        assert out.usage.completion_tokens == reference.usage.completion_tokens
        assert "".join(remote.stream_chat(messages, **GREEDY)) == reference.text
    with Remote(served, "tiny", api_key="wrong") as remote, \
            pytest.raises(RemoteResponseError) as info:
        remote.chat(messages, **GREEDY)
    assert info.value.status == 401


@pytest.mark.network
@pytest.mark.parametrize("method", ["generate", "stream"])
def test_router_escalates_to_our_server(tiny: qwen_edge.Model, served: str, method: str) -> None:
    messages = [{"role": "user", "content": "Write to bob@example.com"}]
    with Remote(served, "tiny", api_key=KEY, timeout=30) as remote:
        text, out = run(Router(tiny, remote, RoutingPolicy(threshold=1.0)), method, messages,
                        **GREEDY)
    assert out.route == "remote"
    assert out.route_reason.startswith("confidence ")
    # the server saw the redacted conversation, so it answered that one
    assert text == local_text(tiny, [{"role": "user", "content": "Write to [EMAIL]"}], **GREEDY)


@pytest.mark.network
def test_router_survives_our_server_being_killed(tiny: qwen_edge.Model,
                                                 package: Callable[..., Path],
                                                 tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "Tell me a long story"}]
    assert tiny.generate(messages, **LONG).finish_reason == "length"  # no early EOS
    with serve(package("tiny-qwen2", "int4"), tmp_path) as (proc, url), \
            Remote(url, "tiny", api_key=KEY, timeout=30, max_retries=1,
                   backoff_s=0.01) as remote:
        router = Router(tiny, remote, RoutingPolicy(**RULES_ONLY))
        stream = router.stream(messages, hard=True, **LONG)
        deltas = [next(stream) for _ in range(3)]
        assert stream.route == "remote"
        proc.kill()  # SIGKILL mid-stream: no FIN from the application, no [DONE]
        proc.wait(10)
        deltas += list(stream)
        assert stream.route == "local-fallback"
        found = re.search(r"continued locally after (\d+) characters$", stream.route_reason)
        assert found, stream.route_reason
        # nothing lost: what the server sent, then the local continuation of exactly that
        partial = "".join(deltas)[: int(found.group(1))]
        done = tiny.tokenizer.encode(partial, special=False)
        ids = np.concatenate([tiny.encode_prompt(messages), done])
        continuation = tiny.generate(ids, max_tokens=LONG["max_tokens"] - len(done),
                                     temperature=0).text
        assert "".join(deltas) == partial + continuation
        # the dead server: refused, then the breaker; answers stay local and correct
        for _ in range(4):
            out = router.generate(messages, hard=True, **GREEDY)
            assert out.route == "local-fallback"
            assert out.text == local_text(tiny, messages, **GREEDY)
        assert remote.breaker_state == "open"


# -- one routing implementation for every surface ---------------------------------------------


def test_routed_local_answers_keep_their_timings_and_token_ids(tiny: qwen_edge.Model,
                                                               remote: Remote) -> None:
    """The router returns the local answer itself: token ids, TTFT and speeds included."""
    from qwen_edge.types import collect

    reference = tiny.generate("Hello there", **GREEDY)
    for policy in (RoutingPolicy(cascade=False), RoutingPolicy(threshold=0.0)):  # held too
        router = Router(tiny, remote, policy)
        answers = [router.generate("Hello there", **GREEDY),
                   collect(router.stream_chat("Hello there", config=tiny.config(**GREEDY)))]
        for out in answers:
            assert out.route == "local"
            assert out.text == reference.text
            assert out.token_ids == reference.token_ids
            assert out.token_ids
            assert out.usage == reference.usage
            assert out.timings is not None
            assert out.timings.ttft_s > 0
            assert out.timings.prefill_tokens_per_s > 0
            assert out.timings.decode_tokens_per_s > 0


def _agent(tiny: qwen_edge.Model, router: Router) -> Any:
    from qwen_edge.agents.agent import Agent
    from qwen_edge.agents.tools import tool

    @tool
    def lookup(term: str) -> str:
        """Looks a term up.

        Args:
            term: what to look up.
        """
        return term

    return Agent(tiny, [lookup], remote=router, max_steps=1, tool_choice="none", **GREEDY)


@pytest.mark.parametrize(("policy", "text", "reason"), [
    (KEYWORDS, "Review this contract", "keyword"),
    ({**RULES_ONLY, "scripts": ("han",)}, "请把这份合同翻译成英文", "100% of the letters"),
    ({**RULES_ONLY, "min_prompt_tokens": 5}, "Hello there", "prompt has"),
])
def test_agents_inherit_every_routing_rule(tiny: qwen_edge.Model, server: FakeServer,
                                           remote: Remote, policy: dict[str, Any], text: str,
                                           reason: str) -> None:
    agent = _agent(tiny, Router(tiny, remote, RoutingPolicy(**policy)))
    result = agent.run(text)
    step = result.steps[0]
    assert (step.route, result.text) == ("remote", REMOTE_TEXT)
    assert step.route_reason.startswith(reason)
    [body] = server.requests
    assert body["tools"][0]["function"]["name"] == "lookup"
    assert body["tool_choice"] == "none"


def test_an_agent_gets_the_router_s_answer_to_a_401(tiny: qwen_edge.Model) -> None:
    refuse = FakeServer(lambda body: httpx.Response(401, json={"error": {"message": "bad key"}}))  # noqa: ARG005
    router = Router(tiny, make_remote(refuse), RoutingPolicy(**RULES_ONLY))
    with pytest.raises(RemoteResponseError, match="401"):
        router.generate("Hello there", hard=True, **GREEDY)
    with pytest.raises(RemoteResponseError, match="401"):  # not hidden by a local answer
        _agent(tiny, router).run("Hello there", hard=True)

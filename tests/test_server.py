"""qwen_edge.server and ``qwen-edge serve``: the official openai client against a real server.

The server runs on loopback in a background thread (uvicorn, a port picked by the OS) over
a tiny random-weight package; every value is checked against the library itself (same seed,
same text) or against OpenAI's shapes, with jsonschema for tool arguments and JSON output.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

openai = pytest.importorskip("openai", reason="the server tests need the openai client")
uvicorn = pytest.importorskip("uvicorn", reason="qwen-edge[serve] is not installed")
httpx = pytest.importorskip("httpx")

from helpers import ServeApp

import qwen_edge
from qwen_edge.agents.tools import quotable_spans
from qwen_edge.cli import serve
from qwen_edge.server import create_app

KEY = "test-key"
NAME = "tiny"
MAX_QUEUE = 1
MAX_TOKENS_LIMIT = 1900
MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {"type": "object",
           "properties": {"city": {"type": "string", "enum": ["Paris", "Tokyo", "Lima"]},
                          "days": {"type": "integer", "minimum": 1, "maximum": 7}},
           "required": ["city", "days"], "additionalProperties": False}
TIMER = {"type": "object",
         "properties": {"minutes": {"type": "integer", "minimum": 1, "maximum": 60},
                        "label": {"type": "string", "maxLength": 8}},
         "required": ["minutes"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                           "parameters": WEATHER}},
         {"type": "function", "function": {"name": "set_timer", "description": "A timer",
                                           "parameters": TIMER}}]
SCHEMAS = {"get_weather": WEATHER, "set_timer": TIMER}
# A request that cannot end on its own while the `held` fixture is active (see there).
SLOW: dict[str, Any] = {"max_tokens": MAX_TOKENS_LIMIT, "temperature": 0,
                        "extra_body": {"ignore_eos": True}}
HELD_AFTER = 4  # chunks a held request generates before it waits for its cancellation
WAIT_S = 60  # how long to wait for a state the server must reach (never a speed limit)


@dataclass(frozen=True)
class Server:
    url: str
    model: qwen_edge.Model

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/health", timeout=5).json())

    def wait_until(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self.health()):
            assert time.monotonic() < deadline, f"server state still {self.health()}"
            time.sleep(0.02)


@pytest.fixture(scope="module")
def server(package: Callable[..., Any], live_server: ServeApp) -> Iterator[Server]:
    model = qwen_edge.load(package("tiny-qwen2", "int4"))
    app = create_app(model, api_key=KEY, max_queue=MAX_QUEUE, max_request_bytes=64 * 1024,
                     max_tokens_limit=MAX_TOKENS_LIMIT, model_name=NAME)
    with live_server(app) as base:
        yield Server(base, model)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Make every SLOW request unable to finish before the server cancels it.

    After ``HELD_AFTER`` chunks its generation waits until the server cancels a job (what a
    client's disconnect does), then goes on, so the worker meets the cancellation at its next
    chunk. Whatever the machine's speed, such a request ends by cancellation, with at most
    ``HELD_AFTER + 1`` completion tokens (fewer when the cancellation comes before the hold).
    Returns the event set when the server cancels a job.
    """
    from qwen_edge.model import Session
    from qwen_edge.server import app as server_app

    cancelled = threading.Event()
    real_stream, real_cancel = Session.stream_chunks, server_app._Worker.cancel

    def gated(chunks: Iterator[Any]) -> Iterator[Any]:
        with contextlib.closing(chunks):  # type: ignore[type-var]
            for i, chunk in enumerate(chunks):
                if i >= HELD_AFTER:
                    cancelled.wait(WAIT_S)  # a timeout lets it finish: the counts then fail
                yield chunk

    def stream_chunks(self: Session, prompt: Any, config: Any = None,
                      **options: Any) -> Iterator[Any]:
        chunks = real_stream(self, prompt, config, **options)  # run_chat passes the config
        limit = config.max_tokens if config is not None else options.get("max_tokens")
        return gated(chunks) if limit == MAX_TOKENS_LIMIT else chunks

    def cancel(self: Any, job: Any) -> None:
        real_cancel(self, job)
        cancelled.set()  # after the job's own flag: the worker sees it at its next chunk

    monkeypatch.setattr(Session, "stream_chunks", stream_chunks)
    monkeypatch.setattr(server_app._Worker, "cancel", cancel)
    return cancelled


@pytest.fixture
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, timeout=20)


def _create(client: openai.OpenAI, **kwargs: Any) -> Any:
    return client.chat.completions.create(**{"model": NAME, "messages": MESSAGES, **kwargs})


# -- completions --------------------------------------------------------------------------------


@pytest.mark.network
def test_completion_matches_library_and_reuses_the_prefix(server: Server,
                                                          client: openai.OpenAI) -> None:
    reference = server.model.generate(MESSAGES, max_tokens=16, seed=7)
    first = _create(client, max_tokens=16, seed=7)
    assert first.object == "chat.completion"
    assert first.id.startswith("chatcmpl-")
    assert first.model == NAME
    assert isinstance(first.created, int)
    assert len(first.choices) == 1
    assert first.choices[0].index == 0
    message = first.choices[0].message
    assert message.role == "assistant"
    assert message.tool_calls is None
    assert message.content == reference.text
    assert first.choices[0].finish_reason == reference.finish_reason
    prompt_tokens = len(server.model.encode_chat(MESSAGES))
    assert first.usage.prompt_tokens == prompt_tokens
    assert first.usage.completion_tokens == reference.usage.completion_tokens
    assert first.usage.total_tokens == prompt_tokens + first.usage.completion_tokens
    again = _create(client, max_tokens=16, seed=7)  # the warm session: all but one token reused
    assert again.choices[0].message.content == reference.text
    assert again.usage.prompt_tokens_details.cached_tokens == prompt_tokens - 1


@pytest.mark.network
def test_max_completion_tokens_and_stop(client: openai.OpenAI) -> None:
    full = _create(client, max_completion_tokens=12, seed=3).choices[0]
    assert full.finish_reason == "length"
    assert _create(client, max_completion_tokens=12, seed=3).usage.completion_tokens == 12
    stop = full.message.content[4:7]
    stopped = _create(client, max_tokens=12, seed=3, stop=[stop]).choices[0]
    assert stopped.finish_reason == "stop"
    assert stopped.message.content == full.message.content[: full.message.content.find(stop)]


@pytest.mark.network
def test_stream_equals_completion(server: Server, client: openai.OpenAI) -> None:
    whole = _create(client, max_tokens=24, seed=11, temperature=0.9, top_p=0.95,
                    presence_penalty=0.5, frequency_penalty=0.5)
    chunks = list(_create(client, max_tokens=24, seed=11, temperature=0.9, top_p=0.95,
                          presence_penalty=0.5, frequency_penalty=0.5, stream=True,
                          stream_options={"include_usage": True}))
    assert {c.id for c in chunks} == {chunks[0].id}
    assert all(c.object == "chat.completion.chunk" and c.model == NAME for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    with_choices = [c for c in chunks if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in with_choices][-1] == whole.choices[0].finish_reason
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    usage = chunks[-1]
    assert usage.choices == []
    assert usage.usage.completion_tokens == whole.usage.completion_tokens
    assert usage.usage.prompt_tokens == whole.usage.prompt_tokens
    body = {"model": NAME, "messages": MESSAGES, "max_tokens": 4, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {KEY}"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert "usage" not in json.loads(events[0][6:])  # only with stream_options.include_usage


# -- tools and JSON -----------------------------------------------------------------------------


def _check_calls(calls: list[Any], names: set[str]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for call in calls:
        assert call.type == "function"
        assert call.id.startswith("call_")
        assert call.function.name in names
        arguments = json.loads(call.function.arguments)
        jsonschema.validate(arguments, SCHEMAS[call.function.name])
        out.append((call.function.name, arguments))
    assert len({c.id for c in calls}) == len(calls)
    return out


@pytest.mark.network
@pytest.mark.parametrize(("tool_choice", "names"), [
    ("required", {"get_weather", "set_timer"}),
    ({"type": "function", "function": {"name": "set_timer"}}, {"set_timer"}),
])
def test_tool_calls_are_valid_and_stream_the_same(client: openai.OpenAI, tool_choice: Any,
                                                  names: set[str]) -> None:
    options = {"tools": TOOLS, "tool_choice": tool_choice, "max_tokens": 300}
    for seed in (0, 1):
        result = _create(client, seed=seed, **options)
        choice = result.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None
        calls = _check_calls(choice.message.tool_calls, names)
        assert calls
        streamed: dict[int, dict[str, str]] = {}
        finish = []
        for chunk in _create(client, seed=seed, stream=True, **options):
            delta = chunk.choices[0].delta
            assert not delta.content
            for part in delta.tool_calls or []:
                entry = streamed.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += part.id or ""
                entry["name"] += part.function.name or ""
                entry["arguments"] += part.function.arguments or ""
            finish.append(chunk.choices[0].finish_reason)
        assert finish[-1] == "tool_calls"
        assert sorted(streamed) == list(range(len(calls)))
        assert [(e["name"], json.loads(e["arguments"])) for _, e in sorted(streamed.items())] \
            == calls
        assert all(e["id"].startswith("call_") for e in streamed.values())


@pytest.mark.network
@pytest.mark.parametrize("tool_choice", [
    "required", {"type": "function", "function": {"name": "set_timer"}}])
def test_agent_and_server_force_the_same_calls(server: Server, client: openai.OpenAI,
                                               tool_choice: Any) -> None:
    """tool_choice means the same in ``Agent`` as in the server: the same calls, and a named
    function exactly one."""
    from qwen_edge.agents.agent import Agent

    for seed in range(3):
        served = _create(client, tools=TOOLS, tool_choice=tool_choice, max_tokens=300,
                         seed=seed).choices[0].message.tool_calls
        agent = Agent(server.model, TOOLS, system=MESSAGES[0]["content"], max_steps=1,
                      tool_choice=tool_choice, max_tokens=300, seed=seed)
        local = agent.run(MESSAGES[1]["content"]).steps[0].tool_calls
        assert [(c.name, c.arguments) for c in local] == [
            (c.function.name, json.loads(c.function.arguments)) for c in served]
        if isinstance(tool_choice, dict):
            assert len(local) == 1


@pytest.mark.network
def test_a_call_cut_by_max_tokens_is_length_without_markup(client: openai.OpenAI) -> None:
    for max_tokens in (3, 9):
        options = {"tools": TOOLS, "tool_choice": "required", "max_tokens": max_tokens}
        choice = _create(client, seed=0, **options).choices[0]
        assert choice.finish_reason == "length"
        assert choice.message.tool_calls is None
        assert "<tool_call>" not in (choice.message.content or "")
        streamed = list(_create(client, seed=0, stream=True, **options))
        assert streamed[-1].choices[0].finish_reason == "length"
        assert "<tool_call>" not in "".join(c.choices[0].delta.content or "" for c in streamed)


@pytest.mark.network
def test_grounded_parameters_quote_the_user(client: openai.OpenAI) -> None:
    """``"x-grounded"`` in a tool's function (qwen-edge's extension) restricts those string
    arguments to runs of the user's words; the model's prompt does not show the field."""
    free = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}},
            "required": ["city"], "additionalProperties": False}
    plain = [{"type": "function", "function": {"name": "get_weather", "parameters": free}}]
    marked = [{"type": "function", "function": {**plain[0]["function"],
                                                "x-grounded": ["city"]}}]
    spans = set(quotable_spans([MESSAGES[1]["content"]]))
    cities: dict[str, list[str]] = {"marked": [], "plain": []}
    prompt_tokens = set()
    for seed in range(4):
        for kind, tools in (("marked", marked), ("plain", plain)):
            result = _create(client, tools=tools, tool_choice="required", max_tokens=60,
                             seed=seed, temperature=1.0)
            calls = result.choices[0].message.tool_calls
            assert calls
            cities[kind] += [json.loads(c.function.arguments)["city"] for c in calls]
            prompt_tokens.add(result.usage.prompt_tokens)
    assert len(prompt_tokens) == 1  # the same prompt with and without the field
    assert set(cities["marked"]) <= spans, cities["marked"]
    assert not set(cities["plain"]) <= spans  # random weights, ungrounded: anything goes
    bad = [{"type": "function", "function": {**plain[0]["function"], "x-grounded": ["town"]}}]
    with pytest.raises(openai.BadRequestError) as info:
        _create(client, tools=bad, tool_choice="required", max_tokens=8)
    assert "grounded parameter 'town'" in info.value.body["message"]


@pytest.mark.network
def test_tool_choice_none_and_auto(client: openai.OpenAI) -> None:
    none = _create(client, tools=TOOLS, tool_choice="none", max_tokens=40, seed=5).choices[0]
    assert none.message.tool_calls is None
    assert "<tool_call>" not in none.message.content
    assert none.finish_reason in ("stop", "length")
    auto = _create(client, tools=TOOLS, max_tokens=40, seed=5).choices[0]
    _check_calls(auto.message.tool_calls or [], {"get_weather", "set_timer"})


@pytest.mark.network
def test_response_format_json_schema(client: openai.OpenAI) -> None:
    schema = {"type": "object",
              "properties": {"answer": {"type": "string", "enum": ["yes", "no"]},
                             "confidence": {"type": "integer", "minimum": 0, "maximum": 100}},
              "required": ["answer", "confidence"], "additionalProperties": False}
    for seed in (1, 2):
        choice = _create(client, max_tokens=100, seed=seed, response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True}}).choices[0]
        assert choice.finish_reason == "stop"
        jsonschema.validate(json.loads(choice.message.content), schema)


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.network
@pytest.mark.parametrize(("options", "error", "param", "code"), [
    ({"temperature": -1}, "BadRequestError", "temperature", None),
    ({"top_p": 0}, "BadRequestError", "top_p", None),
    ({"n": 2}, "BadRequestError", "n", None),
    ({"max_tokens": MAX_TOKENS_LIMIT + 1}, "BadRequestError", "max_tokens", "invalid_value"),
    ({"messages": [{"role": "user", "content": "word " * 1000}], "max_tokens": 1500},
     "BadRequestError", "messages", "context_length_exceeded"),
    ({"messages": [{"role": "user", "content": "word " * 2100}]},
     "BadRequestError", "messages", "context_length_exceeded"),
    ({"logit_bias": {"hello": 5}}, "BadRequestError", "logit_bias", None),
    ({"tool_choice": "required"}, "BadRequestError", "tool_choice", None),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "BadRequestError", None, None),
    ({"tools": TOOLS, "response_format": {"type": "json_object"}},
     "BadRequestError", "response_format", None),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "BadRequestError", "messages.0.role",
     None),
    ({"response_format": {"type": "json_schema", "json_schema": {  # rejected by the worker
        "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "nonsense"}}}}}},
     "BadRequestError", None, None),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "properties": {"a": {"type": "nonsense"}}}}}, "stream": True},
     "BadRequestError", None, None),
    ({"model": "gpt-4o"}, "NotFoundError", "model", "model_not_found"),
])
def test_errors_in_openai_shape(client: openai.OpenAI, options: dict[str, Any], error: str,
                                param: str | None, code: str | None) -> None:
    with pytest.raises(getattr(openai, error)) as info:
        _create(client, **{"max_tokens": 8, **options})
    body = info.value.body
    assert set(body) == {"message", "type", "param", "code"}
    assert body["message"]
    assert body["type"] == "invalid_request_error"
    assert (body["param"], body["code"]) == (param, code)


@pytest.mark.network
def test_authentication(server: Server) -> None:
    wrong = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.chat.completions.create(model=NAME, messages=MESSAGES, max_tokens=4)
    assert info.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    missing = httpx.get(f"{server.url}/v1/models", timeout=5)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200  # stays open


@pytest.mark.network
def test_request_body_limit(server: Server) -> None:
    response = httpx.post(f"{server.url}/v1/chat/completions", content=b" " * (65 * 1024),
                          headers={"Authorization": f"Bearer {KEY}",
                                   "Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


# -- models, health, OpenAPI --------------------------------------------------------------------


@pytest.mark.network
def test_models_health_openapi(server: Server, client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [NAME]
    assert models.data[0].object == "model"
    assert client.models.retrieve(NAME).id == NAME
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")
    assert server.health() == {"status": "ok", "model": NAME, "generating": 0, "waiting": 0}
    document = httpx.get(f"{server.url}/openapi.json", timeout=5).json()
    assert {"/v1/chat/completions", "/v1/models", "/health"} <= set(document["paths"])
    assert {"ChatCompletionRequest", "ChatCompletion", "ChatCompletionChunk",
            "ErrorResponse"} <= set(document["components"]["schemas"])


# -- queue and cancellation ---------------------------------------------------------------------


@pytest.mark.network
def test_full_queue_answers_429(server: Server, client: openai.OpenAI,
                                held: threading.Event) -> None:
    running = _create(client, stream=True, **SLOW)  # returns once its first token is out
    waiting: list[Any] = []
    thread = threading.Thread(target=lambda: waiting.append(_create(client, max_tokens=2)))
    thread.start()
    try:
        server.wait_until(lambda h: h["generating"] == 1 and h["waiting"] == MAX_QUEUE, WAIT_S)
        with pytest.raises(openai.RateLimitError) as info:
            _create(client, max_tokens=2)
        assert int(info.value.response.headers["retry-after"]) >= 1
        assert info.value.body["code"] == "rate_limit_exceeded"
        assert "busy" in info.value.body["message"]
    finally:
        running.close()  # disconnect: the running request is cancelled, the waiting one runs
        thread.join(timeout=30)
    assert waiting
    assert waiting[0].choices[0].finish_reason == "length"
    assert waiting[0].usage.completion_tokens == 2
    assert held.is_set()
    server.wait_until(lambda h: h["generating"] == 0 and h["waiting"] == 0, WAIT_S)


@pytest.mark.network
def test_disconnect_cancels_generation(server: Server, client: openai.OpenAI,
                                       caplog: pytest.LogCaptureFixture,
                                       held: threading.Event) -> None:
    caplog.set_level(logging.INFO, logger="qwen_edge.server")
    stream = _create(client, stream=True, **SLOW)
    assert len(list(itertools.islice(stream, 3))) == 3
    stream.close()
    records = _cancelled_records(caplog, lambda r: getattr(r, "usage", None) is not None)
    assert held.is_set()
    # held: generation stopped at the first chunk after the cancellation, not at max_tokens;
    # the 3 events read are the role chunk and 2 tokens' content, so at least 2 were generated
    assert 2 <= records[0].usage.completion_tokens <= HELD_AFTER + 1
    assert "cancelled" in records[0].getMessage()
    server.wait_until(lambda h: h["generating"] == 0, WAIT_S)
    assert _create(client, max_tokens=2).usage.completion_tokens == 2  # still serving


@pytest.mark.network
def test_disconnect_cancels_a_plain_request(server: Server, client: openai.OpenAI,
                                            caplog: pytest.LogCaptureFixture,
                                            held: threading.Event) -> None:
    caplog.set_level(logging.INFO, logger="qwen_edge.server")
    with pytest.raises(openai.APITimeoutError):  # the client gives up and hangs up
        _create(client.with_options(timeout=0.5), **SLOW)
    records = _cancelled_records(caplog, lambda r: getattr(r, "http_status", 0) == 499)
    assert held.is_set()
    # cancelled while waiting (0 tokens), generating or held, never run to the end
    assert records[0].usage.completion_tokens <= HELD_AFTER + 1
    server.wait_until(lambda h: h["generating"] == 0, WAIT_S)


def _cancelled_records(caplog: pytest.LogCaptureFixture,
                       match: Callable[[logging.LogRecord], bool]) -> list[Any]:
    """The access-log records of cancelled requests, once the first one is written."""
    deadline = time.monotonic() + WAIT_S
    while not (records := [r for r in caplog.records if match(r)
                           and getattr(r, "usage", None) is not None and r.usage.cancelled]):
        assert time.monotonic() < deadline, "no log line for the cancelled request"
        time.sleep(0.02)
    return records


# -- the command --------------------------------------------------------------------------------


def _serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve.add_parser(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_public_host_needs_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QWEN_EDGE_API_KEY", raising=False)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        with pytest.raises(qwen_edge.ConfigError, match="--api-key"):
            serve.run(_serve_args("no-such-package", "--host", host))
    with pytest.raises(qwen_edge.PackageNotFoundError):  # loopback: no key needed, loads
        serve.run(_serve_args("no-such-package", "--host", "::1"))


_SERVE = ("import argparse, logging, sys\n"
          "from qwen_edge.cli import serve\n"
          "logging.basicConfig(level=logging.WARNING)\n"
          "parser = argparse.ArgumentParser()\n"
          "serve.add_parser(parser.add_subparsers())\n"
          "args = parser.parse_args(sys.argv[1:])\n"
          "sys.exit(args.run(args))\n")


@pytest.mark.network
def test_serve_command(package: Callable[..., Any], tmp_path: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["serve", str(package("tiny-qwen2", "int4")), "--port", str(port), "--model-name",
            "cli-model", "--max-queue", "2"]
    env = {**os.environ, "QWEN_EDGE_API_KEY": KEY}
    process = subprocess.Popen([sys.executable, "-c", _SERVE, *argv], env=env,
                               stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path)  # not the repo root: it would shadow qwen_edge
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "qwen-edge serve exited"
            assert time.monotonic() < deadline, "qwen-edge serve did not come up"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        cli = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
        assert [m.id for m in cli.models.list().data] == ["cli-model"]
        reply = cli.chat.completions.create(model="cli-model", messages=MESSAGES, max_tokens=3)
        assert reply.usage.completion_tokens <= 3
        assert httpx.get(f"{url}/v1/models", timeout=5).status_code == 401
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "POST /v1/chat/completions 200" in err
    assert "completion tokens" in err


def _rss_mb() -> float:
    with Path("/proc/self/status").open(encoding="ascii") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.network
def test_bounded_load(server: Server) -> None:
    """N concurrent clients, a fixed number of requests each: every request ends in a complete
    answer or a clean 429, the server drains, and a second wave grows memory by ~nothing."""
    clients, per_client = 12, 4

    def wave() -> tuple[int, int]:
        done, limited = [0], [0]
        lock = threading.Lock()

        def work() -> None:
            c = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0,
                              timeout=60)
            for _ in range(per_client):
                try:
                    r = _create(c, max_tokens=6, temperature=0.7, seed=1)
                    assert r.choices[0].finish_reason in ("stop", "length")
                    assert r.usage.completion_tokens >= 1
                    with lock:
                        done[0] += 1
                except openai.RateLimitError as exc:
                    assert exc.response.headers["retry-after"]  # noqa: PT017  (in a worker thread)
                    with lock:
                        limited[0] += 1

        threads = [threading.Thread(target=work) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        server.wait_until(lambda h: h["generating"] == 0 and h["waiting"] == 0, 30)
        return done[0], limited[0]

    first = wave()
    after_first = _rss_mb()
    second = wave()
    assert first[0] + first[1] == second[0] + second[1] == clients * per_client
    assert first[0] > 0
    assert second[0] > 0
    assert _rss_mb() - after_first < 64  # no per-request growth (12 x 4 requests per wave)

"""qwen_edge.server under hostile requests: every error is a bounded, JSON 4xx in OpenAI's shape,
authentication comes before parsing, and the server keeps answering (same connection).

The server runs on loopback (uvicorn in a thread, a port picked by the OS) over the tiny
random-weight package, with a small ``max_tokens_limit`` so that the requests that do generate
end quickly. Requests are sent raw with httpx (the openai client cannot send NaN, a 300-deep
schema or a body without the key), and over one keep-alive connection, so a request that
broke the connection fails the request after it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn", reason="qwen-edge[serve] is not installed")

from helpers import ServeApp

import qwen_edge
from qwen_edge.server import create_app
from qwen_edge.server.schemas import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH, MAX_TOOLS

KEY = "limits-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_TOKENS_LIMIT = 6
MAX_REQUEST_BYTES = 1024 * 1024
USER = [{"role": "user", "content": "Hi"}]
ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def url(package: Callable[..., Any], live_server: ServeApp) -> Iterator[str]:
    model = qwen_edge.load(package("tiny-qwen2", "int4"), threads=1)
    app = create_app(model, api_key=KEY, max_queue=2, max_request_bytes=MAX_REQUEST_BYTES,
                     max_tokens_limit=MAX_TOKENS_LIMIT, model_name="tiny")
    with live_server(app, log_level="critical") as base:
        yield base


@pytest.fixture(scope="module")
def http(url: str) -> Iterator[httpx.Client]:
    """One client, one keep-alive connection for the whole module (max_connections=1)."""
    with httpx.Client(base_url=url, timeout=60,
                      limits=httpx.Limits(max_connections=1)) as client:
        yield client


def _post(http: httpx.Client, body: Any = None, *, raw: bytes | None = None,
          headers: dict[str, str] | None = None) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return http.post("/v1/chat/completions", content=content,
                     headers={"Content-Type": "application/json", **AUTH, **(headers or {})})


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    assert body["error"]["message"]
    return dict(body["error"])


def _still_answers(http: httpx.Client) -> None:
    reply = _post(http, {"messages": USER, "max_tokens": 1})
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json()["usage"]["completion_tokens"] == 1


def _nested(depth: int) -> dict[str, Any]:
    """An object schema whose JSON nests ``depth`` objects (each property level adds 2)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range((depth - 1) // 2):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def _tool(parameters: Any, name: str = "f") -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


def _deep_list(depth: int) -> str:
    return "[" * depth + "]" * depth


# -- bounded requests -----------------------------------------------------------------------------

_DEEP = {"messages": USER, "max_tokens": 2, "tools": [_tool(_nested(300))]}
_LIMITS: list[tuple[str, dict[str, Any] | bytes, str | None, str]] = [
    ("deep tool schema", _DEEP, "tools.0.function.parameters", "nests more than"),
    ("deep response schema",
     {"messages": USER, "response_format": {"type": "json_schema",
                                            "json_schema": {"name": "x", "schema": _nested(300)}}},
     "response_format.json_schema.schema", "nests more than"),
    ("huge tool schema",
     {"messages": USER, "tools": [_tool({"type": "object", "description": "x" * MAX_SCHEMA_BYTES})]},
     "tools.0.function.parameters", f"more than the {MAX_SCHEMA_BYTES}"),
    ("too many tools",
     {"messages": USER, "tools": [_tool({"type": "object"}, f"f{i}") for i in range(MAX_TOOLS + 1)]},
     "tools", "at most 128"),
    ("deep tool-call arguments",
     {"messages": [{"role": "assistant", "content": None, "tool_calls": [{
         "id": "c1", "type": "function",
         "function": {"name": "f", "arguments": _deep_list(5000)}}]}, *USER]},
     "messages[0].tool_calls", "not a JSON object"),
    ("nested tool-call arguments",
     {"messages": [{"role": "assistant", "content": None, "tool_calls": [{
         "id": "c1", "type": "function",
         "function": {"name": "f", "arguments": json.dumps({"a": json.loads(_deep_list(40))})}}]},
         *USER]},
     "messages[0].tool_calls", "nest more than"),
    ("seed 2**64", {"messages": USER, "seed": 2**64}, "seed", "less than 18446744073709551616"),
    ("seed -1", {"messages": USER, "seed": -1}, "seed", "greater than or equal to 0"),
    ("top_k 2**70", {"messages": USER, "top_k": 2**70}, "top_k", "less than"),
    ("max_tokens 2**63", {"messages": USER, "max_tokens": 2**63}, "max_tokens", "less than"),
    ("max_completion_tokens -2**64",
     {"messages": USER, "max_completion_tokens": -(2**64)}, "max_completion_tokens",
     "greater than or equal to"),
    ("n 2**64", {"messages": USER, "n": 2**64}, "n", "less than"),
    ("top_logprobs 21", {"messages": USER, "top_logprobs": 21}, "top_logprobs", "less than"),
    ("stop_token_ids 2**40", {"messages": USER, "stop_token_ids": [2**40]}, "stop_token_ids.0",
     "less than"),
    ("logit_bias superscript", {"messages": USER, "logit_bias": {"\u00b2": 1}}, "logit_bias",
     "is not a token id"),
    ("a body nested deeper than JSON parsing goes",
     b'{"messages": [{"role": "user", "content": "Hi"}], "foo": '
     + _deep_list(100_000).encode() + b"}", None, "error parsing the body"),
    ("temperature NaN",
     b'{"messages": [{"role": "user", "content": "Hi"}], "temperature": NaN}', "temperature",
     "finite"),
    ("top_p Infinity",
     b'{"messages": [{"role": "user", "content": "Hi"}], "top_p": Infinity}', "top_p", "finite"),
    ("logit_bias -Infinity",
     b'{"messages": [{"role": "user", "content": "Hi"}], "logit_bias": {"5": -Infinity}}',
     "logit_bias.5", "finite"),
]


@pytest.mark.network
@pytest.mark.parametrize(("body", "param", "message"), [case[1:] for case in _LIMITS],
                         ids=[case[0] for case in _LIMITS])
def test_out_of_bounds_requests_are_400s_naming_the_field(
        http: httpx.Client, body: dict[str, Any] | bytes, param: str | None,
        message: str) -> None:
    response = _post(http, raw=body) if isinstance(body, bytes) else _post(http, body)
    error = _error(response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert message in error["message"]
    assert len(response.content) < 2048  # bounded: the request is not echoed back
    _still_answers(http)  # on the same connection: it was not reset


@pytest.mark.network
@pytest.mark.parametrize("choice", ["auto", "required"])
def test_a_schema_at_the_limits_is_served(http: httpx.Client, choice: str) -> None:
    schema = _nested(MAX_SCHEMA_DEPTH)
    response = _post(http, {"messages": USER, "tools": [_tool(schema)], "tool_choice": choice,
                            "max_tokens": MAX_TOKENS_LIMIT})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["choices"][0]["finish_reason"] in ("stop", "length", "tool_calls")


@pytest.mark.network
def test_authentication_comes_before_parsing(http: httpx.Client) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Basic {KEY}"}):
        for raw in (b"{not json", json.dumps(_DEEP).encode(), b'{"seed": 1e999}'):
            error = _error(_post(http, raw=raw, headers=headers), 401)
            assert error["code"] == "invalid_api_key"
        # a body larger than the limit: 401, not 413 (the body is never read)
        big = _post(http, raw=b" " * (MAX_REQUEST_BYTES + 1), headers=headers)
        assert _error(big, 401)["code"] == "invalid_api_key"
        assert _error(http.get("/v1/models", headers=headers), 401)["code"] == "invalid_api_key"
    # with the key, the same malformed body is a 400
    assert _error(_post(http, raw=b"{not json"), 400)["type"] == "invalid_request_error"
    assert http.get("/health").status_code == 200  # no key needed
    _still_answers(http)


@pytest.mark.network
def test_an_unexpected_error_is_a_json_500_and_the_connection_survives(
        http: httpx.Client, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from qwen_edge.server import app as server_app

    def explode(*_: Any, **__: Any) -> None:
        def deeper(n: int) -> int:
            return deeper(n + 1) + 1
        deeper(0)  # a RecursionError, the way a deep structure used to fail

    monkeypatch.setattr(server_app, "_plan", explode)
    with caplog.at_level("ERROR", logger="qwen_edge.server"):
        error = _error(_post(http, {"messages": USER, "max_tokens": 1}), 500)
    assert error["type"] == "server_error"
    [record] = [r for r in caplog.records if "RecursionError" in r.getMessage()]
    assert record.exc_info is None  # one summary line, not a thousand-frame trace
    monkeypatch.undo()
    _still_answers(http)


# -- fuzzing the request shape --------------------------------------------------------------------

_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
            | st.floats() | st.text(max_size=12))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
# Valid values are listed more than once: a request is mostly valid, with one odd field.
_EDGES = st.sampled_from([-1, 0, 2**31, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1])
_SMALL = st.integers(min_value=0, max_value=MAX_TOKENS_LIMIT + 2)
_INTS = st.one_of(_SMALL, _SMALL, _EDGES, st.integers(-(2**70), 2**70), _JSON)
_REAL = st.floats(min_value=0, max_value=2)
_FLOATS = st.one_of(_REAL, _REAL, st.floats(), _JSON)
_SCHEMA = st.one_of(st.just({"type": "object", "properties": {"x": {"type": "integer"}}}),
                    st.builds(_nested, st.integers(1, 2 * MAX_SCHEMA_DEPTH)), _JSON)
_TOOL = st.builds(_tool, _SCHEMA, st.sampled_from(["f", "g", "", "a b"])) | _JSON
_CALL = st.fixed_dictionaries({
    "id": st.text(max_size=4), "type": st.just("function"),
    "function": st.fixed_dictionaries({"name": st.sampled_from(["f", "g"]),
                                       "arguments": st.text(max_size=12)
                                       | st.just('{"x": 1}') | st.just(_deep_list(3000))})})
_TEXT = st.text(max_size=24)
_PLAIN = st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]),
                                "content": _TEXT})
_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "wizard"])},
    optional={"content": _TEXT | st.none()
              | st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]),
                                                "text": st.text(max_size=8)}), max_size=2)
              | _JSON,
              "name": st.text(max_size=6) | _JSON, "tool_calls": st.lists(_CALL, max_size=2),
              "tool_call_id": st.text(max_size=6)}) | _JSON
_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "model": st.just("tiny") | _JSON,
    "tools": st.lists(_TOOL, max_size=2) | _JSON,
    "tool_choice": st.sampled_from(["none", "auto", "required"])
    | st.just({"type": "function", "function": {"name": "f"}}) | _JSON,
    "parallel_tool_calls": st.booleans() | _JSON,
    "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}])
    | st.builds(lambda s: {"type": "json_schema", "json_schema": {"name": "x", "schema": s}},
                _SCHEMA) | _JSON,
    "stream": st.booleans(),
    "stream_options": st.just({"include_usage": True}) | _JSON,
    **dict.fromkeys(("max_tokens", "max_completion_tokens", "n", "seed", "top_k",
                     "top_logprobs"), _INTS),
    **dict.fromkeys(("temperature", "top_p", "min_p", "presence_penalty", "frequency_penalty",
                     "repetition_penalty"), _FLOATS),
    "logprobs": st.booleans() | _JSON,
    "stop": st.text(max_size=4) | st.lists(st.text(max_size=4), max_size=3) | _JSON,
    "logit_bias": st.dictionaries(st.sampled_from(["0", "5", "-1", "x", "99999999999",
                                                   "\u00b2", "\u0661"]),
                                  _FLOATS, max_size=2) | _JSON,
    "stop_token_ids": st.lists(_INTS, max_size=2) | _JSON,
    "ignore_eos": st.booleans() | _JSON,
    "user": st.text(max_size=6) | _JSON,
}
_MESSAGES = st.one_of(st.lists(_PLAIN, min_size=1, max_size=2),
                      st.lists(_PLAIN, min_size=1, max_size=2),
                      st.lists(_MESSAGE, max_size=3), _JSON)
_REQUEST = st.builds(
    lambda messages, fields: {"messages": messages, **fields}, _MESSAGES,
    st.lists(st.sampled_from(sorted(_FIELDS)), max_size=4, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: _FIELDS[k] for k in keys})))


def _check_events(response: httpx.Response) -> None:
    """A streamed 200: every event is JSON (or [DONE]) and none reports a server error."""
    for line in response.text.splitlines():
        if not line:
            continue
        assert line.startswith("data: "), line[:100]
        data = line.removeprefix("data: ")
        if data != "[DONE]":
            event = json.loads(data)
            assert event.get("error", {}).get("type") != "server_error", data[:300]


@pytest.mark.network
@pytest.mark.slow
@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(body=st.one_of(_REQUEST, _REQUEST, _REQUEST, _JSON))
def test_fuzzed_requests_get_json_2xx_or_4xx(http: httpx.Client, body: Any) -> None:
    response = _post(http, raw=json.dumps(body).encode())  # NaN / Infinity sent as such
    assert response.status_code < 300 or 400 <= response.status_code < 500, response.text[:300]
    if response.headers["content-type"].startswith("text/event-stream"):
        assert response.status_code == 200
        _check_events(response)
    else:
        payload = response.json()
        if response.status_code >= 400:
            assert set(payload) == {"error"}
            assert set(payload["error"]) == ERROR_KEYS
    assert http.get("/health").json()["status"] == "ok"  # still answering, same connection

"""The OpenAI-compatible HTTP server: ``create_app(model) -> FastAPI``.

One request, end to end::

    body -> ChatCompletionRequest -> _plan (thread pool): schema translation, then the chat
            path's plan_chat (prompt ids, a frozen config with the tool grammar)
         -> _Worker.submit: admitted, or 429 when 1 + max_queue requests are in flight
         -> the generation thread: one warm Session, chat_api.run_chat delta by delta
            -> the request's queue
         -> JSON, or server-sent events (reasoning, content, tool-call fragments)

The server owns no generation logic of its own: tool calls, ``tool_choice``, truncation and
finish reasons are the library's (``qwen_edge.chat_api``), the same for the agent and router.

Generation is serialized: one thread runs one request at a time on one ``Session``, whose KV
cache keeps the previous request's tokens, so a request that shares a prefix with the one
before (an agent's system prompt and tool schemas, a chat's history) prefills only what is new.
A client that disconnects cancels its request: a waiting one leaves the queue at once, a
running one stops at its next token and frees the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..chat_api import ChatPlan, plan_chat
from ..errors import (
    ConfigError,
    QwenEdgeError,
)
from ..model import Model
from ..types import ChatDelta, ChatResponse, Usage, collect
from . import schemas
from .page import add_chat_page
from .worker import _api_error, _APIError, _Done, _Event, _Job, _Worker

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_SAMPLING = ("temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty",
             "repetition_penalty", "seed")
_TEMPLATE_EXCLUDE = {"function": {"x_grounded"}}
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ErrorResponse} for code in (400, 401, 404, 413, 429)}


# -- request -> prompt + options ----------------------------------------------------------------


def _message(i: int, message: schemas.ChatMessage) -> dict[str, Any]:
    """An OpenAI message as the chat template expects it (arguments as objects)."""
    content = message.content
    if isinstance(content, list):
        texts = []
        for part in content:
            if part.type != "text" or part.text is None:
                msg = f"messages[{i}].content: only text parts are supported (got {part.type!r})"
                raise _APIError(400, msg, param=f"messages[{i}].content")
            texts.append(part.text)
        content = "\n".join(texts)
    out: dict[str, Any] = {"role": "system" if message.role == "developer" else message.role,
                           "content": content or ""}
    if message.name is not None:
        out["name"] = message.name
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.reasoning_content is not None and message.role == "assistant":
        out["reasoning_content"] = message.reasoning_content
    if message.tool_calls:
        calls = []
        for call in message.tool_calls:
            try:
                arguments = json.loads(call.function.arguments or "{}")
            except (ValueError, RecursionError):  # bad JSON, huge ints, deep nesting
                arguments = None
            if not isinstance(arguments, dict):
                msg = (f"messages[{i}].tool_calls: the arguments of {call.function.name!r} are "
                       "not a JSON object")
                raise _APIError(400, msg, param=f"messages[{i}].tool_calls")
            if schemas.json_depth(arguments, schemas.MAX_JSON_DEPTH) > schemas.MAX_JSON_DEPTH:
                msg = (f"messages[{i}].tool_calls: the arguments of {call.function.name!r} nest "
                       f"more than {schemas.MAX_JSON_DEPTH} objects or arrays")
                raise _APIError(400, msg, param=f"messages[{i}].tool_calls")
            calls.append({"id": call.id, "type": "function",
                          "function": {"name": call.function.name, "arguments": arguments}})
        out["tool_calls"] = calls
    return out


def _plan(body: schemas.ChatCompletionRequest, model: Model, *, context_tokens: int,
          max_tokens_limit: int) -> ChatPlan:
    """Translate a request into the chat path's plan (every 400 is raised here)."""
    if body.n not in (None, 1):
        msg = f"n={body.n}: this server returns one choice per request; send n=1 or leave it out"
        raise _APIError(400, msg, param="n")
    if body.logprobs:
        raise _APIError(400, "logprobs are not supported by this server", param="logprobs")
    messages = [_message(i, m) for i, m in enumerate(body.messages)]
    # x-grounded goes to the tool (grounded decoding); the chat template never shows it
    tools = [t.model_dump(exclude_none=True, by_alias=True) for t in body.tools or []]
    choice: Any = body.tool_choice
    if isinstance(choice, schemas.NamedToolChoice):
        choice = choice.model_dump()
    options: dict[str, Any] = {name: getattr(body, name) for name in _SAMPLING
                               if getattr(body, name) is not None}
    if body.stop is not None:
        options["stop"] = [body.stop] if isinstance(body.stop, str) else list(body.stop)
    if body.ignore_eos or body.stop_token_ids:
        eos = [] if body.ignore_eos else list(model.stop_token_ids)
        options["stop_token_ids"] = eos + list(body.stop_token_ids or [])
    if body.thinking_budget is not None:
        options["thinking_budget"] = body.thinking_budget
    if body.chat_template_kwargs:
        options["chat_template_kwargs"] = dict(body.chat_template_kwargs)
    bias = _logit_bias(body.logit_bias, model.engine.vocab_size)
    if bias:
        options["logit_bias"] = bias

    fmt = body.response_format
    if fmt is not None and fmt.type != "text":
        if tools and (choice or "auto") != "none":
            msg = "response_format cannot be combined with tools unless tool_choice is 'none'"
            raise _APIError(400, msg, param="response_format")
        if fmt.type == "json_object":
            options["json_schema"] = {"type": "object"}
        elif fmt.json_schema is None:
            msg = "response_format of type json_schema needs json_schema: {name, schema}"
            raise _APIError(400, msg, param="response_format")
        else:
            options["json_schema"] = fmt.json_schema.schema_

    max_tokens = (body.max_completion_tokens if body.max_completion_tokens is not None
                  else body.max_tokens)
    if max_tokens is not None and max_tokens > max_tokens_limit:
        msg = (f"max_tokens={max_tokens} is too large: this server generates at most "
               f"{max_tokens_limit} tokens per request")
        raise _APIError(400, msg, param="max_tokens", code="invalid_value")
    config = model.config(**options)  # a bad option is a 400 now, not an error in the worker
    plan = plan_chat(model, messages, tools=tools or None, tool_choice=choice, config=config,
                     parallel_tool_calls=body.parallel_tool_calls is not False)
    room = context_tokens - len(plan.prompt)
    if room < 1 or (max_tokens is not None and max_tokens > room):
        wanted = max_tokens if max_tokens is not None else 1
        msg = (f"This model's maximum context length is {context_tokens} tokens. However, you "
               f"requested {len(plan.prompt) + wanted} tokens ({len(plan.prompt)} in the "
               f"messages, {wanted} in the completion). Please reduce the length of the "
               "messages or completion.")
        raise _APIError(400, msg, param="messages", code="context_length_exceeded")
    limit = max_tokens if max_tokens is not None else min(room, max_tokens_limit)
    return dataclasses.replace(plan, config=plan.config.override(max_tokens=limit))


def _logit_bias(bias: Mapping[str, float] | None, vocab_size: int) -> dict[int, float]:
    out: dict[int, float] = {}
    for key, value in (bias or {}).items():
        # isascii: superscript and Arabic-Indic digits pass str.isdigit; int() refuses "²"
        if not (key.isascii() and key.isdigit()) or int(key) >= vocab_size:
            msg = f"logit_bias: {key!r} is not a token id (0 to {vocab_size - 1})"
            raise _APIError(400, msg, param="logit_bias")
        out[int(key)] = value
    return out


# -- responses ----------------------------------------------------------------------------------


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


# -- middleware ---------------------------------------------------------------------------------


class _BodyLimit:
    """Reads a request body up to ``max_bytes`` (else 413) and replays it to the app."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        msg = (f"the request body is larger than {self.max_bytes} bytes, the most this server "
               "accepts (--max-request-bytes)")
        error = _APIError(413, msg, code="request_too_large", headers={"Connection": "close"})
        await error.response()(scope, receive, send)


class _Auth:
    """Checks ``Authorization: Bearer <key>`` on ``/v1`` before anything reads the body, so
    a client without the key learns nothing about the request's validity (401 before 400 or
    413) and never makes the server parse its body."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.api_key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not (path == "/v1" or path.startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, key = header.partition(b" ")
        if scheme.lower() != b"bearer" or not key.strip():
            msg = "missing API key: send the header Authorization: Bearer <key>"
        elif not hmac.compare_digest(key.strip(), self.api_key):
            msg = "incorrect API key provided"
        else:
            await self.app(scope, receive, send)
            return
        # The body is left unread: close the connection rather than parse it to keep it alive.
        error = _APIError(401, msg, code="invalid_api_key",
                          headers={"WWW-Authenticate": "Bearer", "Connection": "close"})
        await error.response()(scope, receive, send)


class _ServerErrors:
    """The last boundary: an exception no handler translated becomes OpenAI's JSON 500 (not
    Starlette's plain-text one), is logged once, and goes no further, so the server keeps the
    connection and answers the client's next request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            # A RecursionError's trace is thousands of identical frames: log its summary.
            logger.error("%s %s failed: %s: %s", scope.get("method"), scope.get("path"),
                         type(exc).__name__, str(exc)[:200],
                         exc_info=None if isinstance(exc, RecursionError) else exc)
            if started:  # a stream broke mid-way: the client sees the connection end
                raise
            await _api_error(exc).response()(scope, receive, send)


class _AccessLog:
    """One line per request on ``qwen_edge.server``: method, path, status, tokens, ms."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = scope.setdefault("state", {})  # Request.state of the handler
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            done = state.get("usage")
            tokens = "-"
            if isinstance(done, _Done):
                tokens = (f"{done.prompt_tokens} prompt ({done.cached_tokens} cached) + "
                          f"{done.completion_tokens} completion tokens"
                          f"{', cancelled by the client' if done.cancelled else ''}")
            logger.info("%s %s %d %s %.0f ms", scope["method"], scope["path"], status, tokens,
                        (time.perf_counter() - start) * 1000,
                        extra={"http_status": status, "usage": done})


# -- the app ------------------------------------------------------------------------------------


def create_app(model: Model, *, api_key: str | None = None, max_queue: int = 16,
               max_request_bytes: int = 4 * 2**20, max_tokens_limit: int = 4096,
               model_name: str | None = None) -> FastAPI:
    """The OpenAI-compatible ASGI app serving ``model``.

    Routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /v1/models/{id}``,
    ``GET /health``, and the OpenAPI document at ``/openapi.json`` (``/docs`` renders it).

    Args:
        model: a loaded model; all requests share it and one warm session.
        api_key: when set, every ``/v1`` route needs ``Authorization: Bearer <api_key>``.
        max_queue: requests that may wait while one generates; more get a 429.
        max_request_bytes: largest request body (413 above).
        max_tokens_limit: largest ``max_tokens`` a request may ask for (400 above); also
            the default when a request leaves it out (capped by the room left in the context).
        model_name: the id in ``/v1/models`` and responses (default: the package folder name).
            A request naming another model gets a 404, as vLLM answers.

    Example:
        >>> app = create_app(qwen_edge.load("pkg"), api_key="secret")
        >>> uvicorn.run(app, host="127.0.0.1", port=8000)
    """
    if api_key is not None and not api_key:
        raise ConfigError("api_key='': give a non-empty key, or None for no authentication")
    for name, value, low in (("max_queue", max_queue, 0), ("max_request_bytes",
                             max_request_bytes, 1024), ("max_tokens_limit", max_tokens_limit, 1)):
        if not isinstance(value, int) or value < low:
            msg = f"{name}={value!r}: must be an int >= {low}"
            raise ConfigError(msg)
    name = model_name or model.package.path.name
    fingerprint = f"fp_{model.package.package_hash[:12]}"
    created = int(time.time())
    worker = _Worker(model, max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await anyio.to_thread.run_sync(worker.close)

    app = FastAPI(title="qwen-edge", version=__version__, lifespan=lifespan,
                  summary="OpenAI-compatible chat completions from a model on this device")
    # outermost last: access log -> authentication -> body limit -> JSON 500s -> routes
    app.add_middleware(_ServerErrors)
    app.add_middleware(_BodyLimit, max_bytes=max_request_bytes)
    if api_key is not None:
        app.add_middleware(_Auth, api_key=api_key)
    app.add_middleware(_AccessLog)

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, RequestValidationError):
            problems = [f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}"
                        for e in exc.errors()[:3]]
            first = exc.errors()[0]["loc"][1:] if exc.errors() else ()
            return _APIError(400, "invalid request: " + "; ".join(problems),
                             param=".".join(str(p) for p in first) or None).response()
        if isinstance(exc, StarletteHTTPException):
            detail = str(exc.detail)
            if exc.status_code in (404, 405):  # no such route: say which, as OpenAI does
                detail = f"{detail}: {request.method} {request.url.path}"
            return _APIError(exc.status_code, detail).response()
        return _api_error(exc).response()

    for kind in (_APIError, QwenEdgeError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(kind, on_error)

    auth: list[Any] = []
    if api_key is not None:
        bearer = HTTPBearer(auto_error=False, description="the server's --api-key")

        async def check_key(
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
        ) -> None:
            if credentials is None:
                msg = "missing API key: send the header Authorization: Bearer <key>"
            elif not hmac.compare_digest(credentials.credentials.encode(), api_key.encode()):
                msg = "incorrect API key provided"
            else:
                return
            raise _APIError(401, msg, code="invalid_api_key",
                            headers={"WWW-Authenticate": "Bearer"})

        auth = [Depends(check_key)]

    card = schemas.ModelCard(id=name, created=created, max_model_len=worker.context_tokens)
    add_chat_page(app)  # GET /: the chat page, open like /health (it holds no secret)

    @app.get("/health", response_model=schemas.Health, tags=["server"])
    async def health() -> schemas.Health:
        generating, waiting = worker.counts()
        return schemas.Health(model=name, generating=generating, waiting=waiting)

    @app.get("/v1/models", response_model=schemas.ModelList, dependencies=auth,
             responses=_ERROR_RESPONSES, tags=["openai"])
    async def list_models() -> schemas.ModelList:
        return schemas.ModelList(data=[card])

    @app.get("/v1/models/{model_id:path}", response_model=schemas.ModelCard, dependencies=auth,
             responses=_ERROR_RESPONSES, tags=["openai"])
    async def get_model(model_id: str) -> schemas.ModelCard:
        if model_id != name:
            raise _APIError(404, f"The model `{model_id}` does not exist.", param="model",
                            code="model_not_found")
        return card

    @app.post("/v1/chat/completions", response_model=schemas.ChatCompletion, dependencies=auth,
              tags=["openai"], responses={**_ERROR_RESPONSES, 200: {"content": {
                  "text/event-stream": {"schema": {"$ref": _CHUNK_REF}}}}})
    async def chat_completions(body: schemas.ChatCompletionRequest, request: Request) -> Response:
        """Generate the assistant's reply: JSON, or server-sent events with ``stream``."""
        if body.model and body.model != name:
            raise _APIError(404, f"The model `{body.model}` does not exist; this server "
                            f"serves `{name}`.", param="model", code="model_not_found")
        plan = await anyio.to_thread.run_sync(functools.partial(
            _plan, body, model, context_tokens=worker.context_tokens,
            max_tokens_limit=max_tokens_limit))
        job = _Job(plan, asyncio.get_running_loop())
        worker.submit(job)
        watch = asyncio.create_task(_cancel_on_disconnect(request.receive, worker, job))
        release = functools.partial(_release, worker, job, watch, request.state)

        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                "model": name, "system_fingerprint": fingerprint}
        streaming = False
        try:
            first = await job.next()
            if isinstance(first, BaseException):
                raise _api_error(first)
            if body.stream and not isinstance(first, _Done):
                streaming = True  # the generator owns the job from here on
                include_usage = bool(body.stream_options and body.stream_options.include_usage)
                return StreamingResponse(
                    _stream(first, job, head, include_usage, release),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            answer, done = await _collect(first, job)
        finally:
            if not streaming:
                await release()
        if done.cancelled:
            return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
        return JSONResponse(_completion(head, answer, done))

    app.openapi = functools.partial(_openapi, app)  # type: ignore[method-assign]
    return app


_CHUNK_REF = "#/components/schemas/ChatCompletionChunk"


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the streamed chunk's schema (no route returns it as JSON)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, summary=app.summary,
                               routes=app.routes)
        chunk = schemas.ChatCompletionChunk.model_json_schema(
            ref_template="#/components/schemas/{model}")
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in chunk.pop("$defs", {}).items():
            components.setdefault(name, schema)
        components["ChatCompletionChunk"] = chunk
        app.openapi_schema = document
    return app.openapi_schema

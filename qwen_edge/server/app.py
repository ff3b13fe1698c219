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

This module holds the routes and wires the parts: ``planner`` (request -> plan, every 400),
``worker`` (the generation thread and OpenAI's error shape), ``responses`` (events -> JSON or
server-sent events) and ``middleware`` (access log, authentication, body limit, JSON 500s).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import ConfigError, QwenEdgeError
from ..model import Model
from . import schemas
from .middleware import _AccessLog, _Auth, _BodyLimit, _ServerErrors
from .page import add_chat_page
from .planner import _plan
from .responses import _cancel_on_disconnect, _collect, _completion, _release, _stream
from .worker import _api_error, _APIError, _Done, _Job, _Worker

__all__ = ["create_app"]

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ErrorResponse} for code in (400, 401, 404, 413, 429)}


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

"""The ASGI layers around the routes: access log, authentication, body limit, JSON 500s.

Each answers in OpenAI's error shape (``worker._APIError``) and reads no more of a request
than it must: authentication and the body limit answer before anything parses the body.
"""

from __future__ import annotations

import hmac
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .worker import _api_error, _APIError, _Done

__all__ = ["_AccessLog", "_Auth", "_BodyLimit", "_ServerErrors"]

logger = logging.getLogger("qwen_edge.server.app")  # the server's one logger name, as before


class _HTTPMiddleware:
    """An ASGI layer over the requests ``applies`` to (HTTP ones by default); everything else
    (lifespan, other requests) passes straight to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def applies(self, scope: Scope) -> bool:
        return bool(scope["type"] == "http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.applies(scope):
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class _BodyLimit(_HTTPMiddleware):
    """Reads a request body up to ``max_bytes`` (else 413) and replays it to the app."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    def applies(self, scope: Scope) -> bool:
        return super().applies(scope) and scope["method"] not in ("GET", "HEAD", "OPTIONS")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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


class _Auth(_HTTPMiddleware):
    """Checks ``Authorization: Bearer <key>`` on ``/v1`` before anything reads the body, so
    a client without the key learns nothing about the request's validity (401 before 400 or
    413) and never makes the server parse its body."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        super().__init__(app)
        self.api_key = api_key.encode()

    def applies(self, scope: Scope) -> bool:
        path = str(scope.get("path", ""))
        return super().applies(scope) and (path == "/v1" or path.startswith("/v1/"))

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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


class _ServerErrors(_HTTPMiddleware):
    """The last boundary: an exception no handler translated becomes OpenAI's JSON 500 (not
    Starlette's plain-text one), is logged once, and goes no further, so the server keeps the
    connection and answers the client's next request."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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


class _AccessLog(_HTTPMiddleware):
    """One line per request on ``qwen_edge.server``: method, path, status, tokens, ms."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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

"""The server's generation worker, and its errors in OpenAI's shape.

One thread runs one request at a time on one warm ``Session`` (``chat_api.run_chat``), so
consecutive requests that share a prefix prefill only what is new; a bounded wait list in
front of it answers 429 when full, and a cancelled request stops at its next token.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from fastapi.responses import JSONResponse

from ..chat_api import ChatPlan, run_chat
from ..errors import (
    ConfigError,
    ContextLengthError,
    GenerationError,
    QwenEdgeError,
    TokenizerError,
    ToolError,
)
from ..model import Model
from ..types import ChatDelta, Usage

__all__ = ["_APIError", "_Done", "_Event", "_Job", "_Worker", "_api_error"]

logger = logging.getLogger("qwen_edge.server.app")


# -- errors -------------------------------------------------------------------------------------


class _APIError(Exception):
    """An error answered in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.param, self.code, self.headers = param, code, dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


_PARAM = re.compile(r"^(\w+)(?:\[[^\]]*\])?=")  # "temperature=-1.0: must be ..." -> temperature


def _api_error(exc: BaseException) -> _APIError:
    """Translate a library (or unexpected) error once, at the HTTP boundary."""
    if isinstance(exc, _APIError):
        return exc
    if isinstance(exc, ContextLengthError):
        return _APIError(400, str(exc), param="messages", code="context_length_exceeded")
    if isinstance(exc, (ConfigError, GenerationError, ToolError, TokenizerError)):
        match = _PARAM.match(str(exc))
        return _APIError(400, str(exc), param=match.group(1) if match else None)
    return _APIError(500, "generation failed; the server log has the details",
                     kind="server_error")


# -- the generation worker ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Done:
    """The last event of a job: its token counts, and whether it was cancelled."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cancelled: bool = False


_Event = ChatDelta | _Done | BaseException


class _Job:
    """One request's generation: input, a queue read on the event loop, a cancel flag."""

    def __init__(self, plan: ChatPlan, loop: asyncio.AbstractEventLoop) -> None:
        self.plan = plan
        self.loop = loop
        self.events: asyncio.Queue[_Event] = asyncio.Queue()
        self.cancelled = threading.Event()
        self.ended = False  # the consumer has seen the last event (a _Done or an error)
        self.done: _Done | None = None

    async def next(self) -> _Event:
        event = await self.events.get()
        self.ended = isinstance(event, (_Done, BaseException))
        self.done = event if isinstance(event, _Done) else None
        return event

    def put(self, event: _Event) -> None:
        """Hand an event to the request's event loop (safe from any thread)."""
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the loop is closed: nobody listens any more
            self.cancelled.set()


class _Worker:
    """A bounded wait list in front of one generation thread and one warm ``Session``.

    ``submit`` admits a job while at most ``max_queue`` others are in flight (one generating,
    the rest waiting) and raises a 429 otherwise. The thread runs jobs in order on the same
    session, which reuses the longest common prefix of consecutive prompts. ``cancel`` drops
    a waiting job at once and stops a running one at its next token.
    """

    def __init__(self, model: Model, max_queue: int) -> None:
        self.session = model.session()
        self.max_queue = max_queue
        self._cond = threading.Condition()
        self._waiting: deque[_Job] = deque()
        self._running: _Job | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._mean_s = 1.0  # moving average of a job's duration, for Retry-After

    @property
    def context_tokens(self) -> int:
        return self.session.cache.max_context

    def counts(self) -> tuple[int, int]:
        """(generating, waiting)."""
        with self._cond:
            return int(self._running is not None), len(self._waiting)

    def submit(self, job: _Job) -> None:
        with self._cond:
            if self._closed:
                raise _APIError(503, "the server is shutting down", kind="server_error")
            in_flight = len(self._waiting) + (self._running is not None)
            if in_flight > self.max_queue:
                retry_s = max(1, math.ceil(self._mean_s * in_flight))
                msg = (f"the server is busy: {in_flight} requests in flight (one generates at "
                       f"a time and at most {self.max_queue} wait); retry in {retry_s} s")
                raise _APIError(429, msg, kind="requests", code="rate_limit_exceeded",
                                headers={"Retry-After": str(retry_s)})
            self._waiting.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="qwen-edge-generate",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def cancel(self, job: _Job) -> None:
        """Stop ``job`` (a no-op once it is done)."""
        with self._cond:
            if job in self._waiting:
                self._waiting.remove(job)
                job.put(_Done(cancelled=True))
                return
        job.cancelled.set()

    def close(self) -> None:
        """Cancel everything and stop the thread."""
        with self._cond:
            self._closed = True
            for job in self._waiting:
                job.put(_Done(cancelled=True))
            self._waiting.clear()
            if self._running is not None:
                self._running.cancelled.set()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._running = self._waiting.popleft()
            start = time.perf_counter()
            try:
                self._generate(job)
            finally:
                with self._cond:
                    self._running = None
                    self._mean_s += 0.2 * (time.perf_counter() - start - self._mean_s)

    def _generate(self, job: _Job) -> None:
        """Run one job: forward its deltas until it ends or is cancelled (checked per token)."""
        if job.cancelled.is_set():
            job.put(_Done(cancelled=True))
            return
        cancelled = False
        usage: Usage | None = None
        completion = 0
        try:
            deltas = cast("Generator[ChatDelta, None, None]",
                          run_chat(self.session, job.plan))
            try:
                for delta in deltas:
                    if job.cancelled.is_set():
                        cancelled = True
                        break
                    completion += len(delta.logprobs)
                    usage = delta.usage or usage
                    job.put(delta)
            finally:
                deltas.close()  # trims the session's cache to the tokens actually fed
        except QwenEdgeError as exc:
            job.put(exc)
            return
        except Exception as exc:  # reported to the client as a 500, logged here with the trace
            logger.exception("generation failed")
            job.put(exc)
            return
        if usage is None:  # cancelled before the final delta: count what was generated
            usage = Usage(len(job.plan.prompt), completion)
        job.put(_Done(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens,
                      cancelled))



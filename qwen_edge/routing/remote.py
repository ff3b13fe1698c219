"""An OpenAI-compatible chat-completions client for the router: timeouts, retries, a breaker.

    with Remote("http://gpu-box:8000/v1", "Qwen/Qwen2.5-7B-Instruct", timeout=10.0) as remote:
        out = remote.chat([{"role": "user", "content": "Hi"}], max_tokens=64)
        for delta in remote.stream_chat(messages, temperature=0):
            ...

It speaks ``POST {base_url}/chat/completions`` the way our server, vLLM, llama.cpp's server and
DashScope's compatible mode (``https://dashscope.aliyuncs.com/compatible-mode/v1``) do. What
some of them leave out (``usage``, ``logprobs``, the final ``data: [DONE]``) is optional here.

What a request goes through:

- **Circuit breaker.** After ``breaker_threshold`` consecutive failed attempts (transport
  error, timeout, 429, 5xx, unusable body) the breaker opens: calls fail at once with
  ``RemoteUnavailableError("... circuit open ...")`` and send nothing. After
  ``breaker_reset_s`` one call is let through as a trial (half-open); its success closes the
  breaker, its failure opens it for another ``breaker_reset_s``. A dead server therefore
  costs ``breaker_threshold`` timeouts, then one per ``breaker_reset_s``, not one per request.
- **Timeouts** are httpx's, per phase: connect, read (the longest silence between two reads,
  not the whole answer), write, pool. A timed-out attempt is not retried: the caller already
  waited the full timeout, and the router would rather answer locally.
- **Retries.** Up to ``max_retries`` more attempts on 429, 5xx and fast connection failures
  (refused, reset, closed before the response), after ``backoff_s * 2**k`` seconds with equal
  jitter (half fixed, half random). A ``Retry-After`` header (429, 503) is honoured when it is
  at most ``max_retry_after_s``; a longer one is not waited for and the error is raised. Other
  4xx statuses are never retried: the same request would fail the same way.
- **Errors** are translated once, at this boundary (``_map_httpx_errors``, modelled on httpx's
  ``map_httpcore_exceptions``): transport errors become ``RemoteUnavailableError``; an error
  status becomes ``RemoteResponseError(status=...)`` with the server's own message; a 2xx
  whose body is not a chat completion (malformed JSON, a proxy's HTML page, an ``error``
  object) becomes ``RemoteUnavailableError``: the request was fine and the server could not
  produce an answer, which, like an outage, calls for the local fallback, and there is no
  error status to report. A stream that breaks after it started raises ``BrokenStreamError``
  (a ``RemoteUnavailableError``) whose ``partial`` is the text received so far; it is never
  retried, since the caller has seen that text already.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx

from .._validate import check as _check
from .._validate import int_at_least as _int_at_least
from .._validate import positive as _positive
from ..errors import (
    BrokenStreamError,
    ConfigError,
    RemoteError,
    RemoteResponseError,
    RemoteUnavailableError,
)
from ..types import ChatResponse
from .wire import (
    _decode_event,
    _decode_json,
    _parse_chunk,
    _parse_completion,
    _parse_retry_after,
    _server_message,
    _sse_events,
)

__all__ = ["DEFAULT_TIMEOUT", "BrokenStreamError", "Remote", "RemoteCompletion"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
"""5 s to connect, 30 s for any read, write or free connection."""

# Request fields a caller may set; None values are left out. The last line is not OpenAI's:
# vLLM, llama.cpp's server, DashScope and ours accept top_k / min_p / repetition_penalty,
# vLLM and ours ignore_eos and chat_template_kwargs.
_OPTIONS = frozenset({
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed",
    "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "tools", "tool_choice", "parallel_tool_calls", "response_format", "user",
    "top_k", "min_p", "repetition_penalty", "ignore_eos", "chat_template_kwargs",
})

# Transport errors, most specific first: (httpx class, what happened, retried?).
_TRANSPORT_ERRORS: tuple[tuple[type[httpx.TransportError], str, bool], ...] = (
    (httpx.ConnectTimeout, "timed out connecting", False),
    (httpx.ReadTimeout, "timed out waiting for the server", False),
    (httpx.WriteTimeout, "timed out sending the request", False),
    (httpx.PoolTimeout, "timed out waiting for a free connection", False),
    (httpx.ConnectError, "cannot connect", True),
    (httpx.RemoteProtocolError, "the server closed the connection", True),
    (httpx.ReadError, "the connection broke while reading", True),
    (httpx.WriteError, "the connection broke while sending", True),
    (httpx.TransportError, "transport error", False),
)


RemoteCompletion = ChatResponse
"""A server's answer (its first choice) is a ``ChatResponse``: ``content`` ("" when the model
only called tools), ``tool_calls`` (arguments parsed from JSON), ``finish_reason`` as the
server said ("stop" if absent), ``usage`` (None when the server sent none), ``logprobs``
(when requested and sent) and ``raw``, the decoded body."""


@contextlib.contextmanager
def _map_httpx_errors(where: str) -> Iterator[None]:
    """Translate httpx's exceptions into ours, once, at the boundary."""
    try:
        yield
    except httpx.TransportError as exc:
        what = next(what for cls, what, _ in _TRANSPORT_ERRORS if isinstance(exc, cls))
        detail = str(exc) or type(exc).__name__
        raise RemoteUnavailableError(f"{where}: {what} ({detail})") from exc
    except httpx.DecodingError as exc:  # e.g. a corrupt gzip body
        raise RemoteUnavailableError(f"{where}: cannot decode the response ({exc})") from exc


def _retryable(exc: RemoteUnavailableError) -> bool:
    cause = exc.__cause__
    return any(isinstance(cause, cls) and retry for cls, _, retry in _TRANSPORT_ERRORS)


class _Breaker:
    """Consecutive-failure circuit breaker: closed -> open -> half-open (one trial) -> ..."""

    def __init__(self, threshold: int, reset_s: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.reset_s = reset_s
        self.clock = clock
        self.failures = 0
        self.last_error = ""
        self.opened_at: float | None = None
        self.trial = False  # the half-open trial is in flight
        self._lock = threading.Lock()

    @property
    def state(self) -> Literal["closed", "open", "half-open"]:
        with self._lock:
            if self.opened_at is None:
                return "closed"
            if self.trial or self.clock() - self.opened_at >= self.reset_s:
                return "half-open"
            return "open"

    def enter(self, where: str) -> None:
        """Let an attempt through, or raise RemoteUnavailableError (circuit open)."""
        with self._lock:
            if self.opened_at is None:
                return
            wait_s = self.opened_at + self.reset_s - self.clock()
            if wait_s <= 0 and not self.trial:
                self.trial = True
                logger.info("%s: circuit half-open, sending one trial request", where)
                return
        when = "after the trial request in flight" if wait_s <= 0 else f"in {wait_s:.1f} s"
        last = self.last_error.removeprefix(f"{where}: ")
        msg = (f"{where}: circuit open after {self.failures} consecutive failures (last: "
               f"{last}); the next attempt goes out {when}")
        raise RemoteUnavailableError(msg)

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at, self.trial = 0, None, False

    def failure(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = str(error)
            if self.trial or self.failures >= self.threshold:
                if self.opened_at is None or self.trial:
                    logger.warning("circuit open after %d consecutive failures: %s",
                                   self.failures, error)
                self.opened_at, self.trial = self.clock(), False

    def release(self) -> None:
        """The attempt ended without a verdict (e.g. KeyboardInterrupt): free the trial slot."""
        with self._lock:
            self.trial = False


class Remote:
    """A client of an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        base_url: the API root, e.g. ``http://gpu:8000/v1``.
        model: the ``model`` field of every request.
        api_key: sent as ``Authorization: Bearer ...`` (never read from the environment).
        timeout: an ``httpx.Timeout``, or seconds for every phase (default: 5 s to connect,
            30 s for each read, write and pool wait).
        max_retries: more attempts after the first, on 429, 5xx and connection failures.
        backoff_s: the first retry's delay; it doubles per retry (with jitter).
        max_retry_after_s: the longest ``Retry-After`` honoured; longer ones are not retried.
        breaker_threshold: consecutive failed attempts that open the circuit.
        breaker_reset_s: how long it stays open before one trial request.
        transport: an httpx transport (``httpx.MockTransport`` in tests).
        clock: monotonic seconds (the breaker's clock; tests pass a fake).
        sleep: how to wait between retries (tests pass a recorder).

    Raises:
        ConfigError: a bad URL or out-of-range setting.

    Example:
        >>> remote = Remote("http://localhost:8000/v1", "qwen2.5-7b", timeout=10.0)
        >>> remote.chat([{"role": "user", "content": "Hi"}], max_tokens=16).text
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        backoff_s: float = 0.25,
        max_retry_after_s: float = 10.0,
        breaker_threshold: int = 3,
        breaker_reset_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            url = httpx.URL(base_url)
        except (httpx.InvalidURL, TypeError) as exc:
            msg = f"base_url={base_url!r}: not a URL ({exc}); pass e.g. http://host:8000/v1"
            raise ConfigError(msg) from exc
        _check(url.scheme in ("http", "https") and bool(url.host), "base_url", base_url,
               "an http(s) URL with a host, e.g. http://host:8000/v1")
        _check(isinstance(model, str) and bool(model), "model", model, "a model name")
        if not isinstance(timeout, httpx.Timeout):
            _check(_positive(timeout), "timeout", timeout, "an httpx.Timeout or seconds > 0")
            timeout = httpx.Timeout(float(timeout))
        _check(_int_at_least(max_retries, 0), "max_retries", max_retries, "an int >= 0")
        _check(_positive(backoff_s, zero=True), "backoff_s", backoff_s, "seconds >= 0")
        _check(_positive(max_retry_after_s, zero=True), "max_retry_after_s", max_retry_after_s,
               "seconds >= 0")
        _check(_int_at_least(breaker_threshold, 1), "breaker_threshold", breaker_threshold,
               "an int >= 1")
        _check(_positive(breaker_reset_s, zero=True), "breaker_reset_s", breaker_reset_s,
               "seconds >= 0")
        # Messages, logs and the audit log show the URL without credentials.
        self.base_url = str(url.copy_with(username=None, password=None)).rstrip("/")
        self.model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.max_retry_after_s = float(max_retry_after_s)
        self._breaker = _Breaker(breaker_threshold, float(breaker_reset_s), clock)
        self._sleep = sleep
        self._random = random.Random()
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(base_url=str(url).rstrip("/") + "/", headers=headers,
                                    timeout=timeout, transport=transport)
        self._closed = False

    # -- public ------------------------------------------------------------------------------

    @property
    def breaker_state(self) -> Literal["closed", "open", "half-open"]:
        """``closed`` (normal), ``open`` (failing fast) or ``half-open`` (a trial is due)."""
        return self._breaker.state

    def chat(self, messages: Sequence[Mapping[str, Any]], **options: Any) -> RemoteCompletion:
        """One chat completion.

        Args:
            messages: OpenAI chat messages.
            **options: request fields: temperature, top_p, max_tokens, stop, seed, tools,
                tool_choice, response_format, ... (see ``_OPTIONS``); None values are dropped.

        Raises:
            RemoteUnavailableError: unreachable, timed out, circuit open, or an unusable body.
            RemoteResponseError: the server answered with an error status.
            ToolCallParseError: a tool call's arguments are not JSON.
            ConfigError: an unknown option, or the client is closed.
        """
        body = self._body(messages, options, stream=False)

        def read(response: httpx.Response) -> RemoteCompletion:
            with _map_httpx_errors(self.base_url):
                content = response.read()
            data = _decode_json(content, self.base_url, response.headers.get("content-type", ""))
            return _parse_completion(data, self.base_url)

        return self._post(body, read)

    def stream_chat(self, messages: Sequence[Mapping[str, Any]], **options: Any,
                    ) -> Iterator[str]:
        """Yield the answer's text deltas as the server sends them (SSE).

        Retries and the breaker apply until the response starts; nothing is retried after.
        Tool-call deltas are not yielded (use ``chat`` for tools).

        Options are checked at once; the request goes out when the first delta is asked for.

        Raises:
            BrokenStreamError: the stream broke mid-way; ``.partial`` holds the text so far.
            RemoteUnavailableError / RemoteResponseError / ConfigError: as ``chat``.
        """
        return self._stream(self._body(messages, options, stream=True))

    def close(self) -> None:
        """Close the connection pool (idempotent)."""
        self._closed = True
        self._client.close()

    def __enter__(self) -> Remote:  # noqa: PYI034
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Remote({self.base_url!r}, {self.model!r}, breaker={self.breaker_state})"

    # -- requests ----------------------------------------------------------------------------

    def _stream(self, body: dict[str, Any]) -> Iterator[str]:
        response = self._post(body, _prepare_stream, keep_open=True)
        received: list[str] = []
        verdict = False
        try:
            yield from self._stream_deltas(response, received)
            self._breaker.success()
            verdict = True
        except BrokenStreamError as exc:
            self._breaker.failure(exc)
            verdict = True
            raise
        finally:
            response.close()
            if not verdict:  # the consumer stopped early: the server was doing fine
                self._breaker.success()

    def _body(self, messages: Sequence[Mapping[str, Any]], options: Mapping[str, Any], *,
              stream: bool) -> dict[str, Any]:
        if self._closed:
            msg = f"Remote({self.base_url!r}) is closed; create a new one"
            raise ConfigError(msg)
        unknown = set(options) - _OPTIONS
        if unknown:
            msg = (f"unknown remote option(s) {', '.join(sorted(unknown))}; known: "
                   f"{', '.join(sorted(_OPTIONS))}")
            raise ConfigError(msg)
        _check(isinstance(messages, Sequence) and not isinstance(messages, str)
               and all(isinstance(m, Mapping) for m in messages) and len(messages) > 0,
               "messages", type(messages).__name__, "a non-empty list of chat messages")
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        body.update({k: v for k, v in options.items() if v is not None})
        body["stream"] = stream
        return body

    def _post(self, body: dict[str, Any], read: Callable[[httpx.Response], _T], *,
              keep_open: bool = False) -> _T:
        """POST ``body`` through the breaker and the retry loop; ``read`` the 2xx response.

        With ``keep_open`` the response is returned to the caller open (a stream), and the
        caller reports the breaker verdict when the stream ends.
        """
        request = self._client.build_request("POST", "chat/completions", json=body)
        last: RemoteError | None = None
        for attempt in range(self.max_retries + 1):
            try:
                self._breaker.enter(self.base_url)
            except RemoteUnavailableError:
                if last is None:
                    raise
                raise last from last.__cause__  # the circuit opened during our own retries
            try:
                return self._attempt(request, read, attempt, keep_open=keep_open)
            except _Failed as failed:
                last = failed.error
                if failed.delay_s is None or attempt == self.max_retries:
                    raise failed.error from failed.error.__cause__
                logger.info("%s; retry %d/%d in %.2f s", failed.error, attempt + 1,
                            self.max_retries, failed.delay_s)
                self._sleep(failed.delay_s)
            except BaseException:
                self._breaker.release()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, request: httpx.Request, read: Callable[[httpx.Response], _T],
                 attempt: int, *, keep_open: bool) -> _T:
        try:
            with _map_httpx_errors(self.base_url):
                response = self._client.send(request, stream=True)
        except RemoteUnavailableError as exc:
            self._breaker.failure(exc)
            raise _Failed(exc, self._backoff(attempt) if _retryable(exc) else None) from None
        handed_over = False
        try:
            if not response.is_success:
                raise self._status_failure(response, attempt)
            try:
                result = read(response)
            except RemoteUnavailableError as exc:  # body cut short, or not a chat completion
                self._breaker.failure(exc)
                raise _Failed(exc, self._backoff(attempt) if _retryable(exc) else None) from None
            except Exception:  # e.g. ToolCallParseError: the server itself answered
                self._breaker.success()
                raise
            if not keep_open:
                self._breaker.success()
            handed_over = keep_open
            return result
        finally:
            if not handed_over:
                response.close()

    def _status_failure(self, response: httpx.Response, attempt: int) -> _Failed:
        status = response.status_code
        try:
            with _map_httpx_errors(self.base_url):
                response.read()
            detail = _server_message(response)
        except RemoteUnavailableError:
            detail = "(the error body could not be read)"
        message = f"{self.base_url}: HTTP {status} {response.reason_phrase}: {detail}"
        if status not in (408, 429) and status < 500:
            self._breaker.success()  # the server is up; the request is what it refused
            return _Failed(RemoteResponseError(message, status=status), None)
        delay: float | None = self._backoff(attempt)
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            delay = retry_after if retry_after <= self.max_retry_after_s else None
            if delay is None:
                message += (f" (Retry-After {retry_after:.0f} s is longer than "
                            f"max_retry_after_s={self.max_retry_after_s:g}; not retried)")
        error = RemoteResponseError(message, status=status)
        self._breaker.failure(error)
        return _Failed(error, delay)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter, at most ``max_retry_after_s``."""
        delay = min(self.backoff_s * 2.0**attempt, self.max_retry_after_s)
        return delay / 2 + self._random.uniform(0, delay / 2)

    def _stream_deltas(self, response: httpx.Response, received: list[str]) -> Iterator[str]:
        done = finished = False
        try:
            with _map_httpx_errors(self.base_url):
                for data in _sse_events(response.iter_lines()):
                    for chunk in _decode_event(data, self.base_url):
                        if chunk is None:  # [DONE]
                            done = True
                            break
                        delta, chunk_finished = _parse_chunk(chunk, self.base_url)
                        finished = finished or chunk_finished
                        if delta:
                            received.append(delta)
                            yield delta
                    if done:
                        break
        except RemoteUnavailableError as exc:
            if finished:  # the answer was complete; only the [DONE] trailer was lost
                logger.info("%s (after the final chunk; the answer is complete)", exc)
                return
            reason = str(exc).removeprefix(f"{self.base_url}: ")
            partial = "".join(received)
            msg = f"{self.base_url}: the stream broke after {len(partial)} characters: {reason}"
            raise BrokenStreamError(msg, partial=partial) from exc
        if not (done or finished):
            partial = "".join(received)
            msg = (f"{self.base_url}: the stream ended after {len(partial)} characters without "
                   "a finish_reason or [DONE]")
            raise BrokenStreamError(msg, partial=partial)



class _Failed(Exception):
    """One failed attempt inside the retry loop (never leaves this module)."""

    def __init__(self, error: RemoteError, delay_s: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay_s = delay_s  # None: do not retry


def _prepare_stream(response: httpx.Response) -> httpx.Response:
    response.encoding = "utf-8"  # SSE is always UTF-8, whatever the content-type says
    return response

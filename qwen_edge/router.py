"""Hybrid routing: answer on the device, escalate to an OpenAI-compatible server when needed.

    router = Router(model, Remote("http://gpu:8000/v1", "qwen2.5-7b"),
                    RoutingPolicy(threshold=0.4, keywords=(r"\\bcontract\\b",)))
    out = router.generate(messages, max_tokens=256)
    out.text, out.route, out.route_reason, out.confidence

How a request is routed (``Router.generate`` / ``Router.stream``):

1. It stays on the device, whatever else says, when ``local_only`` is set (policy or call),
   when the prompt is token ids, or when it uses a ``regex`` / ``grammar`` constraint (the
   server could not honour it).
2. It goes to the server before generating when the prompt plus ``max_tokens`` does not fit
   the local context, when ``hard=True``, or when a rule matches the latest user text: a
   ``keywords`` regex, a share of letters in the listed ``scripts``, or at least
   ``min_prompt_tokens`` prompt tokens.
3. Otherwise it is generated locally; with ``cascade`` the answer is scored
   (``score_confidence``) and escalated when the score is below ``threshold``.
4. Before anything leaves the device, every string of every message (contents, tool results,
   tool-call arguments) is redacted (``redact``: e-mail, phone, IBAN and custom regexes).
5. When the server is down, slow, answers 408/429/5xx or breaks its stream, the answer is
   local (``route == "local-fallback"``): the local answer already made by the cascade, or a
   new one; a stream that broke mid-way is continued locally from the text already shown.
   Other 4xx statuses (a bad key, an unknown model) raise ``RemoteResponseError``: they are a
   configuration to fix, not an outage to hide.

The router keeps no conversation state: each call is independent, and the caller's messages
are never modified (redaction works on copies).
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .config import GenerationConfig
from .errors import (
    ConfigError,
    ContextLengthError,
    RemoteError,
    RemoteResponseError,
    RemoteUnavailableError,
)
from .model import Completion, Model, Prompt, Timings, Usage
from .redaction import DEFAULT_REDACT, redact_text

if TYPE_CHECKING:
    from .audit import AuditLog
    from .remote import RemoteCompletion

__all__ = [
    "DEFAULT_REDACT",
    "SCRIPTS",
    "RoutedCompletion",
    "RoutedStream",
    "Router",
    "RoutingPolicy",
    "calibrate",
    "redact_text",
    "roc_auc",
    "score_confidence",
]

logger = logging.getLogger(__name__)

SCRIPTS = (
    "Arabic", "Armenian", "Bengali", "Cherokee", "Cyrillic", "Devanagari", "Ethiopic",
    "Georgian", "Greek", "Gujarati", "Gurmukhi", "Han", "Hangul", "Hebrew", "Hiragana",
    "Kannada", "Katakana", "Khmer", "Lao", "Latin", "Malayalam", "Mongolian", "Myanmar",
    "Oriya", "Sinhala", "Syriac", "Tamil", "Telugu", "Thaana", "Thai", "Tibetan",
)
"""Script names ``RoutingPolicy.scripts`` understands (Unicode script names)."""

_UNICODE_NAME_PREFIX = {"CJK": "Han"}  # first word of unicodedata.name -> script, if not title
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_NOT_REDACTED = frozenset({"role", "type", "id", "tool_call_id"})  # structure, not content
_FALLBACK_STATUSES = (408, 429)  # plus every 5xx
# Options the server does not get: token ids and n-gram drafting are device details, regex /
# grammar keep a request local, json_schema becomes response_format, max_tokens is resolved.
_DEVICE_ONLY_OPTIONS = frozenset({"stop_token_ids", "speculative_tokens", "regex", "grammar",
                                  "grammar_trigger", "json_schema", "max_tokens"})


def _compile(name: str, pattern: object) -> None:
    if not isinstance(pattern, str) or not pattern:
        msg = f"{name}={pattern!r}: must be a non-empty regex"
        raise ConfigError(msg)
    try:
        re.compile(pattern)
    except re.error as exc:
        msg = f"{name}={pattern!r}: not a valid regex ({exc})"
        raise ConfigError(msg) from exc


def _check(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        msg = f"{name}={value!r}: must be {allowed}"
        raise ConfigError(msg)


def _is_number(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


# -- policy --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingPolicy:
    """When to leave the device, and what may leave.

    Attributes:
        threshold: with ``cascade``, a local answer whose confidence is below this escalates.
            Calibrate it for your model and task with ``calibrate``.
        cascade: generate locally first and escalate on low confidence. ``stream`` then
            shows the local answer only once it is scored (it cannot take back text).
        min_prompt_tokens: prompts with at least this many tokens go remote (None = off).
        keywords: regexes (case-insensitive, ``re.search``) on the latest user text that
            send the request remote.
        scripts: Unicode scripts (see ``SCRIPTS``, e.g. ``("Han", "Hiragana", "Katakana")``)
            that send the request remote when at least ``min_script_share`` of the latest
            user text's letters are in them.
        min_script_share: in (0, 1].
        local_only: never send anything; requests a rule would escalate are answered
            locally (route "local", reason "local_only (...)").
        redact: name -> regex applied to everything sent; each match becomes ``[NAME]``.
            Defaults to ``DEFAULT_REDACT``; add your own with
            ``redact={**DEFAULT_REDACT, "employee_id": r"EMP-\\d{6}"}``.
    """

    threshold: float = 0.5
    cascade: bool = True
    min_prompt_tokens: int | None = None
    keywords: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()
    min_script_share: float = 0.5
    local_only: bool = False
    redact: Mapping[str, str] = field(default_factory=lambda: DEFAULT_REDACT)

    def __post_init__(self) -> None:
        _check(_is_number(self.threshold) and 0 <= self.threshold <= 1, "threshold",
               self.threshold, "in [0, 1]")
        _check(isinstance(self.cascade, bool), "cascade", self.cascade, "True or False")
        _check(isinstance(self.local_only, bool), "local_only", self.local_only,
               "True or False")
        _check(self.min_prompt_tokens is None or (
            isinstance(self.min_prompt_tokens, int) and not isinstance(self.min_prompt_tokens, bool)
            and self.min_prompt_tokens >= 1), "min_prompt_tokens", self.min_prompt_tokens,
            "None or an int >= 1")
        _check(_is_number(self.min_script_share) and 0 < self.min_script_share <= 1,
               "min_script_share", self.min_script_share, "in (0, 1]")
        _check(not isinstance(self.keywords, str), "keywords", self.keywords,
               "a tuple of regexes, not one string")
        object.__setattr__(self, "keywords", tuple(self.keywords))
        for pattern in self.keywords:
            _compile("keywords", pattern)
        _check(not isinstance(self.scripts, str), "scripts", self.scripts,
               "a tuple of script names, not one string")
        by_lower = {s.lower(): s for s in SCRIPTS}
        unknown = [s for s in self.scripts if not isinstance(s, str) or s.lower() not in by_lower]
        _check(not unknown, "scripts", unknown, f"names from: {', '.join(SCRIPTS)}")
        object.__setattr__(self, "scripts", tuple(by_lower[s.lower()] for s in self.scripts))
        _check(isinstance(self.redact, Mapping), "redact", self.redact,
               "a mapping of name -> regex")
        for name, pattern in self.redact.items():
            _check(isinstance(name, str) and _NAME.fullmatch(name) is not None, "redact", name,
                   "keyed by lower-case names such as 'employee_id'")
            _compile(f"redact[{name!r}]", pattern)
        object.__setattr__(self, "redact", MappingProxyType(dict(self.redact)))


_DEFAULT_POLICY = RoutingPolicy()


def _redact_value(value: Any, rules: Mapping[str, str], counts: Counter[str],
                  key: str | None = None) -> Any:
    """A copy of a message (or any JSON value) with every content string redacted."""
    if isinstance(value, str):
        if key in _NOT_REDACTED:
            return value
        text, found = redact_text(value, rules)
        counts.update(found)
        return text
    if isinstance(value, Mapping):
        return {k: _redact_value(v, rules, counts, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v, rules, counts, key) for v in value]
    return value


# -- confidence and calibration ------------------------------------------------------------


def score_confidence(completion: Completion) -> float:
    """How sure the local model was of its answer, in [0, 1].

    ``exp((mean(logprobs) - max(entropies)) / 2)``: the geometric mean of

    - ``exp(mean logprob)``, the geometric-mean probability of the sampled tokens, and
    - ``exp(-max entropy)``, one over the effective number of choices (perplexity) at the
      answer's least certain step,

    over every generated token including the stop token. Both are 1 for a certain answer and
    fall towards 0 as the model guesses; the entropy is that of the distribution after
    penalties and the grammar mask, before temperature, so it does not depend on sampling.
    A completion without per-token data scores 0. Compare scores only within one model.
    """
    return confidence_of(completion.logprobs, completion.entropies)


def confidence_of(logprobs: Sequence[float], entropies: Sequence[float]) -> float:
    """``score_confidence`` from per-token logprobs and entropies (see there)."""
    if not logprobs:
        return 0.0
    mean_logprob = float(np.mean(logprobs))
    max_entropy = float(max(entropies, default=0.0))
    return float(min(1.0, max(0.0, math.exp((mean_logprob - max(max_entropy, 0.0)) / 2))))


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (True = should stay local).

    The probability that a random True example scores above a random False one (ties count
    half): 1 separates perfectly, 0.5 is chance.
    """
    s, y = _scored(scores, labels)
    ranks = _average_ranks(s)
    n_true = int(y.sum())
    n_false = len(y) - n_true
    u = ranks[y].sum() - n_true * (n_true + 1) / 2
    return float(u / (n_true * n_false))


def calibrate(scores: Sequence[float], labels: Sequence[bool], *,
              target_local_rate: float | None = None) -> float:
    """Pick ``RoutingPolicy.threshold`` from labelled examples.

    Args:
        scores: ``score_confidence`` of local answers.
        labels: True when the local answer was good enough (should stay local).
        target_local_rate: if given, only thresholds that keep at least this fraction of the
            examples local are considered (a budget for remote calls).

    Returns:
        The threshold (escalate when score < threshold) with the best balanced accuracy, the
        mean of the rate of good answers kept and of bad answers escalated; candidates are
        0, 1 and the midpoints between consecutive distinct scores. Ties go to the higher
        threshold (more escalations, better answers). Logs the ROC AUC of the scores.

    Raises:
        ConfigError: mismatched or empty inputs, scores outside [0, 1], a single class, or a
            target outside (0, 1].

    Example:
        >>> threshold = calibrate([0.9, 0.2, 0.7, 0.1], [True, False, True, False])
        >>> policy = RoutingPolicy(threshold=threshold)
    """
    s, y = _scored(scores, labels)
    _check(target_local_rate is None or (_is_number(target_local_rate)
                                         and 0 < target_local_rate <= 1),
           "target_local_rate", target_local_rate, "None or in (0, 1]")
    distinct = np.unique(s)
    candidates = np.concatenate([[0.0], (distinct[1:] + distinct[:-1]) / 2, [1.0]])
    local = s[None, :] >= candidates[:, None]  # [candidates, examples] stays local?
    kept_good = (local & y).sum(axis=1) / y.sum()
    escalated_bad = (~local & ~y).sum(axis=1) / (~y).sum()
    balanced = (kept_good + escalated_bad) / 2
    if target_local_rate is not None:
        allowed = local.mean(axis=1) >= target_local_rate - 1e-12
        balanced = np.where(allowed, balanced, -1.0)
    best = len(candidates) - 1 - int(np.argmax(balanced[::-1]))  # last maximum: highest
    threshold = float(candidates[best])
    logger.info("calibrated threshold %.4f: balanced accuracy %.3f, %.1f%% local, ROC AUC %.3f",
                threshold, balanced[best], 100 * local[best].mean(), roc_auc(scores, labels))
    return threshold


def _scored(scores: Sequence[float], labels: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    _check(len(s) == len(labels) and len(s) > 0, "labels", f"{len(labels)} labels",
           f"one per score ({len(s)} scores), at least one")
    _check(bool(np.all((s >= 0) & (s <= 1))), "scores", "values outside [0, 1]", "in [0, 1]")
    y = np.asarray([bool(v) for v in labels], dtype=bool)
    _check(bool(y.any() and (~y).any()), "labels", "a single class",
           "both True (stay local) and False (escalate) examples")
    return s, y


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2
            start = end
    return ranks


# -- scripts -------------------------------------------------------------------------------


def _script(char: str) -> str | None:
    if not char.isalpha():
        return None
    first = unicodedata.name(char, "").split(" ", 1)[0]
    return _UNICODE_NAME_PREFIX.get(first, first.title()) if first else None


def _script_share(text: str, scripts: Sequence[str]) -> float:
    letters = [s for s in map(_script, text) if s is not None]
    if not letters:
        return 0.0
    return sum(s in scripts for s in letters) / len(letters)


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoutedCompletion:
    """A completion and where it came from.

    Attributes:
        text / finish_reason / usage: as ``Completion`` (``usage`` is None when the server
            sent none).
        route: "local", "remote" or "local-fallback".
        route_reason: why, in words (no message content).
        confidence: ``score_confidence`` of the local answer, when one was generated.
        token_ids / logprobs / entropies / timings: of a local answer (empty / None remote).
    """

    text: str
    finish_reason: str
    usage: Usage | None
    route: str
    route_reason: str
    confidence: float | None
    token_ids: list[int] = field(repr=False, default_factory=list)
    logprobs: list[float] = field(repr=False, default_factory=list)
    entropies: list[float] = field(repr=False, default_factory=list)
    timings: Timings | None = field(repr=False, default=None)

    def to_openai(self) -> dict[str, Any]:
        """The ``choices[0]`` + ``usage`` part of an OpenAI chat completion."""
        out: dict[str, Any] = {"message": {"role": "assistant", "content": self.text},
                               "finish_reason": self.finish_reason}
        if self.usage is not None:
            out["usage"] = {"prompt_tokens": self.usage.prompt_tokens,
                            "completion_tokens": self.usage.completion_tokens,
                            "total_tokens": self.usage.total_tokens}
        return out


class RoutedStream(Iterator[str]):
    """The text deltas of ``Router.stream``, plus where they come from.

    ``route`` / ``route_reason`` are set before the first delta and may change once, to
    "local-fallback", if the server fails mid-way; ``confidence`` is set when a local
    answer was scored. All are final when the iterator is exhausted.
    """

    def __init__(self) -> None:
        self.route: str | None = None
        self.route_reason: str | None = None
        self.confidence: float | None = None
        self._deltas: Iterator[str] = iter(())

    def __next__(self) -> str:
        return next(self._deltas)

    def __iter__(self) -> RoutedStream:
        return self

    def close(self) -> None:
        """Stop generating (closes the underlying local or remote stream)."""
        _close(self._deltas)


class _Backend(Protocol):
    """What the router needs from a server client (``qwen_edge.remote.Remote``)."""

    def chat(self, messages: Sequence[Mapping[str, Any]], **options: Any) -> RemoteCompletion:
        ...

    def stream_chat(self, messages: Sequence[Mapping[str, Any]], **options: Any,
                    ) -> Iterator[str]:
        ...


@dataclass(frozen=True, slots=True)
class _Request:
    prompt: Prompt
    options: dict[str, Any]
    max_tokens: int | None
    escalate: str | None  # why a rule sends it remote before generating
    stay_local: str | None  # why it must not leave the device


# -- the router ----------------------------------------------------------------------------


class Router:
    """Generate on the device, escalate to a server by policy, fall back when it fails.

    Args:
        local: the on-device model.
        remote: the server (``qwen_edge.remote.Remote``), or None: requests that would
            escalate are answered locally (route "local-fallback").
        policy: the routing rules.
        audit: an ``AuditLog``; every escalation (before anything is sent) and every
            fallback is recorded as ``event="escalation"`` with ``{"reason", "route"}`` and
            redaction counts, never message content. If it cannot be written, nothing is sent.

    Example:
        >>> router = Router(qwen_edge.load("pkg/"), Remote("http://gpu:8000/v1", "qwen-7b"))
        >>> out = router.generate([{"role": "user", "content": "Summarize ..."}])
        >>> out.route, out.route_reason, out.confidence
    """

    def __init__(self, local: Model, remote: _Backend | None,
                 policy: RoutingPolicy = _DEFAULT_POLICY, *, audit: AuditLog | None = None,
                 ) -> None:
        _check(isinstance(policy, RoutingPolicy), "policy", type(policy).__name__,
               "a RoutingPolicy")
        self.local = local
        self.remote = remote
        self.policy = policy
        self.audit = audit
        self.max_context = local.max_context or min(local.package.max_context, 4096)

    # -- public ------------------------------------------------------------------------------

    def generate(self, prompt: Prompt, *, hard: bool = False, local_only: bool = False,
                 **options: Any) -> RoutedCompletion:
        """Answer ``prompt`` (text or chat messages) locally or remotely (see the module doc).

        Args:
            prompt: raw text (sent to the server as one user message), chat messages, or
                token ids (never sent).
            hard: send it to the server (unless it must stay local).
            local_only: never send this request (``policy.local_only`` applies too).
            **options: ``Model.generate`` options (``max_tokens``, ``temperature``, ...).

        Raises:
            ConfigError: an unknown or invalid option.
            ContextLengthError: the prompt does not fit locally and cannot be sent.
            RemoteResponseError: the server refused the request (4xx other than 408/429).
        """
        request = self._prepare(prompt, hard, local_only, options)
        if request.escalate is not None:
            return self._escalate(request, request.escalate, None)
        local = self._generate_local(request)
        confidence = score_confidence(local)
        if self.policy.cascade and confidence < self.policy.threshold:
            why = f"confidence {confidence:.3f} < threshold {self.policy.threshold:g}"
            return self._escalate(request, why, local)
        return _from_local(local, "local", self._local_reason(confidence), confidence)

    def stream(self, prompt: Prompt, *, hard: bool = False, local_only: bool = False,
               **options: Any) -> RoutedStream:
        """Like ``generate`` but yields text deltas; see ``RoutedStream`` for the route.

        Options are checked here, before the first delta; errors while generating are
        raised by the iterator.
        """
        request = self._prepare(prompt, hard, local_only, options)
        stream = RoutedStream()
        stream._deltas = self._stream(request, stream)
        return stream

    # -- routing -----------------------------------------------------------------------------

    def _prepare(self, prompt: Prompt, hard: bool, local_only: bool,
                 options: dict[str, Any]) -> _Request:
        _check(isinstance(hard, bool), "hard", hard, "True or False")
        _check(isinstance(local_only, bool), "local_only", local_only, "True or False")
        cfg = GenerationConfig.resolve(self.local.package.generation, **options)
        ids = self.local.encode_prompt(prompt)
        text = _user_text(prompt)
        stay_local = None
        if self.policy.local_only or local_only:
            stay_local = "local_only"
        elif text is None:
            stay_local = "token-id prompts are not sent"
        elif cfg.regex is not None or cfg.grammar is not None:
            stay_local = "regex/grammar constraints run only on the device"
        return _Request(prompt, dict(options), cfg.max_tokens,
                        self._rule(len(ids), cfg.max_tokens, text or "", hard), stay_local)

    def _rule(self, n_tokens: int, max_tokens: int | None, text: str, hard: bool) -> str | None:
        """Why the request goes remote before generating, or None."""
        if max_tokens is None and n_tokens >= self.max_context:
            return (f"prompt ({n_tokens} tokens) leaves no room in the local context "
                    f"({self.max_context} tokens)")
        if max_tokens is not None and n_tokens + max_tokens > self.max_context:
            return (f"prompt ({n_tokens} tokens) + max_tokens ({max_tokens}) exceed the local "
                    f"context ({self.max_context} tokens)")
        if hard:
            return "hard=True"
        for pattern in self.policy.keywords:
            if re.search(pattern, text, re.IGNORECASE):
                return f"keyword /{pattern}/ matched"
        if self.policy.scripts:
            share = _script_share(text, self.policy.scripts)
            if share >= self.policy.min_script_share:
                return f"{share:.0%} of the letters are {'/'.join(self.policy.scripts)}"
        if self.policy.min_prompt_tokens is not None and n_tokens >= self.policy.min_prompt_tokens:
            return f"prompt has {n_tokens} >= {self.policy.min_prompt_tokens} tokens"
        return None

    def _local_reason(self, confidence: float) -> str:
        if self.policy.cascade:
            return f"confidence {confidence:.3f} >= threshold {self.policy.threshold:g}"
        return "no routing rule matched"

    def _escalate(self, request: _Request, why: str, local: Completion | None,
                  ) -> RoutedCompletion:
        """Send the request remote, or explain why not; ``local`` is a cascade's answer."""
        confidence = None if local is None else score_confidence(local)
        if request.stay_local is not None or self.remote is None:
            route, reason = self._unsent(request, why)
            local = local if local is not None else self._generate_local(request)
            return _from_local(local, route, reason, score_confidence(local))
        messages, remote_options = self._outgoing(request, why)
        try:
            answer = self.remote.chat(messages, **remote_options)
        except RemoteError as exc:
            reason = self._fallback_reason(exc, why)
            local = local if local is not None else self._generate_fallback(request, exc)
            return _from_local(local, "local-fallback", reason, score_confidence(local))
        return RoutedCompletion(text=answer.text, finish_reason=answer.finish_reason,
                                usage=answer.usage, route="remote", route_reason=why,
                                confidence=confidence, logprobs=list(answer.logprobs))

    def _stream(self, request: _Request, stream: RoutedStream) -> Iterator[str]:
        why = request.escalate
        local: Completion | None = None
        shown: list[str] = []  # a cascade's local deltas, held until it is scored
        if why is None:
            hold = (self.policy.cascade and request.stay_local is None
                    and self.remote is not None)
            if hold:
                local = _collect(self._stream_local(request), shown)
            else:  # the answer stays local whatever its score: stream it as it comes
                stream.route, stream.route_reason = "local", "generating locally"
                local = yield from self._stream_local(request)
            stream.confidence = confidence = score_confidence(local)
            if not (self.policy.cascade and confidence < self.policy.threshold):
                stream.route, stream.route_reason = "local", self._local_reason(confidence)
                yield from shown
                return
            why = f"confidence {confidence:.3f} < threshold {self.policy.threshold:g}"
        if request.stay_local is not None or self.remote is None:
            stream.route, stream.route_reason = self._unsent(request, why)
            if local is None:
                local = yield from self._stream_local(request)
                stream.confidence = score_confidence(local)
            yield from shown
            return
        messages, remote_options = self._outgoing(request, why)
        stream.route, stream.route_reason = "remote", why
        received: list[str] = []
        deltas = self.remote.stream_chat(messages, **remote_options)
        try:
            for delta in deltas:
                received.append(delta)
                yield delta
            return
        except RemoteError as exc:
            reason = self._fallback_reason(exc, why)
        finally:
            _close(deltas)
        stream.route, stream.route_reason = "local-fallback", reason
        partial = "".join(received)
        if partial:  # continue the answer already shown, locally
            stream.route_reason = f"{reason}; continued locally after {len(partial)} characters"
            stream.confidence = score_confidence((yield from self._stream_local(request,
                                                                                partial)))
        elif local is not None:
            yield from shown
        else:
            stream.confidence = score_confidence((yield from self._stream_local(request)))

    # -- helpers -----------------------------------------------------------------------------

    def _outgoing(self, request: _Request, why: str) -> tuple[list[dict[str, Any]],
                                                              dict[str, Any]]:
        """Redacted messages and server options; records the escalation before it is sent."""
        prompt = request.prompt
        messages = ([{"role": "user", "content": prompt}] if isinstance(prompt, str)
                    else list(prompt))
        counts: Counter[str] = Counter()
        redacted = [_redact_value(m, self.policy.redact, counts) for m in messages]
        if counts:
            logger.info("redacted before sending: %s",
                        ", ".join(f"{n} {name}" for name, n in sorted(counts.items())))
        self._record("remote", why, remote=True, redacted=dict(sorted(counts.items())))
        logger.info("escalating to the server: %s", why)
        return redacted, _remote_options(request.options, request.max_tokens)

    def _unsent(self, request: _Request, why: str) -> tuple[str, str]:
        """(route, reason) of a request that would escalate but is not sent."""
        if request.stay_local is not None:
            return "local", f"{request.stay_local} (would escalate: {why})"
        reason = f"would escalate ({why}); no server configured"
        self._record("local-fallback", reason, remote=False)
        return "local-fallback", reason

    def _fallback_reason(self, exc: RemoteError, why: str) -> str:
        status = exc.status if isinstance(exc, RemoteResponseError) else None
        if status is not None and status not in _FALLBACK_STATUSES and status < 500:
            raise exc  # the request or the configuration is wrong: not an outage
        kind = "remote unavailable" if isinstance(exc, RemoteUnavailableError) else "remote error"
        reason = f"{kind}: {exc}"
        logger.warning("%s; answering locally (escalated because %s)", reason, why)
        self._record("local-fallback", reason, remote=False, error=str(exc), escalated=why)
        return reason

    def _generate_local(self, request: _Request) -> Completion:
        return self.local.generate(request.prompt, **request.options)

    def _generate_fallback(self, request: _Request, exc: RemoteError) -> Completion:
        try:
            return self._generate_local(request)
        except ContextLengthError as local_exc:
            msg = f"{local_exc}, and the server failed: {exc}"
            raise ContextLengthError(msg) from exc

    def _stream_local(self, request: _Request, partial: str | None = None,
                      ) -> Generator[str, None, Completion]:
        """Yield a local answer's deltas (or of its continuation after ``partial``); return it."""
        prompt = request.prompt
        options = dict(request.options)
        if partial:
            done = self.local.tokenizer.encode(partial, special=False)
            prompt = np.concatenate([self.local.encode_prompt(prompt), done])
            if request.max_tokens is not None:
                options["max_tokens"] = max(1, request.max_tokens - len(done))
        session = self.local.session()
        text: list[str] = []
        logprobs: list[float] = []
        entropies: list[float] = []
        finish = "length"
        chunks = session.stream_chunks(prompt, **options)
        try:
            for chunk in chunks:
                if chunk.token is not None:
                    logprobs.append(chunk.logprob or 0.0)
                    entropies.append(chunk.entropy or 0.0)
                if chunk.finish_reason is not None:
                    finish = chunk.finish_reason
                if chunk.text:
                    text.append(chunk.text)
                    yield chunk.text
        except ContextLengthError as exc:
            if partial is None:
                raise
            msg = f"{exc}; cannot continue the broken remote stream locally"
            raise ContextLengthError(msg) from exc
        finally:
            _close(chunks)  # a consumer that stops early frees the session at once
        stats = session.last_stats
        return Completion(
            text="".join(text), token_ids=[], finish_reason=finish,
            usage=Usage(stats.prompt_tokens, stats.completion_tokens, stats.reused_tokens),
            timings=Timings(stats.prefill_s, 0.0, 0.0), logprobs=logprobs, entropies=entropies)

    def _record(self, route: str, reason: str, *, remote: bool, error: str | None = None,
                **extra: Any) -> None:
        if self.audit is not None:
            self.audit.record(event="escalation", arguments={"reason": reason, "route": route,
                                                             **extra},
                              error=error, remote=remote)


def _collect(deltas: Generator[str, None, Completion], into: list[str]) -> Completion:
    """Run a ``_stream_local`` generator to its end, keeping its deltas; return its result."""
    while True:
        try:
            into.append(next(deltas))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def _close(iterator: Iterator[Any]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def _from_local(completion: Completion, route: str, reason: str, confidence: float,
                ) -> RoutedCompletion:
    return RoutedCompletion(text=completion.text, finish_reason=completion.finish_reason,
                            usage=completion.usage, route=route, route_reason=reason,
                            confidence=confidence, token_ids=list(completion.token_ids),
                            logprobs=list(completion.logprobs),
                            entropies=list(completion.entropies), timings=completion.timings)


def _user_text(prompt: Prompt) -> str | None:
    """The latest user text: the prompt itself, or the last user message (None for ids)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, np.ndarray) or not prompt or not isinstance(prompt[0], Mapping):
        return None
    for message in reversed(prompt):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
            return content if isinstance(content, str) else ""
    return ""


def _remote_options(options: Mapping[str, Any], max_tokens: int | None) -> dict[str, Any]:
    """``Model.generate`` options -> request fields (device-only ones dropped)."""
    out = {k: v for k, v in options.items() if k not in _DEVICE_ONLY_OPTIONS}
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    if isinstance(out.get("stop"), str):
        out["stop"] = [out["stop"]]
    schema = options.get("json_schema")
    if schema is not None:
        if isinstance(schema, str):
            schema = json.loads(schema)
        out["response_format"] = {"type": "json_schema",
                                  "json_schema": {"name": "response", "schema": schema}}
    return out

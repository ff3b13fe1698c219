"""``RoutingPolicy``: when a request leaves the device, and what may leave with it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from .._validate import check as _check
from .._validate import check_regex as _compile
from .._validate import is_number as _is_number
from ..redaction import DEFAULT_REDACT

__all__ = ["SCRIPTS", "RoutingPolicy", "script_share"]

_UNICODE_NAME_PREFIX = {"CJK": "Han"}  # first word of unicodedata.name -> script, if not title
_NAME = re.compile(r"[a-z][a-z0-9_]*")

SCRIPTS = (
    "Arabic", "Armenian", "Bengali", "Cherokee", "Cyrillic", "Devanagari", "Ethiopic",
    "Georgian", "Greek", "Gujarati", "Gurmukhi", "Han", "Hangul", "Hebrew", "Hiragana",
    "Kannada", "Katakana", "Khmer", "Lao", "Latin", "Malayalam", "Mongolian", "Myanmar",
    "Oriya", "Sinhala", "Syriac", "Tamil", "Telugu", "Thaana", "Thai", "Tibetan",
)
"""Script names ``RoutingPolicy.scripts`` understands (Unicode script names)."""


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


def _script(char: str) -> str | None:
    if not char.isalpha():
        return None
    first = unicodedata.name(char, "").split(" ", 1)[0]
    return _UNICODE_NAME_PREFIX.get(first, first.title()) if first else None


def script_share(text: str, scripts: Sequence[str]) -> float:
    letters = [s for s in map(_script, text) if s is not None]
    if not letters:
        return 0.0
    return sum(s in scripts for s in letters) / len(letters)

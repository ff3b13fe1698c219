"""Argument checks shared by every config object: one message shape, one place.

Each check raises ``ConfigError("name=value: must be <allowed>")``, naming the field and the
allowed range, so a user sees what to change without reading a traceback.
"""

from __future__ import annotations

import math
import re

from .errors import ConfigError

__all__ = ["check", "check_regex", "int_at_least", "is_int", "is_number", "positive"]


def check(ok: bool, name: str, value: object, allowed: str) -> None:
    """Raise ``ConfigError`` naming ``name``, ``value`` and what is allowed, unless ``ok``."""
    if not ok:
        msg = f"{name}={value!r}: must be {allowed}"
        raise ConfigError(msg)


def is_int(value: object) -> bool:
    """An int that is not a bool (``True`` is not a token count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite int or float, not a bool."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def positive(value: object, *, zero: bool = False) -> bool:
    """A number > 0 (>= 0 with ``zero``); NaN is not."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return False
    return value >= 0 if zero else value > 0


def int_at_least(value: object, low: int) -> bool:
    return is_int(value) and value >= low  # type: ignore[operator]


def check_regex(name: str, pattern: object) -> None:
    """A non-empty pattern that ``re`` compiles."""
    if not isinstance(pattern, str) or not pattern:
        msg = f"{name}={pattern!r}: must be a non-empty regex"
        raise ConfigError(msg)
    try:
        re.compile(pattern)
    except re.error as exc:
        msg = f"{name}={pattern!r}: not a valid regex ({exc})"
        raise ConfigError(msg) from exc

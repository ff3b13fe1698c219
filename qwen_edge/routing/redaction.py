"""What may leave the device: redaction rules applied to every string sent to a server.

Every string of every message (contents, tool results, tool-call arguments) is redacted
before it is sent; structure (roles, ids, types) is not. Each match becomes ``[NAME]``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["DEFAULT_REDACT", "redact_text", "redact_value"]

_NOT_REDACTED = frozenset({"role", "type", "id", "tool_call_id"})  # structure, not content

DEFAULT_REDACT: Mapping[str, str] = MappingProxyType({
    # local@domain.tld; the local part allows RFC 5322's specials, the domain IDN letters.
    "email": r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+",
    # CC + 2 check digits + 8..32 letters/digits, plain or in groups of four.
    "iban": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
    # 7-15 digits in groups: +41 44 668 18 00, (555) 123-4567, 555.123.4567, 07700 900123,
    # +4915123456789. Not dates (2024-01-31), year ranges (2019-2023), times, versions, IP
    # addresses, decimals or bare numbers without "+". Greedy on purpose: "10 000 000" and
    # "2019-202-3333" are redacted too; a leak costs more than a lost number.
    "phone": (r"(?<![\w+/.:-])"
              r"(?!\d{4}-\d{2}-\d{2}(?!\d)|(?:19|20)\d\d ?- ?(?:19|20)\d\d(?!\d))"
              r"(?=(?:[\s().+-]{0,3}\d){7,15})"
              r"(?:\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,5}"
              r"|(?:\(\d{2,5}\)\s?|\d{2,5}[\s-])\d{2,8}(?:[\s-]\d{2,4}){0,3}"
              r"|\d{3}\.\d{3}\.\d{4})"
              r"(?![\w-]|\.\d)"),
})
"""Built-in redaction rules (name -> regex); each match becomes ``[NAME]``."""


def redact_text(text: str, rules: Mapping[str, str] = DEFAULT_REDACT,
                ) -> tuple[str, dict[str, int]]:
    """Replace every match of each rule (in order) by ``[NAME]``.

    Returns:
        The redacted text and the number of matches per rule (rules without one left out).

    Example:
        >>> redact_text("mail bob@example.com or call +41 44 668 18 00")
        ('mail [EMAIL] or call [PHONE]', {'email': 1, 'phone': 1})
    """
    counts: dict[str, int] = {}
    for name, pattern in rules.items():
        text, n = re.subn(pattern, f"[{name.upper()}]", text)
        if n:
            counts[name] = n
    return text, counts


def redact_value(value: Any, rules: Mapping[str, str], counts: Counter[str],
                  key: str | None = None) -> Any:
    """A copy of a message (or any JSON value) with every content string redacted."""
    if isinstance(value, str):
        if key in _NOT_REDACTED:
            return value
        text, found = redact_text(value, rules)
        counts.update(found)
        return text
    if isinstance(value, Mapping):
        return {k: redact_value(v, rules, counts, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, rules, counts, key) for v in value]
    return value

"""Redaction rules: personal data (the router's, before anything leaves the device) and secrets
(the audit log's, before anything is written to disk).

Kept in a module of its own, with nothing but ``re`` underneath, so that the audit log and the
router share one copy of the rules without the audit log importing the model.

Three kinds of rule, applied in this order by ``Redaction.apply``:

1. **Secret keys**: the value under a key whose name says it is a secret (``password``,
   ``api_key``, ``Authorization``, ``client_secret``, ``refreshToken``..., any case, at any
   depth) is replaced whole by ``[REDACTED]``, whatever its type. So is a value whose JSON
   schema says ``"x-secret": true`` (a tool's own parameter marked secret).
2. **Credentials**: strings shaped like a credential (``Bearer ...``, ``sk-...`` API keys,
   PEM private keys, GitHub and AWS access keys, JSON web tokens) anywhere in any string.
3. **Personal data**: ``DEFAULT_REDACT`` (e-mail, IBAN, phone), each match becoming
   ``[NAME]``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._validate import check_regex
from .errors import ConfigError

__all__ = [
    "DEFAULT_CREDENTIALS",
    "DEFAULT_REDACT",
    "DEFAULT_SECRET_KEYS",
    "REDACTED",
    "SECRET_KEY",
    "Redaction",
    "redact_text",
    "redact_value",
]

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
"""Built-in personal-data rules (name -> regex); each match becomes ``[NAME]``."""

DEFAULT_CREDENTIALS: Mapping[str, str] = MappingProxyType({
    "private_key": (r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
                    r"[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)"),
    "bearer_token": r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}",
    "api_key": r"\bsk-[A-Za-z0-9_-]{16,}",
    "github_token": r"\b(?:gh[pousr]|github_pat)_[A-Za-z0-9_]{20,}",
    "aws_key": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "jwt": r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+",
})
"""Strings shaped like credentials (name -> regex); each match becomes ``[NAME]``."""

DEFAULT_SECRET_KEYS = (r"(?:^|_)(?:password|passwd|passphrase|secret|token|auth|authorization"
                       r"|credentials?|cookie|api_?key|access_?key|private_?key|session_?id"
                       r"|client_?secret)(?:_|$)")
"""Key names whose values are secrets, matched (``re.search``) against the key written in
snake case and lower case: ``apiKey``, ``X-Api-Key`` and ``API_KEY`` all become ``api_key``.
``max_tokens`` is not a secret (``tokens`` is not ``token``)."""

REDACTED = "[REDACTED]"
"""What a value under a secret key (or marked ``"x-secret": true``) becomes."""

SECRET_KEY = "x-secret"
"""JSON-schema keyword marking a tool parameter secret: ``{"type": "string", "x-secret": true}``."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


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
    """A copy of a message (or any JSON value) with every content string redacted.

    Structure (roles, ids, types) is kept; ``counts`` gains the matches per rule.
    """
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


def _snake(key: str) -> str:
    return _SEPARATORS.sub("_", _CAMEL.sub("_", key).lower()).strip("_")


def _check_rules(name: str, rules: object) -> None:
    if not isinstance(rules, Mapping):
        msg = f"{name}={rules!r}: must be a mapping of rule name -> regex"
        raise ConfigError(msg)
    for rule, pattern in rules.items():
        if not isinstance(rule, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", rule):
            msg = f"{name}: rule name {rule!r} must be lower-case letters, digits and _"
            raise ConfigError(msg)
        check_regex(f"{name}[{rule!r}]", pattern)


@dataclass(frozen=True, slots=True, kw_only=True)
class Redaction:
    """What to remove from a JSON value before it is stored (see the module docstring).

    Attributes:
        secret_keys: regex over snake-cased key names; their values become ``[REDACTED]``
            (None: no key is secret by name).
        credentials: name -> regex of credential-shaped strings (``{}``: none).
        pii: name -> regex of personal data; the router's rules by default (``{}``: keep it).

    Example:
        >>> Redaction(pii={}).apply({"password": "hunter2", "note": "mail bob@example.com"})
        ({'password': '[REDACTED]', 'note': 'mail bob@example.com'}, {'secret_key': 1})
        >>> Redaction(pii={**DEFAULT_REDACT, "employee": r"EMP-\\d{6}"})  # add a rule
    """

    secret_keys: str | None = DEFAULT_SECRET_KEYS
    credentials: Mapping[str, str] = field(default_factory=lambda: DEFAULT_CREDENTIALS)
    pii: Mapping[str, str] = field(default_factory=lambda: DEFAULT_REDACT)

    def __post_init__(self) -> None:
        if self.secret_keys is not None:
            check_regex("secret_keys", self.secret_keys)
        _check_rules("credentials", self.credentials)
        _check_rules("pii", self.pii)
        object.__setattr__(self, "credentials", MappingProxyType(dict(self.credentials)))
        object.__setattr__(self, "pii", MappingProxyType(dict(self.pii)))

    def is_secret_key(self, key: str) -> bool:
        return self.secret_keys is not None and re.search(self.secret_keys, _snake(key)) is not None

    def apply(self, value: Any, schema: Mapping[str, Any] | None = None,
              ) -> tuple[Any, dict[str, int]]:
        """A redacted copy of a JSON value and the number of redactions per rule.

        Args:
            value: any JSON value (dicts, lists, strings, numbers...); not modified.
            schema: the value's JSON schema, when known (a tool's parameters): values whose
                schema has ``"x-secret": true`` are redacted whole.
        """
        counts: Counter[str] = Counter()
        out = self._value(value, schema, counts)
        return out, dict(sorted(counts.items()))

    def _value(self, value: Any, schema: Any, counts: Counter[str]) -> Any:
        if isinstance(schema, Mapping) and schema.get(SECRET_KEY) is True:
            counts["x_secret"] += 1
            return REDACTED
        if isinstance(value, str):
            text, found = redact_text(value, self.credentials)
            counts.update(found)
            text, found = redact_text(text, self.pii)
            counts.update(found)
            return text
        if isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                if isinstance(key, str) and self.is_secret_key(key):
                    counts["secret_key"] += 1
                    out[key] = REDACTED
                else:
                    out[key] = self._value(item, _property(schema, key), counts)
            return out
        if isinstance(value, (list, tuple)):
            items = schema.get("items") if isinstance(schema, Mapping) else None
            return [self._value(item, items, counts) for item in value]
        return value


def _property(schema: Any, key: Any) -> Any:
    """The schema of ``key`` in an object schema (its property, else additionalProperties)."""
    if not isinstance(schema, Mapping):
        return None
    properties = schema.get("properties")
    if isinstance(properties, Mapping) and key in properties:
        return properties[key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else None

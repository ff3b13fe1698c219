"""Tool-argument schemas for grammars in which every value ends: ``bound_schema``.

A JSON schema lets a number have any number of digits; a grammar built from it lets a weak model
write digits until ``max_tokens``. Every tool format builds its argument grammar from
``bound_schema``, so the bounds are the core chat path's, not any one format's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_DECIMAL_DIGITS", "MAX_INTEGRAL_DIGITS", "SCHEMA_MAPS", "bound_schema"]

SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
"""Keywords whose value is a ``{name: schema}`` map."""

MAX_INTEGRAL_DIGITS = 16
"""Digits before the point of a number a tool grammar allows (llama.cpp's json-schema-to-grammar
caps ``integral-part`` the same way), so a weak model cannot write ``-5555…`` until max_tokens."""
MAX_DECIMAL_DIGITS = 10
"""Digits after the point: ``multipleOf: 1e-10``, the finest step llguidance compiles."""
_LIMIT = 10**MAX_INTEGRAL_DIGITS - 1
# Keywords llguidance rejects ("Unimplemented keys"): the grammar drops them, and the arguments
# are validated against the full schema after parsing (Tool.invoke).
_UNGRAMMATICAL = frozenset({
    "uniqueItems", "contains", "minContains", "maxContains", "not", "if", "then", "else",
    "dependentRequired", "dependentSchemas", "propertyNames", "unevaluatedProperties",
    "unevaluatedItems"})
_VALUES = ("const", "enum", "default", "examples")  # JSON values, not schemas


def bound_schema(schema: Any) -> Any:
    """A copy of a JSON schema for a grammar in which every value ends.

    Numbers get at most ``MAX_INTEGRAL_DIGITS`` digits before the point and
    ``MAX_DECIMAL_DIGITS`` after it, within the schema's own ``minimum``/``maximum`` where it
    has them (llguidance honours those, ``maxLength``, ``maxItems``, ``enum`` and ``pattern``
    itself); keywords llguidance cannot compile are dropped (the full schema still validates
    the parsed arguments). Every tool format builds its argument grammar from this.

    Example:
        >>> bound_schema({"type": "integer", "minimum": 1})
        {'type': 'integer', 'minimum': 1, 'maximum': 9999999999999999}
    """
    if isinstance(schema, list):
        return [bound_schema(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _UNGRAMMATICAL:
            continue
        if key in _VALUES:
            out[key] = value
        elif key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: bound_schema(sub) for name, sub in value.items()}
        else:
            out[key] = bound_schema(value)
    kinds = out.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
    if "integer" in kinds or "number" in kinds:
        _bound_range(out)
        if "number" in kinds and "multipleOf" not in out:
            out["multipleOf"] = 10.0**-MAX_DECIMAL_DIGITS
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bound_range(schema: dict[str, Any]) -> None:
    """Clamp [minimum, maximum] to +-(10**MAX_INTEGRAL_DIGITS - 1), keeping it non-empty."""
    low = [schema[k] for k in ("minimum", "exclusiveMinimum") if _number(schema.get(k))]
    high = [schema[k] for k in ("maximum", "exclusiveMaximum") if _number(schema.get(k))]
    if max(low, default=-_LIMIT) > _LIMIT or min(high, default=_LIMIT) < -_LIMIT:
        return  # the schema's own range lies beyond the cap: it bounds the digits itself
    if not low or max(low) < -_LIMIT:
        schema.pop("exclusiveMinimum", None)
        schema["minimum"] = -_LIMIT
    if not high or min(high) > _LIMIT:
        schema.pop("exclusiveMaximum", None)
        schema["maximum"] = _LIMIT

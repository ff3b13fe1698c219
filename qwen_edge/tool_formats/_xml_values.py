"""Values of ``<parameter=KEY>`` in the XML format: one typing rule shared by parser and grammar.

A parameter's schema gives its *kind*: ``string``, ``integer``, ``number``, ``boolean``,
``null`` or ``json`` (objects, arrays, non-string enums). A union (``anyOf``/``oneOf``/a type
list) takes its first non-null member, as vLLM's ``qwen3_coder`` parser does, and is
*nullable* if ``null`` is a member. ``convert`` (parser) and ``value_grammar`` (constrained
decoding) both go through ``kind_of``, so a value the grammar lets the model write is
converted to the type the schema asks for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["STRING_TERMINAL", "as_text", "bound_schema", "convert", "kind_of", "property_schema", "strip_newlines",
           "value_grammar"]

_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NULLS = ("null", "None")  # JSON's, and what the template's `| string` writes for None
_TRUE, _FALSE = ("true", "True"), ("false", "False")
_JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
_END = json.dumps("\n</parameter>\n")


def strip_newlines(raw: str) -> str:
    """The value between the tags: one newline after the open tag and before the close tag
    belong to the format."""
    raw = raw.removeprefix("\n")
    return raw.removesuffix("\n")


def as_text(value: Any) -> str:
    """A value as Qwen3.5's template writes it: objects and arrays as JSON, else ``str``."""
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _resolve(schema: Any, root: Mapping[str, Any] | None, depth: int = 0) -> Any:
    ref = schema.get("$ref") if isinstance(schema, Mapping) else None
    if not isinstance(ref, str) or root is None or depth > 16:
        return schema
    target: Any = root
    for part in ref.removeprefix("#").strip("/").split("/") if ref.startswith("#") else ["?"]:
        if not part:
            continue
        target = target.get(part) if isinstance(target, Mapping) else None
    return _resolve(target, root, depth + 1) if isinstance(target, Mapping) else {}


def property_schema(root: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    """The (``$ref``-resolved) schema of parameter ``key`` in a tool's parameters, or None."""
    if not isinstance(root, Mapping):
        return None
    properties = root.get("properties")
    schema = properties.get(key) if isinstance(properties, Mapping) else None
    return _resolve(schema, root) if isinstance(schema, Mapping) else None


def _types(schema: Mapping[str, Any], root: Mapping[str, Any] | None) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    for union in ("anyOf", "oneOf"):
        branches = schema.get(union)
        if isinstance(branches, list):
            out: list[str] = []
            for branch in branches:
                member = _resolve(branch, root)
                out += _types(member, root) if isinstance(member, Mapping) else []
            return out
    return []


_KINDS = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
          "object": "json", "array": "json", "null": "null"}


def kind_of(schema: Mapping[str, Any] | None,
            root: Mapping[str, Any] | None = None) -> tuple[str, bool]:
    """(kind, nullable) of a parameter schema; no schema (or no type) is a string."""
    if not isinstance(schema, Mapping):
        return "string", False
    schema = _resolve(schema, root)
    options = schema.get("enum", [schema["const"]] if "const" in schema else None)
    if isinstance(options, list):
        nullable = None in options
        present = [v for v in options if v is not None]
        return ("string" if all(isinstance(v, str) for v in present) else "json"), nullable
    types = _types(schema, root)
    nullable = "null" in types
    for t in types:
        if t != "null":
            return _KINDS.get(t, "string"), nullable
    return ("null", True) if nullable else ("string", False)


def convert(raw: str, schema: Mapping[str, Any] | None,
            root: Mapping[str, Any] | None = None) -> Any:
    """The typed value of ``raw``; text that does not fit the kind stays a string."""
    kind, nullable = kind_of(schema, root)
    text = raw.strip()
    if (nullable or kind == "null") and text in _NULLS:
        return None
    if kind == "integer" and _INTEGER.fullmatch(text):
        return int(text)
    if kind == "boolean" and text in _TRUE + _FALSE:
        return text in _TRUE
    if kind in ("number", "json"):
        try:
            value = json.loads(text, parse_constant=_reject)
        except (ValueError, RecursionError):
            return raw
        if kind == "json" or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return value
    return raw


def _reject(name: str) -> Any:
    msg = f"{name} is not valid JSON"
    raise ValueError(msg)


def bound_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Hook: the schema handed to llguidance for a typed value.

    The Hermes grammar's schema rewriting (number-length bounds, schema-bound keywords
    llguidance ignores; ``qwen_edge/_schema.py``) belongs here too, so that both formats bound
    values the same way: replace this body with a call to that function.
    """
    return dict(schema)


STRING_TERMINAL = (
    "XML_STRING_VALUE: (/(?s:.*)/ & ~/(?s:.*)(<\\/parameter>|<parameter=|<\\/function>)(?s:.*)/) "
    + _END
)
"""The terminal of raw string values (text without a marker that would end the value for the
parser) with their closing tag; ``value_grammar`` refers to it, the grammar defines it once."""

_NUMERIC_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def value_grammar(schema: Mapping[str, Any] | None, root: Mapping[str, Any] | None) -> str:
    """A Lark expression for one value *and* the ``\\n</parameter>\\n`` that closes it."""
    resolved = _resolve(schema, root) if isinstance(schema, Mapping) else None
    kind, nullable = kind_of(resolved, root)
    null = [json.dumps(n) for n in _NULLS] if nullable or kind == "null" else []
    options = None
    if isinstance(resolved, Mapping):
        options = resolved.get("enum", [resolved["const"]] if "const" in resolved else None)
    if isinstance(options, list):
        body = [json.dumps(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
                for v in options if v is not None]
    elif kind == "string":
        return "XML_STRING_VALUE"  # "null" is text too; convert() reads it as None if nullable
    elif kind == "boolean":
        body = [json.dumps(b) for b in _TRUE + _FALSE]
    elif kind == "null":
        body = []
    elif kind == "json":
        value = dict(resolved or {})
        if root is not None and "$defs" in root:
            value.setdefault("$defs", root["$defs"])
        body = [f"%json {json.dumps({'x-guidance': _JSON_STYLE, **bound_schema(value)})}"]
    else:  # integer / number: the first non-null member of a union, with its own bounds
        value = {k: v for k, v in (resolved or {}).items() if k in _NUMERIC_KEYS}
        value["type"] = kind
        body = [f"%json {json.dumps({'x-guidance': _JSON_STYLE, **bound_schema(value)})}"]
    return f"({' | '.join(body + null)}) {_END}"

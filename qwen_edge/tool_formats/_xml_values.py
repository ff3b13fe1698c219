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

from .bounds import bound_schema as _bound

__all__ = ["STRING_TERMINAL", "as_text", "bound_schema", "convert", "kind_of",
           "property_schema", "strip_newlines", "value_grammar"]

_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NULLS = ("null", "None")  # JSON's, and what the template's `| string` writes for None
_TRUE, _FALSE = ("true", "True"), ("false", "False")
_JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
_END = json.dumps("\n</parameter>\n")


_CLOSING_INDENT = re.compile(r"\n[ \t]*\Z")


def strip_newlines(raw: str) -> str:
    """The value between the tags, without the format's own whitespace.

    The newline after ``<parameter=KEY>`` and the one before ``</parameter>`` (with the
    indentation of the closing tag, if the model indents) belong to the format, as in vLLM's
    parser; a value that is then a single line is also stripped of surrounding whitespace, as
    llama.cpp does, so ``<parameter=city>  Lisbon </parameter>`` is ``"Lisbon"``. Multi-line
    values (code, files) keep every other character, a trailing newline included.
    """
    value = _CLOSING_INDENT.sub("", raw.removeprefix("\n"), count=1)
    return value if "\n" in value else value.strip()


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


# JSON schema's names, plus the aliases vLLM's parser accepts ("float", "int", "dict", ...).
_KINDS = {"string": "string", "str": "string", "integer": "integer", "int": "integer",
          "number": "number", "float": "number", "double": "number", "boolean": "boolean",
          "bool": "boolean", "object": "json", "dict": "json", "array": "json", "list": "json",
          "null": "null"}


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
    """The schema handed to llguidance for a typed value: bounded as the Hermes grammar's
    (``bounds.bound_schema``: number-length caps, keywords llguidance
    rejects dropped), so both formats constrain values the same way."""
    return dict(_bound(dict(schema)))


_MARKERS = r"~/(?s:.*)(<\/parameter>|<parameter=|<\/function>)(?s:.*)/"
STRING_TERMINAL = f"XML_STRING_VALUE: (/(?s:.*)/ & {_MARKERS}) {_END}"
"""The terminal of raw string values (text without a marker that would end the value for the
parser) with their closing tag; ``value_grammar`` refers to it, the grammar defines it once."""

_NUMERIC_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def _string_terminal(schema: Mapping[str, Any] | None, terminal: str) -> tuple[str, list[str]]:
    lo, hi = (schema or {}).get("minLength"), (schema or {}).get("maxLength")
    if not isinstance(lo, int) and not isinstance(hi, int):
        return "XML_STRING_VALUE", []
    lo = lo if isinstance(lo, int) and lo > 0 else 0
    count = f"{{{lo},{hi}}}" if isinstance(hi, int) else f"{{{lo},}}"
    return terminal, [f"{terminal}: (/(?s:.{count})/ & {_MARKERS}) {_END}"]


def value_grammar(schema: Mapping[str, Any] | None, root: Mapping[str, Any] | None,
                  terminal: str) -> tuple[str, list[str]]:
    """A Lark expression for one value *and* the ``\\n</parameter>\\n`` that closes it, plus
    the definitions it needs (``terminal`` names a string terminal with length bounds)."""
    resolved = _resolve(schema, root) if isinstance(schema, Mapping) else None
    kind, nullable = kind_of(resolved, root)
    null = [json.dumps(n) for n in _NULLS] if nullable or kind == "null" else []
    options = None
    if isinstance(resolved, Mapping):
        options = resolved.get("enum", [resolved["const"]] if "const" in resolved else None)
    if isinstance(options, list):
        body = [json.dumps(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
                for v in options if v is not None]
    elif kind == "string":  # "null" is text too; convert() reads it as None if nullable
        return _string_terminal(resolved, terminal)
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
    return f"({' | '.join(body + null)}) {_END}", []

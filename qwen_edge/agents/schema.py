"""Type hints and docstrings -> JSON schema, and JSON arguments -> annotated Python values.

The machinery behind ``@tool`` (``tools.py``): ``schema_of(annotation)`` turns one annotation into
a self-contained JSON schema, ``parse_docstring`` reads a Google-style docstring, and
``coerce(value, annotation)`` converts a validated JSON value back to the annotated type.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import math
import re
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

# bound_schema is the core chat path's (every tool format's grammar); importable here as before
from ..tool_formats.bounds import MAX_DECIMAL_DIGITS, MAX_INTEGRAL_DIGITS, SCHEMA_MAPS, bound_schema

__all__ = ["MAX_DECIMAL_DIGITS", "MAX_INTEGRAL_DIGITS", "SchemaError", "annotated_doc",
           "bound_schema", "coerce", "jsonable", "parse_docstring", "schema_of"]

# typing.Required / NotRequired (TypedDict keys) exist from Python 3.11 on.
_REQUIRED: Any = getattr(typing, "Required", object())
_NOT_REQUIRED: Any = getattr(typing, "NotRequired", object())
_WRAPPERS = (typing.Annotated, _REQUIRED, _NOT_REQUIRED)
_SCALARS: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                             type(None): "null"}


class SchemaError(Exception):
    """An annotation that cannot be turned into a schema (wrapped into ToolError by the caller)."""


# -- docstrings -----------------------------------------------------------------------------------

_SECTIONS = {"args", "arguments", "parameters", "params", "attributes", "keyword args",
             "keyword arguments", "returns", "return", "yields", "raises", "example",
             "examples", "note", "notes", "see also", "todo", "warning", "warnings", "references"}
_ARG_SECTIONS = {"args", "arguments", "parameters", "params", "attributes", "keyword args",
                 "keyword arguments"}
_ENTRY_RE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:(.*)$")


def _section(line: str) -> str | None:
    stripped = line.strip()
    if stripped.endswith(":") and stripped[:-1].lower() in _SECTIONS:
        return stripped[:-1].lower()
    return None


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Google style: (first paragraph, {parameter: description}) with whitespace collapsed."""
    lines = doc.expandtabs().splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _section(line):
            break
        summary.append(line.strip())

    args: dict[str, str] = {}
    i = 0
    while i < len(lines):
        if _section(lines[i]) not in _ARG_SECTIONS:
            i += 1
            continue
        header_indent = len(lines[i]) - len(lines[i].lstrip())
        i += 1
        entry_indent: int | None = None
        current: str | None = None
        while i < len(lines):
            line = lines[i]
            indent = len(line) - len(line.lstrip())
            if line.strip() and indent <= header_indent:
                break
            i += 1
            if not line.strip():
                continue
            match = _ENTRY_RE.match(line.strip())
            if match and (entry_indent is None or indent <= entry_indent):
                entry_indent = indent
                current = match.group(1)
                args[current] = match.group(2).strip()
            elif current is not None:
                args[current] = f"{args[current]} {line.strip()}".strip()
    return " ".join(summary), args


def annotated_doc(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Annotated:
        docs = [m for m in annotation.__metadata__ if isinstance(m, str)]
        return " ".join(docs)
    return ""


# -- type hints -> JSON schema --------------------------------------------------------------------


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "")


def jsonable(value: Any) -> Any:
    """A default value as JSON (Enum members by value, dataclasses and models as objects)."""
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = "not a finite number"
            raise SchemaError(msg)
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            msg = "object keys must be strings"
            raise SchemaError(msg)
        return {k: jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if _is_pydantic_model(type(value)):
        return value.model_dump(mode="json")
    msg = f"{type(value).__name__} values cannot be written as JSON"
    raise SchemaError(msg)


def _is_pydantic_model(annotation: Any) -> bool:
    # A pydantic model annotation means pydantic is already imported; never import it here.
    pydantic = sys.modules.get("pydantic")
    return (pydantic is not None and isinstance(annotation, type)
            and issubclass(annotation, pydantic.BaseModel))


def _enum_schema(values: list[Any], what: str) -> dict[str, Any]:
    if not values:
        msg = f"{what} has no values"
        raise SchemaError(msg)
    bad = [v for v in values if type(v) not in _SCALARS]
    if bad:
        msg = f"{what} value {bad[0]!r} is not a JSON scalar (str, int, float, bool, None)"
        raise SchemaError(msg)
    kinds = list(dict.fromkeys(_SCALARS[type(v)] for v in values))
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": list(values)}


def schema_of(annotation: Any, seen: tuple[type, ...]) -> dict[str, Any]:
    """JSON schema of one annotation; ``seen`` holds the enclosing classes (recursion check)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)

    if origin in _WRAPPERS:
        return schema_of(args[0], seen)
    if annotation is Any:
        return {}
    if annotation is None or annotation is type(None):
        return {"type": "null"}
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    if origin is Literal:
        return _enum_schema(list(args), _type_name(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_schema([m.value for m in annotation], f"Enum {annotation.__name__}")
    if origin in (Union, types.UnionType):
        return _union_schema(args, seen)
    if annotation is list or origin is list:
        return {"type": "array", **({"items": schema_of(args[0], seen)} if args else {})}
    if annotation is tuple or origin is tuple:
        return _tuple_schema(annotation, args, seen)
    if annotation is dict or origin is dict:
        if not args:
            return {"type": "object"}
        if args[0] is not str:
            msg = f"{_type_name(annotation)}: JSON object keys are strings; use dict[str, ...]"
            raise SchemaError(msg)
        return {"type": "object", "additionalProperties": schema_of(args[1], seen)}
    if isinstance(annotation, type) and annotation in seen:
        msg = f"{annotation.__name__} is recursive; flatten it or pass an explicit schema with Tool.from_openai"
        raise SchemaError(msg)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _class_schema(annotation, seen, dataclass_fields=True)
    if typing.is_typeddict(annotation):
        return _class_schema(annotation, seen, dataclass_fields=False)
    if _is_pydantic_model(annotation):
        return _pydantic_schema(annotation)
    msg = (f"unsupported annotation {_type_name(annotation)}; supported: str, int, float, bool, "
           "None, Any, Literal, Enum, list, tuple, dict[str, T], unions, dataclasses, TypedDict "
           "and pydantic models")
    raise SchemaError(msg)


def _union_schema(args: tuple[Any, ...], seen: tuple[type, ...]) -> dict[str, Any]:
    nullable = type(None) in args
    members = [schema_of(a, seen) for a in args if a is not type(None)]
    if all(m.keys() == {"type"} and isinstance(m["type"], str) for m in members):
        kinds = list(dict.fromkeys(m["type"] for m in members))
        if nullable:
            kinds.append("null")
        return {"type": kinds[0] if len(kinds) == 1 else kinds}
    if nullable:
        members.append({"type": "null"})
    return members[0] if len(members) == 1 else {"anyOf": members}


def _tuple_schema(annotation: Any, args: tuple[Any, ...],
                  seen: tuple[type, ...]) -> dict[str, Any]:
    if not args:
        return {"type": "array"}
    if len(args) == 2 and args[1] is Ellipsis:
        return {"type": "array", "items": schema_of(args[0], seen)}
    if Ellipsis in args:
        msg = f"{_type_name(annotation)}: only tuple[T, ...] and tuple[A, B] are supported"
        raise SchemaError(msg)
    return {"type": "array", "prefixItems": [schema_of(a, seen) for a in args],
            "items": False, "minItems": len(args), "maxItems": len(args)}


def _class_schema(cls: type, seen: tuple[type, ...], *, dataclass_fields: bool) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:  # NameError for unresolvable string annotations, and friends
        msg = f"cannot resolve the type hints of {cls.__name__} ({type(exc).__name__}: {exc})"
        raise SchemaError(msg) from exc
    doc = cls.__doc__ or ""
    if dataclass_fields and doc.startswith(f"{cls.__name__}("):
        doc = ""  # the signature dataclasses writes when there is no docstring
    summary, field_docs = parse_docstring(inspect.cleandoc(doc))
    properties: dict[str, Any] = {}
    required: list[str] = []
    if dataclass_fields:
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            properties[f.name] = _field_schema(cls, f.name, hints[f.name], field_docs, seen)
            if f.default is not dataclasses.MISSING:
                try:
                    properties[f.name]["default"] = jsonable(f.default)
                except SchemaError as exc:
                    msg = f"{cls.__name__}.{f.name}: default is not JSON ({exc})"
                    raise SchemaError(msg) from None
            elif f.default_factory is dataclasses.MISSING:
                required.append(f.name)
    else:
        required_keys: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
        for key, hint in hints.items():
            properties[key] = _field_schema(cls, key, hint, field_docs, seen)
            # __required_keys__ misses Required/NotRequired written as strings (PEP 563)
            origin = typing.get_origin(hint)
            if origin is _REQUIRED or (origin is not _NOT_REQUIRED and key in required_keys):
                required.append(key)
    schema: dict[str, Any] = {"type": "object"}
    if summary:
        schema["description"] = summary
    schema["properties"] = properties
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _field_schema(cls: type, key: str, hint: Any, docs: Mapping[str, str],
                  seen: tuple[type, ...]) -> dict[str, Any]:
    try:
        schema = schema_of(hint, (*seen, cls))
    except SchemaError as exc:
        msg = f"{cls.__name__}.{key}: {exc}"
        raise SchemaError(msg) from None
    doc = docs.get(key) or annotated_doc(hint)
    if doc and "description" not in schema:
        schema["description"] = doc
    return schema


def _pydantic_schema(model: type) -> dict[str, Any]:
    raw: dict[str, Any] = model.model_json_schema()  # type: ignore[attr-defined]
    defs: dict[str, Any] = raw.pop("$defs", {})
    return _resolve(raw, defs, ())  # type: ignore[no-any-return]


# Keywords whose value is a {name: schema} map, a schema, or a list of schemas.
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames", "if",
               "then", "else", "unevaluatedItems", "unevaluatedProperties")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")


def _resolve(schema: Any, defs: Mapping[str, Any], stack: tuple[str, ...]) -> Any:
    """Inline ``#/$defs/...`` references, drop pydantic's ``title`` keywords and close objects.

    Models get ``additionalProperties: false`` unless they say otherwise (``extra="allow"``):
    a model should not invent keys that pydantic would drop anyway.
    """
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix("#/$defs/")
        if name == ref or name not in defs:
            msg = f"cannot resolve $ref {ref!r}"
            raise SchemaError(msg)
        if name in stack:
            msg = f"{name} is recursive; flatten it or pass an explicit schema with Tool.from_openai"
            raise SchemaError(msg)
        out.update(_resolve(defs[name], defs, (*stack, name)))
    for key, value in schema.items():
        if key in ("$ref", "title"):
            continue
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: _resolve(v, defs, stack) for k, v in value.items()}
        elif key in _SCHEMA_ONE:
            out[key] = _resolve(value, defs, stack)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_resolve(v, defs, stack) for v in value]
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


# -- JSON arguments -> Python values --------------------------------------------------------------


def coerce(value: Any, annotation: Any) -> Any:
    """Convert a validated JSON value to ``annotation`` (Enum, dataclass, pydantic, tuple)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in _WRAPPERS:
        return coerce(value, args[0])
    if value is None:
        return None
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation(value)
    if origin in (Union, types.UnionType):
        return _coerce_union(value, args)
    if origin is list and args and isinstance(value, list):
        return [coerce(v, args[0]) for v in value]
    if (annotation is tuple or origin is tuple) and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0]) for v in value)
        if args:
            return tuple(coerce(v, a) for v, a in zip(value, args, strict=True))
        return tuple(value)
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {k: coerce(v, args[1]) for k, v in value.items()}
    if isinstance(annotation, type) and isinstance(value, dict):
        if dataclasses.is_dataclass(annotation):
            hints = typing.get_type_hints(annotation, include_extras=True)
            return annotation(**{k: coerce(v, hints.get(k, Any)) for k, v in value.items()})
        if typing.is_typeddict(annotation):
            hints = typing.get_type_hints(annotation, include_extras=True)
            return {k: coerce(v, hints.get(k, Any)) for k, v in value.items()}
        if _is_pydantic_model(annotation):
            return annotation.model_validate(value)  # type: ignore[attr-defined]
    return value


def _coerce_union(value: Any, args: tuple[Any, ...]) -> Any:
    # The first member whose JSON shape matches the value wins (schemas were validated already).
    for arg in args:
        if arg is type(None):
            continue
        if _json_shape_matches(value, arg):
            return coerce(value, arg)
    return value


def _json_shape_matches(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    if origin in _WRAPPERS:
        return _json_shape_matches(value, typing.get_args(annotation)[0])
    if origin is bool:
        return isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is str:
        return isinstance(value, str)
    if origin is Literal:
        return value in typing.get_args(annotation)
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return value in {m.value for m in origin}
    if origin in (list, tuple):
        return isinstance(value, list)
    if origin is dict or (isinstance(origin, type) and (
            dataclasses.is_dataclass(origin) or typing.is_typeddict(origin)
            or _is_pydantic_model(origin))):
        return isinstance(value, dict)
    return True


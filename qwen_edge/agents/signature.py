"""A typed Python function -> its tool name, description and JSON schema of the arguments.

The introspection behind ``@tool``: ``inspect.signature`` for the parameters, the resolved type
hints for their schemas (``schema.schema_of``), the Google-style docstring for the descriptions.
It only reads the function; ``tools.Tool`` is the record built from what it returns.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ToolError
from .schema import SchemaError, annotated_doc, jsonable, parse_docstring, schema_of

__all__ = ["FunctionSchema", "describe_function"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionSchema:
    """What a function says about itself as a tool.

    Attributes:
        name: the function's ``__name__`` (a callable object's class name).
        description: the docstring's first paragraph.
        parameters: the JSON schema of the arguments (``"type": "object"``, closed).
        hints: the annotation of each parameter, to convert JSON arguments back.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    hints: Mapping[str, Any]


def describe_function(fn: Callable[..., Any]) -> FunctionSchema:
    """Read a typed function's name, summary and parameters schema.

    Raises:
        ToolError: a parameter without a supported annotation, a ``*args``/``**kwargs`` or
            positional-only parameter, a non-JSON default, or hints that do not resolve.
    """
    if not callable(fn):
        msg = f"@tool needs a function (got {fn!r:.60})"
        raise ToolError(msg)
    # functools.partial and callable objects keep their annotations elsewhere
    hint_source: Any = fn
    if not (inspect.isfunction(fn) or inspect.ismethod(fn) or inspect.isbuiltin(fn)):
        hint_source = getattr(fn, "func", None) or type(fn).__call__
    fn_name = getattr(fn, "__name__", None) or getattr(hint_source, "__name__", None)
    if fn_name in (None, "__call__"):
        fn_name = type(fn).__name__
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        msg = f"{fn_name}: cannot read the signature: {exc}"
        raise ToolError(msg) from exc
    try:
        hints = typing.get_type_hints(hint_source, include_extras=True)
    except Exception as exc:  # NameError for unresolvable string annotations, and friends
        msg = (f"{fn_name}: cannot resolve the type hints ({type(exc).__name__}: {exc}); "
               "define the annotated types at module level")
        raise ToolError(msg) from exc
    summary, arg_docs = parse_docstring(inspect.getdoc(fn) or "")

    properties: dict[str, Any] = {}
    required: list[str] = []
    param_hints: dict[str, Any] = {}
    for param in signature.parameters.values():
        where = f"{fn_name}: parameter {param.name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            stars = "*" if param.kind == param.VAR_POSITIONAL else "**"
            msg = f"{where}: {stars}{param.name} cannot be described by a JSON schema; name each argument"
            raise ToolError(msg)
        if param.kind == param.POSITIONAL_ONLY:
            msg = f"{where}: positional-only parameters cannot be passed by name; drop the '/'"
            raise ToolError(msg)
        if param.name not in hints:
            msg = f"{where} has no type annotation; annotate it (e.g. {param.name}: str)"
            raise ToolError(msg)
        annotation = hints[param.name]
        try:
            schema = schema_of(annotation, ())
        except SchemaError as exc:
            msg = f"{where}: {exc}"
            raise ToolError(msg) from None
        doc = arg_docs.get(param.name) or annotated_doc(annotation)
        if doc:
            schema["description"] = doc
        if param.default is param.empty:
            required.append(param.name)
        else:
            try:
                schema["default"] = jsonable(param.default)
            except SchemaError as exc:
                msg = f"{where}: default {param.default!r:.60} is not JSON ({exc})"
                raise ToolError(msg) from None
        properties[param.name] = schema
        param_hints[param.name] = annotation

    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    parameters["additionalProperties"] = False
    return FunctionSchema(name=fn_name, description=summary, parameters=parameters,
                          hints=param_hints)

"""``@tool``: typed Python functions as OpenAI-style function tools (the ``Tool`` record).

The JSON schema comes from the type hints, the descriptions from the Google-style docstring::

    @tool
    def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
        '''Current weather of a city.

        Args:
            city: City name, e.g. "Paris".
        '''

    get_weather.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": 'City name, e.g. "Paris".'},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
        },
        "required": ["city"],
        "additionalProperties": False,
    }

Supported annotations: ``str, int, float, bool, None, Any``, ``Literal[...]``, ``Enum``
subclasses, ``list[T]``, ``tuple[T, ...]``, ``tuple[A, B]``, ``dict[str, T]``, unions and
``Optional[T]``, ``Annotated[T, "description"]``, dataclasses, ``TypedDict`` and pydantic
models. The schemas are self-contained (no ``$ref``) and use the draft 2020-12 subset that both
OpenAI and llguidance accept. ``Tool.invoke`` validates the model's arguments, converts them to
the annotated types (``Enum`` members, dataclass and pydantic instances, tuples) and calls the
function. Reading a function (signature, hints, docstring) is ``signature.describe_function``'s.

Grounded parameters (``@tool(grounded=["city"])``) are string arguments that a local model must
quote from the user's messages: when the agent decodes a call, the grammar allows only
``quotable_spans`` of the conversation's user turns for them (a small model then cannot
misspell or invent a city; it still chooses which words). The schema the model sees is
unchanged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from ..errors import QwenEdgeError, ToolArgumentsError, ToolError, ToolExecutionError

# written in the core (every tool format's grammar reads them); importable here as before
from ..tool_formats.grounding import grounding_texts, quotable_spans
from .schema import coerce
from .signature import describe_function

__all__ = ["Tool", "as_tool", "grounding_texts", "quotable_spans", "tool"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
GROUNDED_KEY = "x-grounded"  # in an OpenAI tool's "function": its grounded parameters


# -- the Tool type --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Tool:
    """A function the model can call: name, description, JSON schema of the arguments, callable.

    Build one with ``@tool`` (from a typed function) or ``Tool.from_openai`` (from an explicit
    OpenAI tool dict). Calling the tool calls the function directly; ``invoke`` validates the
    model's JSON arguments first. Treat ``parameters`` as read-only.

    Attributes:
        name: the function name the model writes (``^[A-Za-z0-9_-]{1,64}$``).
        description: what the tool does, shown to the model.
        parameters: JSON schema of the arguments (``"type": "object"``).
        fn: the Python function, or None for a schema-only tool.
        grounded: names of top-level string parameters whose values a local model must quote
            from the user's messages (see the module docstring); empty by default.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any] | None = None
    grounded: frozenset[str] = frozenset()
    # Annotation per parameter, used to convert JSON arguments back to Python types.
    _hints: Mapping[str, Any] = field(default_factory=dict, repr=False)
    _validator: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            msg = f"tool name {self.name!r}: must match ^[A-Za-z0-9_-]{{1,64}}$"
            raise ToolError(msg)
        if not isinstance(self.description, str):
            msg = f"{self.name}: description must be a string (got {self.description!r:.60})"
            raise ToolError(msg)
        if not isinstance(self.parameters, dict) or self.parameters.get("type") != "object":
            msg = (f"{self.name}: parameters must be a JSON schema with \"type\": \"object\" "
                   f"(got {self.parameters!r:.80})")
            raise ToolError(msg)
        if self.fn is not None and not callable(self.fn):
            msg = f"{self.name}: fn must be callable (got {self.fn!r:.60})"
            raise ToolError(msg)
        object.__setattr__(self, "grounded", _grounded(self.name, self.parameters, self.grounded))

    @property
    def is_async(self) -> bool:
        """The function is a coroutine function (``async def``)."""
        fn = self.fn
        # a callable object with an ``async def __call__`` counts too
        return fn is not None and (inspect.iscoroutinefunction(fn) or
                                   inspect.iscoroutinefunction(type(fn).__call__))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly, without validation."""
        return self._require_fn()(*args, **kwargs)

    def to_openai(self) -> dict[str, Any]:
        """``{"type": "function", "function": {"name", "description", "parameters"}}``."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description,
                             "parameters": copy.deepcopy(self.parameters)}}

    @classmethod
    def from_openai(cls, spec: Mapping[str, Any], fn: Callable[..., Any] | None = None, *,
                    grounded: Iterable[str] = ()) -> Tool:
        """A tool from an OpenAI tool dict ``{"type": "function", "function": {...}}``.

        ``grounded`` names its grounded parameters; without it, the function's own
        ``"x-grounded"`` list (qwen-edge's extension of the OpenAI tool format, which
        ``qwen-edge serve`` reads from requests) does, if present.

        Raises:
            ToolError: the dict does not have that shape, ``parameters`` is not a valid
                JSON schema of an object, or a grounded name is not a top-level string
                parameter.
        """
        where = "tool spec"
        if not isinstance(spec, Mapping) or spec.get("type") != "function" or not isinstance(
                spec.get("function"), Mapping):
            msg = (f"{where}: expected {{\"type\": \"function\", \"function\": {{\"name\": ..., "
                   f"\"description\": ..., \"parameters\": {{...}}}}}} (got {spec!r:.100})")
            raise ToolError(msg)
        function = spec["function"]
        name = function.get("name")
        if not isinstance(name, str):
            msg = f"{where}: function.name must be a string (got {name!r:.60})"
            raise ToolError(msg)
        description = function.get("description", "")
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, Mapping):
            msg = f"{name}: function.parameters must be a JSON schema object (got {parameters!r:.60})"
            raise ToolError(msg)
        parameters = copy.deepcopy(dict(parameters))
        _check_schema(name, parameters)
        if not grounded and function.get(GROUNDED_KEY) is not None:
            grounded = function[GROUNDED_KEY]
            if not isinstance(grounded, (list, tuple)):
                got = "the string " if isinstance(grounded, str) else ""
                msg = (f"{name}: {GROUNDED_KEY} must be a list of parameter names "
                       f"(got {got}{grounded!r:.60})")
                raise ToolError(msg)
        return cls(name=name, description=description, parameters=parameters, fn=fn,
                   grounded=grounded)  # type: ignore[arg-type]  # made a frozenset on init

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``arguments`` against ``parameters``; return a copy with defaults filled in.

        Raises:
            ToolArgumentsError: names the tool, the path and the problem, e.g.
                ``set_timer: arguments['minutes']: 'five' is not of type 'integer'``.
        """
        if not isinstance(arguments, Mapping):
            msg = f"{self.name}: arguments must be a JSON object (got {arguments!r:.80})"
            raise ToolArgumentsError(msg)
        arguments = copy.deepcopy(dict(arguments))
        validator = self._validator
        if validator is None:
            validator = _make_validator(self.name, self.parameters)
            object.__setattr__(self, "_validator", validator)
        from jsonschema.exceptions import best_match

        error = best_match(validator.iter_errors(arguments))
        if error is not None:
            path = "arguments" + "".join(f"[{p!r}]" for p in error.absolute_path)
            msg = f"{self.name}: {path}: {error.message:.300}"
            raise ToolArgumentsError(msg)
        filled: dict[str, Any] = _fill_defaults(self.parameters, arguments)
        return filled

    def invoke(self, arguments: Mapping[str, Any]) -> Any:
        """Validate ``arguments``, convert them to the annotated types and run the function.

        An async function runs to completion in an event loop (in a helper thread when this
        thread already runs a loop).

        Raises:
            ToolArgumentsError: the arguments do not match the schema or the signature.
            ToolExecutionError: the function raised (the original error is the ``__cause__``).
        """
        fn, kwargs = self._prepare(arguments)
        try:
            result = fn(**kwargs)
            if inspect.isawaitable(result):
                result = _run_sync(result)
        except QwenEdgeError:
            raise
        except Exception as exc:
            raise self._execution_error(exc) from exc
        return result

    async def ainvoke(self, arguments: Mapping[str, Any]) -> Any:
        """``invoke`` for async code: awaits async functions, runs sync ones in a worker thread."""
        fn, kwargs = self._prepare(arguments)
        try:
            if self.is_async:
                result = await fn(**kwargs)
            else:
                result = await asyncio.to_thread(fn, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except QwenEdgeError:
            raise
        except Exception as exc:
            raise self._execution_error(exc) from exc
        return result

    def _require_fn(self) -> Callable[..., Any]:
        if self.fn is None:
            msg = f"{self.name}: no Python function is bound to this tool (schema only)"
            raise ToolError(msg)
        return self.fn

    def _prepare(self, arguments: Mapping[str, Any]) -> tuple[Callable[..., Any], dict[str, Any]]:
        fn = self._require_fn()
        kwargs = self.validate(arguments)
        try:
            kwargs = {k: coerce(v, self._hints[k]) if k in self._hints else v
                      for k, v in kwargs.items()}
            inspect.signature(fn).bind(**kwargs)
        except (TypeError, ValueError) as exc:
            msg = f"{self.name}: arguments do not fit the function: {exc}"
            raise ToolArgumentsError(msg) from exc
        return fn, kwargs

    def _execution_error(self, exc: Exception) -> ToolExecutionError:
        return ToolExecutionError(f"{self.name} raised {type(exc).__name__}: {exc}")


def _run_sync(awaitable: Any) -> Any:
    async def wait() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    # asyncio.run cannot nest inside a running loop: give the coroutine its own thread and loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, wait()).result()


def _names(where: str, names: Iterable[str]) -> list[str]:
    if isinstance(names, str):  # grounded="city" would otherwise mean {"c", "i", "t", "y"}
        msg = f"{where}: grounded must be a list of parameter names (got the string {names!r})"
        raise ToolError(msg)
    if not isinstance(names, Iterable):
        msg = f"{where}: grounded must be a list of parameter names (got {names!r:.60})"
        raise ToolError(msg)
    out = list(names)
    for n in out:
        if not isinstance(n, str):
            msg = f"{where}: grounded must hold parameter names (got {n!r:.60})"
            raise ToolError(msg)
    return out


def _grounded(name: str, parameters: Mapping[str, Any], grounded: Iterable[str]) -> frozenset[str]:
    names = frozenset(_names(name, grounded))
    properties = parameters.get("properties")
    for n in sorted(names):
        prop = properties.get(n) if isinstance(properties, Mapping) else None
        if not isinstance(prop, Mapping) or prop.get("type") != "string":
            got = "no such parameter" if prop is None else f"{prop!r:.80}"
            msg = (f"{name}: grounded parameter {n!r} must be a top-level parameter of type "
                   f"string (got {got})")
            raise ToolError(msg)
    return names


def _check_schema(name: str, schema: dict[str, Any]) -> None:
    if schema.get("type") != "object":
        msg = f"{name}: parameters must have \"type\": \"object\" (got {schema.get('type')!r})"
        raise ToolError(msg)
    _make_validator(name, schema)


def _make_validator(name: str, schema: dict[str, Any]) -> Any:
    try:
        import jsonschema
    except ImportError as exc:
        msg = f"{name}: validating tool arguments needs jsonschema: pip install jsonschema"
        raise ToolError(msg) from exc
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = "parameters" + "".join(f"[{p!r}]" for p in exc.absolute_path)
        msg = f"{name}: {path} is not a valid JSON schema: {exc.message:.200}"
        raise ToolError(msg) from exc
    return jsonschema.Draft202012Validator(schema)


def _fill_defaults(schema: Any, value: Any) -> Any:
    """Add the ``default`` of absent properties, recursively (in place; value is validated)."""
    if not isinstance(schema, Mapping):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        for key, sub in properties.items():
            if key in value:
                _fill_defaults(sub, value[key])
            elif isinstance(sub, Mapping) and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):  # dict[str, Model]
            for key in value.keys() - properties.keys():
                _fill_defaults(extra, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for item in value:
            _fill_defaults(schema["items"], item)
    for member in schema.get("anyOf", ()):
        # Optional[Model] and friends: fill from the object member of the union.
        if isinstance(value, dict) and isinstance(member, Mapping) and "properties" in member:
            return _fill_defaults(member, value)
    return value


# -- @tool ----------------------------------------------------------------------------------------


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(*, name: str | None = None, description: str | None = None,
         grounded: Iterable[str] = ()) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
         description: str | None = None,
         grounded: Iterable[str] = ()) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function (sync or async) into a ``Tool``.

    Use as ``@tool`` or ``@tool(name=..., description=..., grounded=[...])``. The schema comes
    from the type hints; the description from the docstring's first paragraph and each
    parameter's description from its ``Args:`` entry (or ``Annotated[T, "description"]``).
    ``grounded`` names string parameters a local model must quote from the user's messages
    (see the module docstring).

    Raises:
        ToolError: at decoration time, for a parameter without a supported annotation, a
            ``*args``/``**kwargs`` or positional-only parameter, a non-JSON default, or a
            grounded name that is not a string parameter.

    Example:
        >>> @tool
        ... def set_timer(minutes: int, label: str = "") -> str:
        ...     '''Start a kitchen timer.'''
        ...     return f"timer {label} set for {minutes} min"
        >>> set_timer.invoke({"minutes": 5})
        'timer  set for 5 min'
    """
    # a string or a non-iterable as given: Tool's check says no
    names: Any = grounded if isinstance(grounded, str) or not isinstance(grounded, Iterable) \
        else list(grounded)

    def decorate(f: Callable[..., Any]) -> Tool:
        described = describe_function(f)
        return Tool(name=name if name is not None else described.name,
                    description=description if description is not None
                    else described.description,
                    parameters=described.parameters, fn=f, _hints=described.hints,
                    grounded=names or frozenset())

    if fn is None:
        return decorate
    return decorate(fn)


def as_tool(obj: Tool | Callable[..., Any] | Mapping[str, Any]) -> Tool:
    """Normalize a ``Tool``, a plain function (decorated on the fly) or an OpenAI tool dict."""
    if isinstance(obj, Tool):
        return obj
    if isinstance(obj, Mapping):
        return Tool.from_openai(obj)
    if callable(obj):
        return tool(obj)
    msg = f"not a tool: {obj!r:.80}; pass a function, a Tool or an OpenAI tool dict"
    raise ToolError(msg)

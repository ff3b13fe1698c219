"""@tool: JSON schemas from type hints and docstrings, Tool.from_openai, validate, invoke."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional, TypedDict, Union

import pytest

from qwen_edge.agents.tools import Tool, as_tool, grounding_texts, quotable_spans, tool
from qwen_edge.errors import (
    ConfigError,
    ToolArgumentsError,
    ToolCallParseError,
    ToolError,
    ToolExecutionError,
)

# -- annotated types used by the tables (module level, so string annotations resolve) ------------


class Color(str, enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Empty(enum.Enum):
    pass


@dataclasses.dataclass
class Point:
    """A point on the plane.

    Attributes:
        x: Horizontal position.
        y: Vertical position.
    """

    x: int
    y: float = 0.0


@dataclasses.dataclass
class Bare:
    n: int
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Node:
    children: list[Node]


class _OptsRequired(TypedDict):
    mode: Literal["fast", "slow"]


class Opts(_OptsRequired, total=False):
    retries: int


class Loose(TypedDict, total=False):
    a: int


if sys.version_info >= (3, 11):
    from typing import NotRequired, Required

    class Marked(TypedDict, total=False):
        must: Required[int]
        may: NotRequired[str]
        plain: bool


POINT = {"type": "object", "description": "A point on the plane.",
         "properties": {"x": {"type": "integer", "description": "Horizontal position."},
                        "y": {"type": "number", "description": "Vertical position.",
                              "default": 0.0}},
         "required": ["x"], "additionalProperties": False}

SCHEMAS: list[tuple[Any, dict[str, Any]]] = [
    (str, {"type": "string"}),
    (int, {"type": "integer"}),
    (float, {"type": "number"}),
    (bool, {"type": "boolean"}),
    (None, {"type": "null"}),
    (Any, {}),
    (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
    (Literal[1, "x"], {"type": ["integer", "string"], "enum": [1, "x"]}),
    (Literal[True], {"type": "boolean", "enum": [True]}),
    (Color, {"type": "string", "enum": ["red", "green"]}),
    (Level, {"type": "integer", "enum": [1, 2]}),
    (list[int], {"type": "array", "items": {"type": "integer"}}),
    (list, {"type": "array"}),
    (list[list[str]], {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}),
    (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
    (tuple[int, str], {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}],
                       "items": False, "minItems": 2, "maxItems": 2}),
    (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
    (dict, {"type": "object"}),
    (Optional[int], {"type": ["integer", "null"]}),  # noqa: UP045
    (int | None, {"type": ["integer", "null"]}),
    (int | str, {"type": ["integer", "string"]}),
    (Union[int, str, None], {"type": ["integer", "string", "null"]}),  # noqa: UP007
    (list[int] | None, {"anyOf": [{"type": "array", "items": {"type": "integer"}},
                                  {"type": "null"}]}),
    (Literal["a"] | None, {"anyOf": [{"type": "string", "enum": ["a"]}, {"type": "null"}]}),
    (Annotated[int, "a count"], {"type": "integer", "description": "a count"}),
    (Point, POINT),
    (Point | None, {"anyOf": [POINT, {"type": "null"}]}),
    (list[Point], {"type": "array", "items": POINT}),
    (Bare, {"type": "object",
            "properties": {"n": {"type": "integer"},
                           "tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["n"], "additionalProperties": False}),
    (Opts, {"type": "object",
            "properties": {"mode": {"type": "string", "enum": ["fast", "slow"]},
                           "retries": {"type": "integer"}},
            "required": ["mode"], "additionalProperties": False}),
    (Loose, {"type": "object", "properties": {"a": {"type": "integer"}},
             "additionalProperties": False}),
]


def _fn_taking(annotation: Any) -> Callable[..., Any]:
    def fn(x):  # type: ignore[no-untyped-def]
        return x

    fn.__annotations__ = {"x": annotation}
    return fn


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Required/NotRequired need Python 3.11")
def test_typeddict_required_markers_as_strings() -> None:
    # PEP 563 strings hide the markers from __required_keys__; the schema must still see them
    params = tool(_fn_taking(Marked)).parameters
    assert params["properties"]["x"]["required"] == ["must"]
    assert list(params["properties"]["x"]["properties"]) == ["must", "may", "plain"]


@pytest.mark.parametrize(("annotation", "expected"), SCHEMAS, ids=[repr(a) for a, _ in SCHEMAS])
def test_schema_from_annotation(annotation: Any, expected: dict[str, Any]) -> None:
    import jsonschema

    params = tool(_fn_taking(annotation)).parameters
    assert params == {"type": "object", "properties": {"x": expected}, "required": ["x"],
                      "additionalProperties": False}
    jsonschema.Draft202012Validator.check_schema(params)


def test_schemas_compile_in_llguidance() -> None:
    llguidance = pytest.importorskip("llguidance")
    for annotation, _ in SCHEMAS:
        params = tool(_fn_taking(annotation)).parameters
        grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(params))
        assert llguidance.LLMatcher.validate_grammar(grammar) == "", annotation


def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Get the current weather in a city.

    Uses the national weather service;
    results are cached for 10 minutes.

    Args:
        city: The city, e.g. "Paris".
            Spelled in English.
        unit (str, optional): Temperature unit.

    Returns:
        A short forecast.
    """
    return f"sunny in {city} ({unit})"


def test_tool_from_function_matches_openai_shape() -> None:
    t = tool(get_weather)
    assert t.to_openai() == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string",
                             "description": 'The city, e.g. "Paris". Spelled in English.'},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                             "description": "Temperature unit.", "default": "celsius"},
                },
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    assert t.fn is get_weather
    assert not t.is_async
    assert t("Oslo") == "sunny in Oslo (celsius)"  # calling the tool calls the function
    # to_openai hands out a copy
    t.to_openai()["function"]["parameters"]["properties"].clear()
    assert "city" in t.parameters["properties"]


class Greeter:
    """Greet someone."""

    def __call__(self, who: str, loud: bool = False) -> str:
        return f"HI {who.upper()}" if loud else f"hi {who}"


def _scale(x: float, factor: int) -> float:
    """Scale a number."""
    return x * factor


def test_tool_from_callable_object_and_partial() -> None:
    greet = tool(Greeter())
    assert (greet.name, greet.description) == ("Greeter", "Greet someone.")
    assert greet.parameters["required"] == ["who"]
    assert greet.invoke({"who": "ann", "loud": True}) == "HI ANN"
    double = tool(functools.partial(_scale, factor=2))
    assert double.name == "_scale"
    assert double.parameters["properties"] == {"x": {"type": "number"},
                                               "factor": {"type": "integer", "default": 2}}
    assert double.invoke({"x": 1.5}) == 3.0


def test_tool_with_name_and_description() -> None:
    @tool(name="weather", description="Weather, now.")
    def w(city: str) -> str:
        return city

    assert (w.name, w.description) == ("weather", "Weather, now.")
    assert w.invoke({"city": "Rome"}) == "Rome"


@pytest.mark.parametrize(
    ("doc", "summary", "args"),
    [
        ("", "", {}),
        ("One line.", "One line.", {}),
        ("Summary\nwrapped.\n\nMore detail.", "Summary wrapped.", {}),
        ("Do it.\n\nArgs:\n    a: first\n    b (int): second\n        continued\n",
         "Do it.", {"a": "first", "b": "second continued"}),
        ("Do it.\nArgs:\n  a: first\nReturns:\n  b: not an argument\n",
         "Do it.", {"a": "first"}),
        ("S.\n\nParameters:\n    a: x\n\n    b: y\nRaises:\n    ValueError: z\n",
         "S.", {"a": "x", "b": "y"}),
        ("S.\n\nArgs:\n    a: see the note:\n        Note: still a.\n", "S.",
         {"a": "see the note: Note: still a."}),
        ("S.\n\n    Indented detail.\n\nArgs:\n    a:\n        on the next line\n", "S.",
         {"a": "on the next line"}),
    ],
)
def test_docstring_parsing(doc: str, summary: str, args: dict[str, str]) -> None:
    def fn(a: int = 0, b: int = 0) -> None:
        pass

    fn.__doc__ = doc
    t = tool(fn)
    assert t.description == summary
    got = {k: v["description"] for k, v in t.parameters["properties"].items() if "description" in v}
    assert got == args


def test_docstring_beats_annotated_description() -> None:
    def fn(a: Annotated[int, "from Annotated"], b: Annotated[int, "b from Annotated"]) -> None:
        """S.

        Args:
            a: from docstring
        """

    props = tool(fn).parameters["properties"]
    assert props["a"]["description"] == "from docstring"
    assert props["b"]["description"] == "b from Annotated"


def _bad_object(x: object) -> None: ...
def _bad_callable(x: Callable[[int], int]) -> None: ...
def _bad_missing(x) -> None: ...  # type: ignore[no-untyped-def]
def _bad_varargs(*xs: int) -> None: ...
def _bad_kwargs(**kw: int) -> None: ...
def _bad_posonly(x: int, /) -> None: ...
def _bad_dict_key(x: dict[int, str]) -> None: ...
def _bad_nested(p: list[Node]) -> None: ...
def _bad_empty_enum(x: Empty) -> None: ...
def _bad_default(x: int = float("nan")) -> None: ...  # type: ignore[assignment]
def _bad_default_type(x: Any = object()) -> None: ...  # noqa: B008
def _bad_forward(x: Undefined) -> None: ...  # type: ignore[name-defined]  # noqa: F821
def _bad_literal(x: Literal[b"raw"]) -> None: ...
def _bad_tuple(x: tuple[int, str, ...]) -> None: ...  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (_bad_object, "_bad_object: parameter 'x': unsupported annotation object"),
        (_bad_callable, "_bad_callable: parameter 'x': unsupported annotation collections.abc.Callable"),
        (_bad_missing, "_bad_missing: parameter 'x' has no type annotation"),
        (_bad_varargs, "_bad_varargs: parameter 'xs': *xs cannot be described"),
        (_bad_kwargs, "_bad_kwargs: parameter 'kw': **kw cannot be described"),
        (_bad_posonly, "_bad_posonly: parameter 'x': positional-only"),
        (_bad_dict_key, "_bad_dict_key: parameter 'x': dict[int, str]: JSON object keys are strings"),
        (_bad_nested, "_bad_nested: parameter 'p': Node.children: Node is recursive"),
        (_bad_empty_enum, "_bad_empty_enum: parameter 'x': Enum Empty has no values"),
        (_bad_default, "_bad_default: parameter 'x': default nan is not JSON"),
        (_bad_default_type, "_bad_default_type: parameter 'x': default <object object"),
        (_bad_forward, "_bad_forward: cannot resolve the type hints (NameError"),
        (_bad_literal, "_bad_literal: parameter 'x': Literal[b'raw'] value b'raw' is not a JSON scalar"),
        (_bad_tuple, "_bad_tuple: parameter 'x': tuple["),
    ],
    ids=lambda v: getattr(v, "__name__", "msg"),
)
def test_unsupported_signatures_fail_at_decoration(fn: Callable[..., Any], message: str) -> None:
    with pytest.raises(ToolError) as info:
        tool(fn)
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "dot.ted"])
def test_bad_tool_names(name: str) -> None:
    with pytest.raises(ToolError, match="must match"):
        tool(name=name)(get_weather)


# -- pydantic (optional) --------------------------------------------------------------------------

try:
    import pydantic
except ImportError:  # pragma: no cover - pydantic is optional
    pydantic = None

needs_pydantic = pytest.mark.skipif(pydantic is None, reason="pydantic is not installed")

if pydantic is not None:

    class Address(pydantic.BaseModel):
        """A postal address."""

        street: str
        zip: str | None = None

    class Person(pydantic.BaseModel):
        title: str = pydantic.Field(description="honorific")
        home: Address
        past: list[Address] = []  # noqa: RUF012 (pydantic copies defaults)

    class Tree(pydantic.BaseModel):
        kids: list[Tree] = []  # noqa: RUF012


@needs_pydantic
def test_pydantic_models_are_inlined() -> None:
    def register(person: Person, note: str = "") -> str:
        """Register a person."""
        return f"{person.title} at {person.home.street}, {len(person.past)} past; {note}"

    t = tool(register)
    address = {"description": "A postal address.", "properties": {
        "street": {"type": "string"},
        "zip": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}},
        "required": ["street"], "type": "object", "additionalProperties": False}
    assert t.parameters["properties"]["person"] == {
        "properties": {"title": {"description": "honorific", "type": "string"},
                       "home": address,
                       "past": {"default": [], "items": address, "type": "array"}},
        "required": ["title", "home"], "type": "object", "additionalProperties": False}
    assert "$defs" not in json.dumps(t.parameters)
    # invoke builds the model instance
    out = t.invoke({"person": {"title": "Dr", "home": {"street": "Main St"}}})
    assert out == "Dr at Main St, 0 past; "
    with pytest.raises(ToolArgumentsError, match=r"register: arguments\['person'\]\['home'\]"):
        t.validate({"person": {"title": "Dr", "home": {"zip": "1"}}})


@needs_pydantic
def test_recursive_pydantic_model_is_rejected() -> None:
    def plant(tree: Tree) -> None: ...

    with pytest.raises(ToolError, match="plant: parameter 'tree': Tree is recursive"):
        tool(plant)


# -- from_openai / as_tool ------------------------------------------------------------------------

SPEC = {"type": "function", "function": {
    "name": "set_timer", "description": "Start a timer.",
    "parameters": {"type": "object",
                   "properties": {"minutes": {"type": "integer", "minimum": 1},
                                  "label": {"type": "string", "default": ""}},
                   "required": ["minutes"], "additionalProperties": False}}}


def test_from_openai_round_trips() -> None:
    t = Tool.from_openai(SPEC)
    assert t.to_openai() == SPEC
    assert t.fn is None
    assert not t.is_async
    assert t.validate({"minutes": 3}) == {"minutes": 3, "label": ""}
    with pytest.raises(ToolError, match="set_timer: no Python function is bound"):
        t.invoke({"minutes": 3})
    bound = Tool.from_openai(SPEC, fn=lambda minutes, label: f"{minutes}:{label}")
    assert bound.invoke({"minutes": 2, "label": "tea"}) == "2:tea"


def test_from_openai_defaults() -> None:
    t = Tool.from_openai({"type": "function", "function": {"name": "ping"}})
    assert (t.description, t.parameters) == ("", {"type": "object", "properties": {}})
    assert t.validate({}) == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "f"}, "tool spec: expected {\"type\": \"function\""),
        ({"type": "function"}, "tool spec: expected"),
        ({"type": "function", "function": {"description": "x"}},
         "tool spec: function.name must be a string"),
        ({"type": "function", "function": {"name": "f g"}}, "tool name 'f g': must match"),
        ({"type": "function", "function": {"name": "f", "description": 3}},
         "f: description must be a string"),
        ({"type": "function", "function": {"name": "f", "parameters": []}},
         "f: function.parameters must be a JSON schema object"),
        ({"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}},
         "f: parameters must have \"type\": \"object\""),
        ({"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"a": {"type": "integr"}}}}},
         "f: parameters['properties']['a']['type'] is not a valid JSON schema"),
    ],
)
def test_from_openai_rejects_bad_shapes(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError) as info:
        Tool.from_openai(spec)
    assert str(info.value).startswith(message), str(info.value)


def test_as_tool() -> None:
    t = tool(get_weather)
    assert as_tool(t) is t
    assert as_tool(get_weather).parameters == t.parameters
    assert as_tool(SPEC).name == "set_timer"
    with pytest.raises(ToolError, match="not a tool: 42"):
        as_tool(42)  # type: ignore[arg-type]


# -- grounded parameters --------------------------------------------------------------------------


def test_grounded_parameters() -> None:
    @tool(grounded=["city"])
    def weather(city: str, unit: str = "c", days: int = 1) -> str:
        """Weather."""
        return f"{city} {unit} {days}"

    assert weather.grounded == frozenset({"city"})
    assert "grounded" not in json.dumps(weather.to_openai())  # the model's schema is unchanged
    assert tool(get_weather).grounded == frozenset()
    spec = weather.to_openai()
    assert Tool.from_openai(spec, grounded=("city", "unit")).grounded == {"city", "unit"}
    assert dataclasses.replace(weather, grounded=["unit"]).grounded == {"unit"}
    # the OpenAI format's extension field (what `qwen-edge serve` reads from a request)
    marked = {**spec, "function": {**spec["function"], "x-grounded": ["city"]}}
    assert Tool.from_openai(marked).grounded == {"city"}
    assert Tool.from_openai(marked, grounded=["unit"]).grounded == {"unit"}  # the argument wins
    assert "x-grounded" not in json.dumps(Tool.from_openai(marked).to_openai())


@pytest.mark.parametrize(
    ("grounded", "message"),
    [
        (["days"], ("weather: grounded parameter 'days' must be a top-level parameter of type "
                    "string (got {'type': 'integer'")),
        (["town"], ("weather: grounded parameter 'town' must be a top-level parameter of type "
                    "string (got no such parameter)")),
        ("city", "weather: grounded must be a list of parameter names (got the string 'city')"),
        ([3], "weather: grounded must hold parameter names (got 3)"),
        (3, "weather: grounded must be a list of parameter names (got 3)"),
    ],
)
def test_grounded_errors(grounded: Any, message: str) -> None:
    def weather(city: str, days: int = 1) -> str:
        """Weather."""
        return f"{city} {days}"

    with pytest.raises(ToolError) as info:
        tool(grounded=grounded)(weather)
    assert str(info.value).startswith(message), str(info.value)
    spec = tool(weather).to_openai()
    with pytest.raises(ToolError) as info:
        Tool.from_openai(spec, grounded=grounded)
    assert str(info.value).startswith(message), str(info.value)
    marked = {**spec, "function": {**spec["function"], "x-grounded": grounded}}
    with pytest.raises(ToolError) as info:
        Tool.from_openai(marked)
    expected = message.replace("grounded must be a list",  # a string is not a list either
                               "x-grounded must be a list")
    assert str(info.value).startswith(expected), str(info.value)


def test_quotable_spans() -> None:
    assert quotable_spans(["Weather in São Paulo?"], max_words=2) == [
        "Weather", "Weather in", "in", "in São", "São", "São Paulo", "Paulo"]
    # punctuation goes from the ends, not the inside; whitespace runs become one space
    spans = quotable_spans(['"St. Louis",  please!'])
    assert spans == ["St", "St. Louis", "St. Louis\", please", "Louis", "Louis\", please",
                     "please"]
    # the latest text first, unique, capped; words only (punctuation alone is no span)
    assert quotable_spans(["a b", "c a", "?!"], max_words=1) == ["c", "a", "b"]
    assert quotable_spans(["a b", "c d"], max_words=1, limit=3) == ["c", "d", "a"]
    assert quotable_spans([], max_words=3) == []
    long = " ".join(f"w{i}" for i in range(30))
    assert max(len(s.split()) for s in quotable_spans([long])) == 16
    with pytest.raises(ConfigError, match="max_words and limit must be >= 1"):
        quotable_spans(["x"], max_words=0)


def test_grounding_texts_are_the_user_messages() -> None:
    messages = [{"role": "system", "content": "You run a home."},
                {"role": "user", "content": "weather in Oslo"},
                {"role": "assistant", "content": "", "tool_calls": []},
                {"role": "tool", "content": '{"city": "Oslo"}'},
                {"role": "user", "content": [{"type": "text", "text": "and Bergen"},
                                             {"type": "image_url", "image_url": {"url": "x"}}]}]
    assert grounding_texts(messages) == ["weather in Oslo", "and Bergen"]
    assert grounding_texts([]) == []


# -- validate -------------------------------------------------------------------------------------


@tool
def set_lights(room: str, on: bool, brightness: int | None = None, color: Color = Color.RED,
               at: Point | None = None) -> str:
    """Switch the lights of a room."""
    return f"{room} {on} {brightness} {color!r} {at!r}"


def test_validate_fills_defaults_without_mutating() -> None:
    args = {"room": "hall", "on": True}
    assert set_lights.validate(args) == {"room": "hall", "on": True, "brightness": None,
                                         "color": "red", "at": None}
    assert args == {"room": "hall", "on": True}
    nested = set_lights.validate({"room": "a", "on": False, "at": {"x": 1}})
    assert nested["at"] == {"x": 1, "y": 0.0}  # through the anyOf of Point | None

    @tool
    def many(pts: list[Point], by_name: dict[str, Point]) -> None: ...

    assert many.validate({"pts": [{"x": 1}, {"x": 2, "y": 5}], "by_name": {"a": {"x": 3}}}) == {
        "pts": [{"x": 1, "y": 0.0}, {"x": 2, "y": 5}], "by_name": {"a": {"x": 3, "y": 0.0}}}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"on": True}, "set_lights: arguments: 'room' is a required property"),
        ({"room": 1, "on": True}, "set_lights: arguments['room']: 1 is not of type 'string'"),
        ({"room": "a", "on": "yes"}, "set_lights: arguments['on']: 'yes' is not of type 'boolean'"),
        ({"room": "a", "on": True, "brightness": 1.5},
         "set_lights: arguments['brightness']: 1.5 is not of type 'integer', 'null'"),
        ({"room": "a", "on": True, "color": "blue"},
         "set_lights: arguments['color']: 'blue' is not one of ['red', 'green']"),
        ({"room": "a", "on": True, "at": {"x": "1"}},
         "set_lights: arguments['at']"),
        ({"room": "a", "on": True, "dim": 3},
         "set_lights: arguments: Additional properties are not allowed ('dim' was unexpected)"),
        ([1, 2], "set_lights: arguments must be a JSON object"),
    ],
)
def test_validate_errors_name_tool_path_and_problem(arguments: Any, message: str) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        set_lights.validate(arguments)
    assert str(info.value).startswith(message), str(info.value)
    assert not isinstance(info.value, ToolCallParseError)


# -- invoke ---------------------------------------------------------------------------------------


def test_invoke_converts_to_annotated_types() -> None:
    out = set_lights.invoke({"room": "hall", "on": True, "color": "green", "at": {"x": 2, "y": 3}})
    assert out == "hall True None <Color.GREEN: 'green'> Point(x=2, y=3.0)"  # y: float

    @tool
    def shapes(t: tuple[int, str], pts: list[Point], m: dict[str, Level], f: float,
               o: Opts | None = None) -> list[Any]:
        return [t, pts, m, f, o]

    got = shapes.invoke({"t": [1, "a"], "pts": [{"x": 1}], "m": {"k": 2}, "f": 3,
                         "o": {"mode": "fast"}})
    assert got == [(1, "a"), [Point(1, 0.0)], {"k": Level.HIGH}, 3.0, {"mode": "fast"}]
    assert isinstance(got[3], float)


@tool
async def double(n: int) -> int:
    """Double a number, asynchronously."""
    await asyncio.sleep(0)
    return 2 * n


def test_invoke_async_tool_from_sync_code() -> None:
    assert double.is_async
    assert double.invoke({"n": 4}) == 8


def test_invoke_and_ainvoke_inside_a_running_loop() -> None:
    async def main() -> list[Any]:
        return [double.invoke({"n": 1}),  # loop already running: runs in a helper thread
                await double.ainvoke({"n": 2}),
                await set_lights.ainvoke({"room": "a", "on": False})]

    assert asyncio.run(main()) == [2, 4, "a False None <Color.RED: 'red'> None"]


def test_invoke_wraps_function_errors() -> None:
    @tool
    def broken(x: int) -> None:
        raise KeyError(x)

    @tool
    async def abroken(x: int) -> None:
        raise ValueError(f"bad x={x}")

    with pytest.raises(ToolExecutionError, match="broken raised KeyError: 3") as info:
        broken.invoke({"x": 3})
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.raises(ToolExecutionError, match="abroken raised ValueError: bad x=1"):
        abroken.invoke({"x": 1})
    with pytest.raises(ToolExecutionError, match="abroken raised ValueError"):
        asyncio.run(abroken.ainvoke({"x": 1}))
    with pytest.raises(ToolArgumentsError, match="broken: arguments"):
        broken.invoke({"x": "3"})


def test_invoke_reports_signature_mismatch_of_explicit_schema() -> None:
    loose = Tool.from_openai({"type": "function", "function": {"name": "f"}},
                             fn=lambda a: a)
    with pytest.raises(ToolArgumentsError, match="f: arguments do not fit the function"):
        loose.invoke({"b": 1})


def test_import_is_light(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = ("import sys, qwen_edge.agents.tools, qwen_edge.tool_formats; "
            "print(sorted(m for m in ('jsonschema', 'pydantic', 'llguidance', 'torch') "
            "if m in sys.modules))")
    # cwd: `python -c` puts it first on sys.path, and the repository root would shadow the
    # installed package.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    assert out.stdout.strip() == "[]"

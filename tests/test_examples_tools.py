"""The example tools (examples/home_tools.py, examples/field_tools.py): deterministic results,
the calculator's safety, the unit table, argument validation, and the schemas a demo model is
trained on."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str) -> ModuleType:
    """A fresh instance of examples/<name>.py (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def home() -> ModuleType:
    return _load("home_tools")


@pytest.fixture
def field(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.delenv("QWEN_EDGE_FIELD_LOG", raising=False)
    return _load("field_tools")  # fresh: its in-memory log starts empty


def test_import_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    _load("home_tools")
    _load("field_tools")
    assert capsys.readouterr() == ("", "")


def test_tools_lists(home: ModuleType, field: ModuleType) -> None:
    assert [_name(t) for t in home.TOOLS] == ["get_weather", "set_timer", "set_lights",
                                              "set_thermostat", "add_reminder", "convert_units",
                                              "calculate"]
    assert [_name(t) for t in field.TOOLS] == ["lookup_manual", "log_reading", "list_readings"]


def _name(t: Any) -> str:
    return str(getattr(t, "name", getattr(t, "__name__", "")))


# -- home tools ---------------------------------------------------------------------------

# Pinned: a demo model is trained on these outputs, so they must never drift.
WEATHER = {
    "Paris": {"city": "Paris", "temperature": 32, "unit": "celsius", "condition": "cloudy",
              "humidity_percent": 85, "wind_kph": 16},
    "Tokyo": {"city": "Tokyo", "temperature": -4, "unit": "celsius", "condition": "fog",
              "humidity_percent": 57, "wind_kph": 27},
    "New York": {"city": "New York", "temperature": 22, "unit": "celsius",
                 "condition": "thunderstorms", "humidity_percent": 86, "wind_kph": 13},
}


@pytest.mark.parametrize("city", list(WEATHER))
def test_get_weather_is_pinned(home: ModuleType, city: str) -> None:
    assert home.get_weather(city) == WEATHER[city]
    fahrenheit = home.get_weather(city, unit="fahrenheit")
    assert fahrenheit == {**WEATHER[city], "unit": "fahrenheit",
                          "temperature": round(WEATHER[city]["temperature"] * 9 / 5 + 32)}


def test_get_weather_normalizes_the_city(home: ModuleType) -> None:
    assert home.get_weather("  paris ") == WEATHER["Paris"] | {"city": "paris"}
    assert home.get_weather("new   york")["temperature"] == 22


def test_get_weather_is_the_same_in_another_process(tmp_path: Path) -> None:
    # str hashes are salted per process; the tools must not depend on them
    code = ("import importlib.util, json, sys\n"
            "spec = importlib.util.spec_from_file_location('h', sys.argv[1])\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "print(json.dumps([m.get_weather(c) for c in sys.argv[2:]]))\n")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLES / "home_tools.py"), *WEATHER],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(out.stdout) == list(WEATHER.values())


@pytest.mark.parametrize("city", ["", "   "])
def test_get_weather_rejects_empty_city(home: ModuleType, city: str) -> None:
    with pytest.raises(ValueError, match="city must not be empty"):
        home.get_weather(city)


def test_get_weather_rejects_unknown_unit(home: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"unit must be 'celsius' or 'fahrenheit' \(got 'kelvin'\)"):
        home.get_weather("Paris", unit="kelvin")


def test_set_timer(home: ModuleType) -> None:
    assert home.set_timer(10, "pasta") == {"status": "started", "minutes": 10, "label": "pasta",
                                           "duration_s": 600}
    assert home.set_timer(1)["label"] == ""
    with pytest.raises(ValueError, match=r"minutes must be from 1 to 1440 \(24 hours\) \(got 0\)"):
        home.set_timer(0)
    with pytest.raises(ValueError, match="got 1441"):
        home.set_timer(1441)
    with pytest.raises(TypeError, match=r"minutes must be a whole number \(got 2.5\)"):
        home.set_timer(2.5)
    with pytest.raises(TypeError, match="got True"):
        home.set_timer(True)


@pytest.mark.parametrize(("args", "expected"), [
    (("kitchen", True, 60), {"room": "kitchen", "on": True, "brightness": 60}),
    (("kitchen", True), {"room": "kitchen", "on": True, "brightness": 100}),
    (("kitchen", True, 0), {"room": "kitchen", "on": True, "brightness": 0}),
    (("kitchen", True, 100), {"room": "kitchen", "on": True, "brightness": 100}),
    ((" hall ", False), {"room": "hall", "on": False, "brightness": 0}),
    (("hall", False, 40), {"room": "hall", "on": False, "brightness": 0}),
])
def test_set_lights(home: ModuleType, args: tuple[Any, ...], expected: dict[str, Any]) -> None:
    assert home.set_lights(*args) == expected


@pytest.mark.parametrize(("brightness", "error", "match"), [
    (101, ValueError, r"brightness must be from 0 to 100 percent \(got 101\)"),
    (150, ValueError, r"brightness must be from 0 to 100 percent \(got 150\)"),
    (-1, ValueError, r"got -1"),
    (50.5, TypeError, r"brightness must be a whole number of percent \(got 50.5\)"),
    (True, TypeError, r"got True"),
    ("50", TypeError, r"got '50'"),
])
def test_set_lights_validates_brightness(home: ModuleType, brightness: Any,
                                         error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        home.set_lights("kitchen", True, brightness)


def test_set_lights_validates_room_and_on(home: ModuleType) -> None:
    with pytest.raises(ValueError, match="room must not be empty"):
        home.set_lights("", True)
    with pytest.raises(TypeError, match=r"on must be true or false \(got 'yes'\)"):
        home.set_lights("kitchen", "yes")


@pytest.mark.parametrize(("room", "current", "status"), [
    ("living room", 24, "cooling"), ("kitchen", 20, "heating"), ("bedroom", 21, "holding")])
def test_set_thermostat(home: ModuleType, room: str, current: int, status: str) -> None:
    assert home.set_thermostat(21, room) == {
        "room": room, "target_temperature": 21.0, "current_temperature": current,
        "unit": "celsius", "status": status}


def test_set_thermostat_range(home: ModuleType) -> None:
    assert home.set_thermostat(5)["target_temperature"] == 5.0
    assert home.set_thermostat(30.0)["room"] == "living room"
    for bad in (4.9, 30.5, -10):
        with pytest.raises(ValueError, match=r"temperature must be from 5 to 30 °C"):
            home.set_thermostat(bad)
    with pytest.raises(ValueError, match="finite"):
        home.set_thermostat(float("nan"))


def test_add_reminder(home: ModuleType) -> None:
    first = home.add_reminder("call the plumber", "tomorrow at 9am")
    assert first == {"id": "rem-837c04b4", "text": "call the plumber", "when": "tomorrow at 9am",
                     "status": "scheduled"}
    assert home.add_reminder("call the plumber", "tomorrow at 10am")["id"] != first["id"]
    with pytest.raises(ValueError, match="when must not be empty"):
        home.add_reminder("call", " ")


# -- convert_units ------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "source", "target", "expected", "canonical"), [
    (1, "km", "m", 1000, ("km", "m")),
    (1, "mi", "km", 1.609344, ("mi", "km")),
    (12, "in", "ft", 1, ("in", "ft")),
    (3, "feet", "Meters", 0.9144, ("ft", "m")),
    (1, "nautical mile", "m", 1852, ("nmi", "m")),
    (1, "kg", "lb", 2.204622622, ("kg", "lb")),
    (16, "oz", "pounds", 1, ("oz", "lb")),
    (1, "t", "kg", 1000, ("t", "kg")),
    (250, "mg", "g", 0.25, ("mg", "g")),
    (1, "gal", "L", 3.785411784, ("gal", "l")),
    (2, "cups", "ml", 473.176473, ("cup", "ml")),
    (3, "tsp", "tbsp", 1, ("tsp", "tbsp")),
    (1, "m3", "litres", 1000, ("m3", "l")),
    (100, "km/h", "m/s", 27.77777778, ("km/h", "m/s")),
    (60, "mph", "kph", 96.56064, ("mph", "km/h")),
    (10, "knots", "km/h", 18.52, ("kn", "km/h")),
    (90, "minutes", "hours", 1.5, ("min", "h")),
    (1, "week", "days", 7, ("week", "day")),
    (1500, "ms", "s", 1.5, ("ms", "s")),
    (100, "celsius", "fahrenheit", 212, ("celsius", "fahrenheit")),
    (32, "F", "C", 0, ("fahrenheit", "celsius")),
    (-40, "°C", "°F", -40, ("celsius", "fahrenheit")),
    (0, "kelvin", "celsius", -273.15, ("kelvin", "celsius")),
    (98.6, "fahrenheit", "K", 310.15, ("fahrenheit", "kelvin")),
    (20, "degrees celsius", "celsius", 20, ("celsius", "celsius")),
])
def test_convert_units(home: ModuleType, value: float, source: str, target: str,
                       expected: float, canonical: tuple[str, str]) -> None:
    out = home.convert_units(value, source, target)
    assert out["result"] == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert (out["from_unit"], out["to_unit"]) == canonical
    assert out["value"] == value


@pytest.mark.parametrize(("args", "error", "match"), [
    ((1, "km", "kg"), ValueError, r"cannot convert km \(length\) to kg \(mass\); both units"),
    ((1, "celsius", "km"), ValueError, r"cannot convert celsius \(temperature\) to km \(length\)"),
    ((1, "hours", "mph"), ValueError, r"cannot convert h \(time\) to mph \(speed\)"),
    ((1, "furlong", "m"), ValueError,
     (r"unknown unit 'furlong'; known units are length: m, km, .*; temperature: celsius, "
      r"fahrenheit, kelvin")),
    ((1, "m", ""), ValueError, r"unknown unit ''"),
    ((-300, "celsius", "kelvin"), ValueError, r"-300 celsius is below absolute zero"),
    ((-1, "K", "C"), ValueError, r"below absolute zero"),
    ((float("inf"), "m", "km"), ValueError, r"value must be a finite number"),
    (("5", "m", "km"), TypeError, r"value must be a number \(got '5'\)"),
])
def test_convert_units_errors(home: ModuleType, args: tuple[Any, ...], error: type[Exception],
                              match: str) -> None:
    with pytest.raises(error, match=match):
        home.convert_units(*args)


# -- calculate ----------------------------------------------------------------------------

@pytest.mark.parametrize(("expression", "expected"), [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("7 / 2", 3.5),
    ("7 // 2", 3),
    ("-7 // 2", -4),
    ("7 % 3", 1),
    ("2 ** 10", 1024),
    ("-3 ** 2", -9),
    ("+5 - -2", 7),
    ("2 ** -1", 0.5),
    ("0.1 + 0.2", 0.3),
    ("1e3 * 2", 2000.0),
    ("1_000 + 1", 1001),
    ("sqrt(16)", 4.0),
    ("abs(-3)", 3),
    ("round(2.567, 2)", 2.57),
    ("round(2.5)", 2),
    ("floor(2.7) + ceil(2.1)", 5),
    ("log(100, 10)", 2.0),
    ("log10(1000) + log2(8)", 6.0),
    ("exp(0)", 1.0),
    ("sin(0) + cos(pi)", -1.0),
    ("degrees(pi)", 180.0),
    ("max(1, 5, 3) - min(4, 2)", 3),
    ("2 ** 1000 // 2 ** 999", 2),
    ("(" * 99 + "1" + ")" * 99, 1),
    ("-" * 199 + "1", -1),
])
def test_calculate(home: ModuleType, expression: str, expected: float) -> None:
    result = home.calculate(expression)
    assert result == {"expression": expression, "result": expected}
    assert type(result["result"]) is type(expected)


@pytest.mark.parametrize(("expression", "match"), [
    # code execution and introspection
    ("__import__('os')", r"function '__import__' is not allowed; the functions are sqrt"),
    ("__import__('os').system('echo hi')", r"this kind of call is not allowed"),
    ("open('/etc/passwd')", r"function 'open' is not allowed"),
    ("eval('1')", r"function 'eval' is not allowed"),
    ("getattr(1, 'real')", r"function 'getattr' is not allowed"),
    ("(1).__class__", r"not allowed in a calculation: attribute access"),
    ("().__class__.__bases__[0].__subclasses__()", r"this kind of call is not allowed"),
    ("().__class__.__bases__[0]", r"not allowed in a calculation: indexing"),
    ("__builtins__", r"unknown name '__builtins__'; the constants are pi, e, tau"),
    ("lambda: 1", r"not allowed in a calculation: lambda"),
    ("[x for x in range(9)]", r"not allowed in a calculation: ListComp"),
    ("f'{1}'", r"not allowed in a calculation: JoinedStr"),
    ("'a' * 10", r"only numbers are allowed \(got 'a'\)"),
    ("True + 1", r"only numbers are allowed \(got True\)"),
    ("1j * 2", r"only numbers are allowed \(got 1j\)"),
    ("sqrt(x=4)", r"sqrt: keyword arguments are not supported"),
    ("x + 1", r"unknown name 'x'"),
    ("1 < 2", r"not allowed in a calculation: comparisons"),
    ("2 ^ 3", r"'\^' \(use \*\* for powers\)"),
    # resource limits
    ("9**9**9", r"the exponent 387420489 is too large \(at most 1000\)"),
    ("2 ** 5000", r"the exponent 5000 is too large"),
    ("2 ** 1e6", r"the exponent 1000000.0 is too large"),
    ("(10 ** 999) ** 2", r"the result is too large"),
    ("10 ** 1000 * 10 ** 1000", r"the result is too large"),
    ("10.0 ** 400", r"the result is too large"),
    ("1e308 * 10", r"the result is not a finite number"),
    ("1" * 201, r"the expression has 201 characters; at most 200 are allowed"),
    ("1+" * 150 + "1", r"the expression has 301 characters"),
    # arithmetic errors
    ("1 / 0", r"^division by zero$"),
    ("1 // 0", r"^division by zero$"),
    ("1 % 0", r"^division by zero$"),
    ("0 ** -1", r"^division by zero$"),
    ("sqrt(-1)", r"sqrt\(-1\): math domain error"),
    ("log(0)", r"log\(0\): math domain error"),
    ("exp(1000)", r"exp\(1000\): math range error"),
    ("(-8) ** 0.5", r"the result is not a real number"),
    ("round(1.5, 0.5)", r"ndigits must be a whole number"),
    ("min(1)", r"min takes 2 to 10 arguments \(got 1\)"),
    ("sqrt(1, 2)", r"sqrt takes 1 argument \(got 2\)"),
    # syntax
    ("1 +", r"cannot parse '1 \+': invalid syntax"),
    ("1\x00", r"cannot parse"),
    ("", r"expression must not be empty"),
    ("   ", r"expression must not be empty"),
])
def test_calculate_rejects(home: ModuleType, expression: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        home.calculate(expression)


def test_calculate_rejects_non_strings(home: ModuleType) -> None:
    with pytest.raises(TypeError, match=r"expression must be a string \(got 5\)"):
        home.calculate(5)


def test_calculate_never_uses_eval_or_exec() -> None:
    source = (EXAMPLES.parent / "qwen_edge" / "demo" / "home_tools.py").read_text()
    assert not re.search(r"(?<![\w.])(eval|exec|compile)\s*\(", source)


# -- field tools --------------------------------------------------------------------------

@pytest.mark.parametrize(("device", "topic", "name", "section", "snippet"), [
    ("P-100", "maintenance", "P-100", "maintenance", "replace the seal kit SK-100"),
    ("p100", "Error Codes", "P-100", "error codes", "E01 dry run"),
    ("B 20", "errors", "B-20", "error codes", "F2 low water pressure"),
    ("b-20", "safety", "B-20", "safety", "If you smell gas"),
    ("C-7", "service", "C-7", "maintenance", "change the oil (4 L)"),
    ("c7", "hazards", "C-7", "safety", "hearing protection"),
])
def test_lookup_manual(field: ModuleType, device: str, topic: str, name: str, section: str,
                       snippet: str) -> None:
    out = field.lookup_manual(device, topic)
    assert (out["device"], out["topic"]) == (name, section)
    assert out["text"] == field.MANUALS[name][section]
    assert snippet in out["text"]
    assert out["model"] == field.MANUALS[name]["name"]


def test_lookup_manual_errors(field: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"unknown device 'X-9'; known devices: P-100, B-20, C-7"):
        field.lookup_manual("X-9", "safety")
    with pytest.raises(ValueError, match=r"unknown topic 'wiring'; topics: maintenance, error "):
        field.lookup_manual("P-100", "wiring")


def _readings(field: ModuleType) -> None:
    assert field.log_reading("P-100", "discharge pressure", 6.8, "bar")["status"] == "high"
    assert field.log_reading("B-20", "flow temperature", 70, "°C")["status"] == "ok"
    assert field.log_reading("p100", "Discharge  Pressure", 1.5, "BAR")["status"] == "low"
    assert field.log_reading("C-7", "vibration", 3.1, "mm/s")["status"] == "unchecked"


def _check_readings(field: ModuleType) -> None:
    listed = field.list_readings("P-100")
    assert listed["device"] == "P-100"
    assert listed["count"] == 2
    assert [(r["id"], r["metric"], r["value"], r["unit"]) for r in listed["readings"]] == [
        (1, "discharge pressure", 6.8, "bar"), (3, "Discharge Pressure", 1.5, "BAR")]
    for r in listed["readings"]:
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$", r["time"])
    assert field.list_readings("B-20")["readings"][0]["value"] == 70.0
    assert field.list_readings("c-7")["count"] == 1


def test_readings_in_memory(field: ModuleType) -> None:
    assert field.list_readings("P-100") == {"device": "P-100", "count": 0, "readings": []}
    _readings(field)
    _check_readings(field)


def test_readings_in_a_jsonl_file(field: ModuleType, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "readings.jsonl"
    monkeypatch.setenv("QWEN_EDGE_FIELD_LOG", str(path))
    _readings(field)
    _check_readings(field)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [e["id"] for e in lines] == [1, 2, 3, 4]
    assert lines[1]["unit"] == "°C"
    assert _load("field_tools").list_readings("P-100")["count"] == 2  # survives a "restart"


@pytest.mark.parametrize(("args", "error", "match"), [
    (("Z-1", "pressure", 1.0, "bar"), ValueError, r"unknown device 'Z-1'"),
    (("P-100", "", 1.0, "bar"), ValueError, r"metric must not be empty"),
    (("P-100", "pressure", float("nan"), "bar"), ValueError, r"value must be a finite number"),
    (("P-100", "pressure", "high", "bar"), TypeError, r"value must be a number \(got 'high'\)"),
    (("P-100", "pressure", 1.0, None), TypeError, r"unit must be a string"),
])
def test_log_reading_errors(field: ModuleType, args: tuple[Any, ...], error: type[Exception],
                            match: str) -> None:
    with pytest.raises(error, match=match):
        field.log_reading(*args)
    assert field.list_readings("P-100")["count"] == 0


# -- as @tool schemas (what the demo model is trained on) ---------------------------------

def test_schemas(home: ModuleType, field: ModuleType) -> None:
    tools = pytest.importorskip("qwen_edge.agents.tools")
    schemas = {t.name: t.parameters for t in (*home.TOOLS, *field.TOOLS)}
    assert all(isinstance(t, tools.Tool) for t in (*home.TOOLS, *field.TOOLS))
    assert schemas["get_weather"]["properties"]["unit"] == {
        "type": "string", "enum": ["celsius", "fahrenheit"],
        "description": "Temperature unit of the answer.", "default": "celsius"}
    assert schemas["get_weather"]["required"] == ["city"]
    brightness = schemas["set_lights"]["properties"]["brightness"]
    assert brightness["type"] == ["integer", "null"]
    assert brightness["default"] is None
    assert schemas["set_lights"]["required"] == ["room", "on"]
    assert schemas["set_timer"]["properties"]["minutes"]["type"] == "integer"
    assert schemas["convert_units"]["properties"]["value"]["type"] == "number"
    assert schemas["log_reading"]["required"] == ["device", "metric", "value", "unit"]
    for name, schema in schemas.items():  # every parameter is described (Args:)
        for prop, spec in schema["properties"].items():
            assert spec.get("description"), f"{name}.{prop} has no description"


def test_invoke_reports_tool_errors(home: ModuleType) -> None:
    tools = pytest.importorskip("qwen_edge.agents.tools")
    from qwen_edge.errors import ToolExecutionError

    assert isinstance(home.set_lights, tools.Tool)
    assert home.set_lights.invoke({"room": "kitchen", "on": True}) == {
        "room": "kitchen", "on": True, "brightness": 100}
    with pytest.raises(ToolExecutionError, match=r"set_lights raised ValueError: brightness must "
                       r"be from 0 to 100 percent \(got 150\)"):
        home.set_lights.invoke({"room": "kitchen", "on": True, "brightness": 150})
    assert home.convert_units.invoke({"value": 5, "from_unit": "km", "to_unit": "m"})[
        "result"] == 5000


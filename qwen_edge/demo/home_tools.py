"""Smart-home tools for a function-calling demo: simulated devices, offline and deterministic.

The same arguments always give the same result (the weather of a city comes from a hash of its
name), so a demo model can be trained and evaluated on these exact signatures. Invalid
arguments raise ``ValueError`` with a message the model can act on. Names, rooms, labels and
reminder texts are grounded parameters (``tools.py``): a local model quotes them from the
user's words; amounts, units and expressions it writes itself.

Run ``python -m qwen_edge.demo.home_tools`` to see one call of each tool.
"""

from __future__ import annotations

import ast
import hashlib
import math
import operator
from collections.abc import Callable
from typing import Any, Literal

from ..agents.tools import tool

__all__ = ["TOOLS", "add_reminder", "calculate", "convert_units", "get_weather", "set_lights",
           "set_thermostat", "set_timer"]

_CONDITIONS = ("sunny", "partly cloudy", "cloudy", "overcast", "light rain", "rain",
               "thunderstorms", "snow", "fog", "windy")


def _digest(*parts: str) -> bytes:
    # sha256, not hash(): Python salts str hashes per process, and results must be stable.
    key = "\x00".join(" ".join(p.split()).casefold() for p in parts)
    return hashlib.sha256(key.encode()).digest()


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        msg = f"{name} must be a string (got {value!r})"
        raise TypeError(msg)
    if not value.strip():
        msg = f"{name} must not be empty"
        raise ValueError(msg)
    return value.strip()


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{name} must be a number (got {value!r})"
        raise TypeError(msg)
    if not math.isfinite(value):
        msg = f"{name} must be a finite number (got {value!r})"
        raise ValueError(msg)
    return float(value)


@tool(grounded=["city"])
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, Any]:
    """Get the current weather in a city.

    Args:
        city: City name, e.g. "Paris".
        unit: Temperature unit of the answer.
    """
    city = _text(city, "city")
    if unit not in ("celsius", "fahrenheit"):
        msg = f"unit must be 'celsius' or 'fahrenheit' (got {unit!r})"
        raise ValueError(msg)
    d = _digest("weather", city)
    celsius = d[0] % 41 - 5  # -5 .. 35
    condition = _CONDITIONS[d[1] % len(_CONDITIONS)]
    if condition == "snow" and celsius > 2:
        condition = "light rain"
    temperature = celsius if unit == "celsius" else round(celsius * 9 / 5 + 32)
    return {"city": city, "temperature": temperature, "unit": unit, "condition": condition,
            "humidity_percent": 30 + d[2] % 61, "wind_kph": d[3] % 41}


@tool(grounded=["label"])
def set_timer(minutes: int, label: str = "") -> dict[str, Any]:
    """Start a countdown timer.

    Args:
        minutes: Duration in whole minutes, 1 to 1440 (24 hours).
        label: Optional name for the timer, e.g. "pasta".
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        msg = f"minutes must be a whole number (got {minutes!r})"
        raise TypeError(msg)
    if not 1 <= minutes <= 1440:
        msg = f"minutes must be from 1 to 1440 (24 hours) (got {minutes})"
        raise ValueError(msg)
    if not isinstance(label, str):
        msg = f"label must be a string (got {label!r})"
        raise TypeError(msg)
    label = label.strip()
    return {"status": "started", "minutes": minutes, "label": label, "duration_s": minutes * 60}


@tool(grounded=["room"])
def set_lights(room: str, on: bool, brightness: int | None = None) -> dict[str, Any]:
    """Switch the lights of a room on or off, optionally setting the brightness.

    Args:
        room: Room name, e.g. "kitchen".
        on: True to switch on, False to switch off.
        brightness: Brightness in percent, 0 to 100 (default: 100 when switching on).
    """
    room = _text(room, "room")
    if not isinstance(on, bool):
        msg = f"on must be true or false (got {on!r})"
        raise TypeError(msg)
    if brightness is not None:
        if isinstance(brightness, bool) or not isinstance(brightness, int):
            msg = f"brightness must be a whole number of percent (got {brightness!r})"
            raise TypeError(msg)
        if not 0 <= brightness <= 100:
            msg = f"brightness must be from 0 to 100 percent (got {brightness})"
            raise ValueError(msg)
    level = (100 if brightness is None else brightness) if on else 0
    return {"room": room, "on": on, "brightness": level}


@tool(grounded=["room"])
def set_thermostat(temperature: float, room: str = "living room") -> dict[str, Any]:
    """Set the target temperature of a room's thermostat, in degrees Celsius.

    Args:
        temperature: Target temperature in °C, 5 to 30.
        room: Room name.
    """
    target = _number(temperature, "temperature")
    room = _text(room, "room")
    if not 5 <= target <= 30:
        msg = f"temperature must be from 5 to 30 °C (got {temperature!r})"
        raise ValueError(msg)
    current = 17 + _digest("thermostat", room)[0] % 8  # 17 .. 24 °C
    status = "heating" if target > current else "cooling" if target < current else "holding"
    return {"room": room, "target_temperature": target, "current_temperature": current,
            "unit": "celsius", "status": status}


@tool(grounded=["text", "when"])
def add_reminder(text: str, when: str) -> dict[str, Any]:
    """Add a reminder.

    Args:
        text: What to be reminded of, e.g. "call the plumber".
        when: When to remind, as the user said it, e.g. "tomorrow at 9am" or "2025-06-01 18:00".
    """
    text, when = _text(text, "text"), _text(when, "when")
    reminder_id = "rem-" + _digest("reminder", text, when).hex()[:8]
    return {"id": reminder_id, "text": text, "when": when, "status": "scheduled"}


# -- unit conversion ----------------------------------------------------------------------------

# canonical unit: (quantity, factor to the quantity's base unit, other accepted names)
_UNITS: dict[str, tuple[str, float, tuple[str, ...]]] = {
    "m": ("length", 1.0, ("meter", "meters", "metre", "metres")),
    "km": ("length", 1000.0, ("kilometer", "kilometers", "kilometre", "kilometres")),
    "cm": ("length", 0.01, ("centimeter", "centimeters", "centimetre", "centimetres")),
    "mm": ("length", 0.001, ("millimeter", "millimeters", "millimetre", "millimetres")),
    "mi": ("length", 1609.344, ("mile", "miles")),
    "yd": ("length", 0.9144, ("yard", "yards")),
    "ft": ("length", 0.3048, ("foot", "feet")),
    "in": ("length", 0.0254, ("inch", "inches")),
    "nmi": ("length", 1852.0, ("nautical mile", "nautical miles")),
    "kg": ("mass", 1.0, ("kilogram", "kilograms", "kilo", "kilos")),
    "g": ("mass", 0.001, ("gram", "grams")),
    "mg": ("mass", 1e-6, ("milligram", "milligrams")),
    "t": ("mass", 1000.0, ("tonne", "tonnes", "metric ton", "metric tons")),
    "lb": ("mass", 0.45359237, ("lbs", "pound", "pounds")),
    "oz": ("mass", 0.028349523125, ("ounce", "ounces")),
    "st": ("mass", 6.35029318, ("stone", "stones")),
    "l": ("volume", 1.0, ("liter", "liters", "litre", "litres")),
    "ml": ("volume", 0.001, ("milliliter", "milliliters", "millilitre", "millilitres")),
    "m3": ("volume", 1000.0, ("m³", "cubic meter", "cubic meters", "cubic metre", "cubic metres")),
    "gal": ("volume", 3.785411784, ("gallon", "gallons", "us gallon", "us gallons")),
    "qt": ("volume", 0.946352946, ("quart", "quarts")),
    "pt": ("volume", 0.473176473, ("pint", "pints")),
    "cup": ("volume", 0.2365882365, ("cups",)),
    "fl oz": ("volume", 0.0295735295625, ("floz", "fluid ounce", "fluid ounces")),
    "tbsp": ("volume", 0.01478676478125, ("tablespoon", "tablespoons")),
    "tsp": ("volume", 0.00492892159375, ("teaspoon", "teaspoons")),
    "m/s": ("speed", 1.0, ("mps", "meters per second", "metres per second")),
    "km/h": ("speed", 1 / 3.6, ("kph", "kmh", "km/hr", "kilometers per hour",
                                "kilometres per hour")),
    "mph": ("speed", 0.44704, ("mi/h", "miles per hour")),
    "kn": ("speed", 1852 / 3600, ("kt", "knot", "knots")),
    "ft/s": ("speed", 0.3048, ("fps", "feet per second")),
    "s": ("time", 1.0, ("sec", "secs", "second", "seconds")),
    "ms": ("time", 0.001, ("millisecond", "milliseconds")),
    "min": ("time", 60.0, ("mins", "minute", "minutes")),
    "h": ("time", 3600.0, ("hr", "hrs", "hour", "hours")),
    "day": ("time", 86400.0, ("d", "days")),
    "week": ("time", 604800.0, ("wk", "weeks")),
}
# temperature is affine, not a factor: canonical -> (to kelvin, from kelvin, names)
_Affine = Callable[[float], float]
_TEMPERATURE: dict[str, tuple[_Affine, _Affine, tuple[str, ...]]] = {
    "celsius": (lambda c: c + 273.15, lambda k: k - 273.15, ("c", "°c", "degc", "degrees celsius")),
    "fahrenheit": (lambda f: (f - 32) * 5 / 9 + 273.15, lambda k: (k - 273.15) * 9 / 5 + 32,
                   ("f", "°f", "degf", "degrees fahrenheit")),
    "kelvin": (lambda k: k, lambda k: k, ("k", "kelvins")),
}
_NAMES = {name: canonical for canonical, (*_, names) in {**_UNITS, **_TEMPERATURE}.items()
          for name in (canonical, *names)}


def _unit(name: object) -> tuple[str, str]:
    """-> (canonical name, quantity)."""
    key = " ".join(name.split()).casefold() if isinstance(name, str) else None
    canonical = _NAMES.get(key) if key else None
    if canonical is None:
        known: dict[str, list[str]] = {}
        for unit, (quantity, *_) in _UNITS.items():
            known.setdefault(quantity, []).append(unit)
        known["temperature"] = list(_TEMPERATURE)
        listing = "; ".join(f"{q}: {', '.join(units)}" for q, units in known.items())
        msg = f"unknown unit {name!r}; known units are {listing}"
        raise ValueError(msg)
    return canonical, "temperature" if canonical in _TEMPERATURE else _UNITS[canonical][0]


@tool
def convert_units(value: float, from_unit: str, to_unit: str) -> dict[str, Any]:
    """Convert a value between units of length, mass, temperature, volume, speed or time.

    Args:
        value: The number to convert.
        from_unit: Unit of the value, e.g. "km", "lb", "celsius", "cup", "mph", "hours".
        to_unit: Unit to convert to (same kind of quantity as from_unit).
    """
    number = _number(value, "value")
    (source, quantity), (target, target_quantity) = _unit(from_unit), _unit(to_unit)
    if quantity != target_quantity:
        msg = (f"cannot convert {source} ({quantity}) to {target} ({target_quantity}); "
               "both units must measure the same kind of quantity")
        raise ValueError(msg)
    if quantity == "temperature":
        kelvin = _TEMPERATURE[source][0](number)
        if kelvin < 0:
            msg = f"{number:g} {source} is below absolute zero"
            raise ValueError(msg)
        result = _TEMPERATURE[target][1](kelvin)
    else:
        result = number * _UNITS[source][1] / _UNITS[target][1]
    return {"value": number, "from_unit": source, "to_unit": target,
            "result": float(f"{result:.10g}"), "quantity": quantity}


# -- safe calculator ------------------------------------------------------------------------------

_MAX_EXPRESSION_CHARS = 200
_MAX_EXPONENT = 1000
_MAX_INT_BITS = 4096  # about 1233 decimal digits

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos,
                                                          ast.USub: operator.neg}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _round(x: float, ndigits: float | None = None) -> float:
    if ndigits is None:
        return round(x)
    if ndigits != int(ndigits) or not -15 <= ndigits <= 15:
        msg = "ndigits must be a whole number from -15 to 15"
        raise ValueError(msg)
    return round(x, int(ndigits))


# name: (function, fewest arguments, most arguments)
_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "sqrt": (math.sqrt, 1, 1), "abs": (abs, 1, 1), "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1), "ceil": (math.ceil, 1, 1), "exp": (math.exp, 1, 1),
    "log": (math.log, 1, 2), "log10": (math.log10, 1, 1), "log2": (math.log2, 1, 1),
    "sin": (math.sin, 1, 1), "cos": (math.cos, 1, 1), "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1), "acos": (math.acos, 1, 1), "atan": (math.atan, 1, 1),
    "degrees": (math.degrees, 1, 1), "radians": (math.radians, 1, 1),
    "min": (min, 2, 10), "max": (max, 2, 10),
}
_UNSUPPORTED = {ast.Attribute: "attribute access", ast.Subscript: "indexing",
                ast.Compare: "comparisons", ast.BoolOp: "and/or", ast.Lambda: "lambda",
                ast.BitXor: "'^' (use ** for powers)"}


def _checked(value: Any) -> float:
    if isinstance(value, complex):
        msg = "the result is not a real number"
        raise ValueError(msg)  # noqa: TRY004  (a bad result value, reported as such)
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        msg = "the result is too large"
        raise ValueError(msg)
    if isinstance(value, float) and not math.isfinite(value):
        msg = "the result is not a finite number"
        raise ValueError(msg)
    return value  # type: ignore[no-any-return]


def _power(base: float, exponent: float) -> float:
    if abs(exponent) > _MAX_EXPONENT:
        msg = f"the exponent {exponent!r} is too large (at most {_MAX_EXPONENT})"
        raise ValueError(msg)
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and (
            base.bit_length() * exponent > _MAX_INT_BITS):
        msg = "the result is too large"
        raise ValueError(msg)
    return base**exponent  # type: ignore[no-any-return]


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Constant):
        if type(node.value) in (int, float):
            return node.value  # type: ignore[return-value]  # int or float, checked above
        msg = f"only numbers are allowed (got {node.value!r})"
        raise ValueError(msg)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        msg = f"unknown name {node.id!r}; the constants are {', '.join(_CONSTANTS)}"
        raise ValueError(msg)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_evaluate(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        op = _power if isinstance(node.op, ast.Pow) else _BINARY[type(node.op)]
        return _checked(op(left, right))
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _FUNCTIONS:
            what = f"function {name!r}" if name else "this kind of call"
            msg = f"{what} is not allowed; the functions are {', '.join(_FUNCTIONS)}"
            raise ValueError(msg)
        if node.keywords:
            msg = f"{name}: keyword arguments are not supported; pass the values in order"
            raise ValueError(msg)
        fn, fewest, most = _FUNCTIONS[name]
        args = [_evaluate(arg) for arg in node.args]
        if not fewest <= len(args) <= most:
            count = f"{fewest} to {most} arguments" if most > fewest else "1 argument"
            msg = f"{name} takes {count} (got {len(args)})"
            raise ValueError(msg)
        try:
            return _checked(fn(*args))
        except (ValueError, OverflowError) as exc:
            msg = f"{name}({', '.join(f'{a:g}' for a in args)}): {exc}"
            raise ValueError(msg) from None
    kind = type(node.op) if isinstance(node, (ast.BinOp, ast.UnaryOp)) else type(node)
    msg = f"not allowed in a calculation: {_UNSUPPORTED.get(kind, kind.__name__)}"
    raise ValueError(msg)


@tool
def calculate(expression: str) -> dict[str, Any]:
    """Evaluate an arithmetic expression, e.g. "(2 + 3) * 4" or "sqrt(2) * 10 ** 3".
    Supports + - * / // % **, parentheses, pi, e and the functions sqrt, abs, round, floor,
    ceil, exp, log, log10, log2, sin, cos, tan, asin, acos, atan, degrees, radians, min, max
    (angles in radians).

    Args:
        expression: The expression to evaluate (at most 200 characters).
    """
    expression = _text(expression, "expression")
    if len(expression) > _MAX_EXPRESSION_CHARS:
        msg = (f"the expression has {len(expression)} characters; at most "
               f"{_MAX_EXPRESSION_CHARS} are allowed")
        raise ValueError(msg)
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL character
        msg = f"cannot parse {expression!r}: {getattr(exc, 'msg', exc)}"
        raise ValueError(msg) from None
    except (RecursionError, MemoryError):
        msg = "the expression is nested too deeply"
        raise ValueError(msg) from None
    try:
        result = _evaluate(tree.body)
    except ZeroDivisionError:
        msg = "division by zero"
        raise ValueError(msg) from None
    except OverflowError:
        msg = "the result is too large"
        raise ValueError(msg) from None
    except (RecursionError, MemoryError):
        msg = "the expression is nested too deeply"
        raise ValueError(msg) from None
    if isinstance(result, float):
        result = float(f"{result:.12g}")  # 0.1 + 0.2 -> 0.3
    return {"expression": expression, "result": result}


TOOLS = [get_weather, set_timer, set_lights, set_thermostat, add_reminder, convert_units,
         calculate]

def show() -> None:
    """Print one call of each tool."""
    for result in (get_weather("Paris"), set_timer(10, "pasta"), set_lights("kitchen", True, 60),
                   set_thermostat(21.5), add_reminder("call the plumber", "tomorrow at 9am"),
                   convert_units(100, "fahrenheit", "celsius"), calculate("sqrt(2) * 10 ** 3")):
        print(result)  # noqa: T201

if __name__ == "__main__":
    show()

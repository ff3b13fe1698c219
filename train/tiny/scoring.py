"""Scoring of qwen-edge-tiny outputs against the corpus's expectations (issue #6).

``match_call(expected, got) -> (name_ok, args_ok)`` compares two calls
``{"name": str, "arguments": dict}``:

1. Names must be equal (exactly); otherwise ``(False, False)``.
2. Both argument dicts are completed with the defaults of the tool's signature
   (``set_thermostat(temperature)`` == ``set_thermostat(temperature, room="living room")``);
   an argument name that is not in the signature makes ``args_ok`` False, and so does a
   missing required argument.
3. Values are compared per parameter:
   - ``convert_units.from_unit`` / ``to_unit``: both mapped through the tool's alias table
     (``"miles"``, ``"mile"`` and ``"mi"`` all mean ``"mi"``; ``"°F"`` means ``"fahrenheit"``);
     unknown names fall back to the string rule.
   - ``calculate.expression``: both evaluated with ``home_tools.calculate``; equal when both
     results are close (relative 1e-9), so ``"15 / 100 * 80"`` matches ``"80 * 15 / 100"``. If
     both fail, the error messages must be equal; if one fails, they differ.
   - ``add_reminder.when``: the string rule after dropping a leading ``"at "`` or ``"on "``
     (``"at 5pm"`` == ``"5pm"``; ``"in 2 hours"`` keeps its ``"in"``).
   - numbers (int/float, not bool): numerically (``21 == 21.0``); a number never equals a string
     (the tool would reject ``"21"``).
   - bools and None: by identity of value (``True`` != ``1``).
   - strings: casefolded, runs of whitespace collapsed, ends stripped, and trailing punctuation
     ``.,!?;:`` removed (``"New York."`` == ``"new york"``); accents are significant.

``states_key_values(answer, key_values) -> bool`` checks that an answer states every key value
(case-insensitive):

- a key that is a number matches any number written in the answer with the same value
  (``"21"`` matches ``"21.0"``, ``"21°C"``, ``"-5"`` matches ``"-5°C"``); thousands separators
  (``"1,609.34"``) are read, and a more precise number also matches a key with decimals
  that it rounds to (``"6.21"`` matches ``"6.2137"``, not ``"6.2"``; ``"21"`` does not match
  ``"21.4"``);
- any other key must occur as a whole phrase (not inside a longer word: ``"on"`` does not
  match ``"conditions"``), after casefolding and whitespace normalization.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from typing import Any

from qwen_edge.demo import home_tools  # the tools the model was trained on

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    getattr(t, "name", getattr(t, "__name__", "")): getattr(t, "fn", t) for t in home_tools.TOOLS}
_MISSING = object()


def _signature(name: str) -> dict[str, Any]:
    """parameter -> default (``_MISSING`` if required)."""
    params = inspect.signature(_FUNCTIONS[name]).parameters
    return {p.name: _MISSING if p.default is inspect.Parameter.empty else p.default
            for p in params.values()}


def _text(value: str) -> str:
    return " ".join(value.split()).casefold().rstrip(".,!?;:").strip()


def _unit(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    key = " ".join(value.split()).casefold()
    return home_tools._NAMES.get(key, _text(value))


def _when(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = _text(value)
    for prep in ("at ", "on "):
        if text.startswith(prep):
            return text[len(prep):].strip()
    return text


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _same_value(a: Any, b: Any) -> bool:
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, str) and isinstance(b, str):
        return _text(a) == _text(b)
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    return a == b


def _evaluate(expression: Any) -> tuple[bool, Any]:
    try:
        return True, _FUNCTIONS["calculate"](expression)["result"]
    except Exception as exc:  # noqa: BLE001 - any failure is a result to compare
        return False, str(exc)


def _same_expression(a: Any, b: Any) -> bool:
    (ok_a, ra), (ok_b, rb) = _evaluate(a), _evaluate(b)
    if ok_a != ok_b:
        return False
    if not ok_a:
        return bool(ra == rb)
    try:
        return ra == rb or math.isclose(ra, rb, rel_tol=1e-9)
    except OverflowError:  # a huge int result (e.g. "9 ** 99"): exact equality only
        return False


def match_call(expected: dict, got: dict) -> tuple[bool, bool]:
    """-> (name_ok, args_ok); see the module docstring for the rules."""
    name = expected.get("name")
    if name != got.get("name") or name not in _FUNCTIONS:
        return False, False
    signature = _signature(name)
    exp_args, got_args = expected.get("arguments") or {}, got.get("arguments")
    if not isinstance(got_args, dict) or set(got_args) - set(signature):
        return True, False
    for param, default in signature.items():
        a, b = exp_args.get(param, default), got_args.get(param, default)
        if a is _MISSING or b is _MISSING:
            return True, False
        if name == "convert_units" and param in ("from_unit", "to_unit"):
            same = _unit(a) == _unit(b)
        elif name == "calculate" and param == "expression":
            same = _same_expression(a, b)
        elif name == "add_reminder" and param == "when":
            same = _when(a) == _when(b)
        else:
            same = _same_value(a, b)
        if not same:
            return True, False
    return True, True


_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)"
                     r"|(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", re.IGNORECASE)


def _numbers(text: str) -> list[str]:
    """Numbers written in ``text`` as strings without thousands separators."""
    return [m.group(0).replace(",", "") for m in _NUMBER.finditer(text)]


def _key_number(key: str) -> float | None:
    key = key.strip().replace(",", "")
    try:
        value = float(key)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _decimals(number: str) -> int:
    if "e" in number.lower():
        return 0
    return len(number.split(".", 1)[1]) if "." in number else 0


def states_key_values(answer: str, key_values: list[str]) -> bool:
    """True when ``answer`` states every key value; see the module docstring for the rules."""
    numbers = _numbers(answer)
    text = " ".join(answer.split()).casefold()
    for key in key_values:
        value = _key_number(key)
        if value is not None:
            places = _decimals(key.strip().replace(",", ""))
            if not any(float(n) == value or (
                    0 < places < _decimals(n) and round(float(n), places) == value)
                    for n in numbers):
                return False
            continue
        phrase = " ".join(key.split()).casefold()
        if not re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", text):
            return False
    return True

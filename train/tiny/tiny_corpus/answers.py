"""Tool calls run for real, and the canonical final answer stated from their results.

A tool message holds what the agent would show the model for a real call of the tool; the
answer after it names the result's key values (``answer``), which the evaluation checks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .common import _FLOAT_PARAMS, FUNCTIONS, PARAMS


def call_args(name: str, **given: Any) -> dict[str, Any]:
    """Arguments in signature order, leaving out the ones not given (None)."""
    unknown = set(given) - set(PARAMS[name])
    if unknown:
        msg = f"{name}: unknown arguments {sorted(unknown)}"
        raise TypeError(msg)
    return {k: given[k] for k in PARAMS[name] if given.get(k) is not None}


def run_tool(name: str, arguments: dict[str, Any]) -> tuple[str, Any, str | None]:
    """-> (tool message content, output, error) exactly as qwen_edge.agents.agent shows them.

    Mirrors ``Agent._execute`` -> ``Tool.invoke``: ints become floats for ``float`` parameters,
    and a failure reads ``"<tool> raised <ExceptionType>: <message>"``.
    """
    kwargs = {k: float(v) if k in _FLOAT_PARAMS[name] and type(v) is int else v
              for k, v in arguments.items()}
    try:
        output = FUNCTIONS[name](**kwargs)
    except Exception as exc:  # noqa: BLE001 - the agent turns a tool's failure into data
        error = f"{name} raised {type(exc).__name__}: {exc}"
        return json.dumps({"error": error}, ensure_ascii=False), None, error
    return json.dumps(output, ensure_ascii=False, default=str), output, None


def _num(x: float, decimals: int = 2) -> str:
    """Compact number: no ".0", at most ``decimals`` decimals (2 significant digits if tiny)."""
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    if abs(x) >= 1e15:
        return f"{x:.6g}"
    if abs(x) >= 10**-decimals:
        text = f"{x:.{decimals}f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    return f"{x:.2g}"


_TEMP_SHORT = {"celsius": "°C", "fahrenheit": "°F", "kelvin": "K"}
_PLURAL = {"cup": "cups", "day": "days", "week": "weeks"}


def _unit_text(unit: str, value: float) -> str:
    if unit in _TEMP_SHORT:
        return _TEMP_SHORT[unit]
    return _PLURAL[unit] if unit in _PLURAL and value != 1 else unit


def _answer_one(name: str, out: dict[str, Any], quote: bool = False) -> tuple[str, list[str]]:
    """-> (canonical sentence, key values it states) for one successful result.

    ``quote``: cities, rooms and reminders in double quotes, as the timer's label always is.
    A quoted value is tokenized exactly as in the tool result's JSON (`` "st`` ``air`` ``case``),
    so the answer copies the result token by token; unquoted, a word after a space is often
    other tokens (`` staircase``), which an unseen name cannot be copied into.
    """
    def q(value: str) -> str:
        return f'"{value}"' if quote else value

    if name == "get_weather":
        sign = "°C" if out["unit"] == "celsius" else "°F"
        t = _num(out["temperature"])
        return (f"It's {t}{sign} and {out['condition']} in {q(out['city'])}.",
                [t, out["condition"], out["city"]])
    if name == "set_timer":
        m = out["minutes"]
        span = f"{m} minute" + ("" if m == 1 else "s")
        if out["label"]:
            return f'Timer "{out["label"]}" set for {span}.', [str(m), out["label"]]
        return f"Timer set for {span}.", [str(m)]
    if name == "set_lights":
        if out["on"]:
            return (f"The {q(out['room'])} lights are on at {out['brightness']}%.",
                    [out["room"], "on", str(out["brightness"])])
        return f"The {q(out['room'])} lights are off.", [out["room"], "off"]
    if name == "set_thermostat":
        t, c = _num(out["target_temperature"]), _num(out["current_temperature"])
        return ((f"The {q(out['room'])} thermostat is set to {t}°C "
                 f"(currently {c}°C, {out['status']})."),
                [out["room"], t])
    if name == "add_reminder":
        return (f"Reminder set: {q(out['text'])}, {q(out['when'])}.",
                [out["text"], out["when"]])
    if name == "convert_units":
        v, r = out["value"], out["result"]
        src, dst = _unit_text(out["from_unit"], v), _unit_text(out["to_unit"], r)
        sep_src = "" if src in ("°C", "°F") else " "
        sep_dst = "" if dst in ("°C", "°F") else " "
        return f"{_num(v)}{sep_src}{src} is {_num(r)}{sep_dst}{dst}.", [_num(r)]
    if name == "calculate":
        r = _num(out["result"], 4)
        return f"{out['expression']} = {r}.", [r]
    msg = f"no answer template for {name}"
    raise KeyError(msg)


_ACTIONS = {"get_weather": "get the weather", "set_timer": "set the timer",
            "set_lights": "change the lights", "set_thermostat": "set the thermostat",
            "add_reminder": "add the reminder", "convert_units": "convert that",
            "calculate": "calculate that"}


def _error_answer(name: str, error: str) -> str:
    message = error.split(": ", 1)[1] if ": " in error else error
    return f"Sorry, I couldn't {_ACTIONS[name]}: {message.split(';')[0].rstrip('.')}."


def answer(calls: Sequence[tuple[str, dict]], results: Sequence[tuple[Any, str | None]],
           *, quote: bool = False) -> tuple[str, list[str]]:
    """Canonical final answer for the results of ``calls`` (sentences joined by a space)."""
    sentences, keys = [], []
    for (name, _), (out, error) in zip(calls, results, strict=True):
        if error is not None:
            sentences.append(_error_answer(name, error))
        else:
            text, kv = _answer_one(name, out, quote)
            sentences.append(text)
            keys += kv
    return " ".join(sentences), keys

"""One request per tool: its text, its call, and the tool-error requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .answers import call_args
from .common import T
from .entities import _TEMPERATURE_UNITS, _when, _when_slot, words
from .slots import (
    _POOLS,
    _city,
    _duration,
    _minutes,
    _num_surface,
    _percent,
    _room,
    _temperature,
    _unit_surface,
    _value,
)
from .surface import Pieces, _Ctx, _fill


@dataclass
class _Req:
    pieces: Pieces
    form: str
    calls: list[tuple[str, dict]]
    meta: dict[str, Any] = field(default_factory=dict)


def _weather(ctx: _Ctx, city: tuple[str, str] | None = None, unit: str | None = "?") -> _Req:
    city_s, city_arg = city or _city(ctx)
    pieces, form = _fill(ctx.pick(T.WEATHER), {"city": city_s})
    if unit == "?":
        unit = None
        if ctx.rng.random() < 0.2:
            surface, unit = ctx.pick(T.WEATHER_UNIT)
            pieces.append((surface, False))
    return _Req(pieces, form, [("get_weather", call_args("get_weather", city=city_arg, unit=unit))],
                {"city": (city_s, city_arg), "unit": unit})


def _timer(ctx: _Ctx, minutes: int | None = None) -> _Req:
    m = _minutes(ctx) if minutes is None else minutes
    noun, adj = _duration(ctx, m)
    label = None
    if ctx.rng.random() < 0.35:
        label = ctx.case(ctx.pick(_POOLS["label"]))
        pieces, form = _fill(ctx.pick(T.TIMER_LABELED), {"dur": noun, "adur": adj, "label": label})
    else:
        pieces, form = _fill(ctx.pick(T.TIMER), {"dur": noun, "adur": adj})
    return _Req(pieces, form, [("set_timer", call_args("set_timer", minutes=m, label=label))],
                {"minutes": m, "label": label})


def _lights(ctx: _Ctx, brightness: int | None = None) -> _Req:
    room_s, room = _room(ctx)
    r = ctx.rng.random()
    if brightness is not None or r < 0.3:
        pct_s, pct = _percent(ctx, brightness)
        tpl = ctx.pick(T.LIGHTS_LEVEL)
        if "{pct} brightness" in tpl and pct_s.endswith("brightness"):
            pct_s = "100%"
        pieces, form = _fill(tpl, {"room": room_s, "pct": pct_s})
        args = call_args("set_lights", room=room, on=True, brightness=pct)
    else:
        on = r < 0.65
        pieces, form = _fill(ctx.pick(T.LIGHTS_ON if on else T.LIGHTS_OFF), {"room": room_s})
        args = call_args("set_lights", room=room, on=on)
    return _Req(pieces, form, [("set_lights", args)], {"room": room, **args})


def _thermostat(ctx: _Ctx, value: float | None = None) -> _Req:
    temp_s, temp = _temperature(ctx, value)
    room = None
    if ctx.rng.random() < 0.4:
        room_s, room = _room(ctx, indoor=True)
        pieces, form = _fill(ctx.pick(T.THERMOSTAT_ROOM), {"room": room_s, "temp": temp_s})
    else:
        pieces, form = _fill(ctx.pick(T.THERMOSTAT), {"temp": temp_s})
    return _Req(pieces, form, [("set_thermostat", call_args("set_thermostat", temperature=temp,
                                                             room=room))],
                {"temperature": temp, "room": room})


def _reminder(ctx: _Ctx) -> _Req:
    task = ctx.case(ctx.pick(_POOLS["task"]))
    when_s = ctx.case(ctx.pick(_POOLS["when"]))
    tpl = ctx.pick(T.REMINDER)
    pieces, form = _fill(tpl, {"task": task, "when": _when_slot(tpl, when_s)})
    return _Req(pieces, form, [("add_reminder", call_args("add_reminder", text=task,
                                                           when=_when(when_s)))],
                {"text": task, "when": when_s})


def _convert(ctx: _Ctx, pair: tuple[str, str] | None = None, value: float | None = None) -> _Req:
    src, dst = pair or ctx.pick(_POOLS["pair"])
    v_s, v = _value(ctx, src) if value is None else (str(value), value)
    f = _unit_surface(ctx, src, plural=v != 1)
    t = _unit_surface(ctx, dst, plural=True)
    tpl = ctx.pick(T.CONVERT)
    if "{v}{f}" in tpl and not (v_s[:1].isdigit() and f[:1] in "°ck"):
        tpl = tpl.replace("{v}{f}", "{v} {f}")
    pieces, form = _fill(tpl, {"v": ctx.case(v_s), "f": f, "t": t})
    return _Req(pieces, form, [("convert_units", call_args("convert_units", value=v,
                                                            from_unit=src, to_unit=dst))],
                {"value": v, "pair": (src, dst)})


def _operand(ctx: _Ctx, small: bool = False) -> tuple[str, str]:
    """-> (surface, expression text)."""
    rng = ctx.rng
    r = rng.random()
    if r < 0.7 or small:
        n = rng.randint(2, 20) if small or r < 0.35 else rng.randint(2, 999)
        return (words(n) if n <= 20 and rng.random() < 0.2 else str(n)), str(n)
    if r < 0.9:
        x = round(rng.uniform(0.1, 500), rng.choice((1, 2)))
        return str(x), str(x)
    n = rng.randint(1000, 99999)
    return (f"{n:,}" if rng.random() < 0.3 else str(n)), str(n)


def _typed_expression(ctx: _Ctx, depth: int = 0) -> tuple[str, str]:
    """A random arithmetic expression -> (as typed, canonical spacing)."""
    rng = ctx.rng
    if depth >= 2 or (depth and rng.random() < 0.5):
        n = rng.randint(1, 999) if rng.random() < 0.85 else round(rng.uniform(0.5, 99), 1)
        return str(n), str(n)
    op = rng.choice(("+", "-", "*", "/", "*", "+"))
    (ls, lc), (rs, rc) = _typed_expression(ctx, depth + 1), _typed_expression(ctx, depth + 1)
    sp = rng.choice(("", " ", " "))
    typed, canon = f"{ls}{sp}{op}{sp}{rs}", f"{lc} {op} {rc}"
    if depth > 0 and rng.random() < 0.6:
        typed, canon = f"({typed})", f"({canon})"
    return typed, canon


def _calc(ctx: _Ctx, divide_by_zero: bool = False, sqrt_negative: bool = False) -> _Req:
    rng = ctx.rng
    if divide_by_zero or sqrt_negative or rng.random() < 0.75:
        choices = list(T.CALC[ctx.split])
        if divide_by_zero:
            choices = [t for t in choices if " / {b}" in t[1]]
        if sqrt_negative:
            choices = [t for t in choices if "sqrt" in t[1]]
        tpl, expr = choices[rng.randrange(len(choices))]
        slots, canon = {}, {}
        for name in ("a", "b", "c", "x", "p"):
            s, c = _operand(ctx, small=name == "b" and "**" in expr)
            if name == "p":
                c = str(rng.choice((5, 10, 12, 15, 18, 20, 25, 30, 50, 75, 8, 40))
                        if rng.random() < 0.8 else rng.randint(1, 99))
                s = c
            slots[name], canon[name] = s, c
        if "**" in expr:  # keep powers readable: small bases, exponents 2 to 9
            a = rng.randint(2, 20)
            slots["a"], canon["a"] = _num_surface(ctx, a), str(a)
            b = rng.randint(4, 9) if "{b}th" in tpl else rng.randint(2, 9)
            slots["b"], canon["b"] = str(b), str(b)
        if divide_by_zero:
            slots["b"], canon["b"] = rng.choice(("0", "0", "zero")), "0"
        if sqrt_negative:
            k = rng.randint(1, 400)
            slots["x"], canon["x"] = (f"-{k}" if rng.random() < 0.7 else f"minus {k}"), f"-{k}"
        slots = {k: ctx.case(v) for k, v in slots.items()}
        expression = expr.format(**canon)
        pieces, form = _fill(tpl, slots)
    else:
        typed, expression = _typed_expression(ctx)
        if rng.random() < 0.1:
            typed = typed.replace("*", rng.choice(("x", "\u00d7")))  # a multiplication sign
        pieces, form = _fill(ctx.pick(T.CALC_EXPR), {"expr": typed})
    return _Req(pieces, form, [("calculate", call_args("calculate", expression=expression))],
                {"expression": expression})


_MAKERS: dict[str, Callable[[_Ctx], _Req]] = {
    "get_weather": _weather, "set_timer": _timer, "set_lights": _lights,
    "set_thermostat": _thermostat, "add_reminder": _reminder, "convert_units": _convert,
    "calculate": _calc,
}


def _tool_error_request(ctx: _Ctx) -> _Req:
    rng = ctx.rng
    r = rng.random()
    if r < 0.22:
        return _timer(ctx, rng.choice((0, 1500, 2000, 1800, 2880, 3000, 4320, 10000, 1441)))
    if r < 0.4:
        return _lights(ctx, rng.choice((101, 110, 120, 150, 200, 250, 300, 1000)))
    if r < 0.6:
        return _thermostat(ctx, rng.choice((31, 32, 35, 40, 45, 50, 60, 70, 80, 0, 2, 3, 4, 1, -5)))
    if r < 0.8:
        s = rng.random()
        if s < 0.4:  # different quantities
            dims = {"length": ["km", "mi", "m", "ft"], "mass": ["kg", "lb", "g"],
                    "volume": ["l", "gal", "ml", "cup"], "speed": ["mph", "km/h"],
                    "time": ["h", "min"], "temperature": ["celsius", "fahrenheit"]}
            a, b = rng.sample(sorted(dims), 2)
            return _convert(ctx, (rng.choice(dims[a]), rng.choice(dims[b])))
        if s < 0.7:  # below absolute zero
            unit = rng.choice(("celsius", "fahrenheit", "kelvin"))
            low = {"celsius": -300, "fahrenheit": -500, "kelvin": -10}[unit]
            target = rng.choice([u for u in _TEMPERATURE_UNITS if u != unit])
            return _convert(ctx, (unit, target), rng.randint(low - 500, low))
        bad = ctx.case(rng.choice(("furlongs", "light years", "acres", "hectares", "parsecs",
                                   "cubits", "leagues", "bushels", "horsepower", "calories")))
        good_unit = rng.choice(("km", "m", "kg", "l", "mi"))
        v_s, v = _value(ctx, good_unit)
        tpl = ctx.pick(T.CONVERT).replace("{v}{f}", "{v} {f}")
        f, t = (bad, _unit_surface(ctx, good_unit, True)) if rng.random() < 0.5 else \
            (_unit_surface(ctx, good_unit, v != 1), bad)
        pieces, form = _fill(tpl, {"v": ctx.case(v_s), "f": f, "t": t})
        src = bad if f == bad else good_unit
        dst = bad if t == bad else good_unit
        return _Req(pieces, form, [("convert_units", call_args("convert_units", value=v,
                                                                from_unit=src, to_unit=dst))])
    return _calc(ctx, divide_by_zero=True) if rng.random() < 0.6 else _calc(ctx, sqrt_negative=True)

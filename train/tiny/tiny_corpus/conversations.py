"""Conversations by kind (single, parallel, follow-up, tool error, no tool, unsupported, out of
scope, clarify), and ``generate``: example ``i`` depends only on (seed, split, i).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any

from .answers import answer, call_args, run_tool
from .common import KINDS, MIX, TOOL_MIX, Example, O, T
from .entities import _when, _when_slot
from .slots import (
    _POOLS,
    _city,
    _duration,
    _minutes,
    _num_surface,
    _percent,
    _room,
    _temperature,
    _value,
)
from .surface import Pieces, _Ctx, _fill, _finish
from .tool_requests import _MAKERS, _Req, _tool_error_request


def _assistant_calls(calls: Sequence[tuple[str, dict]]) -> dict:
    return {"role": "assistant", "content": "",
            "tool_calls": [{"type": "function", "function": {"name": n, "arguments": dict(a)}}
                           for n, a in calls]}


def _exchange(user: str, calls: Sequence[tuple[str, dict]]) -> tuple[list[dict], str, list[str]]:
    """user -> calls -> tool results -> final answer; -> (messages, answer, key values)."""
    messages = [{"role": "user", "content": user}, _assistant_calls(calls)]
    results = []
    for name, args in calls:
        content, out, error = run_tool(name, args)
        messages.append({"role": "tool", "content": content})
        results.append((out, error))
    text, keys = answer(calls, results)
    messages.append({"role": "assistant", "content": text})
    return messages, text, keys


def _pick_tool(ctx: _Ctx) -> str:
    return ctx.rng.choices(list(TOOL_MIX), weights=list(TOOL_MIX.values()))[0]


def _single(ctx: _Ctx) -> tuple[list[dict], _Req]:
    ctx.restyle()
    req = _MAKERS[_pick_tool(ctx)](ctx)
    messages, _, _ = _exchange(_finish(ctx, req.pieces, req.form), req.calls)
    return messages, req


_JOINERS = [" and ", ", and ", ", then ", ". also ", " and also ", ", plus ", " & ", "; ",
            ", ", " then ", ". and ", " and then "]
_SAME_TOOL = {
    "get_weather": {"train": ["?what's the weather in {a} and {b}", "?how's the weather in {a} and in {b}",
                              "{a} and {b} weather", "!compare the weather in {a} and {b}",
                              "?is it raining in {a} or {b}"],
                    "heldout": ["?weather for both {a} and {b}", "?what's it like in {a} vs {b}"]},
    "set_lights": {"train": ["!turn {on} the lights in the {a} and the {b}", "!turn the {a} and {b} lights {on}",
                             "{a} and {b} lights {on}", "!switch {on} the {a} and {b} lights",
                             "!lights {on} in the {a} and {b}"],
                   "heldout": ["!both the {a} and the {b}: lights {on}", "!get the {a} and {b} lights {on}"]},
}


def _parallel(ctx: _Ctx) -> list[dict]:
    ctx.restyle()
    rng = ctx.rng
    if rng.random() < 0.25:
        tool = rng.choice(sorted(_SAME_TOOL))
        tpl = ctx.pick(_SAME_TOOL[tool])
        if tool == "get_weather":
            (a_s, a), (b_s, b) = _city(ctx), _city(ctx)
            while b == a:
                b_s, b = _city(ctx)
            calls = [("get_weather", call_args("get_weather", city=c)) for c in (a, b)]
            pieces, form = _fill(tpl, {"a": a_s, "b": b_s})
        else:
            (a_s, a), (b_s, b) = _room(ctx), _room(ctx)
            while b == a:
                b_s, b = _room(ctx)
            on = rng.random() < 0.5
            pieces, form = _fill(tpl, {"a": a_s, "b": b_s, "on": ctx.case("on" if on else "off")})
            calls = [("set_lights", call_args("set_lights", room=r, on=on)) for r in (a, b)]
        messages, _, _ = _exchange(_finish(ctx, pieces, form), calls)
        return messages
    count = 2 if rng.random() < 0.8 else 3
    tools = [_pick_tool(ctx) for _ in range(count)]
    reqs = [_MAKERS[t](ctx) for t in tools]
    pieces: Pieces = []
    forms = []
    for i, req in enumerate(reqs):
        if i:
            pieces.append((rng.choice(_JOINERS), False))
        pieces += req.pieces
        forms.append(req.form)
    calls = [c for req in reqs for c in req.calls]
    form = forms[0] if forms[0] else forms[-1]
    messages, _, _ = _exchange(_finish(ctx, pieces, form), calls)
    return messages


_FOLLOWUPS = {
    "city": {"train": ["and in {city}?", "what about {city}", "how about {city}?", "and {city}",
                       "and what about {city}?", "same for {city}", "{city}?", "now {city}",
                       "ok and {city}", "what's it like in {city} then"],
             "heldout": ["and over in {city}?", "try {city}", "how about in {city} though"]},
    "unit": {"train": ["what about in {unit}?", "in {unit} please", "can you give me that in {unit}",
                       "and in {unit}?", "{unit}?", "switch to {unit}", "in {unit}"],
             "heldout": ["could I have that in {unit}", "and using {unit}?"]},
    "minutes": {"train": ["make it {dur} instead", "actually, {dur}", "change that to {dur}",
                          "no wait, {dur}", "actually make it {dur}", "sorry, I meant {dur}",
                          "can you change it to {dur}", "{dur} instead", "let's do {dur}"],
                "heldout": ["on second thought, {dur}", "hmm, better make that {dur}"]},
    "off": {"train": ["now turn them off", "turn them off again", "ok lights off", "switch them off",
                      "turn it off", "ok now off", "and turn them off now", "off again please"],
            "heldout": ["kill them now", "that's enough, switch them off"]},
    "on": {"train": ["turn them back on", "now turn them on", "switch them back on", "on again please",
                     "ok turn it back on", "lights back on"],
           "heldout": ["bring them back on", "restore the lights"]},
    "level": {"train": ["dim them to {pct}", "now set them to {pct}", "make it {pct}",
                        "bit darker, {pct}", "turn them to {pct}", "brightness {pct}"],
              "heldout": ["take them to {pct}", "change the level to {pct}"]},
    "room": {"train": ["and the {room} too", "same for the {room}", "do the {room} as well",
                       "the {room} too please", "and in the {room}?", "also the {room}"],
             "heldout": ["repeat that for the {room}", "now the {room}"]},
    "temp": {"train": ["make it {temp} instead", "actually {temp}", "change it to {temp}",
                       "a bit warmer, {temp}", "hmm, {temp} please", "set it to {temp} instead"],
             "heldout": ["rather {temp}", "let's go with {temp}"]},
    "when": {"train": ["actually make it {when}", "change that to {when}", "no, {when}",
                       "move it to {when}", "can you make it {when} instead", "{when} instead"],
             "heldout": ["push it to {when}", "shift it to {when}"]},
    "task": {"train": ["and remind me to {task} too, same time", "also {task}, same time",
                       "add another one to {task}, same time", "same time, remind me to {task} as well"],
             "heldout": ["one more at the same time: {task}"]},
    "value": {"train": ["and {v}?", "what about {v}?", "now {v}", "how about {v}", "and for {v}?"],
              "heldout": ["same but {v}", "redo it for {v}"]},
    "reverse": {"train": ["and the other way around?", "now the other way", "and back the other way?",
                          "what about the reverse"], "heldout": ["flip it around"]},
    "then": {"train": ["now multiply that by {n}", "and times {n}?", "divide that by {n}",
                       "then add {n}", "minus {n}?", "and that plus {n}?", "now divide it by {n}"],
             "heldout": ["take that and multiply by {n}", "what's that divided by {n}"]},
}
_THEN_OPS = {"multiply": "*", "times": "*", "divide": "/", "add": "+", "minus": "-", "plus": "+"}


def _followup(ctx: _Ctx) -> list[dict]:
    messages, req = _single(ctx)
    ctx.restyle()
    rng = ctx.rng
    name, args = req.calls[0]
    new: dict[str, Any]
    if name == "get_weather":
        if rng.random() < 0.6 or (args.get("unit") == "fahrenheit" and rng.random() < 0.5):
            city_s, city = _city(ctx)
            while city == args["city"]:
                city_s, city = _city(ctx)
            pieces, form = _fill(ctx.pick(_FOLLOWUPS["city"]), {"city": city_s})
            new = call_args(name, city=city, unit=args.get("unit"))
        else:
            unit = "celsius" if args.get("unit") == "fahrenheit" else "fahrenheit"
            pieces, form = _fill(ctx.pick(_FOLLOWUPS["unit"]), {"unit": ctx.case(unit)})
            new = call_args(name, city=args["city"], unit=unit)
    elif name == "set_timer":
        m = _minutes(ctx)
        while m == args["minutes"]:
            m = _minutes(ctx)
        noun, _ = _duration(ctx, m)
        pieces, form = _fill(ctx.pick(_FOLLOWUPS["minutes"]), {"dur": noun})
        new = call_args(name, minutes=m, label=args.get("label"))
    elif name == "set_lights":
        r = rng.random()
        if r < 0.35:
            on = not args["on"]
            key = "on" if on else "off"
            pieces, form = _fill(ctx.pick(_FOLLOWUPS[key]), {})
            new = call_args(name, room=args["room"], on=on)
        elif r < 0.6:
            pct_s, pct = _percent(ctx)
            pieces, form = _fill(ctx.pick(_FOLLOWUPS["level"]), {"pct": pct_s})
            new = call_args(name, room=args["room"], on=True, brightness=pct)
        else:
            room_s, room = _room(ctx)
            while room == args["room"]:
                room_s, room = _room(ctx)
            pieces, form = _fill(ctx.pick(_FOLLOWUPS["room"]), {"room": room_s})
            new = call_args(name, room=room, on=args["on"], brightness=args.get("brightness"))
    elif name == "set_thermostat":
        if rng.random() < 0.6:
            temp_s, temp = _temperature(ctx)
            while temp == args["temperature"]:
                temp_s, temp = _temperature(ctx)
            pieces, form = _fill(ctx.pick(_FOLLOWUPS["temp"]), {"temp": temp_s})
            new = call_args(name, temperature=temp, room=args.get("room"))
        else:
            room_s, room = _room(ctx, indoor=True)
            while room == args.get("room", "living room"):
                room_s, room = _room(ctx, indoor=True)
            pieces, form = _fill(ctx.pick(_FOLLOWUPS["room"]), {"room": room_s})
            new = call_args(name, temperature=args["temperature"], room=room)
    elif name == "add_reminder":
        if rng.random() < 0.6:
            when_s = ctx.case(ctx.pick(_POOLS["when"]))
            while _when(when_s) == args["when"]:
                when_s = ctx.case(ctx.pick(_POOLS["when"]))
            tpl = ctx.pick(_FOLLOWUPS["when"])
            pieces, form = _fill(tpl, {"when": _when_slot(tpl, when_s)})
            new = call_args(name, text=args["text"], when=_when(when_s))
        else:
            task = ctx.case(ctx.pick(_POOLS["task"]))
            pieces, form = _fill(ctx.pick(_FOLLOWUPS["task"]), {"task": task})
            new = call_args(name, text=task, when=args["when"])
    elif name == "convert_units":
        reverse = call_args(name, value=args["value"], from_unit=args["to_unit"],
                            to_unit=args["from_unit"])
        if rng.random() < 0.65 or run_tool(name, reverse)[2] is not None:
            v_s, v = _value(ctx, args["from_unit"])
            while v == args["value"]:
                v_s, v = _value(ctx, args["from_unit"])
            pieces, form = _fill(ctx.pick(_FOLLOWUPS["value"]), {"v": ctx.case(v_s)})
            new = call_args(name, value=v, from_unit=args["from_unit"], to_unit=args["to_unit"])
        else:
            pieces, form = _fill(ctx.pick(_FOLLOWUPS["reverse"]), {})
            new = reverse
    else:  # calculate: build on the previous result
        result = json.loads(messages[2]["content"]).get("result")
        if result is None or (isinstance(result, float) and abs(result) >= 1e15):
            return messages + _single(ctx)[0]  # an error or a huge number: a fresh request
        tpl = ctx.pick(_FOLLOWUPS["then"])
        n = rng.randint(2, 12)
        pieces, form = _fill(tpl, {"n": ctx.case(_num_surface(ctx, n))})
        op = next(o for w, o in _THEN_OPS.items() if w in tpl)
        new = call_args(name, expression=f"{json.dumps(result)} {op} {n}")
    second, _, _ = _exchange(_finish(ctx, pieces, form, fillers=rng.random() < 0.3), [(name, new)])
    return messages + second


def _canned(text: str, reply: str, history: list[dict]) -> list[dict]:
    return [*history, {"role": "user", "content": text}, {"role": "assistant", "content": reply}]


def _no_tool(ctx: _Ctx) -> list[dict]:
    intent = ctx.rng.choice(sorted(T.NO_TOOL))
    reply, train, held = T.NO_TOOL[intent]
    history = intent in ("thanks", "goodbye") and ctx.rng.random() < 0.6
    messages = _single(ctx)[0] if history else []
    ctx.restyle()
    pieces, _ = _fill(ctx.pick({"train": train, "heldout": held}), {})
    form = "?" if intent in ("capabilities", "identity", "how_are_you") else ""
    return _canned(_finish(ctx, pieces, form, fillers=False), reply, messages)


def _unsupported(ctx: _Ctx) -> list[dict]:
    history = _single(ctx)[0] if ctx.rng.random() < 0.15 else []
    ctx.restyle()
    act = ctx.case(ctx.pick(T.UNSUPPORTED_ACTIONS))
    pieces, form = _fill(ctx.pick(T.UNSUPPORTED_WRAP), {"act": act})
    return _canned(_finish(ctx, pieces, form, fillers=False), T.UNSUPPORTED_REPLY, history)


def _oos_request(ctx: _Ctx) -> tuple[str, bool]:
    """-> (request, is English)."""
    rng = ctx.rng
    r = rng.random()
    if r < 0.4:
        tpl, slot = ctx.pick(O.TRIVIA)
        return tpl.format(**{slot: rng.choice(O.TRIVIA_FILL[slot])}), True
    if r < 0.65:
        return ctx.pick(O.OPEN), True
    if r < 0.75:
        city, city2 = (rng.choice(_POOLS["city"][ctx.split]) for _ in range(2))
        unit = rng.choice(("kilos", "pounds", "tons"))
        return ctx.pick(O.LOOKALIKE).format(city=city, city2=city2, n=rng.randint(2, 500),
                                            unit=unit), True
    langs = O.LANGUAGES[ctx.split]
    lang = rng.choice(sorted(langs))
    if rng.random() < 0.35:
        return rng.choice(langs[lang]), False
    city = rng.choice(_POOLS["city"][ctx.split])
    tpl = rng.choice(O.LANGUAGE_TEMPLATES[ctx.split][lang])
    return tpl.format(city=city, n=rng.randint(2, 60), m=rng.randint(2, 30)), False


def _oos(ctx: _Ctx) -> list[dict]:
    history = _single(ctx)[0] if ctx.rng.random() < 0.2 else []
    ctx.restyle()
    raw, english = _oos_request(ctx)
    if english:
        text = _finish(ctx, [(raw, False)], "?", fillers=ctx.rng.random() < 0.5)
    else:
        text = raw.lower() if ctx.lower else raw
    return [*history, {"role": "user", "content": text},
            {"role": "assistant", "content": ctx.rng.choice(O.HANDOFFS)}]


def _tool_error(ctx: _Ctx) -> list[dict]:
    ctx.restyle()
    req = _tool_error_request(ctx)
    messages, _, _ = _exchange(_finish(ctx, req.pieces, req.form), req.calls)
    return messages


def _clarify(ctx: _Ctx) -> list[dict]:
    ctx.restyle()
    rng = ctx.rng
    tool = rng.choice(sorted(T.CLARIFY))
    question, train, held = T.CLARIFY[tool]
    tpl = ctx.pick({"train": train, "heldout": held})
    slots: dict[str, str] = {}
    if tool == "add_reminder":
        slots["task"] = ctx.case(ctx.pick(_POOLS["task"]))
    pieces, form = _fill(tpl, slots)
    first = _finish(ctx, pieces, "?" if tool == "get_weather" else "", fillers=rng.random() < 0.5)
    ctx.restyle()
    answer_tpl = ctx.pick(T.CLARIFY_ANSWER[tool])
    if tool == "get_weather":
        city_s, city = _city(ctx)
        pieces, form = _fill(answer_tpl, {"city": city_s})
        args = call_args(tool, city=city)
    elif tool == "set_timer":
        m = _minutes(ctx)
        pieces, form = _fill(answer_tpl, {"dur": _duration(ctx, m)[0]})
        args = call_args(tool, minutes=m)
    elif tool == "set_lights":
        room_s, room = _room(ctx)
        pieces, form = _fill(answer_tpl, {"room": room_s})
        on = not any(w in tpl for w in ("off", "kill"))
        args = call_args(tool, room=room, on=on)
    elif tool == "set_thermostat":
        temp_s, temp = _temperature(ctx)
        pieces, form = _fill(answer_tpl, {"temp": temp_s})
        args = call_args(tool, temperature=temp)
    else:
        when_s = ctx.case(ctx.pick(_POOLS["when"]))
        pieces, form = _fill(answer_tpl, {"when": when_s})
        args = call_args(tool, text=slots["task"], when=_when(when_s))
    second, _, _ = _exchange(_finish(ctx, pieces, form, fillers=False), [(tool, args)])
    return [{"role": "user", "content": first}, {"role": "assistant", "content": question}, *second]


_KIND_MAKERS: dict[str, Callable[[_Ctx], list[dict]]] = {
    "single": lambda ctx: _single(ctx)[0], "parallel": _parallel, "followup": _followup,
    "tool_error": _tool_error, "no_tool": _no_tool, "unsupported": _unsupported, "oos": _oos,
    "clarify": _clarify,
}


def _example(seed: int, split: str, i: int) -> Example:
    rng = random.Random(f"qwen-edge-tiny:{seed}:{split}:{i}")
    kind = rng.choices(KINDS, weights=[MIX[k] for k in KINDS])[0]
    ctx = _Ctx(rng, split)
    return Example(_KIND_MAKERS[kind](ctx), kind, split)


def generate(n: int, *, seed: int, split: str = "train") -> list[Example]:
    """``n`` conversations; example ``i`` depends only on (seed, split, i)."""
    if split not in ("train", "heldout"):
        msg = f"split must be 'train' or 'heldout' (got {split!r})"
        raise ValueError(msg)
    return [_example(seed, split, i) for i in range(n)]


def quote_answers(example: Example) -> Example:
    """``example`` with every canonical answer after tool results rewritten with quoted values
    (``answer(..., quote=True)``); other messages, and answers that are not canonical, as is."""
    msgs, out, calls = [dict(m) for m in example.messages], [], []
    results: list[tuple[Any, str | None]] = []
    for m in msgs:
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [(c["function"]["name"], c["function"]["arguments"]) for c in m["tool_calls"]]
            results = []
        elif m["role"] == "tool":
            value = json.loads(m["content"])
            error = value.get("error") if isinstance(value, dict) and set(value) == {"error"} \
                else None
            results.append((None if error else value, error))
        elif m["role"] == "assistant" and calls and len(results) == len(calls):
            if answer(calls, results)[0] == m["content"]:
                m["content"] = answer(calls, results, quote=True)[0]
            calls, results = [], []
        else:
            calls, results = [], []
        out.append(m)
    return Example(out, example.kind, example.split)

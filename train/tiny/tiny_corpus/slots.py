"""Slot values and their surface forms: a city, a room, a duration, a temperature, a value.

Each returns what the user writes and what the call must say, so the two cannot drift apart.
"""

from __future__ import annotations

from .common import P
from .entities import _TEMPERATURE_UNITS, _UNIT_WORDS, _ascii, _split_pool, _tasks, words
from .surface import _Ctx

_CITIES = [*P.CITIES.split(), *P.MULTIWORD_CITIES]
_POOLS = {
    "city": _split_pool(_CITIES, "city"),
    "room": _split_pool(P.ROOMS, "room"),
    "label": _split_pool(P.TIMER_LABELS, "label"),
    "task": _split_pool(_tasks(), "task"),
    "when": _split_pool(P.WHEN, "when"),
    "pair": _split_pool(P.UNIT_PAIRS, "pair"),
}


def _city(ctx: _Ctx) -> tuple[str, str]:
    """-> (surface, argument)."""
    name = ctx.pick(_POOLS["city"])
    if _ascii(name) != name and ctx.rng.random() < 0.5:
        name = _ascii(name)
    r = ctx.rng.random()
    surface = name.lower() if r < 0.3 else name
    return ctx.case(surface), name


_OUTDOOR = {"garden", "porch", "patio", "balcony", "terrace", "backyard", "front yard", "driveway",
            "front porch", "back porch", "shed"}


def _room(ctx: _Ctx, indoor: bool = False) -> tuple[str, str]:
    room = ctx.pick(_POOLS["room"])
    while indoor and room in _OUTDOOR:
        room = ctx.pick(_POOLS["room"])
    surface = room.title() if ctx.rng.random() < 0.1 else room
    return ctx.case(surface), room


_COMMON_MINUTES = (1, 2, 3, 4, 5, 5, 6, 7, 8, 10, 10, 12, 15, 15, 20, 20, 25, 30, 30, 35, 40, 45,
                   50, 60, 60, 75, 90, 90, 120, 150, 180, 240)


def _minutes(ctx: _Ctx) -> int:
    r = ctx.rng.random()
    if r < 0.6:
        return ctx.rng.choice(_COMMON_MINUTES)
    if r < 0.9:
        return ctx.rng.randint(1, 59)
    return ctx.rng.randint(61, 600)


def _num_surface(ctx: _Ctx, n: int) -> str:
    """Digits mostly, words sometimes (small numbers)."""
    if n <= 99 and ctx.rng.random() < 0.2:
        return words(n, hyphen=ctx.rng.random() < 0.3)
    return str(n)


def _duration(ctx: _Ctx, m: int) -> tuple[str, str]:
    """-> (noun phrase, adjective phrase) for m minutes: ("half an hour", "half-hour")."""
    rng = ctx.rng
    h, rest = divmod(m, 60)
    nouns: list[str] = []
    adjs: list[str] = []
    n = _num_surface(ctx, m)
    if m < 60 or rng.random() < 0.25:
        unit = "minute" if m == 1 else rng.choice(("minutes", "minutes", "mins", "min", "minute"))
        if m != 1 and unit == "minute":
            unit = "minutes"
        nouns.append(f"{n} {unit}")
        if rng.random() < 0.05 and n.isdigit():
            nouns.append(f"{n}{rng.choice(('min', 'mins', 'm'))}")
        adjs += [f"{n}-minute", f"{n} minute", f"{n} min"]
    if m == 1:
        nouns += ["a minute", "one minute"]
    if m == 30:
        nouns += ["half an hour", "a half hour", "half hour", "30 mins"]
        adjs += ["half-hour", "half hour", "30 minute"]
    if m == 15:
        nouns += ["a quarter of an hour", "quarter of an hour", "a quarter hour"]
        adjs += ["quarter-hour", "15 minute"]
    if m == 45:
        nouns += ["three quarters of an hour", "45 mins"]
    if h >= 1:
        hn = _num_surface(ctx, h) if h > 1 else rng.choice(("1", "one", "an"))
        hu = "hour" if h == 1 else rng.choice(("hours", "hours", "hrs", "hr"))
        if hn == "an":
            hu = "hour"
        if rest == 0:
            nouns += [f"{hn} {hu}"]
            if hn != "an":
                nouns.append(f"{hn}h" if hn.isdigit() and rng.random() < 0.3 else f"{hn} {hu}")
            adjs += [f"{'one' if h == 1 else hn}-hour", f"{'1' if h == 1 else hn} hour"]
            if h == 24:
                nouns += ["a day", "24 hours", "a whole day"]
                adjs += ["24-hour", "day-long"]
        elif rest == 30:
            nouns += [f"{hn} {'hour' if h == 1 else 'hours'} and a half",
                      f"{h}.5 hours", f"{h} and a half hours", f"{h}h30", f"{h} hours 30 minutes"
                      if h > 1 else "1 hour 30 minutes"]
            if h == 1:
                nouns += ["an hour and a half", "one and a half hours", "1.5 hrs"]
            adjs += [f"{m}-minute", f"{m} minute"]
        else:
            mn = _num_surface(ctx, rest)
            nouns += [f"{hn} {hu} and {mn} minutes", f"{hn} {hu} {mn} minutes",
                      f"{h}h{rest:02d}", f"{h} hr {rest} min"]
            adjs += [f"{m}-minute", f"{m} minute"]
    if m >= 1440 and m % 1440 == 0:
        d = m // 1440
        nouns.append(f"{d} days" if d > 1 else "a day")
    if not adjs:
        adjs.append(f"{m} minute")
    return ctx.case(rng.choice(nouns)), ctx.case(rng.choice(adjs))


def _percent(ctx: _Ctx, value: int | None = None) -> tuple[str, int]:
    rng = ctx.rng
    if value is None:
        value = rng.choice((10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100, 15, 35, 45, 65, 85, 5)) \
            if rng.random() < 0.75 else rng.randint(1, 100)
    r = rng.random()
    if r < 0.45:
        s = f"{value}%"
    elif r < 0.7:
        s = f"{value} percent"
    elif r < 0.8:
        s = f"{value} %"
    elif r < 0.9 and value < 100:
        s = f"{words(value, hyphen=rng.random() < 0.3)} percent"
    else:
        s = f"{value} per cent" if value != 100 or rng.random() < 0.5 else "full brightness"
    return ctx.case(s), value


def _temperature(ctx: _Ctx, value: float | None = None) -> tuple[str, float]:
    rng = ctx.rng
    if value is None:
        value = rng.choice((18, 19, 20, 20, 21, 21, 22, 22, 23, 24, 25, 16, 17, 26, 27, 28, 15)) \
            if rng.random() < 0.8 else rng.randint(10, 30) + rng.choice((0, 0.5))
        value = min(value, 30)
    whole = value == int(value)
    v = str(int(value)) if whole else str(value)
    if whole and rng.random() < 0.15 and 0 <= value < 100:
        v = words(int(value), hyphen=rng.random() < 0.4)
    s = v + rng.choice(("", " degrees", " degrees", "°C", " °C", "C", " degrees celsius",
                        " celsius", " deg", " degrees C", "°"))
    if not v[0].isdigit() and not v.startswith("-"):
        s = v + rng.choice((" degrees", "", " degrees celsius"))
    arg = int(value) if whole else value
    return ctx.case(s), arg


def _value(ctx: _Ctx, unit: str) -> tuple[str, float]:
    rng = ctx.rng
    if unit in _TEMPERATURE_UNITS:
        base = {"celsius": (-30, 45), "fahrenheit": (-20, 110), "kelvin": (250, 320)}[unit]
        v: float = rng.randint(*base)
        return (f"minus {-v}" if v < 0 and rng.random() < 0.3 else str(v)), v
    r = rng.random()
    if r < 0.08:
        return rng.choice(("a", "one", "1")), 1
    if r < 0.5:
        v = rng.choice((2, 3, 5, 10, 12, 20, 25, 50, 100, 5, 10, 8, 6, 4, 15, 30, 500, 1000, 250))
    elif r < 0.8:
        v = rng.randint(2, 999)
    else:
        v = round(rng.uniform(0.1, 100), rng.choice((1, 1, 2)))
        if v == int(v):
            v = int(v)
    if isinstance(v, int) and v <= 20 and rng.random() < 0.2:
        return words(v), v
    if v == 0.5 and rng.random() < 0.5:
        return "half a", 0.5
    return str(v), v


def _unit_surface(ctx: _Ctx, unit: str, plural: bool) -> str:
    singular, plurals, abbrevs = _UNIT_WORDS[unit]
    options = (plurals if plural else singular) * 2 + abbrevs
    return ctx.case(ctx.rng.choice(options))

"""Held-out entities, numbers as words, time phrases and unit words.

Which cities, rooms and tasks are held out is a hash of the value (``_heldout_entity``), not a
draw: the split stays the same when the pools grow.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from .common import P


def _heldout_entity(value: str, salt: str, fraction: float = 0.2) -> bool:
    digest = hashlib.sha256(f"{salt}\x00{value}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < fraction * 2**32


def _split_pool(values: Sequence[Any], salt: str) -> dict[str, list[Any]]:
    unique = list(dict.fromkeys(values))
    held = [v for v in unique if _heldout_entity(str(v), salt)]
    return {"train": [v for v in unique if v not in held], "heldout": held}


def _ascii(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def words(n: int, hyphen: bool = False) -> str:
    """0 <= n < 10000 in English words: 25 -> "twenty five" (or "twenty-five")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (("-" if hyphen else " ") + _ONES[ones] if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" and {words(rest, hyphen)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    return f"{words(thousands, hyphen)} thousand" + (f" {words(rest, hyphen)}" if rest else "")


def _tasks() -> list[str]:
    tasks = [f"{v} {p}" for v in P.CONTACT_VERBS for p in P.PEOPLE]
    tasks += [f"buy {x}" for x in P.BUY_ITEMS] + [f"get {x}" for x in P.BUY_ITEMS[:15]]
    tasks += [f"pick up {x}" for x in P.PICKUP_ITEMS] + [f"pay {x}" for x in P.PAY_ITEMS]
    tasks += [f"book {x}" for x in P.BOOK_ITEMS] + list(P.OTHER_TASKS)
    return tasks


def _when_slot(template: str, surface: str) -> str:
    """The surface to put in a template: no "at"/"on" right after "to"/"for" ("for 5pm")."""
    if re.search(r"\b(to|for|till|until) \{when\}", template):
        return _when(surface)
    return surface


def _when(surface: str) -> str:
    for prep in ("at ", "on "):
        if surface.startswith(prep):
            return surface[len(prep):]
    return surface


# canonical unit -> (singular words, plural words, abbreviations) as users write them
_UNIT_WORDS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "m": (["meter", "metre"], ["meters", "metres"], ["m"]),
    "km": (["kilometer", "kilometre"], ["kilometers", "kilometres"], ["km", "kms"]),
    "cm": (["centimeter", "centimetre"], ["centimeters", "centimetres"], ["cm"]),
    "mm": (["millimeter", "millimetre"], ["millimeters", "millimetres"], ["mm"]),
    "mi": (["mile"], ["miles"], ["mi"]),
    "yd": (["yard"], ["yards"], ["yd", "yds"]),
    "ft": (["foot"], ["feet"], ["ft"]),
    "in": (["inch"], ["inches"], []),
    "nmi": (["nautical mile"], ["nautical miles"], ["nmi"]),
    "kg": (["kilogram", "kilo"], ["kilograms", "kilos"], ["kg", "kgs"]),
    "g": (["gram"], ["grams"], ["g"]),
    "mg": (["milligram"], ["milligrams"], ["mg"]),
    "t": (["tonne", "metric ton"], ["tonnes", "metric tons"], []),
    "lb": (["pound"], ["pounds"], ["lb", "lbs"]),
    "oz": (["ounce"], ["ounces"], ["oz"]),
    "st": (["stone"], ["stone", "stones"], []),
    "l": (["liter", "litre"], ["liters", "litres"], ["l", "L"]),
    "ml": (["milliliter", "millilitre"], ["milliliters", "millilitres"], ["ml", "mL"]),
    "m3": (["cubic meter", "cubic metre"], ["cubic meters", "cubic metres"], ["m3", "m³"]),
    "gal": (["gallon"], ["gallons"], ["gal"]),
    "qt": (["quart"], ["quarts"], ["qt"]),
    "pt": (["pint"], ["pints"], ["pt"]),
    "cup": (["cup"], ["cups"], []),
    "fl oz": (["fluid ounce"], ["fluid ounces"], ["fl oz"]),
    "tbsp": (["tablespoon"], ["tablespoons"], ["tbsp"]),
    "tsp": (["teaspoon"], ["teaspoons"], ["tsp"]),
    "m/s": (["meter per second"], ["meters per second", "metres per second"], ["m/s"]),
    "km/h": (["kilometer per hour"], ["kilometers per hour", "kilometres per hour"],
             ["km/h", "kph", "kmh"]),
    "mph": (["mile per hour"], ["miles per hour"], ["mph"]),
    "kn": (["knot"], ["knots"], ["kn", "kt"]),
    "ft/s": (["foot per second"], ["feet per second"], ["ft/s", "fps"]),
    "s": (["second"], ["seconds"], ["s", "sec", "secs"]),
    "ms": (["millisecond"], ["milliseconds"], ["ms"]),
    "min": (["minute"], ["minutes"], ["min", "mins"]),
    "h": (["hour"], ["hours"], ["h", "hr", "hrs"]),
    "day": (["day"], ["days"], []),
    "week": (["week"], ["weeks"], ["wk"]),
    "celsius": (["degree celsius", "celsius"], ["degrees celsius", "celsius"],
                ["°C", "C", "degrees C"]),
    "fahrenheit": (["degree fahrenheit", "fahrenheit"], ["degrees fahrenheit", "fahrenheit"],
                   ["°F", "F", "degrees F"]),
    "kelvin": (["kelvin"], ["kelvin", "kelvins"], ["K"]),
}
_TEMPERATURE_UNITS = ("celsius", "fahrenheit", "kelvin")

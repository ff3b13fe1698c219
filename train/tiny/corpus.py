"""Synthetic function-calling corpus for qwen-edge-tiny (issue #6): seeded and reproducible.

``generate(n, seed=, split=)`` returns conversations in OpenAI chat format (no system message)
over the seven tools of ``examples/home_tools.py``; ``eval_requests(n, seed=)`` returns held-out
conversations cut at the point to score. Tool messages hold exactly what the agent would show
the model (``qwen_edge.agents.agent.ToolResult.content``) for a real call of the tool: the result as
JSON, or ``{"error": "<tool> raised ValueError: <message>"}``.

Canonical choices (everything except the out-of-scope hand-off is deterministic given the
conversation):

- Arguments in the function's signature order; an optional argument only when the user gave it
  (``unit`` when a unit was named, even "celsius"; ``label``; ``brightness``; thermostat ``room``).
- ``city``: the properly capitalized name as written (accents kept if the user typed them,
  "sao paulo" -> "Sao Paulo", "são paulo" -> "São Paulo"). ``room``: lowercase.
- ``set_timer.minutes``: an int ("an hour and a half" -> 90). ``label``: the bare noun as said
  ("for the pasta" -> "pasta").
- ``set_thermostat.temperature``: Celsius as said (int, or float for halves); never converted.
- ``add_reminder.text``: the task as said without a leading "to"; ``when``: the time phrase as
  said, minus a leading "at " or "on " ("at 5pm" -> "5pm", "on friday at 10" -> "friday at 10");
  "in 2 hours" keeps its "in".
- ``convert_units``: the tool's canonical unit keys ("miles" -> "mi", "°F" -> "fahrenheit");
  ``value`` an int when whole.
- ``calculate``: one canonical expression per phrasing: "a times b" -> "a * b", "p% of x" ->
  "x * p / 100", "square root of x" -> "sqrt(x)", "a squared" -> "a ** 2", "a^b" -> "a ** b",
  "half of x" -> "x / 2", "mean of a and b" -> "(a + b) / 2", typed expressions respaced
  ("(3+4)*5" -> "(3 + 4) * 5").
- Final answers: one template per tool, stating the key values of the result (see ``_answer``);
  numbers compact (``_num``: no ".0", conversions to 2 decimals, calculations to 4).
- Tool errors: ``Sorry, I couldn't <action>: <the error message up to its first ";">.``
- Missing required information: one canonical clarifying question per tool (kind "clarify").
- Out of scope (trivia, open-ended tasks, any other language): one of ``oos.HANDOFFS`` drawn
  uniformly at random -- on purpose, so the router sees an uncertain first token there.
"""

import hashlib
import importlib.util
import inspect
import json
import random
import re
import typing
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from qwen_edge.demo import home_tools

_HERE = Path(__file__).resolve().parent


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        msg = f"cannot load {path}"
        raise ImportError(msg)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


P = _load("_tiny_pools", _HERE / "pools.py")
T = _load("_tiny_templates", _HERE / "templates.py")
O = _load("_tiny_oos", _HERE / "oos.py")

# the plain functions (home_tools wraps them in qwen_edge.agents.tools.Tool when qwen_edge is installed)
FUNCTIONS: dict[str, Callable[..., Any]] = {
    getattr(t, "name", getattr(t, "__name__", "")): getattr(t, "fn", t) for t in home_tools.TOOLS}
PARAMS: dict[str, list[str]] = {name: list(inspect.signature(fn).parameters)
                                for name, fn in FUNCTIONS.items()}
# parameters annotated ``float``: the agent passes JSON ints to them as floats (21 -> 21.0)
_FLOAT_PARAMS = {name: {p for p, hint in typing.get_type_hints(fn).items() if hint is float}
                 for name, fn in FUNCTIONS.items()}
KINDS = ("single", "parallel", "followup", "tool_error", "no_tool", "unsupported", "oos", "clarify")
MIX = {"single": 0.40, "parallel": 0.12, "followup": 0.12, "tool_error": 0.04, "no_tool": 0.06,
       "unsupported": 0.06, "oos": 0.14, "clarify": 0.06}
TOOL_MIX = {"get_weather": 0.18, "set_timer": 0.17, "set_lights": 0.17, "set_thermostat": 0.12,
            "add_reminder": 0.12, "convert_units": 0.12, "calculate": 0.12}


@dataclass(frozen=True)
class Example:
    messages: list[dict]  # OpenAI chat format, without a system message
    kind: str
    split: str  # "train" | "heldout"


@dataclass(frozen=True)
class EvalItem:
    """A held-out conversation cut at the point to score.

    ``messages`` ends with a user message (score the next assistant turn: ``expected_calls``, or
    ``expected_text`` when no call is expected) or with tool messages (kind "answer", or
    "tool_error": score the final answer against ``expected_text`` / ``key_values``).
    """

    messages: list[dict]
    kind: str
    expected_calls: list[dict]
    expected_text: str | None
    key_values: list[str]


# -- tool calls and answers ----------------------------------------------------------------------


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


# -- splitting entities and words ---------------------------------------------------------------


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


# -- surface perturbations -----------------------------------------------------------------------

_CASUAL = ["hey", "hey,", "hi,", "ok", "okay,", "so", "um", "uh,", "yo", "hey there,", "hello,",
           "excuse me,", "quick one:", "alright,", "hmm", "oh and", "right,", "ok so", "hiya,",
           "hey assistant,", "question:", "morning!", "sorry,"]
_POLITE = {
    "train": ["could you", "can you", "can u", "please", "pls", "plz", "would you",
              "would you please", "I'd like you to", "I need you to", "I want you to",
              "go ahead and", "kindly", "could you please", "can you please", "hey can you",
              "just", "quickly", "hey, could you", "ok, please", "would you kindly", "pretty please",
              "can ya", "I'd love it if you could", "will you"],
    "heldout": ["would you be so kind as to", "hey buddy, can you", "sorry to bother you but can you",
                "do me a favor and", "mind if I ask you to"],
}
_QUESTION_PREFIX = ("could", "can", "would", "will", "hey can", "hey, could", "do me", "mind",
                    "sorry to", "hey buddy")
_SUFFIX = {
    "train": ["please", "pls", "thanks", "thank you", "thx", "for me", "when you get a chance",
              "if you can", "asap", "right now", "now", "cheers", "ty", "real quick",
              "for me please", "thanks!", "please and thank you", "plz"],
    "heldout": ["if that's ok", "cheers mate", "ta very much", "if poss", "whenever"],
}
_RAMBLE = ["so I was just thinking,", "ok this might be a silly question but", "my hands are full,",
           "before I forget -", "long day today.", "we have guests coming over,",
           "sorry if this is confusing,", "right, so", "I'm in a bit of a rush,",
           "not sure if you can do this but", "quick thing -", "one more thing,"]
_RAMBLE_AFTER = ["I'm making dinner", "we're about to eat", "I'm heading out soon", "I'm in bed already",
                 "my hands are covered in flour", "the kids are asleep", "I'm on the couch",
                 "if that makes sense", "I think", "no rush", "got it?", "ok?"]
_MISSPELL = {
    "weather": ["wether", "whether", "weahter", "waether"], "tomorrow": ["tomorow", "tommorow", "tmrw"],
    "please": ["plz", "pls", "pleas", "plese"], "temperature": ["temprature", "tempature", "temperture"],
    "thermostat": ["thermostate", "thermastat", "termostat"], "reminder": ["remider", "reminer"],
    "remind": ["remnd", "rmind", "remaind"], "timer": ["timmer", "tiemr", "timr"],
    "lights": ["lites", "ligths", "lihgts"], "light": ["lite", "ligth"],
    "convert": ["covert", "convrt", "conver"], "calculate": ["calcualte", "calculte", "caculate"],
    "what's": ["whats", "wats", "wuts"], "what": ["wat", "wht", "whta"], "you": ["u", "yu"],
    "your": ["ur", "yor"], "are": ["r"], "turn": ["trun", "tunr"], "switch": ["swtich", "swich"],
    "set": ["sett", "ste"], "there": ["ther", "thier"], "the": ["teh", "th", "hte"],
    "and": ["adn", "n", "an"], "how": ["hwo", "ho"], "many": ["mnay", "meny"],
    "need": ["ned", "nede"], "forget": ["forgt", "foget"], "raining": ["rainig", "rainning"],
    "umbrella": ["umbrela", "umbrellla"], "brightness": ["brightnes", "brigthness"],
    "degrees": ["degres", "degress"], "heating": ["heatng"], "square": ["sqaure", "squre"],
    "divided": ["devided", "divded"], "multiplied": ["multipled", "multiplyed"],
    "times": ["tims", "timse"], "could": ["cud", "coud"], "would": ["wud", "woud"],
    "thanks": ["thnks", "thanx"], "check": ["chek", "chck"], "outside": ["outsdie", "outide"],
    "right": ["rite", "rigth"], "hello": ["helo", "hallo"], "reminders": ["remiders"],
    "kitchen": ["kitchn"], "minutes": ["minuts", "minites"], "percent": ["precent", "percnet"],
    "countdown": ["coutdown"], "tell": ["tel"], "know": ["kno", "konw"],
}
_KEYS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _neighbor(c: str, rng: random.Random) -> str:
    for row in _KEYS:
        i = row.find(c)
        if i >= 0:
            return row[max(0, i - 1)] if rng.random() < 0.5 or i == len(row) - 1 else row[i + 1]
    return c


def _typo(word: str, rng: random.Random) -> str:
    low = word.lower()
    if low in _MISSPELL and rng.random() < 0.6:
        return rng.choice(_MISSPELL[low])
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]  # swap
    if op == 1:
        return word[:i] + word[i + 1:]  # drop
    if op == 2:
        return word[:i] + word[i] + word[i:]  # double
    return word[:i] + _neighbor(word[i], rng) + word[i + 1:]  # neighbouring key


_WORD = re.compile(r"[A-Za-z']+")


def _perturb_literal(text: str, ctx: "_Ctx") -> str:
    if ctx.typo_rate:
        def sub(m: re.Match[str]) -> str:
            w = m.group(0)
            if ctx.typos_left > 0 and len(w) >= 3 and ctx.rng.random() < ctx.typo_rate:
                ctx.typos_left -= 1
                return _typo(w, ctx.rng)
            return w
        text = _WORD.sub(sub, text)
    if ctx.no_apostrophes:
        text = re.sub(r"(\w)'(\w)", r"\1\2", text)
    return text


_AN = re.compile(r"\b([Aa]) (?=(?:8|11(?!\d)|18(?!\d)|eight|eleven|hour)\w*)")
Pieces = list[tuple[str, bool]]  # (text, is_slot): slots are never perturbed
_SLOT = re.compile(r"\{(\w+)\}")


def _fill(template: str, slots: dict[str, str]) -> tuple[Pieces, str]:
    """-> (pieces, form) for a template with an optional leading form mark."""
    form = template[0] if template[:1] in ("!", "?") else ""
    template = template[len(form):]
    pieces: Pieces = []
    pos = 0
    for m in _SLOT.finditer(template):
        if m.start() > pos:
            pieces.append((template[pos:m.start()], False))
        pieces.append((slots[m.group(1)], True))
        pos = m.end()
    if pos < len(template):
        pieces.append((template[pos:], False))
    return pieces, form


# -- the generation context ----------------------------------------------------------------------


@dataclass
class _Ctx:
    rng: random.Random
    split: str
    lower: bool = False
    typo_rate: float = 0.0
    typos_left: int = 0
    no_apostrophes: bool = False

    def pick(self, table: dict[str, Sequence[Any]] | Sequence[Any]) -> Any:
        seq = table[self.split] if isinstance(table, dict) else table
        return seq[self.rng.randrange(len(seq))]

    def restyle(self) -> None:
        """Choose this message's surface style (case, typos, apostrophes)."""
        r = self.rng.random()
        self.lower = r < 0.3
        self.typo_rate = 0.0 if self.rng.random() < 0.65 else self.rng.choice((0.05, 0.1, 0.2))
        self.typos_left = self.rng.choice((1, 1, 2))
        self.no_apostrophes = self.rng.random() < 0.2

    def case(self, text: str) -> str:
        return text.lower() if self.lower else text


def _finish(ctx: _Ctx, pieces: Pieces, form: str, *, fillers: bool = True) -> str:
    """Join a request's pieces with fillers, typos, casing and end punctuation."""
    rng = ctx.rng
    prefix = suffix = ""
    asks = form == "?"
    if fillers:
        r = rng.random()
        if form == "!" and r < 0.3:
            prefix = ctx.pick(_POLITE)
            asks = asks or prefix.lower().startswith(_QUESTION_PREFIX)
        elif r < 0.42:
            prefix = rng.choice(_CASUAL)
        if rng.random() < 0.05:
            prefix = (rng.choice(_RAMBLE) + " " + prefix).strip()
        if rng.random() < 0.15:
            suffix = ctx.pick(_SUFFIX)
        elif rng.random() < 0.04:
            suffix = rng.choice(_RAMBLE_AFTER)
    out: Pieces = []
    if prefix:
        out.append((prefix + " ", False))
    out += pieces
    if suffix:
        out.append(((", " if rng.random() < 0.4 else " ") + suffix, False))
    parts = []
    for i, (piece, slot) in enumerate(out):
        part = piece
        if not slot:
            part = _perturb_literal(part, ctx)
            if ctx.lower:
                part = part.lower()
            elif i == 0 and rng.random() < 0.7:
                part = part[:1].upper() + part[1:]
        parts.append(part)
    text = _AN.sub(r"\1n ", "".join(parts))
    text = re.sub(r"\s+", " ", text).strip()
    if text[-1:] not in "?!.:)":
        r = rng.random()
        if asks:
            text += "?" if r < 0.55 else "??" if r < 0.6 else ""
        else:
            text += "" if r < 0.55 else "." if r < 0.85 else "!" if r < 0.95 else "..."
    return text


# -- slot values ---------------------------------------------------------------------------------

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


# -- requests -------------------------------------------------------------------------------------


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


# -- conversations --------------------------------------------------------------------------------


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


def _calls_of(message: dict) -> list[dict]:
    return [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
            for c in message.get("tool_calls", [])]


def eval_requests(n: int, *, seed: int, split: str = "heldout") -> list[EvalItem]:
    """``n`` generated conversations, held-out ones by default, cut at a point to score
    (see ``EvalItem``).

    ``split="train"`` draws them from the training templates and entities instead (with a seed
    training did not use): what the model does on phrasings it was taught, as against new ones.
    """
    if split not in ("train", "heldout"):
        msg = f"split must be 'train' or 'heldout' (got {split!r})"
        raise ValueError(msg)
    items = []
    for i in range(n):
        ex = _example(seed, split, i)
        rng = random.Random(f"qwen-edge-tiny-eval:{seed}:{i}")
        msgs = ex.messages
        # cut points: before an assistant turn
        cuts = [j for j, m in enumerate(msgs) if m["role"] == "assistant"]
        last_user = max(j for j, m in enumerate(msgs) if m["role"] == "user")
        if ex.kind in ("no_tool", "unsupported", "oos"):
            j = cuts[-1]
            text = None if ex.kind == "oos" else msgs[j]["content"]
            items.append(EvalItem(msgs[:j], ex.kind, [], text, []))
            continue
        call_cut = next(j for j in cuts if j > last_user)
        if ex.kind == "clarify" and rng.random() < 0.4:
            items.append(EvalItem(msgs[:1], "clarify", [], msgs[1]["content"], []))
        elif rng.random() < 0.55:
            items.append(EvalItem(msgs[:call_cut], ex.kind, _calls_of(msgs[call_cut]), None, []))
        else:
            j = cuts[-1]
            calls = [(c["name"], c["arguments"]) for c in _calls_of(msgs[call_cut])]
            results = []
            for name, args in calls:
                _, out, error = run_tool(name, args)
                results.append((out, error))
            text, keys = answer(calls, results)
            kind = "tool_error" if ex.kind == "tool_error" else "answer"
            items.append(EvalItem(msgs[:j], kind, [], text, keys))
    return items

"""How a request is written: fillers, typos, casing, punctuation, and the generation context.

Slots (the values a tool call must copy) are never perturbed: only the literal text around
them is, so the expected arguments stay exactly what the request says.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


def _perturb_literal(text: str, ctx: _Ctx) -> str:
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

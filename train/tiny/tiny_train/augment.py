"""Augmentations of the corpus: copied arguments, distractor words, echo and spelling tasks.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence

import corpus

# -- copy augmentation ----------------------------------------------------------------------
# The corpus's entity pools are finite; people will name cities, rooms and reminders the
# generator never saw. Rewriting some conversations with random words from the tokenizer's own
# vocabulary gives those tokens trained embeddings and teaches the model to copy *any* word
# from the request into the arguments.

_COPY_ARGS = {"get_weather": "city", "add_reminder": "text", "set_timer": "label",
              "set_lights": "room"}

def random_word(rng: random.Random, words: list[str], pieces: Sequence[str] = (),
                share: float = 0.0) -> str:
    """A random vocabulary word; with probability ``share`` followed by 1-2 random pieces, so
    that it spans several tokens like most names the model never saw ("garden" + "uite").
    ``share=0`` draws exactly what the earlier single-token version drew."""
    word = rng.choice(words)
    if share and pieces and rng.random() < share:
        word += "".join(rng.choice(pieces) for _ in range(rng.choice((1, 1, 2))))
    return word


def augment_copy(example, rng: random.Random, words: list[str], pieces: Sequence[str] = (),
                 pseudo_share: float = 0.0):
    """``example`` with its one copied string argument replaced by 1-3 random words, or None.

    ``pseudo_share``: the share of those words made longer with word pieces (``random_word``).
    """
    msgs = example.messages
    if example.kind != "single" or len(msgs) != 4 or len(msgs[1].get("tool_calls", [])) != 1:
        return None
    call = msgs[1]["tool_calls"][0]["function"]
    key = _COPY_ARGS.get(call["name"])
    old = call["arguments"].get(key) if key else None
    if not isinstance(old, str) or not old:
        return None
    user = msgs[0]["content"]
    new = " ".join(random_word(rng, words, pieces, pseudo_share)
                   for _ in range(rng.choice((1, 1, 2, 2, 3))))
    if key == "city":
        new = new.title()
    if old in user:
        user = user.replace(old, new)
    elif old.lower() in user:
        user = user.replace(old.lower(), new.lower())
        new = new if key != "city" else new.title()
    else:
        return None
    args = {**call["arguments"], key: new}
    content, out, error = corpus.run_tool(call["name"], args)
    text, _ = corpus.answer([(call["name"], args)], [(out, error)])
    return corpus.Example(messages=[
        {"role": "user", "content": user},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": call["name"], "arguments": args}}]},
        {"role": "tool", "content": content},
        {"role": "assistant", "content": text}], kind="copy", split=example.split)


def distractor_words(words: list[str], examples: list, *, max_count: int = 4) -> list[str]:
    """``words`` minus the corpus's own request vocabulary (any word its user messages use more
    than ``max_count`` times): random words that are never a cue for a tool or an argument."""
    counts: dict[str, int] = {}
    for ex in examples:
        for m in ex.messages:
            if m["role"] == "user":
                for w in re.findall(r"[a-z]+", m["content"].lower()):
                    counts[w] = counts.get(w, 0) + 1
    return [w for w in words if counts.get(w, 0) <= max_count]


_NOISE_JOINS = (", ", ". ", " - ", ": ", "! ", "... ", " ")


def augment_noise(example, rng: random.Random, words: list[str]):
    """``example`` with 1-4 random words before and/or after its request, or None.

    The arguments stay the same. Unfamiliar words at the start of a request (often
    capitalized, like a city) are what the model quoted instead of the entity on requests
    phrased unlike its templates; this teaches it to find an argument by the words that cue
    it, not by its position or its capital letter.
    """
    msgs = example.messages
    if example.kind not in ("single", "parallel", "copy") or msgs[0]["role"] != "user":
        return None

    def chatter() -> str:
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
        return text.title() if rng.random() < 0.2 else text

    user, r = msgs[0]["content"], rng.random()
    if r < 0.7:
        before = chatter()
        if rng.random() < 0.6:
            before = before[:1].upper() + before[1:]
        user = before + rng.choice(_NOISE_JOINS) + user
    if r >= 0.45:
        user = user + rng.choice(_NOISE_JOINS) + chatter()
    return corpus.Example(messages=[{**msgs[0], "content": user}, *msgs[1:]], kind=example.kind,
                          split=example.split)


_ECHO_ASKS = ("Repeat after me: ", "Say exactly: ", "Echo this: ", "Copy this text: ",
              "repeat: ", "say ")


def echo_examples(n: int, rng: random.Random, words: list[str], pieces: Sequence[str] = (),
                  pseudo_share: float = 0.0) -> list:
    """Pure copying (``Repeat after me: X`` -> ``X``): the mechanism every argument needs.

    A small model learns to copy from context (induction heads) late and suddenly when
    copying is a rare part of the loss; a share of pure copy tasks brings it early.
    """
    out = []
    for _ in range(n):
        seq = " ".join(random_word(rng, words, pieces, pseudo_share)
                       for _ in range(rng.randint(1, 10)))
        if rng.random() < 0.4:
            seq = seq.title()
        out.append(corpus.Example(messages=[
            {"role": "user", "content": rng.choice(_ECHO_ASKS) + seq},
            {"role": "assistant", "content": seq}], kind="echo", split="train"))
    return out


_SPELL_ASKS = ("Quote each word: ", "Put these in a JSON list: ", "List these words: ",
               "As a list: ")


def spelling_examples(n: int, rng: random.Random, words: list[str], pieces: Sequence[str] = (),
                      pseudo_share: float = 0.0) -> list:
    """Spelling lessons (``Quote each word: staircase Hobart`` -> ``["staircase", "Hobart"]``).

    In a request a word follows a space (`` staircase``, one token); in a JSON argument or a
    quoted value it starts bare after the quote (``st`` ``air`` ``case``). Copying such a word
    needs its spelling, which only a pre-trained model knows; these lessons put the request's
    form and the quoted form side by side for random vocabulary words, lowercase and
    capitalized, in the JSON context where a copied argument is written.
    """
    out = []
    for _ in range(n):
        seq = [random_word(rng, words, pieces, pseudo_share) for _ in range(rng.randint(2, 6))]
        seq = [w.title() if rng.random() < 0.4 else w for w in seq]
        out.append(corpus.Example(messages=[
            {"role": "user", "content": rng.choice(_SPELL_ASKS) + " ".join(seq)},
            {"role": "assistant", "content": json.dumps(seq)}], kind="spell", split="train"))
    return out

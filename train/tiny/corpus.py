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

The code lives in ``tiny_corpus/``, one subsystem per module: ``common`` (tools, tables, result
types), ``answers`` (real tool calls and canonical answers), ``entities`` (held-out entities,
numbers as words, times, units), ``surface`` (fillers, typos, casing), ``slots`` (slot values
and their surface forms), ``tool_requests`` (one request per tool), ``conversations`` (one maker
per kind, ``generate``) and ``evaluation`` (``eval_requests``). This module is the name the
trainers and evaluations import (``import corpus``); what it generates is pinned by
tests/test_tiny_fingerprints.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # tiny_corpus/ sits next to this file
    sys.path.insert(0, _HERE)

from tiny_corpus.answers import answer, call_args, run_tool
from tiny_corpus.common import FUNCTIONS, KINDS, MIX, PARAMS, TOOL_MIX, EvalItem, Example, O, P, T
from tiny_corpus.conversations import _FOLLOWUPS, _SAME_TOOL, generate, quote_answers
from tiny_corpus.entities import _ONES, _TENS, _UNIT_WORDS, _ascii, _tasks, _when, words
from tiny_corpus.evaluation import eval_requests
from tiny_corpus.slots import _POOLS, _city
from tiny_corpus.surface import _POLITE, _SUFFIX, Pieces

from qwen_edge.demo import home_tools

# The private names are tables and helpers that tests/test_tiny_corpus.py checks.
__all__ = [
    "FUNCTIONS",
    "KINDS",
    "MIX",
    "PARAMS",
    "TOOL_MIX",
    "_FOLLOWUPS",
    "_ONES",
    "_POLITE",
    "_POOLS",
    "_SAME_TOOL",
    "_SUFFIX",
    "_TENS",
    "_UNIT_WORDS",
    "EvalItem",
    "Example",
    "O",
    "P",
    "Pieces",
    "T",
    "_ascii",
    "_city",
    "_tasks",
    "_when",
    "answer",
    "call_args",
    "eval_requests",
    "generate",
    "home_tools",
    "quote_answers",
    "run_tool",
    "words",
]

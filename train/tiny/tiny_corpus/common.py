"""What every part of the corpus shares: the tools, the tables, the mix, the result types.

The word tables (``pools.py``, ``templates.py``, ``oos.py``, next to ``corpus.py``) are loaded by
path under private names, once, so that every module sees the same objects and none of their
names can shadow an installed module.
"""

from __future__ import annotations

import importlib.util
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from qwen_edge.demo import home_tools

_HERE = Path(__file__).resolve().parents[1]  # train/tiny


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

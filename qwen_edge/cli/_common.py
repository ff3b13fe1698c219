"""Flags shared by the generating subcommands (names match the Python API)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_model_flags", "add_sampling_flags", "sampling_options"]


def add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("package", help="model package folder (from `qwen-edge export`)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: cores)")
    p.add_argument("--max-context", type=int, default=None,
                   help="KV cache tokens to reserve (default: min(package, 4096))")
    p.add_argument("--tool-format", choices=("hermes", "qwen3_xml"), default=None,
                   help="tool-call format the model writes (default: the package's)")


def add_sampling_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("generation")
    g.add_argument("--max-tokens", type=int, default=None)
    g.add_argument("--temperature", type=float, default=None, help="0 = greedy")
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--min-p", type=float, default=None)
    g.add_argument("--repetition-penalty", type=float, default=None)
    g.add_argument("--presence-penalty", type=float, default=None)
    g.add_argument("--frequency-penalty", type=float, default=None)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--stop", action="append", default=None, help="stop string (repeatable)")
    g.add_argument("--speculative-tokens", type=int, default=None,
                   help="n-gram draft tokens per step (same output, fewer passes)")
    g.add_argument("--thinking-budget", type=int, default=None,
                   help="most tokens inside <think> (Qwen3 / Qwen3.5); then </think> is forced")
    g.add_argument("--no-thinking", dest="enable_thinking", action="store_const", const=False,
                   default=None, help="switch thinking off in the chat template (Qwen3 / "
                   "Qwen3.5 enable_thinking=False)")
    c = g.add_mutually_exclusive_group()
    c.add_argument("--json-schema", default=None, help="JSON schema file (or inline JSON)")
    c.add_argument("--regex", default=None, help="constrain the output to this regex")
    c.add_argument("--grammar", default=None, help="Lark grammar file")


_NAMES = ("max_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty",
          "presence_penalty", "frequency_penalty", "seed", "stop", "speculative_tokens", "regex",
          "thinking_budget", "enable_thinking")


def sampling_options(args: argparse.Namespace) -> dict[str, Any]:
    """The flags the user set, as keyword arguments for ``Model.generate``."""
    options = {name: getattr(args, name) for name in _NAMES if getattr(args, name) is not None}
    if args.json_schema is not None:
        text = args.json_schema
        path = Path(text)
        options["json_schema"] = json.loads(path.read_text() if path.is_file() else text)
    if args.grammar is not None:
        options["grammar"] = Path(args.grammar).read_text()
    return options

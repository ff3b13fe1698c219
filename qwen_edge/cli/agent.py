"""``qwen-edge agent PKG --tools FILE.py``: an interactive agent over the tools in a Python file.

Every ``Tool`` object (from ``@qwen_edge.agents.tools.tool``) found in the file is offered; with
``--confirm`` each call asks on the terminal first; ``--audit PATH`` records every call.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from ._common import add_model_flags, add_sampling_flags, sampling_options

__all__ = ["add_parser", "load_tools", "run"]


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "agent", help="interactive function-calling agent over the tools in a Python file",
        description="Chat with an agent that calls the @tool functions defined in FILE.py. "
        "Calls are constrained to valid JSON for the tool's schema; results go back to the "
        "model. Commands: /reset, /quit.",
    )
    add_model_flags(p)
    p.add_argument("--tools", required=True, help="Python file defining @tool functions")
    p.add_argument("--system", default=None, help="system message")
    p.add_argument("--confirm", action="store_true", help="ask before every tool call")
    p.add_argument("--audit", default=None, help="SQLite audit log of every call")
    p.add_argument("--max-steps", type=int, default=8)
    p.add_argument("--tool-timeout", type=float, default=30.0)
    add_sampling_flags(p)
    p.set_defaults(run=run)


def load_tools(path: str) -> list[Any]:
    """Every ``Tool`` defined in a Python file (``TOOLS`` if the file lists them)."""
    from ..agents.tools import Tool
    from ..errors import ConfigError

    file = Path(path)
    if not file.is_file():
        msg = f"{path}: no such tools file"
        raise ConfigError(msg)
    spec = importlib.util.spec_from_file_location(f"_qwen_edge_tools_{file.stem}", file)
    if spec is None or spec.loader is None:
        msg = f"{path}: not a Python file"
        raise ConfigError(msg)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    listed = getattr(module, "TOOLS", None)
    tools = list(listed) if listed is not None else [
        v for v in vars(module).values() if isinstance(v, Tool)]
    if not tools:
        msg = f"{path}: defines no @tool functions"
        raise ConfigError(msg)
    return tools


def run(args: argparse.Namespace) -> int:
    from .. import load
    from ..agents.agent import Agent, TextEvent, ToolCallEvent, ToolResultEvent
    from ..agents.audit import AuditLog
    from ..agents.permissions import Policy, confirm_on_terminal

    tools = load_tools(args.tools)
    model = load(args.package, threads=args.threads, max_context=args.max_context,
                 tool_format=args.tool_format)
    policy = Policy(default="confirm", confirm=confirm_on_terminal()) if args.confirm else None
    audit = AuditLog(args.audit) if args.audit else None
    agent = Agent(model, tools, system=args.system, max_steps=args.max_steps,
                  tool_timeout=args.tool_timeout, policy=policy, audit=audit,
                  **sampling_options(args))
    names = ", ".join(t.name for t in agent.tools.values())
    print(f"tools: {names}\n/reset starts over, /quit leaves", file=sys.stderr)  # noqa: T201
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            return 0
        if line in ("/quit", "/exit"):
            return 0
        if line == "/reset":
            agent.reset()
            continue
        if not line:
            continue
        for event in agent.stream(line):
            if isinstance(event, TextEvent):
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, ToolCallEvent):
                print(f"\n[call] {event.call.name}({event.call.arguments})",  # noqa: T201
                      file=sys.stderr)
            elif isinstance(event, ToolResultEvent):
                r = event.result
                shown = f"error: {r.error}" if r.error else r.content[:200]
                print(f"[result] {shown}", file=sys.stderr)  # noqa: T201
        sys.stdout.write("\n")

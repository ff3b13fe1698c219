"""The ``qwen-edge`` command: one console script, one module per subcommand.

Each subcommand module has ``add_parser(subparsers)`` and ``run(args) -> int`` and imports its
heavy dependencies inside ``run``, so ``qwen-edge --help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..errors import QwenEdgeError
from . import (
    agent,
    audit,
    bench,
    chat,
    demo,
    export,
    inspect,
    keygen,
    publish,
    run,
    serve,
    sign,
    store,
    synth,
    verify,
)

__all__ = ["main"]

_COMMANDS = (demo, run, chat, agent, serve, bench, export, synth, inspect, audit, keygen, sign,
             verify, publish, store)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwen-edge",
        description="On-device inference SDK for small Qwen models.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 error, 2 usage)."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.run(args))
    except QwenEdgeError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)  # noqa: T201
        return 130

"""``qwen-edge run PKG "prompt" [--chat]``: generate and stream to stdout."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from ._common import add_model_flags, add_sampling_flags, sampling_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="generate from a prompt, streaming to stdout",
        description="Generate text from a prompt and stream it to stdout. With --chat the "
        "prompt is a user message rendered with the package's chat template, and a thinking "
        "model's thought goes to stderr (--no-thinking switches it off).",
    )
    add_model_flags(p)
    p.add_argument("prompt", help="the prompt ('-' reads stdin)")
    p.add_argument("--chat", action="store_true", help="treat the prompt as a user message")
    p.add_argument("--system", default=None, help="system message (with --chat)")
    p.add_argument("--stats", action="store_true", help="print timings to stderr")
    add_sampling_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import load

    text = sys.stdin.read() if args.prompt == "-" else args.prompt
    model = load(args.package, threads=args.threads, max_context=args.max_context,
                 tool_format=args.tool_format)
    prompt: Any = text
    if args.chat:
        prompt = ([{"role": "system", "content": args.system}] if args.system else [])
        prompt.append({"role": "user", "content": text})
    session = model.session()
    options = sampling_options(args)
    # (thought, text, finish_reason) per piece: with --chat the thought goes to stderr
    pieces: Iterator[tuple[str | None, str | None, str | None]] = (
        ((d.reasoning, d.content, d.finish_reason)
         for d in session.stream_chat(prompt, **options)) if args.chat
        else ((None, c.text, c.finish_reason) for c in session.stream_chunks(prompt, **options)))
    for thought, text, finish in pieces:
        _write(sys.stderr, thought)
        _write(sys.stdout, text)
        if finish is not None:
            sys.stdout.write("\n")
            if args.stats:
                print(f"[finish: {finish}]", file=sys.stderr)  # noqa: T201
    return 0


def _write(stream: TextIO, text: str | None) -> None:
    if text:
        stream.write(text)
        stream.flush()

"""``qwen-edge run PKG "prompt" [--chat]``: generate and stream to stdout."""

from __future__ import annotations

import argparse
import sys
from typing import Any

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
    if args.chat:  # the chat path: the thought goes to stderr, the answer to stdout
        for delta in session.stream_chat(prompt, **sampling_options(args)):
            if delta.reasoning:
                sys.stderr.write(delta.reasoning)
                sys.stderr.flush()
            if delta.content:
                sys.stdout.write(delta.content)
                sys.stdout.flush()
            if delta.finish_reason is not None:
                sys.stdout.write("\n")
                if args.stats:
                    print(f"[finish: {delta.finish_reason}]", file=sys.stderr)  # noqa: T201
        return 0
    for chunk in session.stream_chunks(prompt, **sampling_options(args)):
        if chunk.text:
            sys.stdout.write(chunk.text)
            sys.stdout.flush()
        if chunk.finish_reason is not None:
            sys.stdout.write("\n")
            if args.stats:
                print(f"[finish: {chunk.finish_reason}]", file=sys.stderr)  # noqa: T201
    return 0

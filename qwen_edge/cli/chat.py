"""``qwen-edge chat PKG``: an interactive REPL that keeps the conversation's KV cache."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ._common import add_model_flags, add_sampling_flags, sampling_options

__all__ = ["add_parser", "run"]

HELP = "commands: /reset (new conversation), /system TEXT (set the system message), /quit"


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "chat", help="interactive chat (history kept in the KV cache)",
        description="Chat interactively. Each turn reuses the cached conversation prefix, so "
        "only the new message is prefilled. " + HELP,
    )
    add_model_flags(p)
    p.add_argument("--system", default=None, help="initial system message")
    add_sampling_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import load

    model = load(args.package, threads=args.threads, max_context=args.max_context,
                 tool_format=args.tool_format)
    session = model.session()
    options = sampling_options(args)
    system = args.system
    messages: list[dict[str, str]] = []
    print(HELP, file=sys.stderr)  # noqa: T201
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            return 0
        if not line:
            continue
        if line in ("/quit", "/exit"):
            return 0
        if line == "/reset":
            messages = []
            session.reset()
            print("(conversation reset)", file=sys.stderr)  # noqa: T201
            continue
        if line.startswith("/system"):
            system = line[len("/system"):].strip() or None
            messages = []
            print("(system message set; conversation reset)", file=sys.stderr)  # noqa: T201
            continue
        messages.append({"role": "user", "content": line})
        prompt = ([{"role": "system", "content": system}] if system else []) + messages
        start = time.perf_counter()
        reply, tokens, cached, first = [], 0, 0, None
        for delta in session.stream_chat(prompt, **options):
            if delta.logprobs:
                tokens += len(delta.logprobs)
                first = first or time.perf_counter()
            if delta.reasoning:  # the thought on stderr, the answer on stdout
                sys.stderr.write(delta.reasoning)
                sys.stderr.flush()
            if delta.content:
                reply.append(delta.content)
                sys.stdout.write(delta.content)
                sys.stdout.flush()
        elapsed = time.perf_counter() - start
        cached = len(session.tokens)
        messages.append({"role": "assistant", "content": "".join(reply)})
        decode_s = time.perf_counter() - (first or start)
        rate = (tokens - 1) / decode_s if tokens > 1 and decode_s > 0 else 0.0
        ttft = (first or start) - start
        print(f"\n[{tokens} tokens, {rate:.1f} tok/s, first token {ttft * 1000:.0f} ms, "  # noqa: T201
              f"{elapsed:.1f} s, {cached} tokens in cache]", file=sys.stderr)

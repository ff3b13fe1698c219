"""``qwen-edge demo``: the shipped qwen-edge-tiny model calling tools, offline.

A scripted session (or ``--interactive``) with the seven smart-home tools: tool calls are
shown as they happen, and a request the router would escalate goes to ``--server`` when one
is given, else is reported as "would escalate; no server configured" with the local answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

SCRIPT = (
    "What's the weather like in Lisbon?",
    "turn the kitchen lights on at 40% and set a timer for 12 minutes",
    "remind me to water the plants tomorrow at 8am",
    "How many km is 26.2 miles?",
    "Who wrote the novel War and Peace?",
)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo", help="run the shipped demo model with smart-home tools (offline)",
        description=__doc__.splitlines()[0])
    p.add_argument("--interactive", action="store_true", help="type your own requests")
    p.add_argument("--server", default=None,
                   help="OpenAI-compatible base URL for escalations, e.g. http://gpu:8000/v1")
    p.add_argument("--server-model", default="default", help="model name on the server")
    p.add_argument("--api-key", default=None, help="server API key (or OPENAI_API_KEY)")
    p.add_argument("--package", default=None,
                   help="another model package instead of the shipped qwen-edge-tiny")
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import os

    import qwen_edge
    from qwen_edge.agents.agent import Agent
    from qwen_edge.default_model import DEFAULT_MODEL, DEFAULT_SYSTEM, ROUTING_THRESHOLD
    from qwen_edge.demo import home_tools
    from qwen_edge.routing import Router, RoutingPolicy

    out = sys.stdout
    t0 = time.perf_counter()
    if args.package:
        model = qwen_edge.load(args.package, threads=args.threads)
        name = args.package
    else:
        model = qwen_edge.load_default(threads=args.threads)
        name = DEFAULT_MODEL
    remote = None
    if args.server:
        remote = qwen_edge.Remote(args.server, args.server_model,
                                  api_key=args.api_key or os.environ.get("OPENAI_API_KEY"))
    router = Router(model, remote, policy=RoutingPolicy(threshold=ROUTING_THRESHOLD))
    agent = Agent(model, home_tools.TOOLS, system=DEFAULT_SYSTEM, remote=router,
                  max_steps=4, max_tokens=128, temperature=0.0)
    size = model.package.nbytes / 1e6
    where = f"escalations go to {args.server}" if args.server else "no server configured"
    print(f"qwen-edge demo: {name} ({size:.1f} MB) loaded in "
          f"{time.perf_counter() - t0:.2f} s; offline; {where}.", file=out)
    print("Tools: " + ", ".join(t.name for t in home_tools.TOOLS), file=out)
    if args.interactive:
        print("Type a request (/reset to forget the conversation, Ctrl-D to quit).", file=out)
        for line in sys.stdin:
            request = line.strip()
            if request == "/reset":
                agent.reset()
                continue
            if request:
                _turn(agent, request, out)
        return 0
    for request in SCRIPT:
        agent.reset()
        _turn(agent, request, out)
    return 0


def _turn(agent: Any, request: str, out: TextIO) -> None:
    from qwen_edge.agents.agent import FinalEvent, TextEvent, ToolCallEvent, ToolResultEvent

    print(f"\n> {request}", file=out, flush=True)
    start = time.perf_counter()
    text: list[str] = []
    for event in agent.stream(request):
        if isinstance(event, ToolCallEvent):
            args = json.dumps(event.call.arguments, ensure_ascii=False)
            print(f"  -> {event.call.name}({args})", file=out, flush=True)
        elif isinstance(event, ToolResultEvent):
            print(f"  <- {event.result.content}", file=out, flush=True)
        elif isinstance(event, TextEvent):
            text.append(event.text)
        elif isinstance(event, FinalEvent):
            result = event.result
            last = result.steps[-1] if result.steps else None
            answer = result.text.strip() or "".join(text).strip()
            if last is not None and last.route == "local-fallback":
                print(f"  [router] {last.route_reason}", file=out)
                print(f"  local answer: {answer}", file=out)
            elif last is not None and last.route == "remote":
                print(f"  [router] escalated: {last.route_reason}", file=out)
                print(f"  server answer: {answer}", file=out)
            else:
                print(f"  {answer}", file=out)
            tokens = sum(s.completion_tokens for s in result.steps)
            print(f"  ({len(result.steps)} step(s), {tokens} tokens, "
                  f"{time.perf_counter() - start:.2f} s)", file=out, flush=True)

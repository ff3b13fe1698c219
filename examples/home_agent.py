"""A home-automation agent, offline: the model calls the tools in home_tools.py.

    python examples/home_agent.py PKG "Turn on the kitchen lights and set a 10 minute timer"

PKG is a model package (``qwen-edge export``). With a random-weight package the calls are still
valid (decoding is constrained to each tool's schema); only their content is noise.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # for home_tools next to this file

import home_tools

import qwen_edge
from qwen_edge.agents.agent import Agent, TextEvent, ToolCallEvent, ToolResultEvent


def main(package: str, request: str, max_steps: int = 4) -> qwen_edge.agents.agent.AgentResult:
    model = qwen_edge.load(package)
    agent = Agent(model, home_tools.TOOLS, system="You control a smart home. Use the tools.",
                  max_steps=max_steps, max_tokens=256)
    for event in agent.stream(request):
        if isinstance(event, TextEvent):
            print(event.text, end="", flush=True)
        elif isinstance(event, ToolCallEvent):
            print(f"\n-> {event.call.name}({event.call.arguments})")
        elif isinstance(event, ToolResultEvent):
            print(f"<- {event.result.content}")
    print()
    return agent.run("Thanks!", tool_choice="none")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "Turn on the kitchen lights")

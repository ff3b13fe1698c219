"""A field-service agent, offline: look up a device manual, log a reading, with an audit log.

    python examples/field_agent.py PKG "Pump P-100 shows error E3, what do I do?" [audit.db]

Every call is checked by a policy (logging readings needs confirmation: here auto-approved)
and recorded in an append-only SQLite audit log; ``qwen-edge audit audit.db`` lists it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # for field_tools next to this file

import field_tools

import qwen_edge
from qwen_edge.agents.agent import Agent
from qwen_edge.agents.audit import AuditLog
from qwen_edge.agents.permissions import Policy


def main(package: str, request: str, audit_path: str = "field_audit.db") -> int:
    model = qwen_edge.load(package)
    policy = Policy(default="allow", rules={"log_reading": "confirm"},
                    confirm=lambda name, args: True)  # noqa: ARG005  (a real app asks the technician)
    with AuditLog(audit_path) as audit:
        agent = Agent(model, field_tools.TOOLS, system="You assist field technicians.",
                      policy=policy, audit=audit, max_steps=4, max_tokens=256)
        result = agent.run(request)
        for step in result.steps:
            for call, res in zip(step.tool_calls, step.results, strict=False):
                print(f"{call.name}({call.arguments}) -> {res.error or res.content}")
        print(result.text)
        return len(audit.query(run_id=agent.run_id))


if __name__ == "__main__":
    main(*sys.argv[1:4])

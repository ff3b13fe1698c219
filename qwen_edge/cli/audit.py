"""``qwen-edge audit LOG``: list and filter an agent's audit log (a table, or --json lines);
``--verify`` checks its hash chain instead and names the first broken record."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser", "run"]

# Kept in sync with qwen_edge.agents.audit.DECISIONS by a test; not imported so --help stays instant.
_DECISIONS = ("allow", "deny", "confirm", "confirm-approved", "confirm-denied", "confirm-edited")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"{text!r}: must be an integer >= 1"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "audit", help="list the tool calls recorded in an audit log",
        description="List the records of an agent's audit log (SQLite), oldest first. "
        "Filters combine with AND.",
    )
    p.add_argument("log", help="audit log file (SQLite)")
    p.add_argument("--tool", default=None, help="tool name or glob pattern (e.g. 'set_*')")
    p.add_argument("--decision", default=None, choices=_DECISIONS,
                   help="permission outcome; 'confirm' matches every confirm-* outcome")
    p.add_argument("--since", default=None,
                   help="at or after this UTC time (ISO 8601, e.g. 2025-01-31T12:00:00Z)")
    p.add_argument("--until", default=None, help="before this UTC time (ISO 8601)")
    p.add_argument("--run-id", default=None, help="one agent run")
    p.add_argument("--event", default=None, help="event kind: tool_call or escalation")
    p.add_argument("--errors", action="store_true", help="only records with an error")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="only the N most recent matching records")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--verify", action="store_true",
                   help="check the hash chain instead of listing: exit 0 and print the record "
                   "count and head hash when intact, exit 1 naming the first broken record")
    p.add_argument("--head", default=None, metavar="HASH",
                   help="with --verify: a head hash from an earlier --verify, kept elsewhere; "
                   "detects records cut from the end and a rewritten chain")
    p.set_defaults(run=run)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _table(records: list[Any]) -> str:
    header = (f"{'id':>6}  {'time (UTC)':<23}  {'event':<10}  {'run':<10}  {'step':>4}  "
              f"{'tool':<18}  {'decision':<16}  {'bytes':>7}  {'ms':>8}  {'remote':<6}  "
              "arguments / error")
    lines = [header]
    for r in records:
        detail = (f"error: {r.error}" if r.error is not None
                  else json.dumps(r.arguments, ensure_ascii=False, sort_keys=True))
        lines.append(
            f"{r.id:>6}  {r.time[:23].replace('T', ' '):<23}  {_clip(r.event, 10):<10}  "
            f"{_clip(r.run_id or '-', 10):<10}  {'-' if r.step is None else r.step:>4}  "
            f"{_clip(r.tool or '-', 18):<18}  {r.decision or '-':<16}  "
            f"{'-' if r.result_nbytes is None else r.result_nbytes:>7}  "
            f"{'-' if r.duration_ms is None else f'{r.duration_ms:.1f}':>8}  "
            f"{'yes' if r.remote else 'no':<6}  {_clip(detail, 60)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..agents.audit import AuditLog

    if args.head is not None and not args.verify:
        print("error: --head needs --verify", file=sys.stderr)  # noqa: T201
        return 2
    if args.verify:
        with AuditLog(args.log, create=False) as log:
            check = log.verify(head=args.head)  # AuditTamperedError: "error: ..." and exit 1
        if args.json:
            print(json.dumps({"ok": True, "records": check.records,  # noqa: T201
                              "head": check.head}))
        else:
            print(f"OK {args.log}: {check.records} records, hash chain intact, "  # noqa: T201
                  f"head {check.head}")
        return 0
    with AuditLog(args.log, create=False) as log:
        records = log.query(tool=args.tool, decision=args.decision, since=args.since,
                            until=args.until, run_id=args.run_id, event=args.event,
                            errors_only=args.errors, limit=args.limit)
    if args.json:
        for record in records:
            print(json.dumps(record.to_dict(), ensure_ascii=False))  # noqa: T201
        return 0
    if not records:
        print("no matching records", file=sys.stderr)  # noqa: T201
        return 0
    print(_table(records))  # noqa: T201
    return 0

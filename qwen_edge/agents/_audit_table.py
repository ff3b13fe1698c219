"""The audit log's table: its SQL schema, the ``AuditRecord`` row and the row encoding.

Everything here is about one row: which fields a record may hold (``_validate``), how values
reach SQLite (JSON with ``repr`` for the rest, UTF-8 with lone surrogates escaped) and come
back (``_from_row``), and the times ``query`` accepts. ``audit.AuditLog`` owns the connection,
the chain and the redaction; a schema change starts here (and bumps ``_SCHEMA_VERSION``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from .._validate import check, is_int
from ..errors import ConfigError

__all__ = ["DECISIONS", "EVENTS", "AuditRecord"]

EVENTS = ("tool_call", "escalation")
"""Known ``event`` kinds. The column is free text, so a new kind needs no migration."""

DECISIONS = ("allow", "deny", "confirm-approved", "confirm-denied", "confirm-edited")
"""Outcomes of a tool call's permission check (``Verdict.outcome`` in ``qwen_edge.agents.permissions``)."""

_SCHEMA_VERSION = 2  # 2: prev_hash and hash (the chain); 1: without them (still readable)
_TABLE = "audit_log"
_V1_COLUMNS = ("id", "time", "unix_time", "event", "run_id", "step", "tool", "arguments",
               "decision", "result_nbytes", "duration_ms", "error", "remote")
_COLUMNS = (*_V1_COLUMNS, "prev_hash", "hash")
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {_TABLE} (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    time          TEXT    NOT NULL,  -- UTC ISO 8601 with ms: 2025-01-31T12:00:00.123+00:00
    unix_time     REAL    NOT NULL,  -- the same instant in seconds since the epoch
    event         TEXT    NOT NULL,  -- 'tool_call' | 'escalation'
    run_id        TEXT,
    step          INTEGER,
    tool          TEXT,
    arguments     TEXT,              -- JSON
    decision      TEXT,              -- one of DECISIONS for tool calls
    result_nbytes INTEGER,
    duration_ms   REAL,
    error         TEXT,
    remote        INTEGER NOT NULL CHECK (remote IN (0, 1)),
    prev_hash     TEXT    NOT NULL,  -- the hash of the record before (GENESIS_HASH first)
    hash          TEXT    NOT NULL   -- record_hash() of this row
);
CREATE INDEX IF NOT EXISTS {_TABLE}_unix_time ON {_TABLE}(unix_time);
CREATE INDEX IF NOT EXISTS {_TABLE}_run_id ON {_TABLE}(run_id);
CREATE TRIGGER IF NOT EXISTS {_TABLE}_no_update BEFORE UPDATE ON {_TABLE}
BEGIN SELECT RAISE(ABORT, '{_TABLE} is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER IF NOT EXISTS {_TABLE}_no_delete BEFORE DELETE ON {_TABLE}
BEGIN SELECT RAISE(ABORT, '{_TABLE} is append-only: DELETE is not allowed'); END;
-- INSERT OR REPLACE deletes the old row without firing DELETE triggers: refuse it here.
CREATE TRIGGER IF NOT EXISTS {_TABLE}_no_replace BEFORE INSERT ON {_TABLE}
WHEN EXISTS (SELECT 1 FROM {_TABLE} WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, '{_TABLE} is append-only: an existing id cannot be replaced'); END;
PRAGMA user_version = {_SCHEMA_VERSION};
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """One row of the audit log.

    Attributes:
        id: increasing with every record (never reused).
        time: UTC ISO 8601 with milliseconds, e.g. ``2025-01-31T12:00:00.123+00:00``.
        unix_time: the same instant in seconds since the epoch.
        event: "tool_call" or "escalation".
        run_id / step: the agent run and its step.
        tool / arguments: the tool and the arguments it ran with (decoded JSON).
        decision: one of ``DECISIONS`` (None for events other than tool calls).
        result_nbytes / duration_ms: size of the result (UTF-8 bytes) and how long it took.
        error: what went wrong, or None.
        remote: the model that asked for the call ran remotely.
        prev_hash / hash: the record's links in the hash chain (None in a pre-chain log).
    """

    id: int
    time: str
    unix_time: float
    event: str
    run_id: str | None
    step: int | None
    tool: str | None
    arguments: Any
    decision: str | None
    result_nbytes: int | None
    duration_ms: float | None
    error: str | None
    remote: bool
    prev_hash: str | None = None
    hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)



def _validate(*, event: str, tool: str | None, decision: str | None, run_id: str | None,
              step: int | None, result_nbytes: int | None, duration_ms: float | None,
              error: str | None, remote: bool) -> None:
    check(event in EVENTS, "event", event, f"one of {', '.join(EVENTS)}")
    if event == "tool_call":
        check(isinstance(tool, str) and bool(tool), "tool", tool, "a tool name for a tool call")
        check(decision in DECISIONS, "decision", decision, f"one of {', '.join(DECISIONS)}")
    else:
        check(tool is None or isinstance(tool, str), "tool", tool, "None or a string")
        check(decision is None or decision in DECISIONS, "decision", decision,
              f"None or one of {', '.join(DECISIONS)}")
    check(run_id is None or isinstance(run_id, str), "run_id", run_id, "None or a string")
    check(step is None or (is_int(step) and step >= 0), "step", step, "None or an int >= 0")
    check(result_nbytes is None or (is_int(result_nbytes) and result_nbytes >= 0),
          "result_nbytes", result_nbytes, "None or an int >= 0")
    check(duration_ms is None or (isinstance(duration_ms, (int, float))
                                  and not isinstance(duration_ms, bool)
                                  and math.isfinite(duration_ms) and duration_ms >= 0),
          "duration_ms", duration_ms, "None or a finite number >= 0")
    check(error is None or isinstance(error, str), "error", error, "None or a string")
    check(isinstance(remote, bool), "remote", remote, "True or False")


def _to_json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (JSON allows "\\ud800"): escape to ASCII
        text = json.dumps(value, ensure_ascii=True, sort_keys=True, default=repr)
    return text


def _utf8(text: str | None) -> str | None:
    """SQLite stores UTF-8: a lone surrogate (e.g. from an exception message) is escaped."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _from_row(columns: tuple[str, ...], row: tuple[Any, ...]) -> AuditRecord:
    values = dict(zip(columns, row, strict=True))
    if values["arguments"] is not None:
        values["arguments"] = json.loads(values["arguments"])
    values["remote"] = bool(values["remote"])
    return AuditRecord(**values)


def _to_unix(value: object, name: str) -> float:
    """A datetime, date, ISO 8601 string (naive = UTC) or unix seconds -> unix seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    moment: object = value
    if isinstance(value, str):
        text = value.strip()
        if text[-1:] in ("Z", "z"):  # Python 3.10's fromisoformat does not read "Z"
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            msg = (f"{name}={value!r}: not an ISO 8601 time; use e.g. 2025-01-31 or "
                   "2025-01-31T12:00:00Z")
            raise ConfigError(msg) from None
    if isinstance(moment, date) and not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    msg = f"{name}={value!r}: must be a datetime, an ISO 8601 string or unix seconds"
    raise ConfigError(msg)

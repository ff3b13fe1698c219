"""The audit log's hash chain: how a record is hashed and how a chain of records is checked.

Each record stores ``prev_hash``, the hash of the record before it (``GENESIS_HASH`` for the
first), and its own ``hash`` over every other column. A record that was edited no longer
matches its hash. A record that was deleted, moved or inserted breaks the link to the record
before it. ``qwen_edge.agents.audit`` writes the chain and calls ``check_chain`` to verify it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import AuditTamperedError

__all__ = ["GENESIS_HASH", "ChainCheck", "check_chain", "record_hash"]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of a log's first record."""


def record_hash(row: Sequence[Any]) -> str:
    """SHA-256 (hex) of a record: every column but ``hash`` in table order, id and
    ``prev_hash`` included, as compact JSON (strings as written, floats as Python writes them,
    which reads back to the same double)."""
    canonical = json.dumps(list(row), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """What ``AuditLog.verify`` found: ``records`` chained records ending in ``head``."""

    records: int
    head: str


def check_chain(where: str, rows: Iterable[Sequence[Any]], head: str | None) -> ChainCheck:
    """Check rows (id first, ``prev_hash`` and ``hash`` last, in id order).

    Raises:
        AuditTamperedError: naming the first row that does not match or does not follow, or
            when ``head`` is not the hash of any row.
    """
    prev, count, seen_head, previous_id = GENESIS_HASH, 0, head is None, 0
    for row in rows:
        row_id, stored_prev, stored = row[0], row[-2], row[-1]
        if stored_prev != prev:
            what = ("the record before it was deleted, or records were reordered or inserted"
                    if count else "records before it were deleted")
            msg = (f"{where}: record {row_id} does not follow record "
                   f"{previous_id or '(none)'} in the hash chain: {what}")
            raise AuditTamperedError(msg, row_id)
        if record_hash(row[:-1]) != stored:
            msg = (f"{where}: record {row_id} was changed after it was written (its content "
                   "does not match its hash)")
            raise AuditTamperedError(msg, row_id)
        prev, previous_id, count = stored, row_id, count + 1
        seen_head = seen_head or stored == head
    if not seen_head:
        msg = (f"{where}: the head hash {head} is no longer in the chain: records were removed "
               "from the end, or the log was rewritten")
        raise AuditTamperedError(msg, previous_id)
    return ChainCheck(records=count, head=prev)

"""The audit log: every tool call (and router escalation) as one row of an SQLite table.

Append-only and durable::

    with AuditLog("audit.db") as log:
        log.record(tool="set_timer", arguments={"minutes": 5}, decision="allow",
                   run_id=run_id, step=1, result_nbytes=42, duration_ms=0.8)
        denied = log.query(decision="deny", since="2025-01-31")

- One row per ``record`` call, committed in its own transaction before ``record`` returns.
- WAL journal with ``synchronous=FULL``: in WAL mode, FULL syncs the WAL file at every
  commit, so a committed record survives a process crash *and* an OS crash or power loss.
  NORMAL would survive a process crash too, but may lose the last commits on power loss
  (the WAL is synced only at checkpoints). One fsync per tool call is cheap next to the call.
- Append-only: there is no update/delete API, and triggers abort UPDATE, DELETE and
  ``INSERT OR REPLACE`` of an existing id. The triggers guard against mistakes; someone with
  write access to the file can drop them, so the records are also hash-chained:
- Hash-chained: each row stores ``prev_hash``, the ``hash`` of the row before it (64 zeros
  for the first), and its own ``hash``, the SHA-256 of a canonical encoding of all its other
  columns, id and ``prev_hash`` included (``record_hash``). ``verify()`` (``qwen-edge audit
  LOG --verify``) recomputes the chain and names the first record that was edited, deleted,
  reordered or inserted. A chain does not stop whoever can write the file from recomputing
  every hash after an edit, nor show that the last records were cut off: keep the head hash
  ``verify`` reports somewhere the writer cannot reach, and pass it back
  (``verify(head=...)``) to detect both.
- Secrets never reach the disk: ``record`` redacts the arguments and the error first
  (``qwen_edge.redaction.Redaction``: values under secret-named keys or marked
  ``"x-secret": true`` in the tool's schema, credential-shaped strings, and by default the
  router's personal-data rules). Pass ``redaction=`` to change the rules.
- Thread-safe: one connection, used under a lock.

Logs written before the chain (schema version 1) can still be read; appending to one, or
verifying it, raises ``ConfigError`` naming the fix (start a new log).

The table and its rows (SQL schema, ``AuditRecord``, field checks, encoding) are
``_audit_table``; the chain's hashing and checking is ``qwen_edge._chain``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from .._chain import GENESIS_HASH, ChainCheck, check_chain, record_hash
from ..errors import AuditLogError, ConfigError
from ..redaction import Redaction
from ._audit_table import (
    _COLUMNS,
    _SCHEMA,
    _SCHEMA_VERSION,
    _TABLE,
    _V1_COLUMNS,
    DECISIONS,
    EVENTS,
    AuditRecord,
    _from_row,
    _to_json,
    _to_unix,
    _utf8,
    _validate,
)

__all__ = ["DECISIONS", "EVENTS", "GENESIS_HASH", "AuditLog", "AuditRecord", "ChainCheck",
           "record_hash"]


class AuditLog:
    """An append-only SQLite log of tool calls.

    Args:
        path: the database file (created with its table if missing, unless ``create=False``).
        create: False to open only an existing audit log (what ``qwen-edge audit`` does).
        timeout_s: how long to wait for another process holding the write lock.
        redaction: what ``record`` removes before writing (``qwen_edge.redaction``); the
            default redacts secrets, credentials and personal data.

    Raises:
        ConfigError: the file cannot be opened or created, is not an SQLite database or not
            an audit log, or the filesystem does not support WAL.
    """

    def __init__(self, path: str | Path, *, create: bool = True, timeout_s: float = 10.0,
                 redaction: Redaction | None = None) -> None:
        self.path = Path(path)
        self.redaction = Redaction() if redaction is None else redaction
        if not isinstance(self.redaction, Redaction):
            msg = f"redaction={redaction!r}: must be a qwen_edge.redaction.Redaction"
            raise ConfigError(msg)
        self._lock = threading.Lock()
        self._columns: tuple[str, ...] = _COLUMNS  # _V1_COLUMNS for a pre-chain log
        if not create and not self.path.is_file():
            msg = f"{self.path}: no such audit log"
            raise ConfigError(msg)
        if self.path.is_dir() or not self.path.parent.is_dir():
            msg = (f"{self.path}: cannot create the audit log here; pass a file path in an "
                   "existing, writable directory")
            raise ConfigError(msg)
        try:
            # isolation_level=None: no implicit transactions, so every INSERT commits at once.
            # check_same_thread=False: the connection is shared by threads, under self._lock.
            conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            msg = f"{self.path}: cannot open the audit log ({exc}); check the path and permissions"
            raise ConfigError(msg) from exc
        self._conn: sqlite3.Connection | None = conn
        try:
            self._setup(create)
        except BaseException:
            self.close()
            raise

    def _setup(self, create: bool) -> None:
        conn = self._require_open()
        try:
            columns = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({_TABLE})"))
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if not columns and not create:
                msg = f"{self.path}: not an audit log (no {_TABLE} table)"
                raise ConfigError(msg)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")  # see the module docstring
            conn.execute("PRAGMA fullfsync=ON")  # macOS: fsync alone does not reach the disk
            if not columns:
                conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
                columns = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({_TABLE})"))
                version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            msg = (f"{self.path}: cannot open the audit log ({exc}); pass a new file or an "
                   "existing audit log in a writable directory")
            raise ConfigError(msg) from exc
        if str(mode).lower() != "wal":
            msg = f"{self.path}: SQLite cannot use WAL here (journal_mode={mode}); use a local disk"
            raise ConfigError(msg)
        if version > _SCHEMA_VERSION:
            msg = (f"{self.path}: audit log schema version {version} is newer than this "
                   f"qwen-edge supports ({_SCHEMA_VERSION}); upgrade qwen-edge")
            raise ConfigError(msg)
        if columns == _V1_COLUMNS:  # written before the chain: readable, not appendable
            self._columns = _V1_COLUMNS
            return
        if columns != _COLUMNS:
            msg = (f"{self.path}: table {_TABLE} has columns {', '.join(columns)}, not those of "
                   "a qwen-edge audit log; pass another path")
            raise ConfigError(msg)

    # -- writing ---------------------------------------------------------------------------

    def record(
        self,
        *,
        tool: str | None = None,
        arguments: Any = None,
        decision: str | None = None,
        event: str = "tool_call",
        run_id: str | None = None,
        step: int | None = None,
        result_nbytes: int | None = None,
        duration_ms: float | None = None,
        error: str | None = None,
        remote: bool = False,
        parameters: Mapping[str, Any] | None = None,
    ) -> int:
        """Redact, append one record to the chain and commit it; returns its id.

        When this returns, the record is on disk (see the module docstring). ``arguments``
        is stored as JSON; values JSON cannot represent are stored as their ``repr``.
        ``arguments`` and ``error`` are redacted first (``self.redaction``); ``parameters``,
        the tool's JSON schema, lets it mark parameters ``"x-secret": true``.

        Raises:
            ConfigError: an invalid field (unknown event or decision, a tool call without a
                tool or decision, a negative size, ...), the log is closed, or it was written
                before the hash chain (start a new log).
            AuditLogError: SQLite could not write (disk full, locked for ``timeout_s``).
        """
        _validate(event=event, tool=tool, decision=decision, run_id=run_id, step=step,
                  result_nbytes=result_nbytes, duration_ms=duration_ms, error=error,
                  remote=remote)
        if self._columns != _COLUMNS:
            msg = (f"{self.path}: this audit log was written before records were hash-chained "
                   "(schema version 1) and cannot be appended to; keep it for reading and "
                   "record into a new file")
            raise ConfigError(msg)
        try:
            if arguments is not None:  # as JSON first, so a repr()'d value is redacted too
                arguments = json.loads(_to_json(arguments))
            arguments, _ = self.redaction.apply(arguments, parameters)
            if error is not None:
                error, _ = self.redaction.apply(error)
            args_json = None if arguments is None else _to_json(arguments)
        except RecursionError:
            msg = "arguments: nested too deeply to be recorded; flatten them"
            raise ConfigError(msg) from None
        now = time.time()
        stamp = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")
        values = [stamp, now, event, _utf8(run_id), step, _utf8(tool), args_json, decision,
                  result_nbytes, None if duration_ms is None else float(duration_ms),
                  _utf8(error), int(remote)]
        sql = (f"INSERT INTO {_TABLE} ({', '.join(_COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(_COLUMNS))})")
        with self._lock, self._sqlite_errors("write to"):
            conn = self._require_open()
            # IMMEDIATE: the write lock is ours from the read of the chain's head to the commit,
            # so two processes appending to one log cannot both link to the same record.
            conn.execute("BEGIN IMMEDIATE")
            try:
                last = conn.execute(
                    f"SELECT id, hash FROM {_TABLE} ORDER BY id DESC LIMIT 1").fetchone()
                row_id, prev = (1, GENESIS_HASH) if last is None else (last[0] + 1, last[1])
                row = [row_id, *values, prev]
                conn.execute(sql, (*row, record_hash(row)))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return int(row_id)

    # -- checking --------------------------------------------------------------------------

    def verify(self, *, head: str | None = None) -> ChainCheck:
        """Recompute the hash chain from the first record to the last.

        Args:
            head: a head hash kept elsewhere from an earlier ``verify``; the chain must still
                contain it (a log cut back to before it, or rewritten, is reported).

        Returns:
            The number of records and the last record's hash.

        Raises:
            AuditTamperedError: naming the first record that was edited, deleted, reordered
                or inserted.
            ConfigError: a log written before the chain (nothing to verify).
        """
        if self._columns != _COLUMNS:
            msg = (f"{self.path}: this audit log was written before records were hash-chained "
                   "(schema version 1); it cannot be verified")
            raise ConfigError(msg)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM {_TABLE} ORDER BY id"
        with self._lock, self._sqlite_errors("read"):
            conn = self._require_open()
            conn.execute("BEGIN")  # one snapshot, even while another process appends
            try:
                return check_chain(str(self.path), conn.execute(sql), head)
            finally:
                conn.execute("COMMIT")

    # -- reading ---------------------------------------------------------------------------

    def query(
        self,
        *,
        tool: str | None = None,
        decision: str | None = None,
        since: datetime | date | str | float | None = None,
        until: datetime | date | str | float | None = None,
        run_id: str | None = None,
        event: str | None = None,
        errors_only: bool = False,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Records matching every given filter, oldest first.

        Args:
            tool: a tool name, or a glob pattern such as ``"set_*"``.
            decision: one of ``DECISIONS``, or "confirm" for any confirm-* outcome.
            since: keep records at or after this time (inclusive); a datetime, an ISO 8601
                string (``2025-01-31``, ``2025-01-31T12:00:00Z``; no zone means UTC) or unix
                seconds.
            until: keep records before this time (exclusive); same forms as ``since``.
            run_id: one agent run.
            event: one event kind ("tool_call", "escalation").
            errors_only: keep records with an error.
            limit: keep only the ``limit`` most recent matches (still returned oldest first).

        Raises:
            ConfigError: an unknown decision, an unparseable time, or a limit < 1.
        """
        where: list[str] = []
        params: list[Any] = []
        if tool is not None:
            where.append("tool GLOB ?")
            params.append(tool)
        if decision == "confirm":
            where.append("decision LIKE 'confirm-%'")
        elif decision is not None:
            if decision not in DECISIONS:
                msg = f"decision={decision!r}: must be one of {', '.join(DECISIONS)} or 'confirm'"
                raise ConfigError(msg)
            where.append("decision = ?")
            params.append(decision)
        if since is not None:
            where.append("unix_time >= ?")
            params.append(_to_unix(since, "since"))
        if until is not None:
            where.append("unix_time < ?")
            params.append(_to_unix(until, "until"))
        for column, value in (("run_id", run_id), ("event", event)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if errors_only:
            where.append("error IS NOT NULL")
        sql = f"SELECT {', '.join(self._columns)} FROM {_TABLE}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                msg = f"limit={limit!r}: must be an int >= 1"
                raise ConfigError(msg)
            sql += " ORDER BY id DESC LIMIT ?"
            params.append(limit)
        else:
            sql += " ORDER BY id"
        with self._lock, self._sqlite_errors("read"):
            rows = self._require_open().execute(sql, params).fetchall()
        if limit is not None:
            rows.reverse()
        return [_from_row(self._columns, row) for row in rows]

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database (idempotent). Records already returned stay valid."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> AuditLog:  # noqa: PYI034
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"AuditLog({str(self.path)!r}, {state})"

    def _require_open(self) -> sqlite3.Connection:
        if self._conn is None:
            msg = f"{self.path}: the audit log is closed"
            raise ConfigError(msg)
        return self._conn

    @contextlib.contextmanager
    def _sqlite_errors(self, doing: str) -> Iterator[None]:
        """Translate sqlite3 errors, once, at this boundary."""
        try:
            yield
        except sqlite3.Error as exc:
            msg = f"{self.path}: cannot {doing} the audit log: {exc}"
            raise AuditLogError(msg) from exc

"""The audit log's hash chain: tampering with the file (with the triggers dropped) is detected
and the first broken record named, by ``AuditLog.verify`` and ``qwen-edge audit --verify``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qwen_edge import cli
from qwen_edge.agents.audit import GENESIS_HASH, AuditLog, record_hash
from qwen_edge.cli import audit as audit_command
from qwen_edge.errors import AuditTamperedError, ConfigError

N = 5
TRIGGERS = ("audit_log_no_update", "audit_log_no_delete", "audit_log_no_replace")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    db = tmp_path / "audit.db"
    with AuditLog(db) as log:
        for i in range(N):
            log.record(tool=f"tool_{i}", arguments={"i": i}, decision="allow", run_id="r",
                       step=i, duration_ms=0.5 + i, result_nbytes=i)
    return db


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], int]:
    if audit_command not in cli._COMMANDS:
        monkeypatch.setattr(cli, "_COMMANDS", (*cli._COMMANDS, audit_command))
    return cli.main


@pytest.fixture
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection with the append-only triggers dropped (what an attacker does);
    they are recreated afterwards, so the log looks untouched."""
    conn = sqlite3.connect(path, isolation_level=None)
    sql = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    assert set(sql) == set(TRIGGERS)
    for name in TRIGGERS:
        conn.execute(f"DROP TRIGGER {name}")
    yield conn
    for name in TRIGGERS:
        conn.execute(sql[name])
    conn.close()


def _verify(path: Path, head: str | None = None) -> int:
    with AuditLog(path, create=False) as log:
        return log.verify(head=head).records


def _broken(path: Path, head: str | None = None) -> AuditTamperedError:
    with AuditLog(path, create=False) as log, pytest.raises(AuditTamperedError) as info:
        log.verify(head=head)
    return info.value


def _head(path: Path) -> str:
    with AuditLog(path, create=False) as log:
        return log.verify().head


def test_an_untouched_chain_verifies(path: Path) -> None:
    with AuditLog(path) as log:
        check = log.verify()
        records = log.query()
        assert check.records == N
        assert check.head == records[-1].hash
        assert records[0].prev_hash == GENESIS_HASH
        assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:-1]]
        assert log.verify(head=records[2].hash) == check  # an older head is still in the chain
        log.record(tool="later", decision="deny")
        assert log.verify(head=check.head).records == N + 1  # appending keeps old heads valid


def test_the_hash_covers_every_column(path: Path) -> None:
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(audit_log)")]
    row = list(conn.execute("SELECT * FROM audit_log WHERE id = 2").fetchone())
    conn.close()
    assert columns[-2:] == ["prev_hash", "hash"]
    assert record_hash(row[:-1]) == row[-1]
    for i in range(len(columns) - 1):  # change any one column (id and prev_hash included)
        changed = list(row[:-1])
        changed[i] = "x" if changed[i] != "x" else "y"
        assert record_hash(changed) != row[-1], columns[i]


@pytest.mark.parametrize(("sql", "record", "message"), [
    ("UPDATE audit_log SET arguments = '{\"i\": 99}' WHERE id = 3", 3, "record 3 was changed"),
    ("UPDATE audit_log SET decision = 'deny' WHERE id = 1", 1, "record 1 was changed"),
    ("UPDATE audit_log SET unix_time = unix_time + 1e-6 WHERE id = 5", 5, "record 5 was changed"),
    ("UPDATE audit_log SET error = 'oops' WHERE id = 2", 2, "record 2 was changed"),
    ("DELETE FROM audit_log WHERE id = 3", 4, "record 4 does not follow record 2"),
    ("DELETE FROM audit_log WHERE id = 1", 2, "records before it were deleted"),
    # reorder: swap the contents of records 2 and 3 (their hashes move with them)
    (("UPDATE audit_log SET id = -id WHERE id IN (2, 3); "
      "UPDATE audit_log SET id = 5 + id WHERE id IN (-2, -3)"), 2, "does not follow record 1"),
    # insert a forged record between 2 and 3, linked to 2 (ids are free after renumbering)
    (("UPDATE audit_log SET id = id + 10 WHERE id >= 3; "
      "INSERT INTO audit_log SELECT 3, time, unix_time, event, run_id, step, 'forged', "
      "arguments, decision, result_nbytes, duration_ms, error, remote, hash, hash "
      "FROM audit_log WHERE id = 2"), 3, "record 3 was changed"),
])
def test_tampering_is_detected(path: Path, raw: sqlite3.Connection, sql: str, record: int,
                               message: str) -> None:
    assert _verify(path) == N
    for statement in sql.split("; "):
        raw.execute(statement)
    error = _broken(path)
    assert error.record_id == record
    assert message in str(error)
    assert str(path) in str(error)


def test_a_rewritten_chain_or_a_cut_end_needs_the_kept_head(path: Path,
                                                            raw: sqlite3.Connection) -> None:
    """Recomputing every hash after an edit, or deleting the newest records, leaves a valid
    chain: only a head hash kept elsewhere shows it (documented in the module)."""
    head = _head(path)
    raw.execute("DELETE FROM audit_log WHERE id = 5")
    assert _verify(path) == N - 1
    assert "no longer in the chain" in str(_broken(path, head))

    raw.execute("UPDATE audit_log SET arguments = '{\"i\": 42}' WHERE id = 2")
    prev = raw.execute("SELECT hash FROM audit_log WHERE id = 1").fetchone()[0]
    for (row_id,) in raw.execute("SELECT id FROM audit_log WHERE id >= 2 ORDER BY id").fetchall():
        row = list(raw.execute("SELECT * FROM audit_log WHERE id = ?", (row_id,)).fetchone())
        row[-2] = prev
        prev = record_hash(row[:-1])
        raw.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE id = ?",
                    (row[-2], prev, row_id))
    assert _verify(path) == N - 1  # consistent again...
    assert "no longer in the chain" in str(_broken(path, head))  # ...but not the kept one


def test_cli_verify(main: Callable[[list[str]], int], path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    head = _head(path)
    assert main(["audit", str(path), "--verify"]) == 0
    out = capsys.readouterr().out
    assert out == f"OK {path}: {N} records, hash chain intact, head {head}\n"
    assert main(["audit", str(path), "--verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "records": N, "head": head}
    assert main(["audit", str(path), "--verify", "--head", head]) == 0
    capsys.readouterr()

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET tool = 'rm' WHERE id = 4")
    conn.close()
    assert main(["audit", str(path), "--verify"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "record 4 was changed after it was written" in err
    assert main(["audit", str(path), "--head", head]) == 2  # --head needs --verify
    assert "--head needs --verify" in capsys.readouterr().err


# -- logs written before the chain -------------------------------------------------------------

_V1 = """
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, unix_time REAL NOT NULL,
    event TEXT NOT NULL, run_id TEXT, step INTEGER, tool TEXT, arguments TEXT, decision TEXT,
    result_nbytes INTEGER, duration_ms REAL, error TEXT,
    remote INTEGER NOT NULL CHECK (remote IN (0, 1)));
INSERT INTO audit_log (time, unix_time, event, tool, arguments, decision, remote)
VALUES ('2025-01-31T12:00:00.000+00:00', 1738324800.0, 'tool_call', 'old', '{"a": 1}',
        'allow', 0);
PRAGMA user_version = 1;
"""


def test_a_pre_chain_log_is_readable_not_appendable(tmp_path: Path,
                                                    main: Callable[[list[str]], int],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "v1.db"
    conn = sqlite3.connect(old)
    conn.executescript(_V1)
    conn.close()
    with AuditLog(old, create=False) as log:
        [record] = log.query()
        assert (record.tool, record.arguments, record.hash, record.prev_hash) == (
            "old", {"a": 1}, None, None)
        with pytest.raises(ConfigError, match=r"before records were hash-chained.*new file"):
            log.record(tool="new", decision="allow")
        with pytest.raises(ConfigError, match=r"before records were hash-chained"):
            log.verify()
    assert main(["audit", str(old)]) == 0
    assert "old" in capsys.readouterr().out
    assert main(["audit", str(old), "--verify"]) == 1
    assert "cannot be verified" in capsys.readouterr().err

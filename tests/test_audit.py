"""The audit log: round trips, filters, append-only triggers, WAL, crashes, threads, the CLI."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwen_edge import cli
from qwen_edge.agents.audit import DECISIONS, EVENTS, GENESIS_HASH, AuditLog, AuditRecord
from qwen_edge.cli import audit as audit_command
from qwen_edge.errors import ConfigError
from qwen_edge.redaction import Redaction

NO_REDACTION = Redaction(secret_keys=None, credentials={}, pii={})

ISO_MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.db") as audit_log:
        yield audit_log


def _call(log: AuditLog, tool: str = "get_weather", **fields: Any) -> int:
    fields.setdefault("arguments", {"city": "Oslo"})
    fields.setdefault("decision", "allow")
    return log.record(tool=tool, **fields)


# -- round trip ---------------------------------------------------------------------------

def test_record_round_trip(log: AuditLog) -> None:
    before = time.time()
    rid = log.record(tool="set_lights", arguments={"room": "kitchen", "on": True, "n": None},
                     decision="confirm-edited", run_id="run-1", step=3, result_nbytes=57,
                     duration_ms=1.25, error="ValueError: brightness=150", remote=True)
    after = time.time()
    [rec] = log.query()
    assert rec == AuditRecord(
        id=rid, time=rec.time, unix_time=rec.unix_time, event="tool_call", run_id="run-1",
        step=3, tool="set_lights", arguments={"room": "kitchen", "on": True, "n": None},
        decision="confirm-edited", result_nbytes=57, duration_ms=1.25,
        error="ValueError: brightness=150", remote=True, prev_hash=GENESIS_HASH,
        hash=rec.hash)
    assert rec.hash is not None
    assert re.fullmatch(r"[0-9a-f]{64}", rec.hash)
    assert ISO_MS_UTC.match(rec.time)
    assert before <= rec.unix_time <= after
    # the ISO time is the unix time truncated to milliseconds
    assert 0 <= rec.unix_time - datetime.fromisoformat(rec.time).timestamp() < 0.001
    assert rec.to_dict()["arguments"] == {"room": "kitchen", "on": True, "n": None}


def test_escalation_event_and_defaults(log: AuditLog) -> None:
    rid = log.record(event="escalation", arguments={"reason": "low confidence"}, remote=True,
                     run_id="r")
    [rec] = log.query(event="escalation")
    assert (rec.id, rec.tool, rec.decision, rec.arguments, rec.remote, rec.step) == (
        rid, None, None, {"reason": "low confidence"}, True, None)
    assert log.query(event="tool_call") == []
    assert EVENTS == ("tool_call", "escalation")


def test_ids_increase_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with AuditLog(path) as first:
        ids = [_call(first, step=i) for i in range(3)]
    with AuditLog(path) as second:
        ids.append(_call(second, step=3))
        assert [r.id for r in second.query()] == ids == [1, 2, 3, 4]
        assert [r.step for r in second.query()] == [0, 1, 2, 3]


def test_unencodable_text_is_stored_escaped(log: AuditLog) -> None:
    log.record(tool="t", decision="allow", arguments={"s": "\ud800 Zürich"},
               error="bad \udcff byte")
    [rec] = log.query()
    assert rec.arguments == {"s": "\ud800 Zürich"}  # JSON \u escapes round-trip exactly
    assert rec.error == "bad \\udcff byte"


def test_non_json_arguments_are_stored_as_repr(log: AuditLog) -> None:
    log.record(tool="t", decision="allow", arguments={"when": datetime(2025, 1, 31)})
    assert log.query()[0].arguments == {"when": "datetime.datetime(2025, 1, 31, 0, 0)"}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def shared_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditLog]:
    # stored verbatim: random keys and text would otherwise be redacted (test_redaction.py)
    with AuditLog(tmp_path_factory.mktemp("audit") / "shared.db",
                  redaction=NO_REDACTION) as audit_log:
        yield audit_log


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arguments=st.dictionaries(st.text(max_size=10), _JSON, max_size=5),
       tool=st.text(min_size=1, max_size=20), error=st.none() | st.text(max_size=40),
       step=st.none() | st.integers(0, 2**62), remote=st.booleans(),
       decision=st.sampled_from(DECISIONS))
def test_round_trip_property(shared_log: AuditLog, arguments: dict[str, Any], tool: str,
                             error: str | None, step: int | None, remote: bool,
                             decision: str) -> None:
    rid = shared_log.record(tool=tool, arguments=arguments, decision=decision, error=error,
                            step=step, remote=remote)
    rec = shared_log.query(limit=1)[0]
    assert (rec.id, rec.tool, rec.arguments, rec.decision, rec.error, rec.step, rec.remote) == (
        rid, tool, arguments, decision, error, step, remote)


@pytest.mark.parametrize(("fields", "match"), [
    ({"event": "chat"}, r"event='chat': must be one of tool_call, escalation"),
    ({"tool": None}, r"tool=None: must be a tool name for a tool call"),
    ({"tool": ""}, r"tool='': must be a tool name"),
    ({"decision": None}, r"decision=None: must be one of allow, deny, confirm-approved"),
    ({"decision": "confirm"}, r"decision='confirm': must be one of"),
    ({"step": -1}, r"step=-1: must be None or an int >= 0"),
    ({"step": True}, r"step=True"),
    ({"result_nbytes": 1.5}, r"result_nbytes=1.5: must be None or an int >= 0"),
    ({"duration_ms": float("nan")}, r"duration_ms=nan: must be None or a finite number >= 0"),
    ({"duration_ms": -1}, r"duration_ms=-1"),
    ({"remote": 1}, r"remote=1: must be True or False"),
    ({"run_id": 7}, r"run_id=7: must be None or a string"),
    ({"error": ValueError("x")}, r"error=ValueError\('x'\): must be None or a string"),
    ({"event": "escalation", "decision": "maybe"}, r"decision='maybe': must be None or one of"),
])
def test_invalid_records(log: AuditLog, fields: dict[str, Any], match: str) -> None:
    base: dict[str, Any] = {"tool": "t", "decision": "allow"}
    with pytest.raises(ConfigError, match=match):
        log.record(**{**base, **fields})
    assert log.query() == []


# -- filters ------------------------------------------------------------------------------

@pytest.fixture
def filled(log: AuditLog) -> list[AuditRecord]:
    rows = [
        ("get_weather", "allow", "r1", None),
        ("set_lights", "confirm-edited", "r1", None),
        ("set_timer", "deny", "r1", None),
        ("set_lights", "confirm-denied", "r2", None),
        ("calculate", "allow", "r2", "ValueError: division by zero"),
        ("set_thermostat", "confirm-approved", "r2", "TimeoutError"),
    ]
    for step, (tool, decision, run_id, error) in enumerate(rows):
        log.record(tool=tool, decision=decision, run_id=run_id, step=step, error=error,
                   arguments={"i": step})
        time.sleep(0.003)  # distinct timestamps, even at millisecond resolution
    return log.query()


@pytest.mark.parametrize(("filters", "steps"), [
    ({}, [0, 1, 2, 3, 4, 5]),
    ({"tool": "set_lights"}, [1, 3]),
    ({"tool": "set_*"}, [1, 2, 3, 5]),
    ({"tool": "set"}, []),
    ({"decision": "allow"}, [0, 4]),
    ({"decision": "confirm"}, [1, 3, 5]),
    ({"decision": "confirm-denied"}, [3]),
    ({"run_id": "r2"}, [3, 4, 5]),
    ({"errors_only": True}, [4, 5]),
    ({"tool": "set_*", "run_id": "r2", "errors_only": True}, [5]),
    ({"limit": 2}, [4, 5]),
    ({"limit": 100}, [0, 1, 2, 3, 4, 5]),
    ({"tool": "set_*", "limit": 3}, [2, 3, 5]),
    ({"event": "escalation"}, []),
])
def test_query_filters(log: AuditLog, filled: list[AuditRecord], filters: dict[str, Any],
                       steps: list[int]) -> None:
    assert len(filled) == 6
    assert [r.step for r in log.query(**filters)] == steps


def test_time_filters(log: AuditLog, filled: list[AuditRecord]) -> None:
    third = filled[2]

    def steps(**filters: Any) -> list[int | None]:
        return [r.step for r in log.query(**filters)]

    assert steps(since=third.unix_time) == [2, 3, 4, 5]  # since is inclusive
    assert steps(until=third.unix_time) == [0, 1]  # until is exclusive
    assert steps(since=third.time, until=filled[4].time) == [2, 3]  # ISO, ms precision
    moment = datetime.fromisoformat(third.time)  # <= unix_time: truncated to milliseconds
    assert steps(since=moment) == [2, 3, 4, 5]
    assert steps(since=moment.replace(tzinfo=None)) == [2, 3, 4, 5]  # naive means UTC
    as_z = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert steps(since=as_z) == [2, 3, 4, 5]
    local = moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    assert steps(since=local) == [2, 3, 4, 5]
    assert steps(since="2000-01-01") == [0, 1, 2, 3, 4, 5]
    assert steps(since="2999-01-01") == []
    assert steps(since=moment.date()) == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(("filters", "match"), [
    ({"decision": "approved"}, r"decision='approved': must be one of allow, deny, .* or 'confirm'"),
    ({"since": "yesterday"}, r"since='yesterday': not an ISO 8601 time"),
    ({"until": [2025]}, r"until=\[2025\]: must be a datetime, an ISO 8601 string"),
    ({"limit": 0}, r"limit=0: must be an int >= 1"),
    ({"limit": "5"}, r"limit='5'"),
])
def test_invalid_queries(log: AuditLog, filters: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        log.query(**filters)


# -- append-only, WAL, durability settings ------------------------------------------------

def test_triggers_block_update_delete_and_replace(log: AuditLog) -> None:
    rid = _call(log, step=1)
    original = log.query()
    raw = sqlite3.connect(log.path, isolation_level=None)
    try:
        for sql in ("UPDATE audit_log SET tool = 'rm' WHERE id = 1",
                    "UPDATE audit_log SET error = NULL",
                    "DELETE FROM audit_log WHERE id = 1",
                    "DELETE FROM audit_log",
                    ("INSERT OR REPLACE INTO audit_log (id, time, unix_time, event, remote) "
                     "VALUES (1, 'x', 0, 'tool_call', 0)"),
                    ("INSERT INTO audit_log (id, time, unix_time, event, remote) "
                     "VALUES (1, 'x', 0, 'tool_call', 0) "
                     "ON CONFLICT(id) DO UPDATE SET tool = 'rm'")):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                raw.execute(sql)
        # appending through raw SQL is still possible (the table is append-only, not closed)
        raw.execute("INSERT INTO audit_log (time, unix_time, event, remote, prev_hash, hash) "
                    "VALUES ('t', 0, 'escalation', 0, 'x', 'x')")
    finally:
        raw.close()
    assert log.query(event="tool_call") == original
    assert _call(log) == rid + 2
    assert not {"update", "delete", "remove", "clear", "truncate"} & set(dir(log))


def test_wal_and_synchronous_full(log: AuditLog) -> None:
    raw = sqlite3.connect(log.path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # persistent
        assert raw.execute("PRAGMA user_version").fetchone() == (2,)
    finally:
        raw.close()
    # per-connection setting: FULL (2) syncs the WAL at every commit
    assert log._conn is not None
    assert log._conn.execute("PRAGMA synchronous").fetchone() == (2,)


def test_each_record_is_committed_at_once(log: AuditLog) -> None:
    _call(log)
    other = AuditLog(log.path)  # a second connection sees it without any close/flush
    try:
        assert len(other.query()) == 1
        _call(other)
        assert len(log.query()) == 2
    finally:
        other.close()


# -- opening errors -----------------------------------------------------------------------

def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot create the audit log here"):
        AuditLog(tmp_path)  # a directory
    with pytest.raises(ConfigError, match=r"missing[/\\]audit.db: cannot create"):
        AuditLog(tmp_path / "missing" / "audit.db")
    with pytest.raises(ConfigError, match=r"nope.db: no such audit log"):
        AuditLog(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()
    text = tmp_path / "notes.txt"
    text.write_text("this is not a database, just some text long enough " * 20)
    with pytest.raises(ConfigError, match=r"notes.txt: cannot open the audit log .*not a database"):
        AuditLog(text)


def test_foreign_databases_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    raw = sqlite3.connect(other)
    raw.execute("CREATE TABLE users (name TEXT)")
    raw.commit()
    raw.close()
    with pytest.raises(ConfigError, match=r"app.db: not an audit log \(no audit_log table\)"):
        AuditLog(other, create=False)
    raw = sqlite3.connect(other)
    try:  # refusing did not switch someone else's database to WAL
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        raw.execute("CREATE TABLE audit_log (id INTEGER, what TEXT)")
        raw.commit()
    finally:
        raw.close()
    with pytest.raises(ConfigError, match=r"has columns id, what, not those of a qwen-edge"):
        AuditLog(other)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    AuditLog(path).close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(ConfigError, match=r"schema version 99 is newer .*upgrade qwen-edge"):
        AuditLog(path)


def test_closed_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "c.db")
    log.close()
    log.close()  # idempotent
    assert "closed" in repr(log)
    with pytest.raises(ConfigError, match=r"c.db: the audit log is closed"):
        _call(log)
    with pytest.raises(ConfigError, match="closed"):
        log.query()


# -- threads and processes ----------------------------------------------------------------

def test_concurrent_writer_threads(log: AuditLog) -> None:
    threads, per_thread = 8, 40
    ids: list[list[int]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def write(k: int) -> None:
        start.wait()
        for i in range(per_thread):
            ids[k].append(log.record(tool=f"tool_{k}", decision="allow", run_id=f"t{k}",
                                     step=i, arguments={"k": k, "i": i}))
            if i % 10 == 0:
                log.query(run_id=f"t{k}", limit=1)  # readers interleave with writers

    workers = [threading.Thread(target=write, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    all_ids = [i for chunk in ids for i in chunk]
    assert sorted(all_ids) == list(range(1, threads * per_thread + 1))
    for k in range(threads):
        records = log.query(run_id=f"t{k}")
        assert [r.id for r in records] == ids[k]  # each thread's ids increase
        assert [r.arguments for r in records] == [{"k": k, "i": i} for i in range(per_thread)]
    assert log.verify().records == threads * per_thread


_CHILD = """
import sys
from qwen_edge.agents.audit import AuditLog

log = AuditLog(sys.argv[1])
run_id = sys.argv[2]
step = 0
while True:
    rid = log.record(tool="log_reading", decision="allow", run_id=run_id, step=step,
                     arguments={"step": step, "pad": "x" * (step * 37 % 500)},
                     result_nbytes=step, duration_ms=0.5)
    sys.stdout.write(f"{rid} {step}\\n")
    sys.stdout.flush()
    step += 1
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_loses_no_committed_record(tmp_path: Path) -> None:
    """A child appends and reports each committed id; SIGKILL it at a random moment."""
    path = tmp_path / "crash.db"
    rng = random.Random(20250131)
    for attempt in range(10):
        run_id = f"crash-{attempt}"
        with subprocess.Popen([sys.executable, "-c", _CHILD, str(path), run_id],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path) as child:  # not the repo root: it shadows qwen_edge
            assert child.stdout is not None
            assert child.stderr is not None
            lines: list[str] = []
            reader = threading.Thread(target=lambda out=child.stdout, acc=lines: acc.extend(out))
            reader.start()
            deadline = time.monotonic() + 20
            while not lines and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            delay = rng.uniform(0.0, 0.25)
            time.sleep(delay)
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            reader.join()
            stderr = child.stderr.read()
        assert child.returncode == -signal.SIGKILL, stderr
        # a line without its newline was cut by the kill: not reported as committed
        reported = [tuple(map(int, line.split())) for line in lines if line.endswith("\n")]
        assert reported, f"attempt {attempt}: the child committed nothing\n{stderr}"

        with AuditLog(path) as log:
            records = {r.step: r for r in log.query(run_id=run_id)}
            for rid, step in reported:
                rec = records[step]
                assert (rec.id, rec.tool, rec.decision, rec.result_nbytes, rec.arguments) == (
                    rid, "log_reading", "allow", step,
                    {"step": step, "pad": "x" * (step * 37 % 500)}), (attempt, delay)
            # at most the one record committed after the last report and before the kill
            assert len(records) - len(reported) in (0, 1), (attempt, delay)
            assert log._conn is not None
            assert log._conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert log.verify().records == len(log.query())  # a kill never breaks the chain
            assert log.record(tool="after", decision="allow", run_id=run_id) > reported[-1][0]


def test_two_processes_share_a_log(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    code = ("import sys\nfrom qwen_edge.agents.audit import AuditLog\n"
            "with AuditLog(sys.argv[1]) as log:\n"
            "    for i in range(20): log.record(tool='child', decision='deny', step=i)\n")
    with AuditLog(path) as log:
        child = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=tmp_path)
        for i in range(20):
            log.record(tool="parent", decision="allow", step=i)
        assert child.wait(timeout=60) == 0
        assert [r.step for r in log.query(tool="child")] == list(range(20))
        assert log.verify().records == 40  # one chain: each append linked to the one before
        assert [r.step for r in log.query(tool="parent")] == list(range(20))


# -- CLI ----------------------------------------------------------------------------------

@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], int]:
    """qwen_edge.cli.main, with the audit subcommand registered if it is not yet."""
    if audit_command not in cli._COMMANDS:
        monkeypatch.setattr(cli, "_COMMANDS", (*cli._COMMANDS, audit_command))
    return cli.main


def test_cli_table(main: Callable[[list[str]], int], log: AuditLog, filled: list[AuditRecord],
                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(log.path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["id", "time", "(UTC)", "event"]
    assert len(out) == 7
    row = out[2].split()
    assert row[0] == "2"
    assert row[1] == filled[1].time[:10]
    assert row[3:8] == ["tool_call", "r1", "1", "set_lights", "confirm-edited"]
    assert out[2].endswith('{"i": 1}')
    assert out[5].endswith("error: ValueError: division by zero")

    assert main(["audit", str(log.path), "--tool", "set_*", "--decision", "confirm",
                 "--limit", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[1:]] == ["4", "6"]


def test_cli_json_lines(main: Callable[[list[str]], int], log: AuditLog,
                        filled: list[AuditRecord], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(log.path), "--json", "--errors"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [r.to_dict() for r in filled[4:]]
    assert main(["audit", str(log.path), "--json", "--since", filled[3].time,
                 "--run-id", "r2", "--decision", "allow"]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [5]


def test_cli_no_match(main: Callable[[list[str]], int], log: AuditLog,
                      capsys: pytest.CaptureFixture[str]) -> None:
    _call(log)
    assert main(["audit", str(log.path), "--tool", "nothing"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no matching records" in captured.err


def test_cli_errors(main: Callable[[list[str]], int], tmp_path: Path, log: AuditLog,
                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(tmp_path / "missing.db")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "missing.db: no such audit log" in err
    assert not (tmp_path / "missing.db").exists()  # listing never creates a log
    assert main(["audit", str(log.path), "--since", "last week"]) == 1
    assert "since='last week': not an ISO 8601 time" in capsys.readouterr().err
    for bad in (["--decision", "maybe"], ["--limit", "0"], ["--limit", "x"]):
        with pytest.raises(SystemExit) as exc:
            main(["audit", str(log.path), *bad])
        assert exc.value.code == 2


def test_cli_decisions_match_the_library() -> None:
    assert (*DECISIONS[:2], "confirm", *DECISIONS[2:]) == audit_command._DECISIONS

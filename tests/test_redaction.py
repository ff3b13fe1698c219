"""qwen_edge.redaction and the audit log's use of it: no secret reaches the file, whoever writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import qwen_edge
from qwen_edge import cli, redaction, routing
from qwen_edge.agents.agent import Agent
from qwen_edge.agents.audit import AuditLog
from qwen_edge.agents.tools import Tool
from qwen_edge.cli import audit as audit_command
from qwen_edge.errors import ConfigError
from qwen_edge.redaction import REDACTED, Redaction
from qwen_edge.routing import policy, router

PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7\n"
       "-----END RSA PRIVATE KEY-----")
SK = "sk-proj-Abcdefghijklmnop1234567890"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(("value", "expected"), [
    # values under secret-named keys, whatever their type, at any depth and in any case
    ({"password": "hunter2"}, {"password": REDACTED}),
    ({"PASSWORD": "hunter2", "user": "bob"}, {"PASSWORD": REDACTED, "user": "bob"}),
    ({"apiKey": 12345}, {"apiKey": REDACTED}),
    ({"X-Api-Key": "k"}, {"X-Api-Key": REDACTED}),
    ({"headers": {"Authorization": "Basic dXNlcjpwYXNz"}}, {"headers": {"Authorization": REDACTED}}),
    ({"a": [{"client_secret": ["x", "y"]}]}, {"a": [{"client_secret": REDACTED}]}),
    ({"refresh_token": "t", "session_id": "s", "private_key": "p"},
     {"refresh_token": REDACTED, "session_id": REDACTED, "private_key": REDACTED}),
    # not secrets by name: token counts, authors, keys of a map of cities
    ({"max_tokens": 5, "author": "Ann", "keyboard": "de"},
     {"max_tokens": 5, "author": "Ann", "keyboard": "de"}),
    # credential-shaped strings anywhere
    (f"use {SK} please", "use [API_KEY] please"),
    ("Authorization: Bearer abcdefgh12345678", "Authorization: [BEARER_TOKEN]"),
    (f"key:\n{PEM}\nend", "key:\n[PRIVATE_KEY]\nend"),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN (cut", "[PRIVATE_KEY]"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[GITHUB_TOKEN]"),
    ("AKIAIOSFODNN7EXAMPLE", "[AWS_KEY]"),
    (JWT, "[JWT]"),
    # the router's personal-data rules
    ({"note": "mail bob@example.com or +41 44 668 18 00"}, {"note": "mail [EMAIL] or [PHONE]"}),
    (["IBAN DE89 3704 0044 0532 0130 00"], ["IBAN [IBAN]"]),
    # everything else unchanged
    ({"city": "Oslo", "days": 3, "ok": True, "n": None, "x": 1.5},
     {"city": "Oslo", "days": 3, "ok": True, "n": None, "x": 1.5}),
])
def test_default_rules(value: Any, expected: Any) -> None:
    assert Redaction().apply(value)[0] == expected


def test_counts_and_the_input_is_not_modified() -> None:
    value = {"password": "x", "note": f"{SK} bob@example.com", "list": ["Bearer abcdefgh1234"]}
    copy = {**value, "list": list(value["list"])}
    out, counts = Redaction().apply(value)
    assert value == copy
    assert out["note"] == "[API_KEY] [EMAIL]"
    assert counts == {"api_key": 1, "bearer_token": 1, "email": 1, "secret_key": 1}


def test_a_schema_marks_parameters_secret() -> None:
    schema = {"type": "object", "properties": {
        "pin": {"type": "string", "x-secret": True},
        "cards": {"type": "array", "items": {"type": "object", "properties": {
            "number": {"type": "string", "x-secret": True}, "label": {"type": "string"}}}},
        "extra": {"type": "object", "additionalProperties": {"x-secret": True}},
        "label": {"type": "string", "x-secret": False}}}
    value = {"pin": "1234", "cards": [{"number": "4111", "label": "work"}],
             "extra": {"a": 1}, "label": "visible"}
    out, counts = Redaction().apply(value, schema)
    assert out == {"pin": REDACTED, "cards": [{"number": REDACTED, "label": "work"}],
                   "extra": {"a": REDACTED}, "label": "visible"}
    assert counts == {"x_secret": 3}


def test_configurable() -> None:
    value = {"password": "p", "note": f"{SK} bob@example.com EMP-123456"}
    assert Redaction(pii={}).apply(value)[0] == {"password": REDACTED,
                                                 "note": "[API_KEY] bob@example.com EMP-123456"}
    assert Redaction(secret_keys=None, credentials={}, pii={}).apply(value)[0] == value
    custom = Redaction(pii={**redaction.DEFAULT_REDACT, "employee": r"EMP-\d{6}"},
                       secret_keys=r"^note$")
    assert custom.apply(value)[0] == {"password": "p", "note": REDACTED}
    assert custom.apply(value["note"])[0] == "[API_KEY] [EMAIL] [EMPLOYEE]"
    for bad, match in (({"secret_keys": "("}, "secret_keys"), ({"pii": {"Bad": "x"}}, "rule name"),
                       ({"credentials": {"x": ""}}, "non-empty regex"), ({"pii": "x"}, "mapping")):
        with pytest.raises(ConfigError, match=match):
            Redaction(**bad)


def test_the_router_uses_the_same_rules() -> None:
    assert routing.DEFAULT_REDACT is redaction.DEFAULT_REDACT
    assert routing.redact_text is redaction.redact_text
    assert policy.DEFAULT_REDACT is redaction.DEFAULT_REDACT
    assert router.redact_value is redaction.redact_value


# -- the audit log ------------------------------------------------------------------------------

SECRETS = ("hunter2", SK, "bob@example.com", "abcdefgh12345678", "MIIEowIBAAKCAQEA", "1234")


def _raw_text(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return repr(conn.execute("SELECT * FROM audit_log").fetchall())
    finally:
        conn.close()


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], int]:
    if audit_command not in cli._COMMANDS:
        monkeypatch.setattr(cli, "_COMMANDS", (*cli._COMMANDS, audit_command))
    return cli.main


def test_the_audit_log_redacts_before_it_writes(tmp_path: Path, main: Callable[[list[str]], int],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as log:
        log.record(tool="login", decision="allow",
                   arguments={"user": "bob", "password": "hunter2", "api_key": SK,
                              "note": "mail bob@example.com", "pem": PEM,
                              "pin": "1234"},
                   parameters={"type": "object", "properties": {"pin": {"x-secret": True}}},
                   error="HTTP 401 for Authorization: Bearer abcdefgh12345678")
        log.record(event="escalation", arguments={"messages": [{"content": f"my key is {SK}"}]})
        [first, second] = log.query()
    assert first.arguments == {"user": "bob", "password": REDACTED, "api_key": REDACTED,
                               "note": "mail [EMAIL]", "pem": "[PRIVATE_KEY]", "pin": REDACTED}
    assert first.error == "HTTP 401 for Authorization: [BEARER_TOKEN]"
    assert second.arguments == {"messages": [{"content": "my key is [API_KEY]"}]}
    raw = _raw_text(path)
    assert main(["audit", str(path), "--json"]) == 0
    printed = capsys.readouterr().out
    for secret in SECRETS:
        assert secret not in raw
        assert secret not in printed


def test_values_stored_as_repr_are_redacted_too(tmp_path: Path) -> None:
    class Client:
        def __repr__(self) -> str:
            return f"Client(key={SK!r}, owner: bob@example.com)"

    with AuditLog(tmp_path / "a.db") as log:
        log.record(tool="t", decision="allow", arguments={"client": Client()})
        assert log.query()[0].arguments == {"client": "Client(key='[API_KEY]', owner: [EMAIL])"}
    assert SK not in _raw_text(tmp_path / "a.db")


def test_redaction_can_be_turned_off(tmp_path: Path) -> None:
    off = Redaction(secret_keys=None, credentials={}, pii={})
    with AuditLog(tmp_path / "a.db", redaction=off) as log:
        log.record(tool="t", decision="allow", arguments={"password": "hunter2"})
        assert log.query()[0].arguments == {"password": "hunter2"}
    with pytest.raises(ConfigError, match="redaction="):
        AuditLog(tmp_path / "b.db", redaction={"pii": {}})  # type: ignore[arg-type]


def test_the_agent_passes_the_tool_schema(package: Callable[..., Path], tmp_path: Path) -> None:
    """A parameter the tool marks ``"x-secret": true`` is redacted, whatever its value."""
    model = qwen_edge.load(package("tiny-qwen2", "int4"), threads=1)
    spec = {"type": "function", "function": {"name": "unlock", "description": "Unlock", "parameters": {
        "type": "object", "properties": {"code": {"type": "string", "maxLength": 6,
                                                  "x-secret": True}},
        "required": ["code"], "additionalProperties": False}}}
    seen: list[str] = []
    unlock = Tool.from_openai(spec, lambda code: seen.append(code) or "ok")
    audit = AuditLog(tmp_path / "audit.db")
    agent = Agent(model, [unlock], max_steps=1, audit=audit, seed=1, max_tokens=64)
    agent.run("open", tool_choice={"type": "function", "function": {"name": "unlock"}})
    [record] = audit.query()
    assert seen  # the tool ran with the real value...
    assert record.arguments == {"code": REDACTED}  # ...and the log never saw it
    assert seen[0] not in _raw_text(audit.path) or seen[0] in ("", REDACTED)
    audit.close()

"""The example scripts run (smoke tests on a random-weight package) and the agent CLI loads tools."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLES))


def test_home_agent_runs(package, capsys):  # type: ignore[no-untyped-def]
    result = _load("home_agent").main(str(package("tiny-qwen2", "int4")), "Lights on", 2)
    assert result.finish_reason == "stop"
    assert capsys.readouterr().out


def test_field_agent_runs_and_audits(package, tmp_path):  # type: ignore[no-untyped-def]
    n = _load("field_agent").main(str(package("tiny-qwen2", "int4")), "Pump P-100 error E3",
                                  str(tmp_path / "audit.db"))
    assert n >= 0
    assert (tmp_path / "audit.db").exists()


def test_agent_cli_loads_tools_from_a_file():  # type: ignore[no-untyped-def]
    from qwen_edge.cli.agent import load_tools

    names = {t.name for t in load_tools(str(EXAMPLES / "home_tools.py"))}
    assert names == {"get_weather", "set_timer", "set_lights", "set_thermostat",
                     "add_reminder", "convert_units", "calculate"}


def test_agent_cli_errors(tmp_path):  # type: ignore[no-untyped-def]
    from qwen_edge.cli.agent import load_tools
    from qwen_edge.errors import ConfigError

    with pytest.raises(ConfigError, match="no such tools file"):
        load_tools(str(tmp_path / "none.py"))
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match="no @tool functions"):
        load_tools(str(tmp_path / "empty.py"))


def test_agent_cli_session(package, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    from qwen_edge.cli import main

    answers = iter(["Turn on the lights", "/reset", "/quit"])
    monkeypatch.setattr("builtins.input", lambda _="": next(answers))
    code = main(["agent", str(package("tiny-qwen2", "int4")), "--tools",
                 str(EXAMPLES / "home_tools.py"), "--max-tokens", "16", "--max-steps", "2",
                 "--temperature", "0"])
    assert code == 0
    assert "tools: get_weather" in capsys.readouterr().err

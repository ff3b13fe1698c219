"""`qwen-edge demo` on any package (here a random-weight one): the session runs end to end,
tool calls and results are shown, and every answer says how it was routed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from qwen_edge.cli.demo import SCRIPT


def _demo(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    # cwd outside the repository: its root must not shadow the installed package
    return subprocess.run([sys.executable, "-m", "qwen_edge", "demo", *args], input=stdin,
                          capture_output=True, text=True, timeout=300, env=env, cwd=cwd,
                          check=False)


def test_scripted_session_on_a_package(package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc = _demo(tmp_path, "--package", str(package("tiny-qwen2", "int4")), "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "offline; no server configured." in out
    assert "Tools: get_weather, set_timer, set_lights" in out
    for request in SCRIPT:
        assert f"\n> {request}\n" in out
    assert out.count(" step(s), ") == len(SCRIPT)
    # an answer the router would escalate says why and still shows the local answer
    for block in out.split("\n> ")[1:]:
        if "[router]" in block:
            assert "would escalate (confidence " in block
            assert "no server configured" in block
            assert "\n  local answer: " in block


def test_interactive_reads_stdin_and_resets(package, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc = _demo(tmp_path, "--package", str(package("tiny-qwen2", "int4")), "--interactive",
                 stdin="hello there\n/reset\n\nweather in Oslo?\n")
    assert proc.returncode == 0, proc.stderr
    assert "> hello there" in proc.stdout
    assert "> weather in Oslo?" in proc.stdout
    assert "> /reset" not in proc.stdout
    assert proc.stdout.count(" step(s), ") == 2


def test_missing_package_is_a_clear_error(tmp_path: Path) -> None:
    proc = _demo(tmp_path, "--package", str(tmp_path / "nope"))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ")
    assert "nope" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_load_default_without_a_shipped_package_says_what_to_do(monkeypatch, tmp_path: Path,
                                                                ) -> None:  # type: ignore[no-untyped-def]
    import pytest

    import qwen_edge
    import qwen_edge.default_model as dm

    monkeypatch.setattr(dm, "default_package_path", lambda: tmp_path / "absent")
    with pytest.raises(qwen_edge.PackageNotFoundError, match="qwen-edge demo --package PKG"):
        qwen_edge.load_default()

"""The shipped qwen-edge-tiny package: it loads with no download and meets issue #27's bar.

The quality bar is measured through the runtime exactly as the agent uses it (train/tiny/
evaluate.py): held-out requests generated with other seeds, templates and entities than the
training corpus, and requests written by hand (train/tiny/handwritten.jsonl and
handwritten_typed.jsonl, never trained on).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import load_tiny

import qwen_edge
from qwen_edge.default_model import DEFAULT_SYSTEM, ROUTING_THRESHOLD, default_package_path

if not (default_package_path() / "qwen_edge.json").is_file():  # pragma: no cover
    pytest.skip("this checkout ships no qwen-edge-tiny package (qwen_edge/models/)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def model() -> qwen_edge.Model:
    return qwen_edge.load_default()


@pytest.fixture(scope="module")
def evaluate() -> Any:
    return load_tiny("evaluate")


@pytest.fixture(scope="module")
def handwritten(model: qwen_edge.Model, evaluate: Any) -> dict[str, Any]:
    return evaluate.evaluate(model, evaluate.handwritten_items()).summary(ROUTING_THRESHOLD)


@pytest.fixture(scope="module")
def heldout(model: qwen_edge.Model, evaluate: Any) -> dict[str, Any]:
    return evaluate.evaluate(model, evaluate.generated_items(300)).summary(ROUTING_THRESHOLD)


# -- the package ----------------------------------------------------------------------------


def test_shipped_package_is_small_verified_and_inside_the_installed_package(
        model: qwen_edge.Model) -> None:
    path = default_package_path()
    assert path.parent.parent == Path(qwen_edge.__file__).parent
    package = qwen_edge.read_package(path)  # verifies every sha256
    assert package.architecture == "Qwen2ForCausalLM"
    assert package.nbytes <= 100_000_000  # issue #27's budget
    assert package.shapes["vocab_size"] == 49156  # SmolLM2's 49,152 + the four tool tokens
    tok = model.tokenizer
    for text in ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"):
        assert tok.token_to_id(text) is not None, text


def test_load_default_generates_offline(model: qwen_edge.Model) -> None:
    out = model.generate([{"role": "user", "content": "hi"}], max_tokens=24)
    assert out.text.strip()
    assert out.finish_reason in ("stop", "length")


def test_load_default_passes_options() -> None:
    model = qwen_edge.load_default(threads=1, max_context=1024)
    assert model.max_context == 1024


def test_load_default_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    import qwen_edge.default_model as dm

    monkeypatch.setattr(dm, "default_package_path", lambda: tmp_path / "nope")
    with pytest.raises(qwen_edge.PackageNotFoundError, match="qwen-edge demo --package PKG"):
        qwen_edge.load_default()


# -- the quality bar (issue #6) -----------------------------------------------------------


@pytest.mark.parametrize("which", ["heldout", "handwritten"])
def test_tool_selection_and_arguments(which: str, request: pytest.FixtureRequest) -> None:
    r = request.getfixturevalue(which)
    assert r["tool_selection"] >= 0.95, r
    assert r["exact_arguments"] >= 0.90, r


@pytest.mark.parametrize("which", ["heldout", "handwritten"])
def test_every_constrained_call_is_valid(which: str, request: pytest.FixtureRequest) -> None:
    r = request.getfixturevalue(which)
    assert r["valid_calls"] == 1.0, r


@pytest.mark.parametrize("which", ["heldout", "handwritten"])
def test_answers_state_the_tool_results(which: str, request: pytest.FixtureRequest) -> None:
    r = request.getfixturevalue(which)
    assert r["counts"]["answers"] >= 15
    assert r["answer_states_key_values"] >= 0.90, r


@pytest.mark.parametrize("which", ["heldout", "handwritten"])
def test_router_escalates_out_of_scope_and_keeps_in_scope(which: str,
                                                           request: pytest.FixtureRequest) -> None:
    r = request.getfixturevalue(which)
    assert r["counts"]["oos"] >= 40
    assert r["counts"]["in_scope"] >= 100
    assert r["oos_escalated"] >= 0.90, r
    assert r["in_scope_local"] >= 0.95, r
    assert r["routing_roc_auc"] >= 0.95, r


# -- the router without a server ------------------------------------------------------------


def test_router_without_server_answers_locally_and_says_why(model: qwen_edge.Model) -> None:
    router = qwen_edge.Router(model, None,
                              policy=qwen_edge.RoutingPolicy(threshold=ROUTING_THRESHOLD))
    out = router.generate([{"role": "system", "content": DEFAULT_SYSTEM},
                           {"role": "user", "content": "Who painted the Mona Lisa?"}],
                          max_tokens=48, temperature=0.0)
    assert out.route == "local-fallback"
    assert "no server configured" in out.route_reason
    assert out.text.strip()


def test_agent_with_serverless_router_marks_escalations(model: qwen_edge.Model) -> None:
    from qwen_edge.demo import home_tools

    router = qwen_edge.Router(model, None,
                              policy=qwen_edge.RoutingPolicy(threshold=ROUTING_THRESHOLD))
    agent = qwen_edge.Agent(model, home_tools.TOOLS, system=DEFAULT_SYSTEM, remote=router,
                            max_steps=3, max_tokens=96, temperature=0.0)
    oos = agent.run("Explain the causes of the French Revolution in detail.")
    assert oos.steps[-1].route == "local-fallback"
    assert "no server configured" in oos.steps[-1].route_reason
    agent.reset()
    local = agent.run("set a timer for 5 minutes")
    assert [c.name for c in local.steps[0].tool_calls] == ["set_timer"]
    assert local.steps[0].tool_calls[0].arguments["minutes"] == 5
    assert all(s.route == "local" for s in local.steps)


# -- qwen-edge demo -------------------------------------------------------------------------


def _demo(cwd: Path, *args: str, stdin: str | None = None) -> str:
    from test_demo_cli import _demo as run_demo  # the same subprocess runner

    proc = run_demo(cwd, *args, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_demo_scripted_session(tmp_path: Path) -> None:
    out = _demo(tmp_path)
    assert "-> get_weather(" in out
    assert "<- {" in out
    assert "-> set_lights(" in out
    assert "-> set_timer(" in out
    assert "would escalate" in out
    assert "no server configured" in out
    assert "local answer:" in out


def test_demo_interactive(tmp_path: Path) -> None:
    out = _demo(tmp_path, "--interactive", stdin="what's the weather in Oslo\n/reset\n")
    assert '-> get_weather({"city": "Oslo"})' in out


def test_demo_escalates_to_a_server(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="qwen-edge[serve] is not installed")
    from test_router import KEY, serve  # a real `qwen-edge serve` subprocess

    with serve(default_package_path(), tmp_path) as (_, url):
        out = _demo(tmp_path, "--server", url, "--server-model", "tiny", "--api-key", KEY)
    assert "escalated:" in out
    assert "server answer:" in out
    assert json.dumps({"city": "Lisbon"}) in out

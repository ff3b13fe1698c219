"""Tool permissions: rules, patterns, validation, confirmation outcomes, the terminal prompt."""

from __future__ import annotations

import copy
import dataclasses
import io
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwen_edge.agents.permissions import Decision, Denied, Policy, Verdict, confirm_on_terminal
from qwen_edge.errors import ConfigError

ARGS = {"room": "kitchen", "on": True}


def _approve(_name: str, _args: dict[str, Any]) -> bool:
    return True


# -- rule resolution ----------------------------------------------------------------------

RULES = {"get_weather": "deny", "get_*": "allow", "set_*": "confirm", "*_reminder": "deny"}


@pytest.mark.parametrize(("tool", "expected"), [
    ("get_weather", Decision.DENY),        # the exact name wins over the earlier-matching pattern
    ("get_time", Decision.ALLOW),          # pattern
    ("set_lights", Decision.CONFIRM),      # pattern
    ("add_reminder", Decision.DENY),       # suffix pattern
    ("calculate", Decision.ALLOW),         # default
    ("Set_lights", Decision.ALLOW),        # patterns are case-sensitive
    ("get_", Decision.ALLOW),              # '*' matches the empty string
])
def test_decision_for(tool: str, expected: Decision) -> None:
    policy = Policy(default="allow", rules=RULES, confirm=_approve)
    assert policy.decision_for(tool) is expected


def test_first_matching_pattern_wins() -> None:
    broad_first = Policy(default="allow", rules={"*": "deny", "set_*": "allow"})
    specific_first = Policy(default="allow", rules={"set_*": "allow", "*": "deny"})
    assert broad_first.decision_for("set_timer") is Decision.DENY
    assert specific_first.decision_for("set_timer") is Decision.ALLOW
    assert specific_first.decision_for("calculate") is Decision.DENY


def test_brackets_and_question_mark_are_patterns() -> None:
    policy = Policy(default="deny", rules={"tool_?": "allow", "[ab]_x": "allow"})
    assert [policy.decision_for(n) for n in ("tool_1", "tool_12", "a_x", "c_x")] == [
        Decision.ALLOW, Decision.DENY, Decision.ALLOW, Decision.DENY]


def test_allow_and_deny_verdicts() -> None:
    policy = Policy(default="deny", rules={"get_weather": "allow"})
    allowed = policy.check("get_weather", {"city": "Oslo"})
    assert allowed == Verdict(decision="allow", arguments={"city": "Oslo"},
                              reason="allowed by policy")
    assert allowed.allowed
    assert allowed.outcome == "allow"
    denied = policy.check("set_timer", {"minutes": 5})
    assert (denied.decision, denied.edited, denied.asked) == ("deny", False, False)
    assert denied.reason == "the policy does not allow the tool 'set_timer'"
    assert not denied.allowed
    assert denied.outcome == "deny"


def test_decision_enum_values_and_str() -> None:
    assert [d.value for d in Decision] == ["allow", "deny", "confirm"]
    assert str(Decision.CONFIRM) == "confirm"
    assert f"{Decision.DENY}" == "deny"
    assert Policy(default=Decision.DENY).default is Decision.DENY


# -- validation ---------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "match"), [
    ({"default": "maybe"}, r"default='maybe': must be one of 'allow', 'deny', 'confirm'"),
    ({"rules": {"set_timer": "yes"}}, r"rules\['set_timer'\]='yes': must be one of"),
    ({"rules": {"": "allow"}}, r"rules key '': must be a non-empty tool name"),
    ({"rules": {3: "allow"}}, r"rules key 3"),
    ({"rules": ["set_timer"]}, r"rules=\['set_timer'\]: must be a mapping"),
    ({"default": "confirm"}, r"default='confirm' needs a confirm callback"),
    ({"rules": {"set_*": "confirm"}}, r"rules\['set_\*'\]='confirm' needs a confirm callback"),
    ({"rules": {"a": "allow"}, "confirm": "yes"}, r"confirm='yes': must be a callable"),
])
def test_invalid_policies(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Policy(**kwargs)


def test_policy_is_immutable() -> None:
    rules = {"set_*": "deny"}
    policy = Policy(default="allow", rules=rules)
    rules["set_*"] = "allow"  # the caller's dict is copied
    assert policy.decision_for("set_timer") is Decision.DENY
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.default = "deny"  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.rules["set_*"] = "allow"  # type: ignore[index]
    verdict = policy.check("calculate", {"expression": "1+1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.decision = "deny"  # type: ignore[misc]


# -- confirmation -------------------------------------------------------------------------

def _confirming(answer: Any) -> Policy:
    def confirm(_name: str, _args: dict[str, Any]) -> Any:
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return Policy(default="confirm", confirm=confirm)


@pytest.mark.parametrize(("answer", "decision", "arguments", "edited", "outcome", "reason"), [
    (True, "allow", ARGS, False, "confirm-approved", "approved by the user"),
    (False, "deny", ARGS, False, "confirm-denied", "the user declined the call"),
    (Denied(), "deny", ARGS, False, "confirm-denied", "the user declined the call"),
    (Denied("not at night"), "deny", ARGS, False, "confirm-denied", "not at night"),
    ({"room": "kitchen", "on": False}, "allow", {"room": "kitchen", "on": False}, True,
     "confirm-edited", "approved by the user with edited arguments"),
    (dict(ARGS), "allow", ARGS, False, "confirm-approved", "approved by the user"),
    (RuntimeError("tty gone"), "deny", ARGS, False, "confirm-denied",
     "confirmation failed: RuntimeError: tty gone"),
    (None, "deny", ARGS, False, "confirm-denied",
     ("confirmation failed: the confirm callback returned None; expected True, False, "
      "Denied(reason) or a dict of arguments")),
    (1, "deny", ARGS, False, "confirm-denied",
     ("confirmation failed: the confirm callback returned 1; expected True, False, "
      "Denied(reason) or a dict of arguments")),
    ({1: "x"}, "deny", ARGS, False, "confirm-denied",
     ("confirmation failed: the confirm callback returned {1: 'x'}; expected True, False, "
      "Denied(reason) or a dict of arguments")),
])
def test_confirm_outcomes(answer: Any, decision: str, arguments: dict[str, Any], edited: bool,
                          outcome: str, reason: str) -> None:
    verdict = _confirming(answer).check("set_lights", ARGS)
    assert verdict == Verdict(decision=decision, arguments=arguments,  # type: ignore[arg-type]
                              reason=reason, edited=edited, asked=True)
    assert verdict.outcome == outcome


def test_confirm_gets_name_and_a_copy_of_the_arguments() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    nested = {"when": {"day": "mon"}}

    def confirm(name: str, args: dict[str, Any]) -> bool:
        seen.append((name, copy.deepcopy(args)))
        args["when"]["day"] = "sun"  # mutating in place is not an edit
        return True

    verdict = Policy(default="confirm", confirm=confirm).check("add_reminder", nested)
    assert seen == [("add_reminder", {"when": {"day": "mon"}})]
    assert verdict.arguments == {"when": {"day": "mon"}}
    assert not verdict.edited
    assert nested == {"when": {"day": "mon"}}


def test_only_confirm_rules_call_the_callback() -> None:
    calls: list[str] = []

    def confirm(name: str, _args: dict[str, Any]) -> bool:
        calls.append(name)
        return True

    policy = Policy(default="deny", rules={"get_*": "allow", "set_*": "confirm"}, confirm=confirm)
    for name in ("get_weather", "set_timer", "calculate", "set_lights"):
        policy.check(name, {})
    assert calls == ["set_timer", "set_lights"]


def test_keyboard_interrupt_propagates() -> None:
    with pytest.raises(KeyboardInterrupt):
        _confirming(KeyboardInterrupt()).check("set_timer", {})


def test_verdict_arguments_are_a_copy() -> None:
    args = {"minutes": 5}
    verdict = Policy().check("set_timer", args)
    verdict.arguments["minutes"] = 6
    assert args == {"minutes": 5}


@given(name=st.text(max_size=30), default=st.sampled_from(["allow", "deny", "confirm"]),
       answer=st.one_of(st.booleans(), st.none(), st.integers(), st.text(),
                        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)))
def test_check_always_returns_allow_or_deny(name: str, default: str, answer: Any) -> None:
    verdict = Policy(default=default, rules={"set_*": "deny"},
                     confirm=lambda _n, _a: answer).check(name, {"x": 1})
    assert verdict.decision in ("allow", "deny")
    assert verdict.outcome in ("allow", "deny", "confirm-approved", "confirm-denied",
                               "confirm-edited")
    assert verdict.reason


# -- confirm_on_terminal ------------------------------------------------------------------

def _terminal(*answers: str) -> tuple[Any, io.StringIO]:
    out = io.StringIO()
    lines: Iterator[str] = iter(answers)

    def prompt(_text: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    return confirm_on_terminal(prompt=prompt, out=out), out


@pytest.mark.parametrize(("answers", "expected"), [
    (("y",), True),
    (("YES ",), True),
    (("n",), Denied("the user declined the call")),
    (("",), Denied("the user declined the call")),
    ((), Denied("the user declined the call")),                       # end of input
    (("maybe", "y"), True),
    (("e", '{"room": "hall", "on": true}'), {"room": "hall", "on": True}),
    (("edit", "not json", "e", "[1]", "e", '{"on": false}'), {"on": False}),
    (("e",), Denied("the user declined the call")),                   # EOF while editing
    (("what", "huh", "eh?"), Denied("no valid answer from the user")),
])
def test_confirm_on_terminal(answers: tuple[str, ...], expected: Any) -> None:
    confirm, out = _terminal(*answers)
    assert confirm("set_lights", {"room": "kitchen", "on": True}) == expected
    shown = out.getvalue()
    assert 'The model wants to call set_lights({"room": "kitchen", "on": true})' in shown
    assert "[y]es / [n]o / [e]dit" in shown


def test_confirm_on_terminal_reports_bad_input() -> None:
    confirm, out = _terminal("e", "{oops", "x", "n")
    assert confirm("set_timer", {"minutes": 5}) == Denied("the user declined the call")
    shown = out.getvalue()
    assert "not valid JSON" in shown
    assert "please answer y, n or e (got 'x')" in shown
    confirm, out = _terminal("e", "[1]", "n")
    assert confirm("set_timer", {"minutes": 5}) == Denied("the user declined the call")
    assert "the arguments must be a JSON object {...}; try again" in out.getvalue()


def test_confirm_on_terminal_in_a_policy() -> None:
    confirm, _ = _terminal("e", '{"minutes": 10}')
    verdict = Policy(rules={"set_timer": "confirm"}, confirm=confirm).check(
        "set_timer", {"minutes": 5})
    assert (verdict.decision, verdict.arguments, verdict.outcome) == (
        "allow", {"minutes": 10}, "confirm-edited")


def test_confirm_on_terminal_defaults_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    confirm = confirm_on_terminal(prompt=lambda _text: "y")
    assert confirm("calculate", {"expression": "1+1"}) is True
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "calculate" in captured.err

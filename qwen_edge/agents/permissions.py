"""Tool permissions: which calls run, which are refused, which a person confirms first.

A ``Policy`` maps tool names (exact, or fnmatch patterns such as ``"set_*"``) to a
``Decision``; tools no rule names get the default. ``Policy.check`` returns the final
``Verdict`` after any confirmation, so the agent only ever sees "allow" or "deny"::

    policy = Policy(default="deny", rules={"get_*": "allow", "set_*": "confirm"},
                    confirm=confirm_on_terminal())
    verdict = policy.check("set_lights", {"room": "kitchen", "on": True})
    if verdict.allowed:
        result = run(tool, verdict.arguments)      # possibly edited by the user

A confirm callback gets ``(tool_name, arguments)`` and returns ``True`` (approve), ``False``
or ``Denied(reason)`` (refuse), or a new arguments dict (approve with edits). A callback that
raises, or returns anything else, refuses the call with the reason
``"confirmation failed: ..."``; the exception never reaches the agent loop.
"""

from __future__ import annotations

import copy
import enum
import fnmatch
import json
import logging
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TextIO, cast

from ..errors import ConfigError

__all__ = ["ConfirmResult", "Decision", "Denied", "Policy", "Verdict", "confirm_on_terminal"]

logger = logging.getLogger(__name__)


class Decision(str, enum.Enum):
    """What a policy rule says about a tool."""

    ALLOW = "allow"
    DENY = "deny"
    CONFIRM = "confirm"

    def __str__(self) -> str:  # "allow", not "Decision.ALLOW", on every Python version
        return self.value


@dataclass(frozen=True, slots=True)
class Denied:
    """Returned by a confirm callback to refuse a call, with a reason the model will see."""

    reason: str = "the user declined the call"


ConfirmResult = bool | Mapping[str, Any] | Denied
"""``True`` approve, ``False`` / ``Denied(reason)`` refuse, a dict: approve these arguments."""

ConfirmCallback = Callable[[str, dict[str, Any]], ConfirmResult]

_PATTERN_CHARS = frozenset("*?[")
_CHOICES = ", ".join(repr(d.value) for d in Decision)


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The final outcome of ``Policy.check`` for one call.

    Attributes:
        decision: "allow" or "deny" (confirmation already happened).
        arguments: the arguments to run the tool with (the user's edit, if any).
        reason: why; for a denial, the text the agent reports to the model.
        edited: the user changed the arguments while confirming.
        asked: the confirm callback was asked (the rule said "confirm").
    """

    decision: Literal["allow", "deny"]
    arguments: dict[str, Any]
    reason: str
    edited: bool = False
    asked: bool = False

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    @property
    def outcome(self) -> str:
        """The audit-log decision: allow, deny, confirm-approved/-denied/-edited."""
        if not self.asked:
            return self.decision
        if self.decision == "deny":
            return "confirm-denied"
        return "confirm-edited" if self.edited else "confirm-approved"


def _to_decision(value: object, name: str) -> Decision:
    try:
        return Decision(value)
    except ValueError:
        msg = f"{name}={value!r}: must be one of {_CHOICES}"
        raise ConfigError(msg) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Per-tool permissions, fixed at construction.

    Args:
        default: the decision for tools that no rule names.
        rules: tool name or fnmatch pattern -> "allow" | "deny" | "confirm". An exact name
            wins over patterns; among patterns, the first matching one in the mapping's order
            wins (so list specific patterns before broad ones such as ``"*"``).
        confirm: called for "confirm" decisions; required if any decision is "confirm".

    Raises:
        ConfigError: an unknown decision, an empty or non-string rule key, a "confirm"
            decision without a callback, or a callback that is not callable.

    Example:
        >>> policy = Policy(default="deny", rules={"get_weather": "allow"})
        >>> policy.check("set_timer", {"minutes": 5}).reason
        "the policy does not allow the tool 'set_timer'"
    """

    default: Decision | str = Decision.ALLOW
    rules: Mapping[str, Decision | str] | None = None
    confirm: ConfirmCallback | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "default", _to_decision(self.default, "default"))
        rules = {} if self.rules is None else self.rules
        if not isinstance(rules, Mapping):
            msg = f"rules={rules!r}: must be a mapping of tool name or pattern -> decision"
            raise ConfigError(msg)
        checked: dict[str, Decision] = {}
        for key, value in rules.items():
            if not isinstance(key, str) or not key:
                msg = f"rules key {key!r}: must be a non-empty tool name or pattern"
                raise ConfigError(msg)
            checked[key] = _to_decision(value, f"rules[{key!r}]")
        # A read-only copy: changing the caller's dict later does not change the policy.
        object.__setattr__(self, "rules", types.MappingProxyType(checked))
        if self.confirm is not None and not callable(self.confirm):
            msg = f"confirm={self.confirm!r}: must be a callable(tool_name, arguments)"
            raise ConfigError(msg)
        if self.confirm is None:
            needs = [f"rules[{k!r}]" for k, v in checked.items() if v is Decision.CONFIRM]
            if self.default is Decision.CONFIRM:
                needs.insert(0, "default")
            if needs:
                msg = (f"{', '.join(needs)}='confirm' needs a confirm callback; pass "
                       "confirm=confirm_on_terminal() or your own callable(tool_name, arguments)")
                raise ConfigError(msg)

    def decision_for(self, tool_name: str) -> Decision:
        """The rule for ``tool_name`` before confirmation (exact name, pattern, default)."""
        rules = cast("Mapping[str, Decision]", self.rules)
        if tool_name in rules:
            return rules[tool_name]
        for pattern, decision in rules.items():
            if _PATTERN_CHARS.intersection(pattern) and fnmatch.fnmatchcase(tool_name, pattern):
                return decision
        return cast("Decision", self.default)

    def check(self, tool_name: str, arguments: Mapping[str, Any]) -> Verdict:
        """Decide one call, asking the confirm callback if the rule says "confirm".

        Returns:
            The final verdict. It never raises for a failing callback: that is a denial
            with the reason ``"confirmation failed: ..."``.
        """
        args = dict(arguments)
        decision = self.decision_for(tool_name)
        if decision is Decision.ALLOW:
            return Verdict(decision="allow", arguments=args, reason="allowed by policy")
        if decision is Decision.DENY:
            return Verdict(decision="deny", arguments=args,
                           reason=f"the policy does not allow the tool {tool_name!r}")
        # __post_init__ guarantees a callback whenever a decision can be "confirm"
        return _confirm(cast("ConfirmCallback", self.confirm), tool_name, args)


def _confirm(callback: ConfirmCallback, tool_name: str, args: dict[str, Any]) -> Verdict:
    def deny(reason: str) -> Verdict:
        return Verdict(decision="deny", arguments=args, reason=reason, asked=True)

    try:
        # A deep copy: a callback that mutates its argument must not edit silently.
        answer = callback(tool_name, copy.deepcopy(args))
    except Exception as exc:  # any failure of user code is a denial, reported
        logger.warning("confirm callback failed for %s", tool_name, exc_info=True)
        return deny(f"confirmation failed: {type(exc).__name__}: {exc}")
    if answer is True:
        return Verdict(decision="allow", arguments=args, reason="approved by the user",
                       asked=True)
    if answer is False:
        return deny("the user declined the call")
    if isinstance(answer, Denied):
        return deny(answer.reason or "the user declined the call")
    if isinstance(answer, Mapping) and all(isinstance(k, str) for k in answer):
        edited = dict(answer)
        changed = edited != args
        return Verdict(decision="allow", arguments=edited, edited=changed, asked=True,
                       reason="approved by the user with edited arguments" if changed
                       else "approved by the user")
    logger.warning("confirm callback returned %r for %s", answer, tool_name)
    return deny(f"confirmation failed: the confirm callback returned {answer!r}; expected "
                "True, False, Denied(reason) or a dict of arguments")


def confirm_on_terminal(
    prompt: Callable[[str], str] = input, out: TextIO | None = None
) -> ConfirmCallback:
    """A confirm callback for the CLI: shows the call and asks ``[y]es / [n]o / [e]dit``.

    Edit reads the new arguments as one line of JSON (an object). An empty answer, end of
    input, or three unrecognised answers refuse the call.

    Args:
        prompt: reads one line of input (``input`` by default; tests pass a stub).
        out: where the call and the question are written (default: ``sys.stderr`` at call
            time, so stdout stays the model's output).

    Returns:
        A callable(tool_name, arguments) -> ``True`` | ``Denied`` | dict.
    """

    def confirm(tool_name: str, arguments: dict[str, Any]) -> ConfirmResult:
        stream = sys.stderr if out is None else out

        def ask(question: str) -> str | None:
            stream.write(question)
            stream.flush()
            try:
                return prompt("")
            except EOFError:
                return None

        stream.write(f"\nThe model wants to call {tool_name}"
                     f"({json.dumps(arguments, ensure_ascii=False)})\n")
        for _ in range(3):
            answer = ask("Run it? [y]es / [n]o / [e]dit: ")
            choice = (answer or "").strip().lower()
            if answer is None or choice in ("", "n", "no"):
                return Denied("the user declined the call")
            if choice in ("y", "yes"):
                return True
            if choice in ("e", "edit"):
                text = ask("New arguments as a JSON object: ")
                if text is None:
                    return Denied("the user declined the call")
                try:
                    edited = json.loads(text)
                except json.JSONDecodeError as exc:
                    stream.write(f"not valid JSON ({exc}); try again\n")
                    continue
                if isinstance(edited, dict):
                    return edited
                stream.write("the arguments must be a JSON object {...}; try again\n")
                continue
            stream.write(f"please answer y, n or e (got {answer!r})\n")
        return Denied("no valid answer from the user")

    return confirm

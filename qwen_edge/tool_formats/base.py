"""What every tool-call format provides: the stream events and the ``ToolFormat`` record.

A format is four functions over text (render the calls as the chat template writes them, parse
a finished message, parse a stream, build the llguidance grammar) plus the generation options
that implement OpenAI's ``tool_choice`` with that grammar. ``formats.get_format(name)`` returns
one of the known ``ToolFormat`` values; the chat path calls them without knowing which it has.

Stream parsers emit, for any split of the text into deltas:

- ``TextDelta``: content outside calls, as soon as it cannot be the start of a call;
- ``ToolCallDelta``: OpenAI's streamed ``tool_calls[i]`` fragments. The first one of a call
  carries its ``id`` and ``name`` (as soon as the name is complete), the next ones pieces of
  ``arguments`` JSON text whose concatenation is ``json.dumps(call.arguments)`` (Hermes JSON
  gives its arguments in one piece, when the call ends);
- ``ToolCallEvent``: the finished call, authoritative (the deltas are a preview of it);
- ``ToolCallError``: a block that does not parse; its text is then emitted as content.

The formats read three fields of a tool, ``ToolSpec``: its name, its parameters schema and its
grounded parameters. ``qwen_edge.agents.tools.Tool`` has them, and so may any record; the
formats never need the agents package for one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, runtime_checkable

from ..chat import ToolCall
from ..errors import ConfigError

__all__ = [
    "CallableTools",
    "Event",
    "StreamParser",
    "TextDelta",
    "ToolCallDelta",
    "ToolCallError",
    "ToolCallEvent",
    "ToolFormat",
    "ToolSpec",
    "ToolsArg",
    "callable_tools",
    "tool_choice_options",
    "tool_specs",
]


@runtime_checkable
class ToolSpec(Protocol):
    """What a tool format reads of a tool (``agents.tools.Tool`` is one).

    Attributes:
        name: the function name the model writes.
        parameters: JSON schema of the arguments (``"type": "object"``); read, never changed.
        grounded: top-level string parameters whose values must quote the user's messages.
    """

    @property
    def name(self) -> str: ...
    @property
    def parameters(self) -> Mapping[str, Any]: ...
    @property
    def grounded(self) -> frozenset[str]: ...


ToolsArg: TypeAlias = "Sequence[ToolSpec | Mapping[str, Any] | Callable[..., Any]]"


def tool_specs(tools: ToolsArg) -> list[ToolSpec]:
    """The offered tools as ``ToolSpec`` records.

    A ``ToolSpec`` passes as it is: the chat path hands the formats its normalized tools, so
    generation never leaves the core. An OpenAI tool dict or a plain function, given to the
    public format functions directly, is converted once by ``qwen_edge.agents.tools.as_tool``,
    which owns checking a dict's schema and reading a function's signature; it is imported
    only then, so the core does not load the agents package to chat with tools.

    Raises:
        ToolError: an entry that is neither a tool, a function nor an OpenAI tool dict, or a
            dict whose schema is not valid (``Tool.from_openai``).
    """
    out: list[ToolSpec] = []
    for t in tools:
        if isinstance(t, ToolSpec):
            out.append(t)
            continue
        from ..agents.tools import as_tool  # deferred: see the docstring

        out.append(as_tool(t))
    return out


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Content text outside tool calls."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallEvent:
    """A complete, parsed tool call."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class ToolCallError:
    """A ``<tool_call>`` block that does not parse; its text stays in the content.

    Attributes:
        message: what is wrong and the expected format, meant to be shown to the model.
        raw: the block as written, markers included.
    """

    message: str
    raw: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of the call at ``index`` (OpenAI's ``choices[0].delta.tool_calls[i]``).

    Attributes:
        index: the call's position in the message (its final ``id`` is ``call_<index>``).
        id: set on the first fragment of a call, "" on the next ones.
        name: set on the first fragment, None on the next ones.
        arguments: a piece of the arguments JSON text ("" on the first fragment).
    """

    index: int
    id: str
    name: str | None
    arguments: str


Event: TypeAlias = TextDelta | ToolCallDelta | ToolCallEvent | ToolCallError


class StreamParser(Protocol):
    """Incremental parsing of one assistant message."""

    def feed(self, delta: str) -> list[Event]:
        """Add generated text; return the events it completes."""
        ...

    def finish(self, *, truncated: bool = False) -> list[Event]:
        """End of the message: flush held text, report an unterminated call (or drop it
        when ``truncated``: the output was cut off by ``max_tokens``)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolFormat:
    """One tool-call format, as values the chat path calls.

    Attributes:
        name: the name in manifests, ``load(tool_format=)`` and ``parse_tool_calls(format=)``.
        call_start / call_end: the markers around each call (the lazy grammar's trigger is
            ``call_start``).
        parse: ``(text, tools, strict, truncated)`` -> ``(content, calls)`` or, with
            ``strict=False``, ``(content, calls, errors)``; ``tools`` types values where the
            format needs it; ``truncated`` drops a last call cut off by ``max_tokens``.
        ends_inside_call: whether a text ends inside an incomplete call (a ``max_tokens`` cut).
        stream_parser: ``tools`` -> a fresh ``StreamParser`` for one message.
        grammar: ``(tools, tool_choice, grounding)`` -> the Lark grammar of the calls.
        constraint_options: ``(tools, tool_choice, tool_call_token, grounding)`` -> the
            generation options (``grammar``, ``grammar_trigger``, ``logit_bias``).
        render_calls: the calls as the chat template writes them in an assistant turn.
    """

    name: str
    call_start: str
    call_end: str
    parse: Callable[[str, ToolsArg | None, bool, bool], tuple[Any, ...]]
    ends_inside_call: Callable[[str], bool]
    stream_parser: Callable[[ToolsArg | None], StreamParser]
    grammar: Callable[[ToolsArg, str | Mapping[str, Any], Sequence[str] | None], str]
    constraint_options: Callable[[ToolsArg, Any, int | None, Sequence[str] | None],
                                 dict[str, Any]]
    render_calls: Callable[[Sequence[ToolCall]], str]


@dataclass(frozen=True, slots=True)
class CallableTools:
    """What a call grammar allows under one ``tool_choice`` (``callable_tools``).

    Attributes:
        tools: the tools a call may name (the one named by a named ``tool_choice``).
        forced: the grammar starts at the message's first token ("required", a named
            function), not lazily at the model's own call marker ("auto").
        single: exactly one call (a named function, as OpenAI and vLLM read it).
    """

    tools: list[ToolSpec]
    forced: bool
    single: bool


def callable_tools(tools: ToolsArg, tool_choice: str | Mapping[str, Any]) -> CallableTools:
    """Check the tools and ``tool_choice`` of a call grammar, the same way for every format.

    Raises:
        ConfigError: no tools, duplicate names, or a ``tool_choice`` that is not "auto",
            "required" or an offered function.
        ToolError: a tool that is not a Tool, a function or an OpenAI tool dict.
    """
    offered = tool_specs(tools)
    if not offered:
        msg = "tool_call_grammar needs at least one tool"
        raise ConfigError(msg)
    names = [t.name for t in offered]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        msg = f"duplicate tool names: {', '.join(duplicates)}; each tool needs its own name"
        raise ConfigError(msg)
    if isinstance(tool_choice, Mapping):
        return CallableTools([_named_tool(tool_choice, offered)], forced=True, single=True)
    if tool_choice not in ("auto", "required"):
        msg = (f"tool_choice={tool_choice!r}: must be 'auto', 'required' or "
               "{'type': 'function', 'function': {'name': ...}} ('none' needs no grammar)")
        raise ConfigError(msg)
    return CallableTools(offered, forced=tool_choice != "auto", single=False)


def _named_tool(choice: Mapping[str, Any], offered: list[ToolSpec]) -> ToolSpec:
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else None
    if choice.get("type") != "function" or not isinstance(name, str):
        msg = (f"tool_choice={dict(choice)!r}: expected "
               "{'type': 'function', 'function': {'name': ...}}")
        raise ConfigError(msg)
    for t in offered:
        if t.name == name:
            return t
    msg = f"tool_choice names {name!r}, which is not offered; tools: {', '.join(t.name for t in offered)}"
    raise ConfigError(msg)


def tool_choice_options(tools: ToolsArg, tool_choice: Any, *, tool_call_token: int | None,
                        grammar: Callable[[], str], trigger: str) -> dict[str, Any]:
    """Generation options that implement OpenAI's ``tool_choice`` with a format's grammar.

    ``"none"`` (or no tools) masks the call-start token (``tool_call_token``) with a logit
    bias; ``"auto"`` applies ``grammar()`` lazily from the model's own ``trigger``;
    ``"required"`` or a named function applies it from the first token.
    """
    if not tools or tool_choice == "none":
        return {} if tool_call_token is None else {"logit_bias": {tool_call_token: -100.0}}
    options: dict[str, Any] = {"grammar": grammar()}
    if tool_choice == "auto":
        options["grammar_trigger"] = trigger
    return options

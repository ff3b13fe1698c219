"""Qwen2.5 / Qwen3 tool calls (the "Hermes" format): parse, stream-parse, constrain.

The model writes any number of calls at the end of its message, each as::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

``<tool_call>`` and ``</tool_call>`` are single (added, non-special) tokens of the Qwen
tokenizer; the published chat templates join parallel calls with one newline.

Content is the text outside the blocks. Whitespace next to a parsed call is dropped and the
remaining pieces are joined with one newline (as vLLM's hermes parser and Qwen-Agent keep
``"Let me check."`` from ``"Let me check.\\n<tool_call>..."``); text without calls is returned
unchanged. A block that does not parse stays in the content, as text. A last block without
``</tool_call>`` whose body is a complete call is a call (vLLM's and Qwen-Agent's parsers do
the same: a stop string or ``max_tokens`` can cut the end marker). Output cut off inside a
call (``max_tokens``) is told apart with ``ends_inside_call``; pass ``truncated=True`` and the
cut call is dropped from the content instead of left there as raw markup.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, overload

from ..chat import ToolCall
from ..errors import ConfigError, ToolCallParseError
from ._split import CALL_END, CALL_START, finish_parse, split_calls
from .base import (
    Event,
    TextDelta,
    ToolCallError,
    ToolCallEvent,
    ToolsArg,
    ToolSpec,
    callable_tools,
    tool_choice_options,
)
from .bounds import bound_schema
from .grounding import quotable_spans

logger = logging.getLogger(__name__)

__all__ = [
    "TOOL_CALL_END",
    "TOOL_CALL_START",
    "Event",
    "TextDelta",
    "ToolCallError",
    "ToolCallEvent",
    "ToolCallStreamParser",
    "constraint_options",
    "ends_inside_call",
    "parse_tool_calls",
    "render_calls",
    "tool_call_grammar",
]

TOOL_CALL_START = CALL_START  # "<tool_call>", shared with the XML format
TOOL_CALL_END = CALL_END  # "</tool_call>"

_EXPECTED = (f'Write each call as:\n{TOOL_CALL_START}\n{{"name": <function-name>, '
             f'"arguments": <args-json-object>}}\n{TOOL_CALL_END}')
_SNIPPET_CHARS = 200




# -- one block --------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    msg = f"{name} is not valid JSON"
    raise ValueError(msg)


def _parse_block(body: str, block: int, call_index: int) -> ToolCall:
    """The body between the markers -> ToolCall, or ToolCallParseError saying what is wrong."""
    text = body.strip()
    problem = ""
    obj: Any = None
    if not text:
        problem = "the block is empty"
    else:
        try:
            obj = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            problem = f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        except (ValueError, RecursionError) as exc:
            problem = f"invalid JSON: {exc}"
    if not problem:
        problem, call = _check_call(obj, call_index)
        if call is not None:
            return call
    snippet = f"{TOOL_CALL_START}{body}{TOOL_CALL_END}"
    if len(snippet) > _SNIPPET_CHARS:
        snippet = snippet[:_SNIPPET_CHARS] + "..."
    msg = f"tool call {block}: {problem}.\nYou wrote: {snippet}\n{_EXPECTED}"
    raise ToolCallParseError(msg)


def _check_call(obj: Any, call_index: int) -> tuple[str, ToolCall | None]:
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {_json_type(obj)}", None
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        got = "it is missing" if "name" not in obj else f"got {_json_type(name)}"
        return f'"name" must be a non-empty string ({got})', None
    arguments = obj.get("arguments", {})
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments, parse_constant=_reject_constant) if arguments.strip() else {}
        except (ValueError, RecursionError):
            return '"arguments" is a string that is not a JSON object', None
    if not isinstance(arguments, dict):
        return f'"arguments" must be a JSON object, got {_json_type(arguments)}', None
    return "", ToolCall(name=name, arguments=arguments, id=f"call_{call_index}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# -- whole messages ---------------------------------------------------------------------------


@overload
def parse_tool_calls(text: str, *, strict: Literal[True] = True,
                     truncated: bool = False) -> tuple[str, list[ToolCall]]: ...
@overload
def parse_tool_calls(text: str, *, strict: Literal[False], truncated: bool = False
                     ) -> tuple[str, list[ToolCall], list[ToolCallError]]: ...


def parse_tool_calls(text: str, *, strict: bool = True, truncated: bool = False
                     ) -> tuple[str, list[ToolCall]] | tuple[str, list[ToolCall], list[ToolCallError]]:
    """Split a complete assistant message into content and tool calls.

    Calls get ids ``call_0``, ``call_1``, ... in order.

    Args:
        text: the decoded message, without ``<|im_end|>``.
        strict: raise on a malformed block (default). With ``strict=False`` a malformed block
            stays in the content and is reported in a third element, the list of errors.
        truncated: the output was cut off (``max_tokens``): a last block that is unterminated
            and incomplete (``ends_inside_call``) is dropped, neither content nor an error;
            the caller reports ``finish_reason="length"``.

    Returns:
        ``(content, calls)``, or ``(content, calls, errors)`` when ``strict=False``.

    Raises:
        ToolCallParseError: (strict only) invalid JSON, a missing ``name``, non-object
            ``arguments`` or an unterminated block that is not a complete call; the message
            says what is wrong and shows the expected format, so it can be fed back to the model.

    Example:
        >>> parse_tool_calls('On it.\\n<tool_call>\\n{"name": "f", "arguments": {}}\\n</tool_call>')
        ('On it.', [ToolCall(name='f', arguments={}, id='call_0')])
    """
    return finish_parse(*split_calls(text, parse=_parse_block, final=_unterminated_call,
                                     unterminated=_unterminated, truncated=truncated),
                        strict=strict)


def ends_inside_call(text: str) -> bool:
    """Whether ``text`` ends inside a tool call: an unterminated last block that is no call.

    The chat path uses it when generation stops at ``max_tokens``: then the response says
    ``finish_reason="length"`` and parses with ``truncated=True``, so the cut call leaves no
    raw ``<tool_call>`` markup in the content. A last block that is a complete call without
    its ``</tool_call>`` is parsed as a call, and this returns False.
    """
    start = text.rfind(TOOL_CALL_START)
    if start < 0 or text.find(TOOL_CALL_END, start) >= 0:
        return False
    return _unterminated_call(text[start + len(TOOL_CALL_START):], 0, 0) is None


def _unterminated_call(body: str, block: int, call_index: int) -> ToolCall | None:
    """The call of a last block without its end marker, when the body is complete."""
    try:
        return _parse_block(body, block, call_index)
    except ToolCallParseError:
        return None


def _unterminated(block: int, raw: str) -> str:
    snippet = raw if len(raw) <= _SNIPPET_CHARS else raw[:_SNIPPET_CHARS] + "..."
    return (f"tool call {block}: unterminated, {TOOL_CALL_END} is missing.\n"
            f"You wrote: {snippet}\n{_EXPECTED}")


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest end of ``text`` that is a proper prefix of ``marker``."""
    for k in range(min(len(text), len(marker) - 1), 0, -1):
        if text.endswith(marker[:k]):
            return k
    return 0


# -- streaming --------------------------------------------------------------------------------


class ToolCallStreamParser:
    """Incremental ``parse_tool_calls``: content flows out, calls come out whole.

    Content is emitted as it arrives, except a possible partial ``<tool_call>`` at the end of
    the buffer and trailing whitespace (dropped if a call follows). Text inside a call is
    buffered until ``</tool_call>``. For any split of a text into deltas, the concatenated
    ``TextDelta`` texts, the calls and the errors equal ``parse_tool_calls(text, strict=False)``.
    A malformed block gives a ``ToolCallError`` followed by its text as a ``TextDelta``.

    Example:
        >>> parser = ToolCallStreamParser()
        >>> for delta in model_deltas:
        ...     for event in parser.feed(delta):
        ...         handle(event)
        >>> for event in parser.finish():
        ...     handle(event)
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._in_call = False
        self._scan = 0  # in a call: where to resume looking for the end marker
        self._held_ws = ""  # trailing whitespace of the content piece, not yet emitted
        self._ws_before_call = ""  # held whitespace when the open call started
        self._piece_has_text = False  # the open content piece has emitted text
        self._after_call = False  # the open content piece follows a parsed call
        self._emitted = False  # any content emitted at all
        self._blocks = 0
        self._calls = 0
        self._finished = False

    def feed(self, delta: str) -> list[Event]:
        """Add generated text; return the events it completes."""
        if self._finished:
            msg = "ToolCallStreamParser.feed() after finish(); make a new parser per message"
            raise ConfigError(msg)
        self._buffer += delta
        events: list[Event] = []
        self._drain(events)
        return events

    @property
    def in_call(self) -> bool:
        """The text so far ends inside a ``<tool_call>`` block."""
        return self._in_call

    def finish(self, *, truncated: bool = False) -> list[Event]:
        """End of the message: flush held text and the open call, if any.

        An open call whose body is a complete call is a ``ToolCallEvent``; otherwise it is
        reported as unterminated, or dropped when ``truncated`` (cut off by ``max_tokens``;
        as ``parse_tool_calls(..., truncated=True)``).
        """
        if self._finished:
            return []
        self._finished = True
        events: list[Event] = []
        if self._in_call:
            self._blocks += 1
            call = _unterminated_call(self._buffer, self._blocks, self._calls)
            raw = TOOL_CALL_START + self._buffer
            if call is not None:
                self._calls += 1
                events.append(ToolCallEvent(call))
                self._after_call, self._piece_has_text = True, False
            elif truncated:
                logger.info("output cut off inside tool call %d; dropped: %.80r",
                            self._blocks, raw)
            else:
                events.append(ToolCallError(_unterminated(self._blocks, raw), raw))
                self._held_ws = self._ws_before_call
                self._text(raw, events)
        else:
            self._text(self._buffer, events)
        self._buffer = ""
        if self._held_ws:  # the last piece is not followed by a call: keep its whitespace
            events.append(TextDelta(self._held_ws))
            self._held_ws = ""
        return events

    def _drain(self, events: list[Event]) -> None:
        while True:
            buffer = self._buffer
            if not self._in_call:
                start = buffer.find(TOOL_CALL_START)
                if start < 0:
                    keep = _partial_suffix(buffer, TOOL_CALL_START)
                    self._text(buffer[:len(buffer) - keep], events)
                    self._buffer = buffer[len(buffer) - keep:]
                    return
                self._text(buffer[:start], events)
                self._buffer = buffer[start + len(TOOL_CALL_START):]
                self._in_call, self._scan = True, 0
                self._ws_before_call, self._held_ws = self._held_ws, ""
                self._opened()
                continue
            end = buffer.find(TOOL_CALL_END, self._scan)
            if end < 0:
                self._scan = max(0, len(buffer) - len(TOOL_CALL_END) + 1)
                self._pending(buffer, events)
                return
            body = buffer[:end]
            self._buffer = buffer[end + len(TOOL_CALL_END):]
            self._in_call = False
            self._blocks += 1
            try:
                call = self._parse_body(body)
            except ToolCallParseError as exc:
                raw = TOOL_CALL_START + body + TOOL_CALL_END
                events.append(ToolCallError(str(exc), raw))
                self._held_ws = self._ws_before_call  # the block is content after all
                self._text(raw, events)
            else:
                self._closing(call, events)
                self._calls += 1
                events.append(ToolCallEvent(call))
                self._after_call, self._piece_has_text = True, False

    # The hooks a format's parser overrides (the scanning above is shared by every format).

    def _parse_body(self, body: str) -> ToolCall:
        """The text between the markers -> the call, or ``ToolCallParseError``."""
        return _parse_block(body, self._blocks, self._calls)

    def _opened(self) -> None:
        """A call has just opened."""

    def _pending(self, body: str, events: list[Event]) -> None:
        """The open call's text so far (a format may preview it as ``ToolCallDelta``)."""

    def _closing(self, call: ToolCall, events: list[Event]) -> None:
        """Just before the ``ToolCallEvent`` of ``call``."""

    def _text(self, text: str, events: list[Event]) -> None:
        if self._after_call and not self._piece_has_text:
            text = text.lstrip()  # whitespace right after a call is dropped
        core = text.rstrip()
        if not core:
            self._held_ws += text
            return
        separator = "\n" if self._emitted and not self._piece_has_text else ""
        events.append(TextDelta(separator + self._held_ws + core))
        self._held_ws = text[len(core):]
        self._piece_has_text = self._emitted = True


# -- grammar ----------------------------------------------------------------------------------

# Compact JSON exactly as the chat template's tojson writes it, with no free whitespace: the
# model cannot wander off into endless spaces.
_JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def tool_call_grammar(tools: ToolsArg, *,
                      tool_choice: str | Mapping[str, Any] = "auto",
                      grounding: Sequence[str] | None = None) -> str:
    """A Lark grammar (llguidance dialect) for the tool calls of one assistant message.

    ``tool_choice="auto"`` gives the *lazy* grammar: it starts right after the ``<tool_call>``
    token the model chose itself (the trigger) and accepts
    ``\\n{"name": ..., "arguments": ...}\\n</tool_call>``, then either ``\\n<tool_call>`` and
    another call or ``<|im_end|>``. ``"required"`` and a named function
    (``{"type": "function", "function": {"name": ...}}``) give the *forced* grammar, which
    starts at the first token of the assistant message with ``<tool_call>``; a named function
    allows exactly one call, to that function. Arguments follow each tool's schema, bounded
    by ``bound_schema`` (numbers of at most 16 integral digits, the schema's own ranges), and
    written compactly with ``", "`` and ``": "`` separators like ``json.dumps``.

    ``grounding`` (the user's messages) restricts each tool's ``grounded`` parameters to
    ``quotable_spans`` of those texts; None (or texts without a word) leaves them free.

    Raises:
        ConfigError: no tools, duplicate names, or a ``tool_choice`` that is not "auto",
            "required" or an offered function.
        ToolError: a tool that is not a Tool, a function or an OpenAI tool dict.

    Example:
        >>> lark = tool_call_grammar([get_weather], tool_choice="required")
        >>> constraint = factory.make(factory.grammar(grammar=lark))
    """
    plan = callable_tools(tools, tool_choice)
    more = "" if plan.single else ' ("\\n" <tool_call> call)*'  # a named function: one call
    lines = [
        f"start: {'<tool_call> ' if plan.forced else ''}call{more} <|im_end|>",
        f'call: "\\n" ({" | ".join(f"fn_{i}" for i in range(len(plan.tools)))}) "\\n" </tool_call>',
    ]
    spans = quotable_spans(grounding) if grounding is not None else []
    lines += [f"fn_{i}: %json {json.dumps(_call_schema(t, spans))}"
              for i, t in enumerate(plan.tools)]
    return "\n".join(lines) + "\n"


def _call_schema(t: ToolSpec, spans: list[str]) -> dict[str, Any]:
    # One %json per tool; "x-guidance" is only read at the root of each %json schema.
    arguments = bound_schema(_rebase_refs(t.parameters, "#/properties/arguments"))
    if spans and t.grounded:
        properties = arguments["properties"]
        for name in t.grounded:
            properties[name] = {"type": "string", "enum": spans}  # dumped, never mutated
    return {
        "x-guidance": _JSON_STYLE,
        "type": "object",
        "properties": {"name": {"const": t.name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _rebase_refs(schema: Any, base: str) -> Any:
    """Point local ``$ref``s (``#/$defs/X``, ``#``) at the schema's new place in the wrapper."""
    if isinstance(schema, list):
        return [_rebase_refs(v, base) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str) and value.startswith("#"):
            out[key] = base + value[1:]
        elif key in ("properties", "patternProperties", "$defs", "definitions") and isinstance(
                value, dict):
            out[key] = {name: _rebase_refs(sub, base) for name, sub in value.items()}
        elif key in ("const", "enum", "default", "examples"):
            out[key] = value  # JSON values, not schemas
        else:
            out[key] = _rebase_refs(value, base)
    return out



def constraint_options(tools: ToolsArg, tool_choice: Any,
                       *, tool_call_token: int | None,
                       grounding: Sequence[str] | None = None) -> dict[str, Any]:
    """Generation options that implement OpenAI's ``tool_choice`` on Qwen's format.

    ``"none"`` (or no tools) masks the ``<tool_call>`` token (``tool_call_token``) with a
    logit bias; ``"auto"`` applies the call grammar lazily from the model's own
    ``<tool_call>``; ``"required"`` or a named function applies it from the first token.
    The agent and the server both build their requests with this; ``grounding`` is passed to
    ``tool_call_grammar``.
    """
    return tool_choice_options(
        tools, tool_choice, tool_call_token=tool_call_token, trigger=TOOL_CALL_START,
        grammar=lambda: tool_call_grammar(tools, tool_choice=tool_choice, grounding=grounding))


def render_calls(calls: Sequence[ToolCall]) -> str:
    """The calls as the Qwen2.5 / Qwen3 templates write them: one block each, joined by "\n"."""
    return "\n".join(
        f"{TOOL_CALL_START}\n"
        + json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False)
        + f"\n{TOOL_CALL_END}" for c in calls)

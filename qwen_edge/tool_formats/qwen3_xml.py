"""Qwen3-Coder / Qwen3.5 tool calls (the XML format): render, parse, stream-parse, constrain.

The model writes each call as::

    <tool_call>
    <function=get_weather>
    <parameter=city>
    Lisbon
    </parameter>
    </function>
    </tool_call>

Values are raw text, one newline after ``<parameter=KEY>`` and one before ``</parameter>``
(``_xml_values.strip_newlines`` says exactly what whitespace belongs to the format).
They are typed by the tool's JSON schema (``integer``, ``number``, ``boolean``, ``null``,
objects and arrays as JSON, everything else a string); without the tools, or for a
parameter the schema does not name, a value stays a string, as vLLM's ``qwen3_coder`` parser
does. A value that does not convert stays a string too: validating arguments is the tool's
job (``Tool.validate``), and the text is then shown to the model as it wrote it.

Like vLLM, a missing ``</parameter>`` ends at the next ``<parameter=`` or at ``</function>``.
Unlike vLLM, a ``<function=...>`` without ``<tool_call>`` around it is content: the template
always writes the markers, and the lazy grammar is triggered by ``<tool_call>``.
Content rules (whitespace next to calls dropped, pieces joined by "\\n") are Hermes's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, overload

from ..chat import ToolCall
from ..errors import ConfigError, ToolCallParseError
from . import _xml_values as values
from ._split import finish_parse, split_calls
from .base import (
    Event,
    TextDelta,
    ToolCallDelta,
    ToolCallError,
    ToolCallEvent,
    ToolsArg,
    ToolSpec,
    callable_tools,
    tool_choice_options,
    tool_specs,
)
from .grounding import quotable_spans
from .hermes import (
    TOOL_CALL_END,
    TOOL_CALL_START,
    ToolCallStreamParser,
    _partial_suffix,
)

logger = logging.getLogger(__name__)

__all__ = [
    "TOOL_CALL_END",
    "TOOL_CALL_START",
    "XmlStreamParser",
    "constraint_options",
    "parse_tool_calls",
    "render_calls",
    "tool_call_grammar",
]

FUNCTION_START = "<function="
FUNCTION_END = "</function>"
PARAMETER_START = "<parameter="
PARAMETER_END = "</parameter>"

_EXPECTED = (f"Write each call as:\n{TOOL_CALL_START}\n{FUNCTION_START}NAME>\n"
             f"{PARAMETER_START}KEY>\nVALUE\n{PARAMETER_END}\n{FUNCTION_END}\n{TOOL_CALL_END}")
_SNIPPET_CHARS = 200


# -- render -----------------------------------------------------------------------------------


def render_calls(calls: Sequence[ToolCall]) -> str:
    """The calls as Qwen3.5's template writes them in an assistant turn, joined by "\\n"."""
    blocks = []
    for call in calls:
        params = "".join(f"{PARAMETER_START}{key}>\n{values.as_text(value)}\n{PARAMETER_END}\n"
                         for key, value in call.arguments.items())
        blocks.append(f"{TOOL_CALL_START}\n{FUNCTION_START}{call.name}>\n{params}"
                      f"{FUNCTION_END}\n{TOOL_CALL_END}")
    return "\n".join(blocks)


# -- one block --------------------------------------------------------------------------------


_Scan = tuple[str | None, list[tuple[str, str]], bool, str, int]


def _scan(body: str, resume: _Scan | None = None) -> _Scan:
    """Read a block body, complete or not: (name, [(key, raw value)], ended, problem, pos).

    ``name`` is None until ``<function=NAME>`` is complete; parameters are listed once their
    end is in ``body`` (``</parameter>``, the next ``<parameter=`` or ``</function>``);
    ``ended`` is True after ``</function>``. ``problem`` says what makes the body invalid
    ("" if nothing does yet); a body that is still a prefix of a valid call has none. ``pos``
    is where reading stopped: a longer ``body`` with the same start can resume from this
    result (the stream parser does, so a long value is not read again at every delta).
    """
    text = body.lstrip()
    if resume is not None and resume[0] is not None and not resume[2] and not resume[3]:
        name, params, pos = resume[0], list(resume[1]), resume[4]
    else:
        if not text.startswith(FUNCTION_START):
            if FUNCTION_START.startswith(text):
                return None, [], False, "", 0
            return None, [], False, f"the block must start with {FUNCTION_START}NAME>", 0
        close = text.find(">", len(FUNCTION_START))
        if close < 0:
            return None, [], False, "", 0
        name = text[len(FUNCTION_START):close].strip()
        if not name or "\n" in name or "<" in name:
            return None, [], False, f"bad function name {text[len(FUNCTION_START):close]!r}", 0
        params, pos = [], close + 1
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return name, params, False, "", pos
        if text.startswith(FUNCTION_END, pos):
            tail = text[pos + len(FUNCTION_END):].strip()
            problem = f"text after {FUNCTION_END}: {tail[:40]!r}" if tail else ""
            return name, params, True, problem, pos
        if not text.startswith(PARAMETER_START, pos):
            rest = text[pos:pos + len(PARAMETER_START)]
            if len(text) - pos < len(PARAMETER_START) and (
                    PARAMETER_START.startswith(rest) or FUNCTION_END.startswith(rest)):
                return name, params, False, "", pos
            return name, params, False, (f"expected {PARAMETER_START}KEY> or {FUNCTION_END}, "
                                         f"got {text[pos:pos + 40]!r}"), pos
        key_end = text.find(">", pos + len(PARAMETER_START))
        if key_end < 0:
            return name, params, False, "", pos
        key = text[pos + len(PARAMETER_START):key_end].strip()
        if not key or "\n" in key:
            return name, params, False, f"bad parameter name {key!r}", pos
        start = key_end + 1
        ends = [(i, n) for i, n in ((text.find(PARAMETER_END, start), len(PARAMETER_END)),
                                    (text.find(PARAMETER_START, start), 0),
                                    (text.find(FUNCTION_END, start), 0)) if i >= 0]
        if not ends:
            return name, params, False, "", pos
        end, skip = min(ends)
        params.append((key, values.strip_newlines(text[start:end])))
        pos = end + skip


def _type_arguments(name: str, params: list[tuple[str, str]],
                    tools: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    schema = tools.get(name) if tools is not None else None
    return {key: values.convert(raw, values.property_schema(schema, key), schema)
            for key, raw in params}


def _parse_block(body: str, block: int, call_index: int,
                 tools: Mapping[str, Mapping[str, Any]] | None) -> ToolCall:
    """The body between the markers -> ToolCall, or ToolCallParseError saying what is wrong."""
    name, params, _, problem, _ = _scan(body)
    if not problem and name is None:
        problem = "the block is empty" if not body.strip() else f"{FUNCTION_START}NAME> is incomplete"
    keys = [key for key, _ in params]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if not problem and duplicates:
        problem = f"parameter {duplicates[0]!r} is given twice"
    if not problem and name is not None:
        return ToolCall(name=name, arguments=_type_arguments(name, params, tools),
                        id=f"call_{call_index}")
    snippet = f"{TOOL_CALL_START}{body}{TOOL_CALL_END}"
    if len(snippet) > _SNIPPET_CHARS:
        snippet = snippet[:_SNIPPET_CHARS] + "..."
    msg = f"tool call {block}: {problem}.\nYou wrote: {snippet}\n{_EXPECTED}"
    raise ToolCallParseError(msg)


def _tool_map(tools: ToolsArg | None) -> dict[str, Mapping[str, Any]] | None:
    """{name: parameters schema}. Only read for typing: an OpenAI dict is not validated as a
    ``Tool`` (vLLM's own tests use types such as "float" that JSON schema does not have)."""
    if tools is None:
        return None
    out: dict[str, Mapping[str, Any]] = {}
    for t in tools:
        if isinstance(t, ToolSpec):
            out[t.name] = t.parameters
            continue
        function = t.get("function", t) if isinstance(t, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            parameters = function.get("parameters")
            out[function["name"]] = parameters if isinstance(parameters, Mapping) else {}
        else:
            [tool] = tool_specs([t])  # a plain function, or a ToolError naming what is wrong
            out[tool.name] = tool.parameters
    return out


def _final_call(body: str, block: int, call_index: int,
                tools: Mapping[str, Mapping[str, Any]] | None) -> ToolCall | None:
    """The last block of an output that ended after ``</function>`` without ``</tool_call>``
    (the output was cut, or the model stopped there): a complete call, as vLLM reads it."""
    _, _, ended, problem, _ = _scan(body)
    return _parse_block(body, block, call_index, tools) if ended and not problem else None


def _unterminated(block: int, raw: str) -> str:
    snippet = raw if len(raw) <= _SNIPPET_CHARS else raw[:_SNIPPET_CHARS] + "..."
    return (f"tool call {block}: unterminated, {TOOL_CALL_END} is missing.\n"
            f"You wrote: {snippet}\n{_EXPECTED}")


# -- whole messages ---------------------------------------------------------------------------


@overload
def parse_tool_calls(text: str, *, tools: ToolsArg | None = None,
                     strict: Literal[True] = True, truncated: bool = False
                     ) -> tuple[str, list[ToolCall]]: ...
@overload
def parse_tool_calls(text: str, *, tools: ToolsArg | None = None, strict: Literal[False],
                     truncated: bool = False
                     ) -> tuple[str, list[ToolCall], list[ToolCallError]]: ...


def parse_tool_calls(text: str, *, tools: ToolsArg | None = None, strict: bool = True,
                     truncated: bool = False
                     ) -> tuple[str, list[ToolCall]] | tuple[str, list[ToolCall], list[ToolCallError]]:
    """Split a complete assistant message into content and XML tool calls.

    Args:
        text: the decoded message, without ``<|im_end|>``.
        tools: the offered tools (``Tool`` objects or OpenAI tool dicts); each value is typed
            by its parameter's schema. Without them every value is a string.
        strict: raise on a malformed block (default); with ``strict=False`` it stays in the
            content and is reported in a third element.
        truncated: the output was cut off (``max_tokens``): a last block that is unterminated
            and incomplete (``ends_inside_call``) is dropped, neither content nor an error.

    Returns:
        ``(content, calls)``, or ``(content, calls, errors)`` when ``strict=False``.

    Raises:
        ToolCallParseError: (strict only) a block without ``<function=NAME>``, stray text, a
            repeated parameter, or a last block cut before ``</function>`` (one that ends
            after ``</function>`` without ``</tool_call>`` is a call); the message shows the
            format.

    Example:
        >>> parse_tool_calls("<tool_call>\\n<function=f>\\n<parameter=n>\\n2\\n</parameter>\\n"
        ...                  "</function>\\n</tool_call>", tools=[{"type": "function",
        ...                  "function": {"name": "f", "parameters": {"type": "object",
        ...                  "properties": {"n": {"type": "integer"}}}}}])
        ('', [ToolCall(name='f', arguments={'n': 2}, id='call_0')])
    """
    by_name = _tool_map(tools)
    return finish_parse(*split_calls(
        text, parse=lambda body, block, index: _parse_block(body, block, index, by_name),
        final=lambda body, block, index: _final_call(body, block, index, by_name),
        unterminated=_unterminated, truncated=truncated), strict=strict)


def ends_inside_call(text: str) -> bool:
    """Whether ``text`` ends inside a call: an unterminated last block that is no call."""
    start = text.rfind(TOOL_CALL_START)
    if start < 0 or text.find(TOOL_CALL_END, start) >= 0:
        return False
    try:
        return _final_call(text[start + len(TOOL_CALL_START):], 0, 0, None) is None
    except ToolCallParseError:
        return True


# -- streaming --------------------------------------------------------------------------------


class XmlStreamParser(ToolCallStreamParser):
    """Incremental ``parse_tool_calls``: content flows, a call's name and each finished
    parameter come out as ``ToolCallDelta`` fragments, the whole call as ``ToolCallEvent``.

    Content and whitespace are handled exactly as by the Hermes parser (this class reuses its
    text path). For any split of a text into deltas, the ``TextDelta`` texts, the calls and
    the errors equal ``parse_tool_calls(text, tools=tools, strict=False)``, and the fragments
    of each parsed call concatenate to ``json.dumps(call.arguments, ensure_ascii=False)``.
    """

    def __init__(self, tools: ToolsArg | None = None) -> None:
        super().__init__()
        self._tools = _tool_map(tools)
        self._named = False  # the open call's name fragment was emitted
        self._sent = 0  # parameters of the open call already emitted
        self._args = ""  # arguments text emitted for the open call
        self._last_scan: _Scan | None = None  # where reading the open call stopped

    def finish(self, *, truncated: bool = False) -> list[Event]:
        """End of the message. An open call complete up to ``</function>`` is a call; any
        other is reported as unterminated, or dropped when ``truncated`` (cut off by
        ``max_tokens``; as ``parse_tool_calls(..., truncated=True)``). Fragments of a dropped
        call already streamed stay sent: the message then ends with ``finish_reason="length"``.
        """
        if self._finished:
            return []
        if not self._in_call:
            return super().finish()
        self._finished = True
        events: list[Event] = []
        self._blocks += 1
        final = _final_call(self._buffer, self._blocks, self._calls, self._tools)
        if final is not None:  # complete up to </function>: the output just ended there
            self._finish_preview(final, events)
            self._calls += 1
            self._buffer, self._held_ws = "", ""
            return [*events, ToolCallEvent(final)]
        raw = TOOL_CALL_START + self._buffer
        if truncated:
            logger.info("output cut off inside tool call %d; dropped: %.80r", self._blocks, raw)
            self._buffer, self._held_ws = "", ""
            return events
        events.append(ToolCallError(_unterminated(self._blocks, raw), raw))
        self._held_ws = self._ws_before_call
        self._text(raw, events)
        self._buffer = ""
        if self._held_ws:
            events.append(TextDelta(self._held_ws))
            self._held_ws = ""
        return events

    def _parse_body(self, body: str) -> ToolCall:
        return _parse_block(body, self._blocks, self._calls, self._tools)

    def _opened(self) -> None:
        self._named, self._sent, self._args, self._last_scan = False, 0, "", None

    def _pending(self, body: str, events: list[Event]) -> None:
        self._preview(body, events)

    def _closing(self, call: ToolCall, events: list[Event]) -> None:
        self._finish_preview(call, events)

    def _preview(self, body: str, events: list[Event]) -> None:
        """Emit the fragments that ``body`` (an open call) makes certain."""
        # A marker may be split: text up to a partial </tool_call> is not final yet.
        body = body[:len(body) - _partial_suffix(body, TOOL_CALL_END)]
        scan = _scan(body, self._last_scan)
        self._last_scan = scan
        name, params, _, problem, _ = scan
        if problem or name is None:
            return
        if not self._named:
            events.append(ToolCallDelta(self._calls, f"call_{self._calls}", name, ""))
            self._named = True
        if len(params) == self._sent:
            return
        arguments = _type_arguments(name, params, self._tools)
        keys = list(arguments)
        if len(keys) != len(params):  # a repeated key: the call will not parse
            return
        for key in keys[self._sent:]:
            piece = ("{" if not self._sent else ", ") + _json_pair(key, arguments[key])
            self._args += piece
            self._sent += 1
            events.append(ToolCallDelta(self._calls, "", None, piece))

    def _finish_preview(self, call: ToolCall, events: list[Event]) -> None:
        if not self._named:
            events.append(ToolCallDelta(self._calls, call.id, call.name, ""))
        full = json.dumps(call.arguments, ensure_ascii=False)
        if full.startswith(self._args) and len(full) > len(self._args):
            events.append(ToolCallDelta(self._calls, "", None, full[len(self._args):]))


def _json_pair(key: str, value: Any) -> str:
    return f"{json.dumps(key, ensure_ascii=False)}: {json.dumps(value, ensure_ascii=False)}"


# -- grammar ----------------------------------------------------------------------------------


def tool_call_grammar(tools: ToolsArg, *, tool_choice: str | Mapping[str, Any] = "auto",
                      grounding: Sequence[str] | None = None) -> str:
    """A Lark grammar (llguidance dialect) for the XML tool calls of one assistant message.

    ``tool_choice`` works as in ``hermes.tool_call_grammar``: "auto" starts after the
    model's own ``<tool_call>`` (lazy), "required" and a named function start at the first
    token; a named function allows exactly one call (OpenAI's and vLLM's meaning). Each call is ``\\n<function=NAME>\\n`` then the tool's parameters in schema order
    (required ones present, optional ones optional), each value typed by its schema (see
    ``_xml_values.value_grammar``), then ``</function>\\n</tool_call>``.

    ``grounding`` restricts each tool's grounded parameters to ``quotable_spans`` of the
    user's texts, as for Hermes.

    Raises:
        ConfigError: no tools, duplicate names, a bad ``tool_choice``, or a parameter name
            the format cannot carry (containing ``>`` or a newline).
    """
    plan = callable_tools(tools, tool_choice)
    spans = quotable_spans(grounding) if grounding is not None else []
    more = "" if plan.single else ' ("\\n" <tool_call> call)*'
    lines = [
        f"start: {'<tool_call> ' if plan.forced else ''}call{more} <|im_end|>",
        (f'call: "\\n" ({" | ".join(f"fn_{i}" for i in range(len(plan.tools)))}) '
         f'"{FUNCTION_END}\\n" </tool_call>'),
    ]
    for i, t in enumerate(plan.tools):
        lines += _function_rules(i, t, spans)
    lines.append(values.STRING_TERMINAL)
    return "\n".join(lines) + "\n"


def _function_rules(i: int, t: ToolSpec, spans: list[str]) -> list[str]:
    if any(c in t.name for c in ">\n<"):
        msg = f"tool name {t.name!r}: the XML format cannot write '<', '>' or newlines in it"
        raise ConfigError(msg)
    root = t.parameters
    properties = root.get("properties") or {}
    required = set(root.get("required") or ())
    parts = [json.dumps(f"{FUNCTION_START}{t.name}>\n")]
    rules: list[str] = []
    for j, (key, schema) in enumerate(properties.items()):
        if any(c in key for c in ">\n<"):
            msg = (f"tool {t.name!r}, parameter {key!r}: the XML format cannot write '<', '>' "
                   "or newlines in a parameter name")
            raise ConfigError(msg)
        grounded = {"type": "string", "enum": spans} if spans and key in t.grounded else None
        rule = f"p_{i}_{j}"
        value, definitions = values.value_grammar(grounded or schema, root, f"S_{i}_{j}")
        rules.append(f"{rule}: {json.dumps(f'{PARAMETER_START}{key}>{chr(10)}')} {value}")
        rules += definitions
        parts.append(rule if key in required else f"{rule}?")
    return [f"fn_{i}: {' '.join(parts)}", *rules]


def constraint_options(tools: ToolsArg, tool_choice: Any, *, tool_call_token: int | None,
                       grounding: Sequence[str] | None = None) -> dict[str, Any]:
    """Generation options for OpenAI's ``tool_choice`` with the XML grammar (as Hermes's)."""
    return tool_choice_options(
        tools, tool_choice, tool_call_token=tool_call_token, trigger=TOOL_CALL_START,
        grammar=lambda: tool_call_grammar(tools, tool_choice=tool_choice, grounding=grounding))

"""The named family of tool-call formats: ``get_format``, ``detect_format``, ``parse_tool_calls``.

=============  ==========================================  ================================
name           the model writes                            models
=============  ==========================================  ================================
``hermes``     ``<tool_call>\\n{"name": ..., "arguments":  Qwen2.5, Qwen3
               {...}}\\n</tool_call>``
``qwen3_xml``  ``<tool_call>\\n<function=NAME>\\n           Qwen3-Coder, Qwen3.5
               <parameter=KEY>\\nVALUE\\n</parameter>\\n
               </function>\\n</tool_call>``
=============  ==========================================  ================================

The exporter records the format in the manifest (``tool_format``), detected from the chat
template the package carries (``detect_format``); ``load(tool_format=...)`` overrides it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, overload

from ..chat import ToolCall
from ..errors import ConfigError
from . import hermes, qwen3_xml
from ._hermes_deltas import HermesDeltaParser
from .base import StreamParser, ToolCallError, ToolFormat, ToolsArg

__all__ = ["DEFAULT_FORMAT", "FORMATS", "detect_format", "get_format", "parse_tool_calls"]

DEFAULT_FORMAT = "hermes"


def _hermes_parse(text: str, tools: ToolsArg | None, strict: bool,
                  truncated: bool = False) -> tuple[Any, ...]:
    del tools  # JSON carries its own types
    if strict:
        return hermes.parse_tool_calls(text, truncated=truncated)
    return hermes.parse_tool_calls(text, strict=False, truncated=truncated)


def _hermes_stream(tools: ToolsArg | None) -> StreamParser:
    del tools
    return HermesDeltaParser()


def _xml_parse(text: str, tools: ToolsArg | None, strict: bool,
               truncated: bool = False) -> tuple[Any, ...]:
    if strict:
        return qwen3_xml.parse_tool_calls(text, tools=tools, truncated=truncated)
    return qwen3_xml.parse_tool_calls(text, tools=tools, strict=False, truncated=truncated)


def _grammar(module: Any) -> Any:
    def grammar(tools: ToolsArg, tool_choice: str | Mapping[str, Any],
                grounding: Sequence[str] | None) -> str:
        return str(module.tool_call_grammar(tools, tool_choice=tool_choice, grounding=grounding))
    return grammar


def _options(module: Any) -> Any:
    def options(tools: ToolsArg, tool_choice: Any, tool_call_token: int | None,
                grounding: Sequence[str] | None) -> dict[str, Any]:
        return dict(module.constraint_options(tools, tool_choice, tool_call_token=tool_call_token,
                                              grounding=grounding))
    return options


FORMATS: dict[str, ToolFormat] = {
    "hermes": ToolFormat(
        name="hermes", call_start=hermes.TOOL_CALL_START, call_end=hermes.TOOL_CALL_END,
        parse=_hermes_parse, ends_inside_call=hermes.ends_inside_call,
        stream_parser=_hermes_stream, grammar=_grammar(hermes),
        constraint_options=_options(hermes), render_calls=hermes.render_calls),
    "qwen3_xml": ToolFormat(
        name="qwen3_xml", call_start=qwen3_xml.TOOL_CALL_START, call_end=qwen3_xml.TOOL_CALL_END,
        parse=_xml_parse, ends_inside_call=qwen3_xml.ends_inside_call,
        stream_parser=qwen3_xml.XmlStreamParser, grammar=_grammar(qwen3_xml),
        constraint_options=_options(qwen3_xml), render_calls=qwen3_xml.render_calls),
}
"""Every known format by name (the manifest's ``tool_format`` values)."""


def get_format(name: str) -> ToolFormat:
    """The format called ``name``.

    Raises:
        ConfigError: an unknown name; the message lists the known ones.
    """
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        msg = f"tool_format={name!r}: unknown; choose one of {', '.join(sorted(FORMATS))}"
        raise ConfigError(msg) from None


def detect_format(chat_template: str | None) -> str:
    """The format a chat template teaches its model (as vLLM's and mlx-lm's detection do).

    A template that writes ``<function=`` and ``<parameter=`` inside ``<tool_call>`` is the
    Qwen3-Coder / Qwen3.5 XML format; anything else (including no template) is Hermes.
    """
    if chat_template and "<function=" in chat_template and "<parameter=" in chat_template:
        return "qwen3_xml"
    return DEFAULT_FORMAT


@overload
def parse_tool_calls(text: str, *, format: str = ..., tools: ToolsArg | None = ...,
                     strict: Literal[True] = True, truncated: bool = ...
                     ) -> tuple[str, list[ToolCall]]: ...
@overload
def parse_tool_calls(text: str, *, format: str = ..., tools: ToolsArg | None = ...,
                     strict: Literal[False], truncated: bool = ...
                     ) -> tuple[str, list[ToolCall], list[ToolCallError]]: ...


def parse_tool_calls(text: str, *, format: str = DEFAULT_FORMAT,
                     tools: ToolsArg | None = None, strict: bool = True,
                     truncated: bool = False
                     ) -> tuple[str, list[ToolCall]] | tuple[str, list[ToolCall], list[ToolCallError]]:
    """Split a complete assistant message into content and tool calls.

    Calls get ids ``call_0``, ``call_1``, ... in order.

    Args:
        text: the decoded message, without ``<|im_end|>``.
        format: ``"hermes"`` (Qwen2.5 / Qwen3 JSON) or ``"qwen3_xml"`` (Qwen3.5).
        tools: the offered tools (``Tool`` objects or OpenAI tool dicts). ``qwen3_xml`` types
            each value by its parameter's schema; without them, values are strings. Hermes
            JSON carries its own types and ignores them.
        strict: raise on a malformed block (default). With ``strict=False`` a malformed block
            stays in the content and is reported in a third element, the list of errors.
        truncated: the output was cut off (``max_tokens``): a last call left incomplete is
            dropped (see ``ends_inside_call``); the caller reports ``finish_reason="length"``.

    Returns:
        ``(content, calls)``, or ``(content, calls, errors)`` when ``strict=False``.

    Raises:
        ToolCallParseError: (strict only) a malformed or unterminated block; the message
            says what is wrong and shows the expected format.
        ConfigError: an unknown ``format``.

    Example:
        >>> parse_tool_calls('On it.\\n<tool_call>\\n{"name": "f", "arguments": {}}\\n</tool_call>')
        ('On it.', [ToolCall(name='f', arguments={}, id='call_0')])
    """
    return get_format(format).parse(text, tools, strict, truncated)

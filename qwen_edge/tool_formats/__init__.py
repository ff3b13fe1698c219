"""Tool-call formats, one module per format, one ``ToolFormat`` record each (``formats.py``).

Qwen2.5 and Qwen3 write the Hermes format (``hermes``); Qwen3-Coder and Qwen3.5 the XML
format (``qwen3_xml``). The names below without a format prefix are Hermes's, as before.
"""

from __future__ import annotations

from .base import (
    Event,
    StreamParser,
    TextDelta,
    ToolCallDelta,
    ToolCallError,
    ToolCallEvent,
    ToolFormat,
)
from .formats import DEFAULT_FORMAT, FORMATS, detect_format, get_format, parse_tool_calls
from .hermes import (
    TOOL_CALL_END,
    TOOL_CALL_START,
    ToolCallStreamParser,
    constraint_options,
    ends_inside_call,
    tool_call_grammar,
)
from .qwen3_xml import XmlStreamParser

__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "TOOL_CALL_END",
    "TOOL_CALL_START",
    "Event",
    "StreamParser",
    "TextDelta",
    "ToolCallDelta",
    "ToolCallError",
    "ToolCallEvent",
    "ToolCallStreamParser",
    "ToolFormat",
    "XmlStreamParser",
    "constraint_options",
    "detect_format",
    "ends_inside_call",
    "get_format",
    "parse_tool_calls",
    "tool_call_grammar",
]

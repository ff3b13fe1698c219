"""Tool-call formats, one module per format; Qwen2.5 and Qwen3 write the Hermes format."""

from __future__ import annotations

from .hermes import (
    TOOL_CALL_END,
    TOOL_CALL_START,
    Event,
    TextDelta,
    ToolCallError,
    ToolCallEvent,
    ToolCallStreamParser,
    constraint_options,
    ends_inside_call,
    parse_tool_calls,
    tool_call_grammar,
)

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
    "tool_call_grammar",
]

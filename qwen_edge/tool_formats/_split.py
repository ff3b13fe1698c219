"""The scanning of a finished assistant message that both tool formats share.

``split_calls`` finds each ``<tool_call>...</tool_call>`` block, asks the format to parse its
body, and joins the text around the calls the way the templates write it (whitespace next to
a call dropped, pieces joined by a newline); ``finish_parse`` gives ``parse_tool_calls``' strict
or lenient result. Both formats use the same markers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..chat import ToolCall
from ..errors import ToolCallParseError
from .base import ToolCallError

__all__ = ["finish_parse", "split_calls"]

logger = logging.getLogger("qwen_edge.tool_formats")

CALL_START = "<tool_call>"
CALL_END = "</tool_call>"


def split_calls(text: str, *, parse: Callable[[str, int, int], ToolCall],
                final: Callable[[str, int, int], ToolCall | None],
                unterminated: Callable[[int, str], str], truncated: bool,
                ) -> tuple[str, list[ToolCall], list[ToolCallError]]:
    """The scanning of a finished message that every format shares: content, calls, errors.

    Args:
        parse: ``(body, block, call_index)`` -> the call between the markers, or
            ``ToolCallParseError`` saying what is wrong.
        final: the same for an unterminated last block: its call when complete, else None.
        unterminated: ``(block, raw)`` -> the message for an unterminated block.
        truncated: drop an unterminated incomplete last block (a ``max_tokens`` cut).
    """
    # pieces: (text outside calls, follows a call, precedes a call)
    pieces: list[tuple[str, bool, bool]] = []
    calls: list[ToolCall] = []
    errors: list[ToolCallError] = []
    current, after_call, pos, block = "", False, 0, 0
    while (start := text.find(CALL_START, pos)) >= 0:
        block += 1
        body_start = start + len(CALL_START)
        end = text.find(CALL_END, body_start)
        if end < 0:
            try:
                call: ToolCall | None = final(text[body_start:], block, len(calls))
            except ToolCallParseError:
                call = None
            if call is not None:
                calls.append(call)
                pieces.append((current + text[pos:start], after_call, True))
                current, after_call, pos = "", True, len(text)
            elif truncated:
                logger.info("output cut off inside tool call %d; dropped: %.80r", block,
                            text[start:])
                pieces.append((current + text[pos:start], after_call, True))
                current, pos = "", len(text)
            else:
                raw = text[start:]
                errors.append(ToolCallError(unterminated(block, raw), raw))
            break
        stop = end + len(CALL_END)
        try:
            call = parse(text[body_start:end], block, len(calls))
        except ToolCallParseError as exc:
            errors.append(ToolCallError(str(exc), text[start:stop]))
            current += text[pos:stop]
        else:
            calls.append(call)
            pieces.append((current + text[pos:start], after_call, True))
            current, after_call = "", True
        pos = stop
    pieces.append((current + text[pos:], after_call, False))
    stripped = (_strip(piece, lead, trail) for piece, lead, trail in pieces)
    return "\n".join(piece for piece in stripped if piece), calls, errors


def finish_parse(content: str, calls: list[ToolCall], errors: list[ToolCallError], *,
                  strict: bool,
                  ) -> tuple[str, list[ToolCall]] | tuple[str, list[ToolCall], list[ToolCallError]]:
    if not strict:
        return content, calls, errors
    if errors:
        more = f"\n({len(errors) - 1} more malformed tool calls)" if len(errors) > 1 else ""
        raise ToolCallParseError(errors[0].message + more)
    return content, calls


def _strip(piece: str, lead: bool, trail: bool) -> str:
    if lead:
        piece = piece.lstrip()
    return piece.rstrip() if trail else piece

"""Hermes stream parsing with OpenAI-style ``ToolCallDelta`` fragments (the format record's
stream parser), on top of ``hermes.ToolCallStreamParser``, whose own events are unchanged.

The name of a Hermes call is certain once ``{"name": "..."`` is complete (the templates write
``name`` first); the arguments are JSON that only parses whole, so they come as one fragment
when the call ends. A call whose name is not its first key gets its name fragment at the end.
"""

from __future__ import annotations

import json
import re

from ..chat import ToolCall
from .base import Event, ToolCallDelta, ToolCallError, ToolCallEvent
from .hermes import ToolCallStreamParser

__all__ = ["HermesDeltaParser"]

_NAME = re.compile(r'\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")')


class HermesDeltaParser(ToolCallStreamParser):
    """``ToolCallStreamParser`` plus a name fragment as soon as it is written and an arguments
    fragment before each ``ToolCallEvent`` (``json.dumps(arguments, ensure_ascii=False)``)."""

    def __init__(self) -> None:
        super().__init__()
        self._named_call = -1  # index of the call whose name fragment was emitted

    def feed(self, delta: str) -> list[Event]:
        return self._with_deltas(super().feed(delta))

    def finish(self, *, truncated: bool = False) -> list[Event]:
        return self._with_deltas(super().finish(truncated=truncated))

    def _with_deltas(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            if isinstance(event, ToolCallEvent):
                out += self._fragments(event.call)
            elif isinstance(event, ToolCallError):
                self._named_call = -1  # the index is reused by the next call
            out.append(event)
        if self._in_call and self._named_call != self._calls:
            match = _NAME.match(self._buffer)
            if match:
                name = json.loads(match.group(1))
                out.append(ToolCallDelta(self._calls, f"call_{self._calls}", name, ""))
                self._named_call = self._calls
        return out

    def _fragments(self, call: ToolCall) -> list[Event]:
        index = int(call.id.removeprefix("call_"))
        out: list[Event] = []
        if self._named_call != index:
            out.append(ToolCallDelta(index, call.id, call.name, ""))
        out.append(ToolCallDelta(index, "", None, json.dumps(call.arguments, ensure_ascii=False)))
        self._named_call = index
        return out

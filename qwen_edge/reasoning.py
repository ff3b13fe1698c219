"""Thinking: split ``<think>...</think>`` from the answer, and bound how long a model thinks.

Qwen3 and Qwen3.5 write their reasoning first::

    <think>
    The user wants the weather; call get_weather.
    </think>

    It is 21 °C in Lisbon.

Qwen3's template leaves ``<think>`` to the model; Qwen3.5's puts ``<think>\\n`` at the end of the
prompt when thinking is on, so the output starts *inside* the thought (``started=True``, which
``thinking_started`` reads off the prompt tokens). ``enable_thinking=False`` pre-fills an empty
thought in the prompt: the output is all answer.

The reasoning is returned without the newlines around it and the answer without the newlines
that follow ``</think>``, the way the templates strip them when they render the turn again
(vLLM's reasoning parsers and the DeepSeek API call the two parts ``reasoning_content`` and
``content``). An output that does not open a thought has no reasoning (None); a thought that is
never closed (``max_tokens``) is all reasoning, unless a ``<tool_call>`` ends it: Qwen3.5 may
start a call without writing ``</think>`` (vLLM's Qwen3 reasoning parser treats it the same way).

``ThinkingBudget`` is a token-level processor, used by ``generate_step`` like a grammar
constraint: after ``budget`` thinking tokens it allows only ``</think>``, then the model answers
freely.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ConfigError

__all__ = [
    "THINK_END",
    "THINK_START",
    "ReasoningSplitter",
    "ThinkingBudget",
    "split_reasoning",
    "thinking_started",
]

THINK_START = "<think>"
THINK_END = "</think>"
TOOL_CALL_START = "<tool_call>"  # Qwen3.5 may call a tool without closing its thought


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest end of ``text`` that is a proper prefix of ``marker``."""
    for k in range(min(len(text), len(marker) - 1), 0, -1):
        if text.endswith(marker[:k]):
            return k
    return 0


class ReasoningSplitter:
    """Incremental ``split_reasoning``: ``feed(delta) -> (reasoning, content)`` text deltas.

    For any split of a text into deltas, the concatenated reasoning deltas equal
    ``split_reasoning(text, started=...)[0] or ""`` and the content deltas its answer. Text
    that may still be a marker, and newlines that may end the thought, are held back.

    Example:
        >>> splitter = ReasoningSplitter(started=True)
        >>> splitter.feed("Let me think.\\n</think>\\n\\nHi")
        ('Let me think.', 'Hi')
    """

    def __init__(self, *, started: bool = False) -> None:
        self._state = "thinking" if started else "start"
        self._buffer = ""  # undecided text (a possible marker, held newlines)
        self.saw_thought = started  # the output opened a thought (reasoning is not None)
        self._reasoning_started = False  # a non-newline reasoning character was emitted

    def feed(self, delta: str) -> tuple[str, str]:
        """Add generated text; return the (reasoning, content) text it makes certain."""
        self._buffer += delta
        reasoning: list[str] = []
        content: list[str] = []
        while self._step(reasoning, content):
            pass
        return "".join(reasoning), "".join(content)

    def finish(self) -> tuple[str, str]:
        """End of output: release held text (an open thought keeps what it has)."""
        buffer, self._buffer = self._buffer, ""
        if self._state == "start":
            return "", buffer
        if self._state == "thinking":
            # trailing newlines of a thought are the template's; held partial marker is text
            text = buffer.rstrip("\n")
            return (text if self._reasoning_started else text.lstrip("\n")), ""
        if self._state == "after":
            return "", buffer.lstrip("\n")
        return "", buffer

    def _step(self, reasoning: list[str], content: list[str]) -> bool:
        """Consume what the buffer decides; True if the state changed (run again)."""
        buffer = self._buffer
        if self._state == "start":
            head = buffer.lstrip()
            if head.startswith(THINK_START):
                self._state, self.saw_thought = "thinking", True
                self._buffer = head[len(THINK_START):]
                return True
            if not head or THINK_START.startswith(head):
                return False  # could still open a thought
            self._state = "content"
            return True
        if self._state == "thinking":
            end, call = buffer.find(THINK_END), buffer.find(TOOL_CALL_START)
            if end >= 0 or call >= 0:
                implicit = call >= 0 and (end < 0 or call < end)  # a call ends the thought too
                cut = call if implicit else end
                text = buffer[:cut].rstrip("\n")
                reasoning.append(text if self._reasoning_started else text.lstrip("\n"))
                self._state = "content" if implicit else "after"
                self._buffer = buffer[cut:] if implicit else buffer[end + len(THINK_END):]
                return True
            keep = max(_partial_suffix(buffer, THINK_END), _partial_suffix(buffer, TOOL_CALL_START))
            ready = buffer[:len(buffer) - keep]
            if not self._reasoning_started:
                ready = ready.lstrip("\n")
                if not ready:
                    self._buffer = buffer[len(buffer) - keep:]
                    return False
            core = ready.rstrip("\n")
            if core:
                reasoning.append(core)
                self._reasoning_started = True
            self._buffer = ready[len(core):] + buffer[len(buffer) - keep:]
            return False
        if self._state == "after":
            text = buffer.lstrip("\n")
            if not text:
                self._buffer = ""
                return False
            self._state, self._buffer = "content", text
            return True
        content.append(buffer)
        self._buffer = ""
        return False


def split_reasoning(text: str, *, started: bool = False) -> tuple[str | None, str]:
    """Split a finished output into ``(reasoning, answer)``.

    Args:
        text: the decoded output.
        started: the prompt ended inside a thought (Qwen3.5 with thinking on).

    Returns:
        ``(None, text)`` when the output opens no thought, else the thought and the answer.

    Example:
        >>> split_reasoning("<think>\\nEasy.\\n</think>\\n\\n4")
        ('Easy.', '4')
    """
    splitter = ReasoningSplitter(started=started)
    r1, c1 = splitter.feed(text)
    r2, c2 = splitter.finish()
    return (r1 + r2 if splitter.saw_thought else None), c1 + c2


def thinking_started(prompt_ids: Sequence[int], think_start: int, think_end: int) -> bool:
    """The prompt ends inside a thought: its last ``<think>`` is not closed."""
    for token in reversed(prompt_ids):
        if token == think_end:
            return False
        if token == think_start:
            return True
    return False


class ThinkingBudget:
    """Close the thought after ``budget`` thinking tokens (a ``generate_step`` processor).

    Thinking tokens are counted after ``<think>`` (or from the first generated token when the
    prompt ends inside a thought); when ``budget`` of them are written and the model has not
    closed the thought itself, the only allowed token is ``</think>``. From then on it does
    nothing. The mask has llguidance's layout (bit ``i % 32`` of word ``i // 32``).

    Args:
        budget: thinking tokens allowed (0 closes the thought at once).
        think_start / think_end: the ids of ``<think>`` and ``</think>``.
        vocab_size: the logits' length.
        started: the prompt ends inside a thought (see ``thinking_started``).
        implicit_ends: tokens that end a thought without ``</think>`` (``<tool_call>``).
    """

    def __init__(self, budget: int, *, think_start: int, think_end: int, vocab_size: int,
                 started: bool = False, implicit_ends: Sequence[int] = ()) -> None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
            msg = f"thinking_budget={budget!r}: must be an int >= 0"
            raise ConfigError(msg)
        if not 0 <= think_end < vocab_size:
            msg = f"</think> id {think_end} is outside the vocabulary ({vocab_size})"
            raise ConfigError(msg)
        self.budget = budget
        self._start, self._end = think_start, think_end
        self._ends = {think_end, *implicit_ends}
        self._state = "thinking" if started else "before"
        self.thinking_tokens = 0
        self._force = np.zeros((vocab_size + 31) // 32, np.uint32)
        self._force[think_end // 32] = np.uint32(1 << (think_end % 32))

    def mask(self) -> np.ndarray | None:
        if self._state == "thinking" and self.thinking_tokens >= self.budget:
            return self._force
        return None

    def advance(self, token: int) -> None:
        if self._state == "before":
            if token == self._start:
                self._state = "thinking"
        elif self._state == "thinking":
            if token in self._ends:
                self._state = "answer"
            else:
                self.thinking_tokens += 1

    @property
    def done(self) -> bool:
        return False  # the budget never ends generation

"""Grounded arguments: the words of the user's messages a grounded parameter may quote.

A grounded parameter (``@tool(grounded=["city"])``) is a string a local model must copy from
the conversation's user turns; the tool-call grammars allow only these spans for it. Written
here, in the core's chat path, because every tool format's grammar reads it; ``Tool.grounded``
(``qwen_edge.agents.tools``) says which parameters are grounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError

__all__ = ["grounding_texts", "quotable_spans"]

# Stripped from both ends of a quoted span ("Lisbon?" -> "Lisbon"); kept inside ("St. Louis").
_SPAN_EDGES = ".,!?;:\"'()[]{}<>«»“”\u2018\u2019¿¡…"  # \u2018 \u2019: curly single quotes


def quotable_spans(texts: Iterable[str], *, max_words: int = 16,
                   limit: int = 4096) -> list[str]:
    """The values a grounded argument may take: runs of consecutive words of ``texts``.

    Every run of 1 to ``max_words`` whitespace-separated words, joined by single spaces, with
    punctuation stripped from its two ends (not from inside: ``"St. Louis"``), exactly as
    written otherwise (case and accents kept). Unique, the last text's spans first, at most
    ``limit`` of them (so a long conversation keeps its latest turns).

    Example:
        >>> quotable_spans(["Weather in São Paulo?"], max_words=2)
        ['Weather', 'Weather in', 'in', 'in São', 'São', 'São Paulo', 'Paulo']
    """
    if max_words < 1 or limit < 1:
        msg = f"quotable_spans: max_words and limit must be >= 1 (got {max_words}, {limit})"
        raise ConfigError(msg)
    out: dict[str, None] = {}
    for text in reversed(list(texts)):
        words = text.split()
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + max_words) + 1):
                span = " ".join(words[i:j]).strip(_SPAN_EDGES)
                if span and span not in out:
                    out[span] = None
                    if len(out) == limit:
                        return list(out)
    return list(out)


def grounding_texts(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """What grounded arguments quote: the text of every user message of a conversation.

    ``content`` may be a string or OpenAI content parts (only ``{"type": "text"}`` parts
    count); other roles (system, assistant, tool results) are not quoted from.
    """
    texts = []
    for message in messages:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [part["text"] for part in content if isinstance(part, Mapping)
                      and part.get("type") == "text" and isinstance(part.get("text"), str)]
    return texts

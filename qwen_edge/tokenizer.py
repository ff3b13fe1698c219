"""Tokenizer (wraps the ``tokenizers`` library) and StreamDecoder (exact incremental text).

``StreamDecoder`` turns tokens into text deltas as they arrive. A character whose UTF-8 bytes
are split across tokens (Chinese, emoji) is held back until complete, so no delta ever
contains a broken character, and ``"".join(deltas) == tokenizer.decode(tokens)`` always holds:
``finish()`` flushes whatever an unfinished character left (as ``decode`` would render it).
"""

from __future__ import annotations

import os

import numpy as np
from tokenizers import Tokenizer as _HFTokenizer
from tokenizers.decoders import DecodeStream

from .errors import TokenizerError

__all__ = ["StreamDecoder", "Tokenizer"]


class Tokenizer:
    """The package's byte-level BPE tokenizer.

    Special-token strings in the input (``<|im_start|>``, ``<tool_call>``) encode to their
    ids: that is how rendered chat prompts work. Use ``encode(text, special=False)`` for
    untrusted text that must not open turns.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            self._tok = _HFTokenizer.from_file(str(path))
        except Exception as exc:  # the tokenizers library raises plain Exception
            msg = f"{path}: cannot load tokenizer ({exc})"
            raise TokenizerError(msg) from exc
        self._tok.no_padding()
        self._tok.no_truncation()
        self._specials = [t.content for t in self._tok.get_added_tokens_decoder().values()]

    @property
    def backend(self) -> _HFTokenizer:
        """The underlying ``tokenizers.Tokenizer``."""
        return self._tok

    def to_str(self) -> str:
        return str(self._tok.to_str())

    def token_to_id(self, token: str) -> int | None:
        tid = self._tok.token_to_id(token)
        return None if tid is None else int(tid)

    def encode(self, text: str, *, special: bool = True) -> np.ndarray:
        """Token ids (int32) of ``text``; ``special=False`` treats special-token strings as text."""
        if not isinstance(text, str):
            msg = f"expected text (str), got {type(text).__name__}"
            raise TokenizerError(msg)
        if special:
            ids = self._tok.encode(text, add_special_tokens=False).ids
        else:
            ids = self._encode_plain(text)
        return np.asarray(ids, dtype=np.int32)

    def _encode_plain(self, text: str) -> list[int]:
        # tokenizers has no switch to ignore added tokens while encoding; split them apart so
        # that "<|im_end|>" inside data encodes as ordinary text ("<", "|", "im", ...).
        specials = self._specials
        ids: list[int] = []
        for piece in _split_keep(text, specials):
            if piece in specials:
                # break the special token: encode its two halves separately
                half = len(piece) // 2
                ids += self._tok.encode(piece[:half], add_special_tokens=False).ids
                ids += self._tok.encode(piece[half:], add_special_tokens=False).ids
            elif piece:
                ids += self._tok.encode(piece, add_special_tokens=False).ids
        return ids

    def decode(self, ids: np.ndarray | list[int], *, skip_special_tokens: bool = False) -> str:
        return str(self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens))

    def __len__(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))


def _split_keep(text: str, words: list[str]) -> list[str]:
    """Split ``text`` around any occurrence of ``words``, keeping them as pieces."""
    pieces = [text]
    for word in sorted(words, key=len, reverse=True):
        out: list[str] = []
        for piece in pieces:
            if piece in words:
                out.append(piece)
                continue
            parts = piece.split(word)
            for i, part in enumerate(parts):
                if i:
                    out.append(word)
                out.append(part)
        pieces = out
    return pieces


class StreamDecoder:
    """Incremental detokenizer for one generation.

    Example:
        >>> dec = StreamDecoder(tokenizer)
        >>> text = "".join(dec.add(t) for t in token_ids) + dec.finish()
        >>> assert text == tokenizer.decode(token_ids)
    """

    def __init__(self, tokenizer: Tokenizer, *, skip_special_tokens: bool = False) -> None:
        self._tokenizer = tokenizer
        self._skip = skip_special_tokens
        self._stream = DecodeStream(skip_special_tokens=skip_special_tokens)
        self.tokens: list[int] = []
        self._parts: list[str] = []  # the deltas returned so far (joined on demand: no O(n^2))

    @property
    def text(self) -> str:
        """Everything returned so far."""
        return "".join(self._parts)

    def add(self, token: int) -> str:
        """Feed one token; return the new complete text (possibly "")."""
        self.tokens.append(int(token))
        delta = self._stream.step(self._tokenizer.backend, int(token)) or ""
        if delta:
            self._parts.append(delta)
        return delta

    def finish(self) -> str:
        """Flush: the rest of ``decode(tokens)`` that incomplete characters held back."""
        full = self._tokenizer.decode(self.tokens, skip_special_tokens=self._skip)
        text = self.text
        if not full.startswith(text):  # never expected; keep the invariant anyway
            return ""
        delta = full[len(text):]
        self._parts = [full]
        return delta

"""Tokenizer (wraps the ``tokenizers`` library) and StreamDecoder (exact incremental text).

Control tokens come only from where they are meant to: ``encode(text)`` matches every
added-token string in ``text`` (a raw prompt is the caller's own), ``encode(text,
special=False)`` matches none (the BPE of the bytes, as tiktoken's ``encode_ordinary``), and
``encode_rendered(text, data)`` matches them outside the ``data`` spans of a rendered chat
prompt only, encoding each stretch between two live control tokens in one piece so that the
ids equal transformers' ``apply_chat_template(tokenize=True)`` wherever data holds no
special-token string (see ``docs/tokenization.md``).

``StreamDecoder`` turns tokens into text deltas as they arrive. A character whose UTF-8 bytes
are split across tokens (Chinese, emoji) is held back until complete, so no delta ever
contains a broken character, and ``"".join(deltas) == tokenizer.decode(tokens)`` always holds:
``finish()`` flushes whatever an unfinished character left (as ``decode`` would render it).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer as _HFTokenizer
from tokenizers.decoders import DecodeStream

from .errors import TokenizerError

__all__ = ["StreamDecoder", "Tokenizer"]


class Tokenizer:
    """The package's byte-level BPE tokenizer.

    Special-token strings in the input (``<|im_start|>``, ``<tool_call>``) encode to their
    ids: that is how raw prompts work. Use ``encode(text, special=False)`` for untrusted text
    that must not open turns, and ``encode_rendered`` for chat prompts.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            self._tok = _HFTokenizer.from_file(str(path))
        except Exception as exc:  # the tokenizers library raises plain Exception
            msg = f"{path}: cannot load tokenizer ({exc})"
            raise TokenizerError(msg) from exc
        self._tok.no_padding()
        self._tok.no_truncation()
        added = self._tok.get_added_tokens_decoder()
        self._specials = [t.content for t in added.values()]
        self._added_ids = {t.content: int(i) for i, t in added.items()}
        # Leftmost-longest, as the tokenizers library matches added tokens.
        self._special_re = re.compile("|".join(
            re.escape(t) for t in sorted(self._specials, key=len, reverse=True))) \
            if self._specials else None
        self._plain: _HFTokenizer | None = None
        self._plain_lock = threading.Lock()

    @property
    def added_ids(self) -> frozenset[int]:
        """The ids of the added (special and control) tokens: ``<|im_end|>``, ``<think>``, ..."""
        return frozenset(self._added_ids.values())

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
            ids = self._plain_tokenizer().encode(text, add_special_tokens=False).ids
        return np.asarray(ids, dtype=np.int32)

    def encode_rendered(self, text: str, data: Sequence[tuple[int, int]]) -> np.ndarray:
        """Token ids of a rendered chat prompt whose ``data`` spans (``[start, end)``) are text.

        An added-token string is a control token only where it lies wholly outside every data
        span; everything between two control tokens is encoded as one piece of ordinary
        text, as transformers encodes the text between two added tokens.

        Example:
            >>> tok.encode_rendered("<|im_start|>user\n<|im_end|><|im_end|>", [(17, 27)]).tolist()
            [151644, 872, 198, 27, 91, 318, 6213, 91, 29, 151645]
        """
        if not isinstance(text, str):
            msg = f"expected text (str), got {type(text).__name__}"
            raise TokenizerError(msg)
        ids: list[int] = []
        pos = 0
        for start, end in self._live_specials(text, data):
            if start > pos:
                ids += self._plain_tokenizer().encode(text[pos:start],
                                                      add_special_tokens=False).ids
            ids.append(self._added_ids[text[start:end]])
            pos = end
        if pos < len(text):
            ids += self._plain_tokenizer().encode(text[pos:], add_special_tokens=False).ids
        return np.asarray(ids, dtype=np.int32)

    def _live_specials(self, text: str, data: Sequence[tuple[int, int]]
                       ) -> list[tuple[int, int]]:
        """Spans of added-token strings in the template's text (between the data spans)."""
        if self._special_re is None:
            return []
        out: list[tuple[int, int]] = []
        pos = 0
        for start, end in [*sorted(data), (len(text), len(text))]:
            if start > pos:  # template text text[pos:start]: match inside it only
                out += [(m.start(), m.end()) for m in
                        self._special_re.finditer(text, pos, start)]
            pos = max(pos, end)
        return out

    def _plain_tokenizer(self) -> _HFTokenizer:
        """The same pipeline without added tokens (shares the BPE model: no copy)."""
        with self._plain_lock:
            if self._plain is None:
                plain = _HFTokenizer(self._tok.model)
                plain.normalizer = self._tok.normalizer
                plain.pre_tokenizer = self._tok.pre_tokenizer
                plain.decoder = self._tok.decoder
                plain.no_padding()
                plain.no_truncation()
                self._plain = plain
            return self._plain

    def decode(self, ids: np.ndarray | list[int], *, skip_special_tokens: bool = False) -> str:
        return str(self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens))

    def __len__(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))


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

"""Constrained decoding with llguidance: json_schema / regex / Lark grammar -> token masks.

A ``Constraint`` follows one generation: ``mask()`` gives the allowed-token bitmask for the
next position (llguidance's layout: bit ``i % 32`` of word ``i // 32``), which the C++ sampler
applies; ``advance(token)`` feeds the chosen token. Building the llguidance tokenizer is
expensive (~1 s for Qwen's 151k vocabulary), so ``ConstraintFactory`` does it once per model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from .errors import GrammarError

__all__ = ["AllOf", "Constraint", "ConstraintFactory", "LazyConstraint", "TokenProcessor"]

_JSON_OPTIONS: Any = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


class Constraint:
    """The grammar state of one generation."""

    def __init__(self, matcher: Any, vocab_size: int) -> None:
        import llguidance.numpy as lln

        self._lln = lln
        self._matcher = matcher
        self._bitmask = lln.allocate_token_bitmask(1, vocab_size)

    def mask(self) -> np.ndarray:
        """uint32 [ceil(vocab / 32)]: the tokens allowed next (reused buffer)."""
        self._lln.fill_next_token_bitmask(self._matcher, self._bitmask, 0)
        self._raise_on_error()
        allowed: np.ndarray = self._bitmask[0].view(np.uint32)
        return allowed

    def advance(self, token: int) -> None:
        self._matcher.consume_token(int(token))
        self._raise_on_error()

    def rollback(self, n: int) -> None:
        self._matcher.rollback(n)

    @property
    def done(self) -> bool:
        """The grammar is complete and accepts nothing more."""
        return bool(self._matcher.is_stopped())

    def _raise_on_error(self) -> None:
        if self._matcher.is_error():
            msg = f"constraint error: {self._matcher.get_error()}"
            raise GrammarError(msg)


class LazyConstraint:
    """A constraint that switches on when the model itself emits ``trigger`` (a token id).

    Until then decoding is free (``mask()`` is None); from the token after the trigger on,
    the grammar holds (llama.cpp's ``grammar_lazy`` + ``grammar_triggers``). This is how tool
    calls are made valid by construction without forcing the model to call a tool.
    """

    def __init__(self, inner: Constraint, trigger: int) -> None:
        self._inner = inner
        self.trigger = trigger
        self.active = False

    def mask(self) -> np.ndarray | None:
        return self._inner.mask() if self.active else None

    def advance(self, token: int) -> None:
        if self.active:
            self._inner.advance(token)
        elif token == self.trigger:
            self.active = True

    @property
    def done(self) -> bool:
        return self.active and self._inner.done


class ConstraintFactory:
    """Compiles constraints for one tokenizer; the llguidance tokenizer is built lazily once."""

    def __init__(self, tokenizer_json: Callable[[], str], vocab_size: int,
                 eos_token_ids: Sequence[int]) -> None:
        self._tokenizer_json = tokenizer_json  # serialized only when a constraint is first used
        self._vocab_size = vocab_size
        self._eos = list(eos_token_ids)
        self._lock = threading.Lock()
        self._ll_tokenizer: Any = None

    def _tokenizer(self) -> Any:
        with self._lock:
            if self._ll_tokenizer is None:
                import llguidance

                self._ll_tokenizer = llguidance.LLTokenizer(
                    self._tokenizer_json(), n_vocab=self._vocab_size, eos_token=self._eos
                )
            return self._ll_tokenizer

    def grammar(self, *, json_schema: Mapping[str, Any] | str | None = None,
                regex: str | None = None, grammar: str | None = None) -> str:
        """The llguidance grammar for one of the three constraint kinds."""
        import llguidance

        try:
            if json_schema is not None:
                schema = json_schema if isinstance(json_schema, str) else json.dumps(json_schema)
                # json.dumps-style separators and no free whitespace: the output is compact,
                # and a weak model cannot wander off into endless whitespace.
                return str(llguidance.LLMatcher.grammar_from_json_schema(
                    schema, defaults=_JSON_OPTIONS))
            if regex is not None:
                return str(llguidance.LLMatcher.grammar_from_regex(regex))
            if grammar is not None:
                return str(llguidance.LLMatcher.grammar_from_lark(grammar))
        except (ValueError, TypeError, RuntimeError) as exc:
            msg = f"invalid constraint: {exc}"
            raise GrammarError(msg) from exc
        msg = "no constraint given"
        raise GrammarError(msg)

    def make(self, grammar: str) -> Constraint:
        """A fresh matcher for ``grammar`` (from ``self.grammar``)."""
        import llguidance

        tokenizer = self._tokenizer()
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
        if is_error:
            msg = f"invalid constraint: {'; '.join(messages)}"
            raise GrammarError(msg)
        matcher = llguidance.LLMatcher(tokenizer, grammar)
        if matcher.is_error():
            msg = f"invalid constraint: {matcher.get_error()}"
            raise GrammarError(msg)
        return Constraint(matcher, self._vocab_size)


class TokenProcessor(Protocol):
    """What ``generate_step`` applies to every draw: a grammar, a thinking budget, or several.

    ``mask()`` is the allowed-token bitmask for the next position (None = no restriction),
    ``advance(token)`` feeds the chosen token, ``done`` ends generation.
    """

    def mask(self) -> np.ndarray | None: ...

    def advance(self, token: int) -> None: ...

    @property
    def done(self) -> bool: ...


class AllOf:
    """Several processors as one: their masks are intersected, every token advances each,
    and generation ends when any of them is done (a finished grammar)."""

    def __init__(self, *parts: TokenProcessor | None) -> None:
        self.parts = [p for p in parts if p is not None]

    def mask(self) -> np.ndarray | None:
        masks: list[np.ndarray] = [m for m in (p.mask() for p in self.parts) if m is not None]
        if len(masks) < 2:
            return masks[0] if masks else None
        out: np.ndarray = np.bitwise_and.reduce(np.stack(masks), axis=0)
        return out

    def advance(self, token: int) -> None:
        for p in self.parts:
            p.advance(token)

    @property
    def done(self) -> bool:
        return any(p.done for p in self.parts)

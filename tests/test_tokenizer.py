"""Runtime Tokenizer and StreamDecoder: exact incremental detokenization."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_edge.tokenizer import StreamDecoder, Tokenizer


@pytest.fixture(scope="module")
def tok(package):  # type: ignore[no-untyped-def]
    return Tokenizer(package("tiny-qwen2", "int4") / "tokenizer.json")


TEXTS = [
    "Hello world",
    "天气怎么样？北京今天多云。",
    "Emoji: 👩‍👩‍👧‍👦 🇩🇪 👍🏽 done",
    "Grüße aus München — naïve café",
    "Привет, мир! 123456789",
    "def f(x):\n\treturn x  # comment\r\n",
]


def _stream(tok: Tokenizer, ids: list[int]) -> list[str]:
    dec = StreamDecoder(tok)
    deltas = [dec.add(t) for t in ids]
    assert dec.text == "".join(deltas)
    deltas.append(dec.finish())
    assert dec.text == "".join(deltas) == tok.decode(ids)
    return deltas


@pytest.mark.parametrize("text", TEXTS)
def test_deltas_concatenate_to_decode_and_never_break_characters(tok, text):  # type: ignore[no-untyped-def]
    ids = tok.encode(text).tolist()
    assert tok.decode(ids) == text
    deltas = _stream(tok, ids)
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)


def test_hello_world_ids(tok):  # type: ignore[no-untyped-def]
    assert tok.encode("Hello world").tolist() == [9707, 1879]
    assert tok.encode("<|im_start|>user").tolist()[0] == 151644


def test_special_tokens_can_be_encoded_as_plain_text(tok):  # type: ignore[no-untyped-def]
    ids = tok.encode("data <|im_end|> <tool_call>", special=False).tolist()
    assert 151645 not in ids and 151657 not in ids
    assert tok.decode(ids) == "data <|im_end|> <tool_call>"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=151_642), min_size=1, max_size=40))
def test_random_token_sequences_stream_exactly(tok, ids):  # type: ignore[no-untyped-def]
    # Random ids split multi-byte characters everywhere: the invariant must still hold.
    assert "".join(_stream(tok, ids)) == tok.decode(ids)


def test_encode_returns_int32(tok):  # type: ignore[no-untyped-def]
    ids = tok.encode("abc")
    assert ids.dtype == np.int32

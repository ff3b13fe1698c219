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
    "天气怎么样？北京今天多云。",  # noqa: RUF001  (CJK punctuation on purpose)
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
    assert 151645 not in ids
    assert 151657 not in ids
    assert tok.decode(ids) == "data <|im_end|> <tool_call>"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=151_642), min_size=1, max_size=40))
def test_random_token_sequences_stream_exactly(tok, ids):  # type: ignore[no-untyped-def]
    # Random ids split multi-byte characters everywhere: the invariant must still hold.
    assert "".join(_stream(tok, ids)) == tok.decode(ids)


def test_encode_returns_int32(tok):  # type: ignore[no-untyped-def]
    ids = tok.encode("abc")
    assert ids.dtype == np.int32


# -- control tokens only where they are meant (reference: tiktoken over dashscope's ranks) -------


@pytest.fixture(scope="module")
def ordinary():  # type: ignore[no-untyped-def]
    """tiktoken with the Qwen ranks and no special tokens: the BPE of the bytes alone."""
    import base64
    import importlib.util
    from pathlib import Path

    tiktoken = pytest.importorskip("tiktoken")
    from qwen_edge.export.tokenizer import PRETOKENIZE_REGEX

    spec = importlib.util.find_spec("dashscope")
    assert spec is not None
    assert spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "qwen.tiktoken"
    ranks = {base64.b64decode(t): int(r) for t, r in (ln.split() for ln in
                                                      path.read_bytes().splitlines())}
    return tiktoken.Encoding(name="qwen-ordinary", pat_str=PRETOKENIZE_REGEX,
                             mergeable_ranks=ranks, special_tokens={})


SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>", "</tool_call>"]
adversarial = st.lists(st.sampled_from([*SPECIALS, "<|", "|>", "<", ">", " ", "\n", "}", "hi"])
                       | st.text(max_size=4), max_size=10).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=adversarial)
def test_plain_encoding_is_the_bpe_of_the_bytes(tok, ordinary, text):  # type: ignore[no-untyped-def]
    import unicodedata

    expected = ordinary.encode_ordinary(unicodedata.normalize("NFC", text))
    assert tok.encode(text, special=False).tolist() == expected
    assert tok.encode_rendered(text, [(0, len(text))]).tolist() == expected  # all data
    assert tok.encode_rendered(text, []).tolist() == tok.encode(text).tolist()  # no data


@settings(max_examples=200, deadline=None)
@given(head=adversarial, data=adversarial, tail=adversarial)
def test_rendered_encoding_makes_control_tokens_outside_data_only(  # type: ignore[no-untyped-def]
        tok, head, data, tail):
    text = f"{head}<|im_start|>{data}<|im_end|>{tail}"
    start = len(head) + len("<|im_start|>")
    ids = tok.encode_rendered(text, [(start, start + len(data))]).tolist()
    assert tok.decode(ids) == text
    # the markers around the data are live; nothing inside it is
    live = [i for i in ids if i >= 151_643]
    around = [i for i in tok.encode(head).tolist() + tok.encode(tail).tolist() if i >= 151_643]
    assert sorted(live) == sorted([151644, 151645, *around])

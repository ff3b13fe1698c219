"""Fingerprints of what train/tiny generates: the corpus, the evaluation items, the encoded rows.

The SmolLM fine-tune (train/smollm) imports ``corpus`` and ``train`` and its evaluation uses
``corpus.eval_requests``: a model trained on one corpus and scored on another set of items is
not comparable with earlier runs. These digests make any change of the generated data a
conscious one. If a change is meant, update the digest here and say in the commit that models
trained before it are scored on different items.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from typing import Any

import pytest
from helpers import load_tiny

corpus = load_tiny("corpus")


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, ensure_ascii=False).encode()).hexdigest()


def _dicts(items: Any) -> list[Any]:
    return [dataclasses.asdict(x) if x is not None else None for x in items]


CORPUS = [
    ("generate(3000, seed=0)", lambda: corpus.generate(3000, seed=0),
     "ea9a01145d6de2c27a5a7c274e2f077cb425713caa287a2df524a882aa3c68da"),
    ("generate(500, seed=0, split='heldout')",
     lambda: corpus.generate(500, seed=0, split="heldout"),
     "06dce8f2a5ee71d4e4515f661b33e767adbe9bbe8ba5864094352223bdbb1665"),
    ("eval_requests(300, seed=1234, split='heldout')",
     lambda: corpus.eval_requests(300, seed=1234, split="heldout"),
     "ddd159a0af6a631fd55f1912715605e530b656d6d801e7fe22006d46d8a33d83"),
    ("eval_requests(300, seed=777, split='train')",
     lambda: corpus.eval_requests(300, seed=777, split="train"),
     "59eb25fa2ee824b78df7427a3e8b3c2ed5b3629259740323311534f94b45a073"),
    ("quote_answers(generate(200, seed=3))",
     lambda: [corpus.quote_answers(e) for e in corpus.generate(200, seed=3)],
     "f6d58f795cd45642e8c4176b6f670d623b3e1002bdd439a78184bc2c58ee7100"),
]


@pytest.mark.parametrize(("name", "make", "expected"), CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_is_unchanged(name: str, make: Any, expected: str) -> None:
    assert _digest(_dicts(make())) == expected, f"corpus.{name} generates other data"


@pytest.fixture(scope="module")
def encoded(checkpoint: Any) -> dict[str, Any]:
    pytest.importorskip("torch")  # train.py is the trainer too
    train = load_tiny("train")
    from qwen_edge.tokenizer import Tokenizer

    tok = Tokenizer(str(checkpoint("tiny-qwen2") / "tokenizer.json"))
    encoder = train.Encoder(tok)
    examples = corpus.generate(200, seed=3)
    rows = train.encode_corpus(encoder, examples, seed=3)
    words, pieces = train.vocabulary_words(tok), train.vocabulary_pieces(tok)
    rng = random.Random(5)
    augmented = [train.augment_copy(e, rng, words, pieces, 0.3) for e in examples]
    augmented += [train.augment_noise(e, rng, words) for e in examples]
    augmented += train.echo_examples(20, rng, words, pieces, 0.3)
    augmented += train.spelling_examples(20, rng, words, pieces, 0.3)
    batches = train.make_batches(rows, 3000, random.Random(9))
    return {
        "encode_corpus": [[r.prefix, r.ids.tolist(), r.loss_mask.tolist()] for r in rows],
        "prefixes": [p.tolist() for p in encoder.prefixes + encoder.short_prefixes],
        "vocabulary": [words, pieces],
        "augment": _dicts(augmented),
        "distractor_words": train.distractor_words(words, examples),
        "make_batches": [[[r.prefix, len(r.ids)] for r in batch] for batch in batches],
    }


ENCODED = [
    ("encode_corpus", "18a033e95491165a2576bedc9b7e3556ceb5e778bb0f2badae2752a07572c77b"),
    ("prefixes", "c99719cc53a1f883128c9b257b9932dd1a06cf69fddf5c4e4fee32f6fd756994"),
    ("vocabulary", "d2b632b5c82197198541533738544d2eab8afb786fb6b000039cdaf63cae172a"),
    ("augment", "91ba7caeb8fa0f5c79e9c3fbd0579938430cf9b9019dc2cd3375f00366084f09"),
    ("distractor_words", "e9eb0f7583a575f70f7f2fb60871d621826b828b5eab4a751d01d305663f567d"),
    ("make_batches", "8a0ce3a01eb6aca5bbafc2a758030b86066015da448ee736178fd6d2acc78bee"),
]


@pytest.mark.parametrize(("name", "expected"), ENCODED, ids=[e[0] for e in ENCODED])
def test_encoded_rows_are_unchanged(encoded: dict[str, Any], name: str, expected: str) -> None:
    """Token ids and loss masks (the real Qwen tokenizer of the test checkpoints), the shared
    system prefixes, the augmentations and the batching, as the fine-tune imports them."""
    assert _digest(encoded[name]) == expected, f"train.{name} produces other data"

"""The SmolLM2 fine-tune (train/smollm/finetune.py): its shared-prefix forward is transformers'
Qwen2, its new tool tokens start where their text was, and its batch order resumes exactly."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, load_tiny

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.parity

FINETUNE = TINY.parent / "smollm" / "finetune.py"


@pytest.fixture(scope="module")
def finetune():  # type: ignore[no-untyped-def]
    load_tiny("train")  # registers train/tiny on sys.path, as the script does
    spec = importlib.util.spec_from_file_location("smollm_finetune", FINETUNE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["smollm_finetune"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hf_model():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(vocab_size=300, hidden_size=64, intermediate_size=96,
                                   num_hidden_layers=3, num_attention_heads=4,
                                   num_key_value_heads=2, tie_word_embeddings=True,
                                   max_position_embeddings=128, rope_theta=10000.0)
    model = transformers.Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():  # biases and norms off their initial values, so every weight matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.mark.parametrize(("first_trained", "refresh"), [(0, 0), (2, 0), (0, 5), (2, 5)])
def test_shared_prefix_forward_is_transformers_qwen2(finetune, hf_model, first_trained,
                                                     refresh):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(1)
    prefix = torch.randint(0, 300, (17,), generator=g)
    rows = torch.randint(0, 300, (3, 9), generator=g)
    embed = hf_model.get_input_embeddings().weight
    net = finetune.SharedPrefixModel(hf_model, first_trained, refresh)
    with torch.no_grad():
        got = net.hidden(0, prefix, rows, embed) @ embed.T
        ref = hf_model(torch.cat([prefix.expand(3, -1), rows], 1)).logits[:, 17:]
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)


def test_gradients_reach_only_the_trained_layers(finetune, hf_model):  # type: ignore[no-untyped-def]
    net = finetune.SharedPrefixModel(hf_model, 2)
    embed = hf_model.get_input_embeddings().weight.detach()
    hf_model.zero_grad()
    net.hidden(1, torch.arange(10), torch.arange(10, 20)[None], embed).sum().backward()
    grads = [p.grad is not None and bool(p.grad.abs().sum() > 0)
             for p in hf_model.model.layers[2].parameters()]
    assert all(grads)
    assert all(p.grad is None for p in hf_model.model.layers[0].parameters())
    hf_model.zero_grad()


def test_new_tool_token_rows_are_the_mean_of_their_pieces(finetune, checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    base = checkpoint("tiny-qwen2")
    # the Qwen tokenizer has the tool tokens already; drop them to stand in for SmolLM2's
    data = Tokenizer.from_file(str(base / "tokenizer.json"))
    folder = tmp_path / "base"
    folder.mkdir()
    doc = json.loads(data.to_str())
    doc["added_tokens"] = [t for t in doc["added_tokens"] if "tool_" not in t["content"]]
    (folder / "tokenizer.json").write_text(json.dumps(doc))
    pieces, ids = finetune.add_tool_tokens(folder, tmp_path / "out" / "tokenizer.json")
    assert len(set(ids)) == 4
    assert all(len(p) > 1 for p in pieces)
    rebuilt = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer.json"))
    assert rebuilt.encode("<tool_call>x</tool_call>").ids[0] == ids[0]
    model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(
        vocab_size=max(max(p) for p in pieces) + 1, hidden_size=32, intermediate_size=64,
        num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
        tie_word_embeddings=True))
    finetune.init_new_rows(model, pieces, ids)
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == max(ids) + 1
    for piece, i in zip(pieces, ids, strict=True):
        torch.testing.assert_close(emb[i], emb[piece].mean(0))


def test_batch_order_is_a_function_of_the_step(finetune, checkpoint):  # type: ignore[no-untyped-def]
    corpus = load_tiny("corpus")
    train = load_tiny("train")
    from qwen_edge.tokenizer import Tokenizer

    encoder = train.Encoder(Tokenizer(Path(checkpoint("tiny-qwen2")) / "tokenizer.json"))
    rows = train.encode_corpus(encoder, corpus.generate(60, seed=2), seed=2)
    a = finetune.BatchOrder(rows, 600, seed=4)
    steps = [a(s) for s in range(2 * a.per_epoch + 3)]  # crosses two epoch boundaries
    b = finetune.BatchOrder(rows, 600, seed=4)  # a resumed run
    for s in (2 * a.per_epoch + 2, a.per_epoch, 1):
        batch, prefix = b(s)
        assert prefix == steps[s][1]
        assert [r.ids.tolist() for r in batch] == [r.ids.tolist() for r in steps[s][0]]
    epoch = [r for batch, _ in steps[: a.per_epoch] for r in batch]
    assert len(epoch) == len(rows)  # every row once per epoch
    assert np.array_equal(np.sort([len(r.ids) for r in epoch]), np.sort([len(r.ids) for r in rows]))

"""The qwen-edge-tiny trainer (train/tiny): its model is transformers' Qwen2, its data is what
the runtime tokenizes, and its exported checkpoint runs in qwen-edge like any other."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import load_tiny

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_model():
    model_mod = load_tiny("model")
    torch.manual_seed(0)
    cfg = model_mod.TinyConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=96)
    active = torch.unique(torch.randint(0, cfg.vocab_size, (2000,)))
    model = model_mod.TinyQwen2(cfg, active)
    with torch.no_grad():  # move off the initialization so every weight matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        model.embed.index_fill_(0, torch.tensor([0]), 0.0)
    return model_mod, cfg, active, model


@pytest.fixture(scope="module")
def tiny_tokenizer_path(checkpoint) -> str:
    return str(checkpoint("tiny-qwen2") / "tokenizer.json")


def _hf(cfg, model):
    hf_cfg = {k: v for k, v in cfg.hf_config().items()
              if k not in ("architectures", "model_type", "torch_dtype")}
    hf = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**hf_cfg)).eval()
    result = hf.load_state_dict(model.full_state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys in ([], ["lm_head.weight"])  # tied to the embedding
    return hf


def test_model_matches_transformers_qwen2(tiny_model) -> None:
    _, cfg, active, model = tiny_model
    hf = _hf(cfg, model)
    ids = active[torch.randint(0, len(active), (2, 24))]
    with torch.no_grad():
        ours, theirs = model(ids), hf(ids).logits
    assert (ours - theirs).abs().max().item() < 1e-4


def test_shared_prefix_forward_and_loss_are_exact(tiny_model) -> None:
    _, _, active, model = tiny_model
    ids = active[torch.randint(0, len(active), (3, 30))]
    prefix, rows = ids[0, :10], ids[:, 10:]
    with torch.no_grad():
        hidden = model.forward_shared_prefix(prefix, rows, torch.tensor([20, 20, 20]))
        full = model(torch.cat([prefix[None].expand(3, -1), rows], dim=1))[:, 10:]
        assert (hidden @ model.full_embedding().T - full).abs().max().item() < 1e-4
        # the active-vocabulary loss is the full-vocabulary cross-entropy, inactive targets too
        targets = torch.cat([rows[0, 1:], torch.tensor([1])])  # id 1 is inactive
        assert 1 not in active.tolist()
        ours = model.loss(hidden[0], targets)
        ref = torch.nn.functional.cross_entropy(full[0], targets)
        assert abs(ours.item() - ref.item()) < 1e-4
        # a prebuilt table (one per training step) gives the same forward and loss
        embed = model.embed
        again = model.forward_shared_prefix(prefix, rows, torch.tensor([20, 20, 20]), embed)
        assert torch.equal(again, hidden)
        assert model.loss(again[0], targets, embed).item() == ours.item()


def test_bfloat16_loss_is_close_to_the_float32_loss(tiny_model) -> None:
    """``--bf16-loss``: the logit product in bfloat16 changes the loss and its gradients only
    by bfloat16 rounding (and does change them: the flag takes effect)."""
    _, cfg, active, model = tiny_model
    torch.manual_seed(3)
    hidden = torch.randn(64, cfg.hidden_size, requires_grad=True)
    targets = active[torch.randint(0, len(active), (64,))]
    exact = model.loss(hidden, targets)
    fast = model.loss(hidden, targets, bf16=True)
    assert fast.dtype == torch.float32
    assert fast.item() != exact.item()
    assert abs(fast.item() - exact.item()) < 0.01 * exact.item()
    (g_exact,) = torch.autograd.grad(exact, hidden)
    (g_fast,) = torch.autograd.grad(fast, hidden)
    cos = torch.nn.functional.cosine_similarity(g_exact.flatten(), g_fast.flatten(), dim=0)
    assert cos.item() > 0.99


def test_inactive_rows_are_zero_in_the_checkpoint(tiny_model) -> None:
    _, cfg, active, model = tiny_model
    emb = model.full_state_dict()["model.embed_tokens.weight"]
    assert emb.shape == (cfg.vocab_size, cfg.hidden_size)
    inactive = torch.ones(cfg.vocab_size, dtype=torch.bool)
    inactive[active] = False
    assert emb[inactive].abs().max().item() == 0.0
    assert torch.equal(emb[active], model.embed.detach())


def test_spelling_tied_embeddings_export_as_a_plain_embedding(tiny_model) -> None:
    model_mod, cfg, active, _ = tiny_model
    torch.manual_seed(1)
    groups = torch.arange(len(active)) // 3  # three ids per group
    features = torch.randint(0, 2, (len(active), 2)).float()
    model = model_mod.TinyQwen2(cfg, active, groups, features)
    with torch.no_grad():
        model.embed_delta.normal_(std=0.05)
    table = model.embed.detach()
    # the parametrization: shared base + shared feature directions + the token's own part
    expected = (model.embed_base[groups] + features @ model.embed_shared
                + model.embed_delta).detach()
    assert torch.allclose(table, expected)
    # ids of one group without feature differences start out (delta = 0) as one vector
    fresh = model_mod.TinyQwen2(cfg, active, groups, torch.zeros(len(active), 2))
    assert torch.equal(fresh.embed[0], fresh.embed[1])
    # what is exported is that table, and the model equals transformers' Qwen2 on it
    emb = model.full_state_dict()["model.embed_tokens.weight"]
    assert torch.equal(emb[active], table)
    ids = active[torch.randint(0, len(active), (2, 16))]
    with torch.no_grad():
        assert (model(ids) - _hf(cfg, model)(ids).logits).abs().max().item() < 1e-4
    with pytest.raises(ValueError, match="features need groups"):
        model_mod.TinyQwen2(cfg, active, None, features)


def test_composed_spelling_exports_as_a_plain_embedding(tiny_model) -> None:
    """Composed spelling adds W_j @ e(piece_j) to a token's row; the exported matrix is that
    sum and transformers' Qwen2 on it is the training model; W = 0 changes nothing."""
    model_mod, cfg, active, _ = tiny_model
    torch.manual_seed(3)
    n = len(active)
    groups = torch.arange(n) // 2
    features = torch.randint(0, 2, (n, 2)).float()
    pieces = torch.full((n, 3), n)
    pieces[:10] = torch.randint(0, n, (10, 3))  # ten spelled tokens; the rest have no pieces
    plain = model_mod.TinyQwen2(cfg, active, groups, features)
    model = model_mod.TinyQwen2(cfg, active, groups, features, pieces)
    model.load_state_dict(plain.state_dict(), strict=False)
    assert torch.equal(model.embed, plain.embed)  # W starts at zero
    with torch.no_grad():
        model.embed_compose.normal_(std=0.1)
    base = plain.embed.detach()
    expected = base.clone()
    for j in range(3):
        expected[:10] += base[pieces[:10, j]] @ model.embed_compose[j].detach()
    table = model.embed.detach()
    assert torch.allclose(table, expected, atol=1e-6)
    assert torch.equal(table[10:], base[10:])
    emb = model.full_state_dict()["model.embed_tokens.weight"]
    assert torch.equal(emb[active], table)
    ids = active[torch.randint(0, 10, (2, 16))]
    with torch.no_grad():
        assert (model(ids) - _hf(cfg, model)(ids).logits).abs().max().item() < 1e-4
    with pytest.raises(ValueError, match="pieces must be"):
        model_mod.TinyQwen2(cfg, active, groups, features, torch.full((n, 3), n + 1))


def test_previous_token_head_attends_to_the_previous_token_in_transformers(tiny_model) -> None:
    """The constructed head works in the exported model itself (transformers' Qwen2, RoPE
    included), at every position of a long sequence, and leaves the other heads alone."""
    model_mod, _, active, _ = tiny_model
    torch.manual_seed(2)
    cfg = model_mod.TinyConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=96)
    model = model_mod.TinyQwen2(cfg, active)
    q_before = model.layers[0].self_attn.q_proj.weight.detach().clone()
    model.init_previous_token_head()
    ids = active[torch.randint(0, len(active), (1, 1500))]
    hf_cfg = {k: v for k, v in cfg.hf_config().items()
              if k not in ("architectures", "model_type", "torch_dtype")}
    hf = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(
        **hf_cfg, attn_implementation="eager")).eval()
    hf.load_state_dict(model.full_state_dict(), strict=False)
    with torch.no_grad():
        attn = hf(ids, output_attentions=True).attentions[0][0]  # (heads, t, t) of layer 0
    t = ids.shape[1]
    to_previous = attn[0, torch.arange(1, t), torch.arange(t - 1)]
    assert to_previous.min().item() > 0.99
    assert attn[2, torch.arange(1, t), torch.arange(t - 1)].mean().item() < 0.1  # untouched
    hd = cfg.head_dim
    assert torch.equal(model.layers[0].self_attn.q_proj.weight[hd:], q_before[hd:])


def test_spelling_groups_tie_space_and_case_variants(tiny_tokenizer_path) -> None:
    train = load_tiny("train")
    from qwen_edge.tokenizer import Tokenizer

    tok = Tokenizer(tiny_tokenizer_path)
    words = {w: tok.backend.token_to_id(w) for w in ("call", "\u0120call", "Call", "\u0120Call",
                                                     "\u0120kitchen", "7")}
    assert None not in words.values()
    active = np.array(sorted(words.values()))
    groups, features = train.spelling_groups(tok, active)
    by_id = {int(i): (int(g), tuple(f)) for i, g, f in zip(active, groups, features, strict=True)}
    group = {w: by_id[i][0] for w, i in words.items()}
    assert group["call"] == group["\u0120call"] == group["Call"] == group["\u0120Call"]
    assert len({group["call"], group["\u0120kitchen"], group["7"]}) == 3
    assert by_id[words["\u0120Call"]][1] == (1.0, 1.0)
    assert by_id[words["call"]][1] == (0.0, 0.0)
    assert by_id[words["7"]][1] == (0.0, 0.0)


def test_spelling_pieces_are_the_bare_tokens_of_a_spaced_word(tiny_tokenizer_path) -> None:
    train = load_tiny("train")
    from qwen_edge.tokenizer import Tokenizer

    tok = Tokenizer(tiny_tokenizer_path)
    bare = tok.backend.encode("staircase", add_special_tokens=False).ids
    assert len(bare) == 3  # st air case: what a JSON value holds
    spaced = {w: tok.backend.token_to_id(w) for w in ("\u0120staircase", "\u0120call", "call")}
    assert None not in spaced.values()
    active = np.array(sorted({*bare, *spaced.values()}))
    pieces = train.spelling_pieces(tok, active)
    row = {int(t): i for i, t in enumerate(active)}
    n = len(active)
    assert pieces[row[spaced["\u0120staircase"]]].tolist() == [row[bare[0]], row[bare[1]],
                                                              row[bare[2]]]
    assert pieces[row[spaced["\u0120call"]]].tolist() == [n, n, n]  # one bare token: tied
    assert pieces[row[spaced["call"]]].tolist() == [n, n, n]  # already bare
    for i in bare:
        assert pieces[row[i]].tolist() == [n, n, n]
    # a spaced word whose pieces are not all active gets none
    without = np.array(sorted({*bare[:2], spaced["\u0120staircase"]}))
    assert train.spelling_pieces(tok, without).tolist() == [[len(without)] * 3] * 3


def test_training_rows_are_what_the_runtime_tokenizes(tiny_tokenizer_path) -> None:
    corpus = load_tiny("corpus")
    train = load_tiny("train")
    from qwen_edge.tokenizer import Tokenizer

    encoder = train.Encoder(Tokenizer(tiny_tokenizer_path))
    examples = corpus.generate(40, seed=3)
    rows = train.encode_corpus(encoder, examples, seed=3)  # asserts the split internally
    for example, row in zip(examples, rows, strict=True):
        system = train.SYSTEM_PROMPTS[row.prefix]
        full = encoder.full(system, example.messages)
        assert np.array_equal(full, np.concatenate([encoder.prefixes[row.prefix], row.ids]))
        # the loss covers exactly the assistant turns: their text decodes back
        trained = encoder.tok.decode(row.ids[row.loss_mask])
        for message in example.messages:
            if message["role"] == "assistant" and message.get("content"):
                assert message["content"] in trained
        assert trained.count("<|im_end|>") == sum(
            m["role"] == "assistant" for m in example.messages)


def test_copy_augmentation_stays_consistent(tiny_tokenizer_path) -> None:
    import random

    corpus = load_tiny("corpus")
    train = load_tiny("train")
    from qwen_edge.tokenizer import Tokenizer

    words = train.vocabulary_words(Tokenizer(tiny_tokenizer_path))
    assert len(words) > 5000
    assert all(w.isascii() and w.isalpha() for w in words)
    rng = random.Random(0)
    made = 0
    for example in corpus.generate(300, seed=5):
        new = train.augment_copy(example, rng, words)
        if new is None:
            continue
        made += 1
        call = new.messages[1]["tool_calls"][0]["function"]
        key = train._COPY_ARGS[call["name"]]
        value = call["arguments"][key]
        assert value.lower() in new.messages[0]["content"].lower()
        content, _, _ = corpus.run_tool(call["name"], call["arguments"])
        assert new.messages[2]["content"] == content  # the real tool result of the new call
    assert made > 20


def test_pseudo_words_span_several_tokens(tiny_tokenizer_path) -> None:
    """``--pseudo-share``: copy-task words made of a word and 1-2 word pieces, which the
    tokenizer splits like an unfamiliar name; with share 0 the draws are the old ones."""
    import random

    train = load_tiny("train")
    from qwen_edge.tokenizer import Tokenizer

    tokenizer = Tokenizer(tiny_tokenizer_path)
    words, pieces = train.vocabulary_words(tokenizer), train.vocabulary_pieces(tokenizer)
    assert len(pieces) > 2000
    assert all(p.isascii() and p.isalpha() and p.islower() and 2 <= len(p) <= 5 for p in pieces)
    a, b = random.Random(3), random.Random(3)
    assert [train.random_word(a, words, pieces, 0.0) for _ in range(50)] == \
        [b.choice(words) for _ in range(50)]
    rng = random.Random(0)
    made = [train.random_word(rng, words, pieces, 1.0) for _ in range(200)]
    multi = sum(len(tokenizer.encode(" " + w)) >= 2 for w in made)
    plain = sum(len(tokenizer.encode(" " + w)) >= 2 for w in random.Random(0).sample(words, 200))
    assert plain < 60  # vocabulary words are mostly one token (lowercased capitals are not) ...
    assert multi >= 190  # ... pseudo words (almost) never are
    rng = random.Random(0)
    echo = train.echo_examples(100, rng, words, pieces, 0.5)
    longer = [w for e in echo for w in e.messages[1]["content"].split()
              if w.lower() not in words]
    assert len(longer) > 50


def test_spelling_lessons_pair_the_spaced_and_the_quoted_form(tiny_tokenizer_path) -> None:
    """``--spell-share``: the words of the request, as a JSON list in the answer; for many of
    them the quoted form is other tokens than the spaced one (what the lesson teaches)."""
    import json
    import random

    train = load_tiny("train")
    from qwen_edge.tokenizer import Tokenizer

    tokenizer = Tokenizer(tiny_tokenizer_path)
    words, pieces = train.vocabulary_words(tokenizer), train.vocabulary_pieces(tokenizer)
    lessons = train.spelling_examples(200, random.Random(0), words, pieces, 0.5)
    differ = total = 0
    for lesson in lessons:
        user, assistant = (m["content"] for m in lesson.messages)
        listed = json.loads(assistant)
        assert 2 <= len(listed) <= 6
        assert user.endswith(" ".join(listed))
        for word in listed:
            spaced = tokenizer.encode(" " + word).tolist()
            bare = tokenizer.encode(word).tolist()
            differ += len(spaced) != len(bare) or spaced[1:] != bare[1:]
            total += 1
    assert differ > total // 4


def test_noise_augmentation_adds_only_distractors(tiny_tokenizer_path) -> None:
    """``--noise-share``: random words around a request; the request, every other message and
    the expected calls are unchanged, and no distractor is a word the corpus's requests use."""
    import random
    import re

    corpus = load_tiny("corpus")
    train = load_tiny("train")
    from qwen_edge.tokenizer import Tokenizer

    examples = corpus.generate(400, seed=5)
    words = train.vocabulary_words(Tokenizer(tiny_tokenizer_path))
    distractors = train.distractor_words(words, examples)
    assert 0 < len(distractors) < len(words)
    for common in ("weather", "timer", "lights", "the", "remind"):
        assert common in words
        assert common not in distractors
    rng = random.Random(0)
    kinds, before, after = set(), 0, 0
    for example in examples:
        new = train.augment_noise(example, rng, distractors)
        if new is None:
            assert example.kind not in ("single", "parallel")
            continue
        kinds.add(new.kind)
        assert new.kind == example.kind
        assert new.messages[1:] == example.messages[1:]
        old_text, text = example.messages[0]["content"], new.messages[0]["content"]
        start = text.index(old_text)
        added = re.findall(r"[A-Za-z]+", text[:start] + " " + text[start + len(old_text):])
        assert added
        assert all(w.lower() in distractors for w in added)
        before += start > 0
        after += start + len(old_text) < len(text)
    assert kinds == {"single", "parallel"}
    assert before > 20
    assert after > 20

"""Train qwen-edge-tiny: a Qwen2-architecture function-calling demo model, on the CPU.

    pip install torch==2.13.0 -e ".[dev,parity]"
    python train/tiny/train.py -o build/qwen-edge-tiny --compile --max-minutes 40   # 2 cores
    qwen-edge export build/qwen-edge-tiny -o pkg --quant int4 --max-context 4096
    python train/tiny/evaluate.py pkg --calibrate

A run that --max-minutes ended is reproduced by ``--stop-at-step N`` (N = its logged steps);
``--init CKPT`` continues from a saved checkpoint.

The corpus comes from ``corpus.py`` (seeded, reproducible), rendered with the Qwen2.5 chat
template and the package's tools exactly as the agent renders them at run time (same
template, same tool schemas, same tokenization of user/tool contents); the loss is on the
assistant's tokens only. Same arguments, same corpus, same initial weights; the weights are
reproducible up to floating-point non-determinism of multi-threaded CPU kernels.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE)]

import corpus
from model import TinyConfig, TinyQwen2

from qwen_edge.agents.tools import as_tool
from qwen_edge.chat import builtin_template, encode_chat, render_chat
from qwen_edge.default_model import DEFAULT_SYSTEM
from qwen_edge.demo import home_tools
from qwen_edge.tokenizer import Tokenizer

# The system prompts the model sees in training: the template's default (no system message),
# the demo's, and two plain ones; each is one shared prefix with the tool schemas.
SYSTEM_PROMPTS: tuple[str | None, ...] = (
    None, DEFAULT_SYSTEM, "You control a smart home. Use the tools.",
    "You are a helpful assistant.")




@dataclass
class Row:
    prefix: int  # index into SYSTEM_PROMPTS
    ids: np.ndarray  # suffix token ids (everything after the system turn)
    loss_mask: np.ndarray  # True where ids[i] is an assistant token to predict


class Encoder:
    """Render + tokenize conversations exactly like ``Model.encode_chat`` does."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tok = tokenizer
        self.template = builtin_template("Qwen2ForCausalLM")
        self.tools = [as_tool(t).to_openai() for t in home_tools.TOOLS]
        ids = [tokenizer.token_to_id(t) for t in ("<|im_start|>", "<|im_end|>")]
        self.im_start, self.im_end = ids
        head = tokenizer.encode("<|im_start|>assistant\n").tolist()
        assert head[0] == self.im_start, head
        self.assistant_head = head[1:]  # "assistant\n": 2 tokens for Qwen, 3 for SmolLM2
        self.prefixes = [self._prefix(s) for s in SYSTEM_PROMPTS]
        # The same system turns without the ~1,000 tokens of tool schemas: a curriculum. With
        # the schemas, attention starts out spread over a thousand positions and the few user
        # tokens barely register; without them the model first learns to read the request,
        # then keeps doing it when the schemas are there (half of the later batches).
        self.short_prefixes = [self._prefix(s, tools=False) for s in SYSTEM_PROMPTS]

    def _system(self, system: str | None) -> list[dict]:
        return [{"role": "system", "content": system}] if system is not None else []

    def _prefix(self, system: str | None, tools: bool = True) -> np.ndarray:
        text = render_chat(self.template, [*self._system(system),
                                           {"role": "user", "content": "x"}],
                           tools=self.tools if tools else None)
        return self.tok.encode(text[: text.index("<|im_start|>user")])

    def full(self, system: str | None, messages: list[dict]) -> np.ndarray:
        """What the runtime would tokenize (for checking ``row``)."""
        msgs = [*self._system(system), *messages]
        return encode_chat(self.tok, self.template, msgs, tools=self.tools,
                           add_generation_prompt=False)

    def row(self, prefix: int, messages: list[dict]) -> Row:
        marker = "<|im_start|>system\nS<|im_end|>\n"
        ids = encode_chat(self.tok, self.template, [{"role": "system", "content": "S"},
                                                    *messages], add_generation_prompt=False)
        head = self.tok.encode(marker)
        assert ids[:len(head)].tolist() == head.tolist()  # ends with <|im_end|>\n: a boundary
        ids = ids[len(head):]
        mask = np.zeros(len(ids), dtype=bool)
        i, n = 0, 1 + len(self.assistant_head)
        while i < len(ids) - n:
            if ids[i] == self.im_start and ids[i + 1:i + n].tolist() == self.assistant_head:
                end = i + n
                while ids[end] != self.im_end:
                    end += 1
                mask[i + n:end + 1] = True  # the content and <|im_end|>
                i = end
            i += 1
        return Row(prefix, ids.astype(np.int64), mask)


# -- copy augmentation ----------------------------------------------------------------------
# The corpus's entity pools are finite; people will name cities, rooms and reminders the
# generator never saw. Rewriting some conversations with random words from the tokenizer's own
# vocabulary gives those tokens trained embeddings and teaches the model to copy *any* word
# from the request into the arguments.

_COPY_ARGS = {"get_weather": "city", "add_reminder": "text", "set_timer": "label",
              "set_lights": "room"}


def vocabulary_words(tokenizer: Tokenizer) -> list[str]:
    """Plain ASCII words (3-12 letters) that are single tokens with a leading space."""
    words = set()
    for token in tokenizer.backend.get_vocab():
        if token.startswith("\u0120") and token[1:].isascii() and token[1:].isalpha() \
                and 3 <= len(token) - 1 <= 12:
            words.add(token[1:].lower())
    return sorted(words)


def vocabulary_pieces(tokenizer: Tokenizer) -> list[str]:
    """Lowercase ASCII word pieces (2-5 letters) that are tokens *without* a leading space:
    what the inside of an unfamiliar name is made of (" Sarajevo" -> " Sar", "aj", "evo")."""
    return sorted({t for t in tokenizer.backend.get_vocab()
                   if t.isascii() and t.isalpha() and t.islower() and 2 <= len(t) <= 5})


def random_word(rng: random.Random, words: list[str], pieces: Sequence[str] = (),
                share: float = 0.0) -> str:
    """A random vocabulary word; with probability ``share`` followed by 1-2 random pieces, so
    that it spans several tokens like most names the model never saw ("garden" + "uite").
    ``share=0`` draws exactly what the earlier single-token version drew."""
    word = rng.choice(words)
    if share and pieces and rng.random() < share:
        word += "".join(rng.choice(pieces) for _ in range(rng.choice((1, 1, 2))))
    return word


def augment_copy(example, rng: random.Random, words: list[str], pieces: Sequence[str] = (),
                 pseudo_share: float = 0.0):
    """``example`` with its one copied string argument replaced by 1-3 random words, or None.

    ``pseudo_share``: the share of those words made longer with word pieces (``random_word``).
    """
    msgs = example.messages
    if example.kind != "single" or len(msgs) != 4 or len(msgs[1].get("tool_calls", [])) != 1:
        return None
    call = msgs[1]["tool_calls"][0]["function"]
    key = _COPY_ARGS.get(call["name"])
    old = call["arguments"].get(key) if key else None
    if not isinstance(old, str) or not old:
        return None
    user = msgs[0]["content"]
    new = " ".join(random_word(rng, words, pieces, pseudo_share)
                   for _ in range(rng.choice((1, 1, 2, 2, 3))))
    if key == "city":
        new = new.title()
    if old in user:
        user = user.replace(old, new)
    elif old.lower() in user:
        user = user.replace(old.lower(), new.lower())
        new = new if key != "city" else new.title()
    else:
        return None
    args = {**call["arguments"], key: new}
    content, out, error = corpus.run_tool(call["name"], args)
    text, _ = corpus.answer([(call["name"], args)], [(out, error)])
    return corpus.Example(messages=[
        {"role": "user", "content": user},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": call["name"], "arguments": args}}]},
        {"role": "tool", "content": content},
        {"role": "assistant", "content": text}], kind="copy", split=example.split)


def distractor_words(words: list[str], examples: list, *, max_count: int = 4) -> list[str]:
    """``words`` minus the corpus's own request vocabulary (any word its user messages use more
    than ``max_count`` times): random words that are never a cue for a tool or an argument."""
    counts: dict[str, int] = {}
    for ex in examples:
        for m in ex.messages:
            if m["role"] == "user":
                for w in re.findall(r"[a-z]+", m["content"].lower()):
                    counts[w] = counts.get(w, 0) + 1
    return [w for w in words if counts.get(w, 0) <= max_count]


_NOISE_JOINS = (", ", ". ", " - ", ": ", "! ", "... ", " ")


def augment_noise(example, rng: random.Random, words: list[str]):
    """``example`` with 1-4 random words before and/or after its request, or None.

    The arguments stay the same. Unfamiliar words at the start of a request (often
    capitalized, like a city) are what the model quoted instead of the entity on requests
    phrased unlike its templates; this teaches it to find an argument by the words that cue
    it, not by its position or its capital letter.
    """
    msgs = example.messages
    if example.kind not in ("single", "parallel", "copy") or msgs[0]["role"] != "user":
        return None

    def chatter() -> str:
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
        return text.title() if rng.random() < 0.2 else text

    user, r = msgs[0]["content"], rng.random()
    if r < 0.7:
        before = chatter()
        if rng.random() < 0.6:
            before = before[:1].upper() + before[1:]
        user = before + rng.choice(_NOISE_JOINS) + user
    if r >= 0.45:
        user = user + rng.choice(_NOISE_JOINS) + chatter()
    return corpus.Example(messages=[{**msgs[0], "content": user}, *msgs[1:]], kind=example.kind,
                          split=example.split)


_ECHO_ASKS = ("Repeat after me: ", "Say exactly: ", "Echo this: ", "Copy this text: ",
              "repeat: ", "say ")


def echo_examples(n: int, rng: random.Random, words: list[str], pieces: Sequence[str] = (),
                  pseudo_share: float = 0.0) -> list:
    """Pure copying (``Repeat after me: X`` -> ``X``): the mechanism every argument needs.

    A small model learns to copy from context (induction heads) late and suddenly when
    copying is a rare part of the loss; a share of pure copy tasks brings it early.
    """
    out = []
    for _ in range(n):
        seq = " ".join(random_word(rng, words, pieces, pseudo_share)
                       for _ in range(rng.randint(1, 10)))
        if rng.random() < 0.4:
            seq = seq.title()
        out.append(corpus.Example(messages=[
            {"role": "user", "content": rng.choice(_ECHO_ASKS) + seq},
            {"role": "assistant", "content": seq}], kind="echo", split="train"))
    return out


_SPELL_ASKS = ("Quote each word: ", "Put these in a JSON list: ", "List these words: ",
               "As a list: ")


def spelling_examples(n: int, rng: random.Random, words: list[str], pieces: Sequence[str] = (),
                      pseudo_share: float = 0.0) -> list:
    """Spelling lessons (``Quote each word: staircase Hobart`` -> ``["staircase", "Hobart"]``).

    In a request a word follows a space (`` staircase``, one token); in a JSON argument or a
    quoted value it starts bare after the quote (``st`` ``air`` ``case``). Copying such a word
    needs its spelling, which only a pre-trained model knows; these lessons put the request's
    form and the quoted form side by side for random vocabulary words, lowercase and
    capitalized, in the JSON context where a copied argument is written.
    """
    out = []
    for _ in range(n):
        seq = [random_word(rng, words, pieces, pseudo_share) for _ in range(rng.randint(2, 6))]
        seq = [w.title() if rng.random() < 0.4 else w for w in seq]
        out.append(corpus.Example(messages=[
            {"role": "user", "content": rng.choice(_SPELL_ASKS) + " ".join(seq)},
            {"role": "assistant", "content": json.dumps(seq)}], kind="spell", split="train"))
    return out


def induction_loss(model: TinyQwen2, batch_tokens: int, rng: np.random.Generator, *,
                   bf16: bool = False):
    """Loss on random sequences of active token ids, each shown twice, on the second copy.

    Only copying from context (an induction head) predicts the repeat. On the corpus alone
    the model had not learned that after 1,200 steps (copy tasks stayed at ~10 nats per
    token), nor on this task alone within 1,000 steps; from the previous-token head of
    ``TinyQwen2.init_previous_token_head`` it learns it in ~600 steps (4 minutes), and the
    corpus then has a copy mechanism for the words in the requests. Lengths vary per batch
    (8-32), so a fixed-offset positional head cannot solve it. The softmax is over the
    batch's own tokens (the distractors that matter are the other tokens in context): 20x
    cheaper than the full vocabulary.
    """
    length = int(rng.integers(8, 33))
    rows = max(1, batch_tokens // (2 * length))
    pick = rng.integers(0, len(model.active_ids), (rows, length))
    ids = model.active_ids[torch.from_numpy(np.concatenate([pick, pick], axis=1))]
    candidates, index = torch.unique(model.remap[ids], return_inverse=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        embed = model.embed
        hidden = model.hidden(ids, embed)[:, length:-1]  # the repeat's first is unpredictable
        logits = (hidden @ embed[candidates].T).float()
    return F.cross_entropy(logits.reshape(-1, len(candidates)),
                           index[:, length + 1:].reshape(-1))


def spelling_groups(tokenizer: Tokenizer, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Groups and features of the spelling-tied embeddings (see ``model.py``).

    Active tokens that are the same ASCII word up to a leading space and letter case
    (`` Call``, ``call``, ``CALL``) form one group; features are [leading space, capital].
    """
    keys, groups, features = {}, np.empty(len(active), np.int64), np.zeros((len(active), 2))
    for i, token_id in enumerate(active.tolist()):
        token = tokenizer.backend.id_to_token(token_id) or ""
        space = token.startswith("\u0120")  # byte-level BPE's space
        word = token[1:] if space else token
        key = word.lower() if word.isascii() and word.isalpha() else token
        groups[i] = keys.setdefault(key, len(keys))
        features[i] = (space, word[:1].isupper())
    return groups, features


def spelling_pieces(tokenizer: Tokenizer, active: np.ndarray) -> np.ndarray:
    """(n_active, 3) rows of each token's bare spelling pieces: first, second, last.

    For an active token that is a space and an ASCII word which, written bare (as in a
    JSON value after its quote), is several tokens that are all active: `` staircase`` ->
    (``st``, ``air``, ``case``); `` Hob`` -> (``H``, ``ob``, ``ob``). Every other token,
    and every slot past a token's pieces, gets ``len(active)`` (no piece; ``model.py``).
    """
    row = {int(t): i for i, t in enumerate(active.tolist())}
    out = np.full((len(active), 3), len(active), np.int64)
    for i, token_id in enumerate(active.tolist()):
        token = tokenizer.backend.id_to_token(token_id) or ""
        word = token[1:]
        if not (token.startswith("\u0120") and word.isascii() and word.isalpha()):
            continue
        ids = tokenizer.backend.encode(word, add_special_tokens=False).ids
        if len(ids) < 2 or any(t not in row for t in ids):
            continue
        out[i] = (row[ids[0]], row[ids[1]], row[ids[-1]])
    return out


def encode_corpus(encoder: Encoder, examples: list, seed: int) -> list[Row]:
    rng = random.Random(seed)
    rows = []
    for n, ex in enumerate(examples):
        prefix = rng.randrange(len(SYSTEM_PROMPTS))
        row = encoder.row(prefix, ex.messages)
        if n < 20:  # the split into prefix + row must be what the runtime tokenizes
            full = encoder.full(SYSTEM_PROMPTS[prefix], ex.messages)
            joined = np.concatenate([encoder.prefixes[prefix], row.ids])
            assert np.array_equal(full, joined), f"tokenization differs for example {n}"
        rows.append(row)
    return rows


def make_batches(rows: list[Row], budget: int, rng: random.Random) -> list[list[Row]]:
    """Rows of similar length, padded size <= budget tokens per batch."""
    batches = []
    mine = list(rows)
    rng.shuffle(mine)
    for start in range(0, len(mine), 2000):
        chunk = sorted(mine[start:start + 2000], key=lambda r: len(r.ids))
        batch: list[Row] = []
        for r in chunk:
            if batch and len(r.ids) * (len(batch) + 1) > budget:
                batches.append(batch)
                batch = []
            batch.append(r)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def batch_loss(model: TinyQwen2, prefix: torch.Tensor, batch: list[Row], *, bf16: bool = False,
               bf16_loss: bool = False):
    t = max(len(r.ids) for r in batch)
    ids = torch.zeros(len(batch), t, dtype=torch.long)
    mask = torch.zeros(len(batch), t, dtype=torch.bool)
    for i, r in enumerate(batch):
        ids[i, :len(r.ids)] = torch.from_numpy(r.ids)
        mask[i, :len(r.ids)] = torch.from_numpy(r.loss_mask)
    # bfloat16 matmuls (AMX/AVX512-BF16 where the CPU has them), float32 weights and loss
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        embed = model.embed  # built once: input embeddings and the loss share it
        hidden = model.forward_shared_prefix(prefix, ids,
                                             torch.tensor([len(r.ids) for r in batch]), embed)
        # position j predicts token j+1; the first row token follows the prefix (no target)
        targets = mask[:, 1:]
        h = hidden[:, :-1][targets]
    return model.loss(h, ids[:, 1:][targets], embed, bf16=bf16 or bf16_loss), int(targets.sum())


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def evaluate(model: TinyQwen2, prefixes, batches, *, bf16: bool = False) -> float:
    """Mean loss with the full prefixes (system prompt + tool schemas), as at run time."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i, batch in enumerate(batches):
            loss, n = batch_loss(model, prefixes[i % len(prefixes)], batch, bf16=bf16)
            total, count = total + loss.item() * n, count + n
    model.train()
    return total / max(count, 1)


def save(model: TinyQwen2, cfg: TinyConfig, out: Path, log: dict) -> None:
    from safetensors.torch import save_file

    from qwen_edge.export.tokenizer import write_tokenizer_files

    out.mkdir(parents=True, exist_ok=True)
    save_file(model.full_state_dict(), str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(cfg.hf_config(), indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 151643, "eos_token_id": [151645, 151643], "do_sample": False},
        indent=2) + "\n")
    write_tokenizer_files(out, "qwen2.5")
    (out / "training_log.json").write_text(json.dumps(log, indent=2) + "\n")


def warm_start(model: TinyQwen2, checkpoint: Path) -> None:
    """Continue from a checkpoint this script saved (same corpus, so the same active ids)."""
    from safetensors.torch import load_file

    state = load_file(str(checkpoint / "model.safetensors"))
    full = state.pop("model.embed_tokens.weight")
    with torch.no_grad():  # the rows go into the tokens' own part (or base, untied)
        rows = full[model.active_ids]
        model.embed_shared.zero_()
        if model.embed_compose is not None:
            model.embed_compose.zero_()
        if model.embed_delta is None:
            model.embed_base.copy_(rows)
        else:
            model.embed_base.zero_()
            model.embed_delta.copy_(rows)
        model.norm.weight.copy_(state.pop("model.norm.weight"))
        for i, layer in enumerate(model.layers):
            head = f"model.layers.{i}."
            layer.load_state_dict({k[len(head):]: v for k, v in state.items()
                                   if k.startswith(head)})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--examples", type=int, default=100_000)
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--batch-tokens", type=int, default=6144)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--echo-share", type=float, default=0.3,
                   help="add this many pure copy tasks (relative to the corpus)")
    p.add_argument("--copy-share", type=float, default=1.0,
                   help="add copy-augmented versions of this share of the corpus")
    p.add_argument("--noise-share", type=float, default=0.0,
                   help="surround this share of the single, parallel and copy-augmented "
                        "requests with random distractor words (augment_noise)")
    p.add_argument("--spell-share", type=float, default=0.0,
                   help="add this many spelling lessons (relative to the corpus; "
                        "spelling_examples)")
    p.add_argument("--quote-values", action="store_true",
                   help="answers quote cities, rooms and reminders (corpus.quote_answers), so "
                        "they copy the tool result's tokens")
    p.add_argument("--pseudo-share", type=float, default=0.0,
                   help="make this share of the copy tasks' and copy augmentation's random "
                        "words span several tokens (word + 1-2 word pieces), like unseen names")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hidden", type=int, default=TinyConfig.hidden_size)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--intermediate", type=int, default=TinyConfig.intermediate_size)
    p.add_argument("--tie-spelling", action=argparse.BooleanOptionalAction, default=True,
                   help="spelling-tied embeddings (model.py): ` call`, `call` and `Call` share "
                        "a base vector (see MODEL_CARD.md)")
    p.add_argument("--compose-spelling", action="store_true",
                   help="composed spelling (model.py): a spaced word's embedding also holds "
                        "its bare pieces (spelling_pieces)")
    p.add_argument("--short-steps", type=float, default=0.15,
                   help="share of the schedule trained without the tool schemas (curriculum)")
    p.add_argument("--short-share", type=float, default=0.5,
                   help="after that, the share of batches without the tool schemas")
    p.add_argument("--previous-token-head", action=argparse.BooleanOptionalAction,
                   default=True, help="initialize a previous-token attention head "
                                      "(TinyQwen2.init_previous_token_head)")
    p.add_argument("--induction-steps", type=int, default=1000,
                   help="at most this many steps on repeated random token sequences before "
                        "the corpus (see induction_loss; none with --init)")
    p.add_argument("--induction-until", type=float, default=0.05,
                   help="end them once their mean loss over 25 steps is below this")
    p.add_argument("--induction-share", type=float, default=0.05,
                   help="after that, the share of steps that are such a batch")
    p.add_argument("--induction-tokens", type=int, default=4096,
                   help="tokens per induction batch")
    p.add_argument("--init", type=Path, default=None,
                   help="continue from a checkpoint saved by this script (same corpus flags)")
    p.add_argument("--save-every", type=int, default=500, help="save a checkpoint every N steps")
    p.add_argument("--stop-at-step", type=int, default=None,
                   help="end after this many steps of the --steps schedule (reproduces a run "
                        "that --max-minutes ended)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop early (and save) after this long")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the forward pass and the loss (~25%% faster steps; ~2 min "
                        "to compile)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast everywhere")
    p.add_argument("--bf16-loss", action="store_true",
                   help="the output layer's logits in bfloat16 (CPUs with AMX or AVX512-BF16: "
                        "~1.45x faster steps with --compile); the dev loss stays float32")
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    from qwen_edge.export.tokenizer import build_qwen_tokenizer
    tokenizer = Tokenizer(_write_tmp_tokenizer(build_qwen_tokenizer("qwen2.5")))
    encoder = Encoder(tokenizer)
    examples = corpus.generate(args.examples, seed=args.seed)
    words, aug_rng = vocabulary_words(tokenizer), random.Random(args.seed)
    pieces = vocabulary_pieces(tokenizer)
    extra = [augment_copy(ex, aug_rng, words, pieces, args.pseudo_share)
             for ex in examples[: int(args.copy_share * len(examples))]]
    examples += [ex for ex in extra if ex is not None]
    if args.noise_share:
        distractors = distractor_words(words, examples)
        noisy = [augment_noise(ex, aug_rng, distractors) for ex in examples]
        examples = [n if n is not None and aug_rng.random() < args.noise_share else ex
                    for ex, n in zip(examples, noisy, strict=True)]
    examples += echo_examples(int(args.echo_share * len(examples)), aug_rng, words, pieces,
                              args.pseudo_share)
    if args.spell_share:
        examples += spelling_examples(int(args.spell_share * len(examples)), aug_rng, words,
                                      pieces, args.pseudo_share)
    dev = corpus.generate(600, seed=args.seed + 10_000, split="heldout")
    if args.quote_values:
        examples = [corpus.quote_answers(ex) for ex in examples]
        dev = [corpus.quote_answers(ex) for ex in dev]
    train_rows = encode_corpus(encoder, examples, args.seed)
    dev_rows = encode_corpus(encoder, dev, args.seed + 1)
    active = np.unique(np.concatenate(
        [*encoder.prefixes, *encoder.short_prefixes, *(r.ids for r in train_rows)]))
    print(f"corpus: {len(train_rows)} conversations, "
          f"{sum(len(r.ids) for r in train_rows) / 1e6:.1f}M tokens "
          f"({sum(int(r.loss_mask.sum()) for r in train_rows) / 1e6:.1f}M trained), "
          f"{len(active)} distinct token ids; {time.time() - t0:.0f} s", flush=True)

    cfg = replace(TinyConfig(), hidden_size=args.hidden, num_hidden_layers=args.layers,
                  intermediate_size=args.intermediate)
    pieces = None
    if args.compose_spelling:
        pieces = torch.from_numpy(spelling_pieces(tokenizer, active))
        print(f"composed spelling: {int((pieces[:, 0] < len(active)).sum())} tokens",
              flush=True)
    if args.tie_spelling:
        groups, features = spelling_groups(tokenizer, active)
        model = TinyQwen2(cfg, torch.from_numpy(active), torch.from_numpy(groups),
                          torch.from_numpy(features), pieces)
        print(f"spelling-tied embeddings: {groups.max() + 1} groups", flush=True)
    else:
        model = TinyQwen2(cfg, torch.from_numpy(active), pieces=pieces)
    if args.init is not None:
        warm_start(model, args.init)
    elif args.previous_token_head:
        model.init_previous_token_head()
    if args.compile:  # one compiled graph with dynamic shapes, used by every batch_loss
        model.forward_shared_prefix = torch.compile(  # type: ignore[method-assign]
            model.forward_shared_prefix, dynamic=True)
        model.loss = torch.compile(model.loss, dynamic=True)  # type: ignore[method-assign]
    prefixes = [torch.from_numpy(p.astype(np.int64)) for p in encoder.prefixes]
    short_prefixes = [torch.from_numpy(p.astype(np.int64)) for p in encoder.short_prefixes]
    # no decay on the embedding: rows of rare words get few gradients and would only shrink
    decay = [p for n, p in model.named_parameters() if p.ndim == 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "embed" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    rng = random.Random(args.seed)
    dev_batches = make_batches(dev_rows, args.batch_tokens, random.Random(0))
    history: list[dict] = []
    batches: list[list[Row]] = []
    tokens_seen = 0
    t_train = time.time()

    def optimize(loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    induction_rng = np.random.default_rng(args.seed)
    recent: list[float] = []
    for step in range(args.induction_steps if args.init is None else 0):
        for group in opt.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 30)
        loss = induction_loss(model, args.induction_tokens, induction_rng, bf16=args.bf16)
        optimize(loss)
        recent.append(loss.item())
        if step % 25 == 24:
            entry = {"induction_step": step, "loss": round(sum(recent) / len(recent), 4),
                     "minutes": round((time.time() - t_train) / 60, 2)}
            history.append(entry)
            print(json.dumps(entry), flush=True)
            if entry["loss"] < args.induction_until:
                break
            recent.clear()
    step = 0
    for step in range(args.steps):
        if not batches:
            batches = make_batches(train_rows, args.batch_tokens, rng)
        batch = batches.pop()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        if rng.random() < args.induction_share:
            batches.append(batch)  # kept for the next step
            loss, n = induction_loss(model, args.induction_tokens, induction_rng,
                                     bf16=args.bf16), 0
        else:
            short = step < args.short_steps * args.steps or rng.random() < args.short_share
            pool = short_prefixes if short else prefixes
            loss, n = batch_loss(model, pool[rng.randrange(len(pool))], batch, bf16=args.bf16,
                                 bf16_loss=args.bf16_loss)
        optimize(loss)
        tokens_seen += n
        if step % 50 == 0 or step == args.steps - 1:
            elapsed = time.time() - t_train
            entry = {"step": step, "loss": round(loss.item(), 4), "minutes": round(elapsed / 60, 2),
                     "trained_tokens": tokens_seen}
            if n == 0:
                entry["batch"] = "induction"  # an induction_loss step, not a corpus batch
            if step % 400 == 0 or step == args.steps - 1:
                dev = evaluate(model, prefixes, dev_batches, bf16=args.bf16)
                entry["dev_loss"] = round(dev, 4)
            history.append(entry)
            print(json.dumps(entry), flush=True)
        if args.save_every and step and step % args.save_every == 0:
            save(model, cfg, args.output, {"steps": step, "partial": True, "history": history})
        if args.stop_at_step is not None and step + 1 >= args.stop_at_step:
            break
        if args.max_minutes and time.time() - t_train > args.max_minutes * 60:
            print(f"stopping at step {step}: --max-minutes reached", flush=True)
            break
    dev = evaluate(model, prefixes, dev_batches, bf16=args.bf16)
    log = {"args": {k: str(v) for k, v in vars(args).items()}, "config": cfg.hf_config(),
           "steps": step + 1, "trained_tokens": tokens_seen, "dev_loss": dev,
           "minutes": round((time.time() - t_train) / 60, 1), "active_vocab": len(active),
           "history": history}
    save(model, cfg, args.output, log)
    print(f"saved {args.output} (dev loss {dev:.4f}, {log['minutes']} min)")
    return 0


def _write_tmp_tokenizer(backend) -> str:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "tokenizer.json"
    backend.save(str(path))
    return str(path)


if __name__ == "__main__":
    raise SystemExit(main())

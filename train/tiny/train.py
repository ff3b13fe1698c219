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

This file is the from-scratch trainer (losses, schedule, checkpoints, ``main``). What the
trainers share lives in ``tiny_train/``: ``encoding`` (rows, loss masks, batches), ``vocabulary``
(words, pieces and spelling ties from the tokenizer) and ``augment`` (copy, noise, echo and
spelling tasks); their names are re-exported here, where the SmolLM fine-tune imports them.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE)]

import corpus
from model import TinyConfig, TinyQwen2
from tiny_train.augment import (
    _COPY_ARGS,
    augment_copy,
    augment_noise,
    distractor_words,
    echo_examples,
    random_word,
    spelling_examples,
)
from tiny_train.encoding import SYSTEM_PROMPTS, Encoder, Row, encode_corpus, make_batches
from tiny_train.vocabulary import (
    spelling_groups,
    spelling_pieces,
    vocabulary_pieces,
    vocabulary_words,
)

from qwen_edge.tokenizer import Tokenizer

# Encoding, vocabulary and augmentation live in tiny_train/; the trainers import them from here.
__all__ = [
    "SYSTEM_PROMPTS",
    "_COPY_ARGS",
    "Encoder",
    "Row",
    "augment_copy",
    "augment_noise",
    "batch_loss",
    "distractor_words",
    "echo_examples",
    "encode_corpus",
    "evaluate",
    "induction_loss",
    "lr_at",
    "main",
    "make_batches",
    "random_word",
    "save",
    "spelling_examples",
    "spelling_groups",
    "spelling_pieces",
    "vocabulary_pieces",
    "vocabulary_words",
    "warm_start",
]


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

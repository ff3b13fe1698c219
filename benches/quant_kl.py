"""How far a quantized package's next-token distribution is from its fp32 export's.

    python benches/quant_kl.py FP32_PKG PKG [PKG ...] [--conversations 8]

Teacher-forced over conversations of the demo corpus (train/tiny/corpus.py, a seed training
does not use), rendered as the runtime renders them: for every assistant token, KL(fp32 ||
pkg) and whether both pick the same top-1 token; separately, the agreement on the *decision*
tokens: the first token of each assistant turn (a call or text) and the token after each
``</tool_call>`` (stop, or another call). A package can agree on 96 % of all tokens and still
lose the bar on those few: an extra call after every call. The packages must share the tokenizer (the
same checkpoint exported with different ``--quant`` / ``--embedding-quant`` / block sizes).
Numbers are in docs/export.md, "Quantization".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "train" / "tiny")]

import corpus

import qwen_edge
from train import Encoder, encode_corpus


def log_probs(model: qwen_edge.Model, ids: np.ndarray) -> np.ndarray:
    logits = model.engine.forward(ids, model.session().cache, num_logits=len(ids))
    x = logits.astype(np.float64)
    x -= x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reference", help="the fp32 package")
    p.add_argument("packages", nargs="+")
    p.add_argument("--conversations", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    ref = qwen_edge.load(args.reference, threads=args.threads)
    enc = Encoder(ref.tokenizer)
    closing = ref.tokenizer.token_to_id("</tool_call>")
    cases = []
    for row in encode_corpus(enc, corpus.generate(args.conversations, seed=4242), 4242):
        prefix = enc.prefixes[row.prefix]
        ids = np.concatenate([prefix, row.ids]).astype(np.int64)
        pos = len(prefix) + np.nonzero(row.loss_mask)[0] - 1  # logits at pos predict pos + 1
        first = np.r_[True, np.diff(pos) > 1]  # the first predicted token of an assistant turn
        decision = first | (ids[pos] == closing)
        cases.append((ids, pos, decision, log_probs(ref, ids)[pos]))
    for path in args.packages:
        model = qwen_edge.load(path, threads=args.threads)
        kl, agree, decisions = [], [], []
        for ids, pos, decision, lr in cases:
            lq = log_probs(model, ids)[pos]
            kl.append((np.exp(lr) * (lr - lq)).sum(-1))
            agree.append(lq.argmax(-1) == lr.argmax(-1))
            decisions.append(agree[-1][decision])
        k, a, d = np.concatenate(kl), np.concatenate(agree), np.concatenate(decisions)
        print(f"{path}: {model.package.nbytes / 1e6:.1f} MB  mean KL {k.mean():.4f}  "
              f"p95 KL {np.percentile(k, 95):.4f}  top-1 agreement {a.mean():.4f}  "
              f"({len(k)} tokens)  decisions {d.mean():.4f} ({len(d)})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

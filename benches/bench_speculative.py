"""N-gram speculative decoding: what a verify pass costs, and what it gains on echoing output.

    python benches/bench_speculative.py PKG [--threads 2] [--k 4]

1. Cost: time of one forward over 1 token vs over k+1 tokens (the verify pass, k+1 logits)
   at a 256-token context. Speculation pays when accepted tokens per pass exceed this ratio.
2. Gain: greedy decode tokens/s with and without ``speculative_tokens=k`` on (a) a random
   prompt and (b) an agent-like prompt whose answer echoes it (tool-call arguments copied from
   the request). Random weights do not echo by themselves, so (b) forces the echo with a
   grammar that spells the JSON call, as a model trained on tool calls would; the output is
   compared with and without speculation (identical in exact arithmetic; the verify pass runs
   k+1 rows through onnxruntime's kernels, whose last float bits can differ from single-row
   decoding, so near-tied logits — common with random weights — can flip).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import qwen_edge


def forward_ms(model: qwen_edge.Model, n: int, reps: int = 30) -> float:
    cache = model.engine.new_cache(1024)
    model.engine.forward(np.arange(1000, 1256), cache)
    times = []
    for _ in range(reps):
        cache.trim(256)
        start = time.perf_counter()
        model.engine.forward(np.arange(2000, 2000 + n), cache, num_logits=n)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def decode(model: qwen_edge.Model, prompt: object, k: int, **opts: object) -> tuple[float, list[int]]:
    c = model.generate(prompt, temperature=0, speculative_tokens=k, **opts)  # type: ignore[arg-type]
    return c.timings.decode_tokens_per_s, c.token_ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("package")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--k", type=int, default=4)
    args = ap.parse_args()
    model = qwen_edge.load(args.package, threads=args.threads, max_context=2048)
    one, verify = forward_ms(model, 1), forward_ms(model, args.k + 1)
    print(f"forward 1 token {one:.1f} ms, verify {args.k + 1} tokens {verify:.1f} ms "
          f"(x{verify / one:.2f})")

    random_prompt = np.random.default_rng(0).integers(0, 150_000, 128)
    base, a = decode(model, random_prompt, 0, max_tokens=96, stop_token_ids=())
    fast, b = decode(model, random_prompt, args.k, max_tokens=96, stop_token_ids=())
    print(f"random prompt: {base:.1f} -> {fast:.1f} tok/s (x{fast / base:.2f}), "
          f"{_same(a, b)}")

    request = ("Set a reminder: text='call the plumber about the leaking kitchen tap', "
               "when='tomorrow at 9:30'. Reply with the call.")
    call = ('{"name": "add_reminder", "arguments": {"text": "call the plumber about the '
            'leaking kitchen tap", "when": "tomorrow at 9:30"}}')
    grammar = "start: " + json.dumps(call)  # a Lark string literal spelling the call
    messages = [{"role": "user", "content": request}]
    base, a = decode(model, messages, 0, grammar=grammar, max_tokens=80)
    fast, b = decode(model, messages, args.k, grammar=grammar, max_tokens=80)
    print(f"echoing tool call ({len(a)} tokens): {base:.1f} -> {fast:.1f} tok/s "
          f"(x{fast / base:.2f}), {_same(a, b)}")


def _same(a: list[int], b: list[int]) -> str:
    """Identical, or where the float results of the k+1-row verify pass first flipped a
    near-tie (random weights give nearly flat logits)."""
    if a == b:
        return "token-identical"
    first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"identical for {first} tokens, then a near-tied argmax flipped"


if __name__ == "__main__":
    main()

"""Decode speed of several packages in one process, interleaved (a fair A/B on a noisy box).

    python benches/compare_packages.py PKG_A PKG_B [...] [--threads 2] [--rounds 8]

Each round generates 64 greedy tokens after the same 64-token random prompt with every
package, alternating the order; prints the median decode tokens/s per package. Used to
compare int4 schemes (``qwen-edge export`` vs ``--asymmetric`` / ``--no-scale-search``).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

import qwen_edge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("packages", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    models = [(p, qwen_edge.load(p, threads=args.threads, max_context=512))
              for p in args.packages]
    prompt = np.random.default_rng(0).integers(0, 150_000, 64)
    rates: dict[str, list[float]] = {p: [] for p, _ in models}
    for r in range(args.rounds):
        for path, model in (models if r % 2 == 0 else models[::-1]):
            c = model.generate(prompt, max_tokens=64, temperature=0, stop_token_ids=())
            rates[path].append(c.timings.decode_tokens_per_s)
    for path, values in rates.items():
        print(f"{path}: decode {statistics.median(values):.1f} tok/s (median of {len(values)})")


if __name__ == "__main__":
    main()

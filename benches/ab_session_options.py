"""Decode speed of one package under onnxruntime session options, A/B in one process.

    python benches/ab_session_options.py PKG base,pattern,dyn4,ftz,stop,nospin,pin --rounds 6

Each variant is the engine's own session options plus one change (weights on huge pages, as
the engine loads them); variants load side by side and take turns (the order reverses every
round), 128 greedy tokens after a 125-token prompt. In one process the variants' threads
share the cores, so confirm a gain through the engine in separate processes
(``ab_engines.py``): ``pin`` won here and not there (benches/README.md,
"Measurement log", thread affinity).
Prints the median decode tok/s per variant, every round, and the paired ratio to the first
variant (benches/paired.py).
"""

from __future__ import annotations

import argparse
import statistics

from paired import paired_ratio

import qwen_edge
from qwen_edge.engine import open_session, session_options

CHANGES = {  # variant -> session config entry on top of the engine's options
    "base": None,
    "dyn4": ("session.dynamic_block_base", "4"),
    "ftz": ("session.set_denormal_as_zero", "1"),
    "stop": ("session.force_spinning_stop", "1"),
    "nospin": ("session.intra_op.allow_spinning", "0"),
    "pin": ("session.intra_op_thread_affinities", "2"),  # --threads 2: the worker on CPU 2
    "pattern": None,  # enable_mem_pattern=True (the engine turns it off)
}


def load(package: str, variant: str, threads: int) -> qwen_edge.Model:
    model = qwen_edge.load(package, threads=threads)
    engine = model.engine
    opts = session_options(engine.threads)
    opts.enable_mem_pattern = variant == "pattern"
    if CHANGES[variant]:
        opts.add_session_config_entry(*CHANGES[variant])
    # Like the engine's own session: weights collapsed onto huge pages once loaded.
    engine.session, collapse = open_session(str(engine.package.model_file), engine.threads,
                                            options=opts)
    collapse.wait()
    return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("package")
    p.add_argument("variants", help=f"comma-separated: {', '.join(CHANGES)}")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(CHANGES))
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {', '.join(CHANGES)}")
    models = {v: load(args.package, v, args.threads) for v in variants}
    prompt = "The history of the " * 25
    for m in models.values():
        m.generate(prompt, max_tokens=16, stop_token_ids=[])
    results: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in variants if r % 2 == 0 else variants[::-1]:
            c = models[v].generate(prompt, max_tokens=128, stop_token_ids=[])
            results[v].append(c.timings.decode_tokens_per_s)
    for v in variants:
        print(f"{v}: {statistics.median(results[v]):.2f} tok/s",
              [round(x, 1) for x in results[v]],
              f"vs {variants[0]}: paired {paired_ratio(results[v], results[variants[0]])}")


if __name__ == "__main__":
    main()

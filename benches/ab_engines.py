"""Decode speed of several engine processes, driven alternately: paired ratios in one window.

    python benches/ab_engines.py \\
        before=qwen-edge:/tmp/pkg-folded::/tmp/checkout-3ef1499 \\
        after=qwen-edge:/tmp/pkg \\
        genai=genai:/tmp/genai-model:/work/venv-genai/bin/python \\
        --reference genai --rounds 16 --prompt 128

Each ``NAME=ENGINE:MODEL[:PYTHON[:PYTHONPATH]]`` starts one ``compare_peers.py --child``
process (the same runners, warm-up and timing as compare_peers.py; ENGINE is qwen-edge, genai,
llama, or ort-loop: a bare onnxruntime IOBinding loop over MODEL's graph, ours or genai's; PYTHON defaults to this interpreter; PYTHONPATH, when given, is put first, e.g. a
checkout of older qwen-edge code with its ``_core`` built in place). All stay loaded; each
round asks every one for ``--gen`` greedy tokens after the same ``--prompt``-token random
prompt, in a rotated order. Prints each one's median decode tok/s and its per-round ratio to
``--reference`` (median, bootstrap 95 % interval, rounds faster): the way to A/B code versions
and graphs against a peer when the machine drifts between minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from paired import paired_ratio, round_order

COMPARE_PEERS = Path(__file__).resolve().with_name("compare_peers.py")


class Child:
    def __init__(self, spec: str, args: argparse.Namespace) -> None:
        name, _, rest = spec.partition("=")
        parts = rest.split(":")
        if not name or len(parts) < 2:
            raise SystemExit(f"{spec!r}: expected NAME=ENGINE:MODEL[:PYTHON[:PYTHONPATH]]")
        engine, model = parts[0], parts[1]
        python = parts[2] if len(parts) > 2 and parts[2] else sys.executable
        env = dict(os.environ)
        if len(parts) > 3 and parts[3]:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [parts[3],
                                                              env.get("PYTHONPATH", "")]))
        self.name = name
        cmd = [python, str(COMPARE_PEERS), "--child", engine, "--model", model,
               "--threads", str(args.threads), "--prompt-lens", str(args.prompt),
               "--gen", str(args.gen), "--seed", str(args.seed)]
        self.proc = subprocess.Popen(cmd, cwd=Path(model).parent, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise SystemExit(f"{name}: the child exited {self.proc.wait()}")
        self.version = json.loads(line)["version"]

    def decode(self, prompt: int, run: int) -> float:
        self.proc.stdin.write(json.dumps({"op": "prompt", "n": prompt, "run": run}) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return float(json.loads(self.proc.stdout.readline())["decode_tok_s"])  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("children", nargs="+", help="NAME=ENGINE:MODEL[:PYTHON[:PYTHONPATH]]")
    ap.add_argument("--reference", default=None, help="NAME the ratios are to (default: last)")
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    children = [Child(spec, args) for spec in args.children]
    for c in children:
        print(f"{c.name}: {c.version}", flush=True)
    names = [c.name for c in children]
    reference = args.reference or names[-1]
    if reference not in names:
        raise SystemExit(f"--reference {reference!r}: not one of {', '.join(names)}")
    rates: dict[str, list[float]] = {n: [] for n in names}
    try:
        for r in range(args.rounds):
            for c in round_order(children, r):
                rates[c.name].append(c.decode(args.prompt, r))
            print(f"round {r}: " + "  ".join(f"{n} {v[-1]:.1f}" for n, v in rates.items()),
                  flush=True)
    finally:
        for c in children:
            c.proc.kill()
    for name, values in rates.items():
        print(f"{name}: median {statistics.median(values):.1f} tok/s; / {reference}: paired "
              f"median {paired_ratio(values, rates[reference])} rounds")


if __name__ == "__main__":
    main()

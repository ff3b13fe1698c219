
"""Where a decode step goes, per operator: onnxruntime's profiler over one bare loop.

    python benches/profile_ops.py GRAPH.onnx [GRAPH.onnx ...] [--prompt 128] [--steps 64]

Each graph (ours or onnxruntime-genai's, as in ``compare_graphs.py``: the engine's session
options plus ``enable_profiling``, weights on huge pages, KV buffers bound once) prefills the
same random ``--prompt``-token prompt, then decodes ``--steps`` greedy tokens. The profile of the
decode steps (the prefill run is left out) is summed per operator type: milliseconds per step
and nodes per step, the whole ``model_run`` per step, and what is left of it outside the
kernels (onnxruntime's per-node executor overhead). The profiler itself adds a few µs per
node, so absolute times are inflated; compare graphs within one run, and measure speed with
``compare_graphs.py`` / ``ab_engines.py``.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

import numpy as np
from compare_graphs import Graph

from qwen_edge.engine import session_options


def profile(path: Path, threads: int, prompt: np.ndarray, steps: int, folder: str) -> str:
    opts = session_options(threads)
    opts.enable_profiling = True
    opts.profile_file_prefix = str(Path(folder) / path.parent.name)
    graph = Graph(path, threads, prompt.size + steps + 1, options=opts)
    graph.decode(prompt, steps + 1)  # one prefill run, then `steps` decode runs
    return graph.session.end_profiling()


def summarize(trace: str) -> list[str]:
    events = json.loads(Path(trace).read_text())
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    prefill_end = runs[0]["ts"] + runs[0]["dur"]
    steps = len(runs) - 1
    per_op: collections.Counter[str] = collections.Counter()
    nodes: collections.Counter[str] = collections.Counter()
    for e in events:
        if (e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
                and e["ts"] > prefill_end):
            per_op[e["args"]["op_name"]] += e["dur"]
            nodes[e["args"]["op_name"]] += 1
    run_ms = sum(r["dur"] for r in runs[1:]) / steps / 1000
    kernel_ms = sum(per_op.values()) / steps / 1000
    head = (f"{steps} decode steps: model_run {run_ms:.2f} ms/step, kernels {kernel_ms:.2f}, "
            f"outside kernels {run_ms - kernel_ms:.2f}; {sum(nodes.values()) // steps} nodes/step")
    lines = [head, "| operator | ms/step | nodes/step |", "|---|--:|--:|"]
    lines += [f"| {op} | {us / steps / 1000:.3f} | {nodes[op] // steps} |"
              for op, us in per_op.most_common()]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("graphs", nargs="+", type=Path, help="model.onnx files")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--steps", type=int, default=64)
    args = ap.parse_args()
    prompt = np.random.default_rng(0).integers(0, 150_000, args.prompt).astype(np.int64)
    with tempfile.TemporaryDirectory(prefix="profile-ops-") as folder:
        for path in args.graphs:
            print(f"\n## {path}")
            print("\n".join(summarize(profile(path, args.threads, prompt, args.steps, folder))))


if __name__ == "__main__":
    main()

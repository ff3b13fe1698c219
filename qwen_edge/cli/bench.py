"""``qwen-edge bench PKG | --shape NAME --quant Q``: load time, TTFT, prefill and decode speed.

With ``--shape`` it first synthesizes a random-weight checkpoint of that real shape and exports
it (in child processes, so the peak RSS reported is the runtime's own), at ``--block-size``
(default 32; 64 or 128 decode faster on some CPUs for some accuracy: docs/performance.md,
"Beyond parity").
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import GenerationError

if TYPE_CHECKING:
    from ..types import ChatResponse, Timings
from typing import Any

from ..errors import ExportError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="measure load time, TTFT, prefill and decode tokens/s, peak RSS",
        description="Benchmark a package, or a random-weight model of a real shape "
        "(--shape qwen2.5-0.5b --quant int4; synthesized and exported on the fly).",
    )
    p.add_argument("package", nargs="?", help="model package folder")
    p.add_argument("--shape", help="synthesize this shape instead (e.g. qwen2.5-0.5b)")
    p.add_argument("--quant", default="int4", choices=("int4", "int8", "fp32"))
    p.add_argument("--block-size", type=int, default=None,
                   help="with --shape: the export's quantization block (default 32)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--prompt-lengths", default="128,1024", help="comma-separated")
    p.add_argument("--decode-tokens", type=int, default=128)
    p.add_argument("--runs", type=int, default=3, help="report medians over this many runs")
    p.add_argument("--workdir", default=None, help="keep synthesized models here")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def _prepare(args: argparse.Namespace) -> Path:
    if args.package:
        if args.block_size is not None:
            print("error: --block-size applies to --shape (a package is already quantized)",  # noqa: T201
                  file=sys.stderr)
            raise SystemExit(2)
        return Path(args.package)
    if not args.shape:
        print("error: give a PACKAGE or --shape NAME", file=sys.stderr)  # noqa: T201
        raise SystemExit(2)
    block = 32 if args.block_size is None else args.block_size  # 0 reaches the export: an error
    work = Path(args.workdir or tempfile.mkdtemp(prefix="qwen-edge-bench-"))
    suffix = "" if block == 32 else f"-b{block}"
    ckpt, pkg = work / f"{args.shape}-ckpt", work / f"{args.shape}-{args.quant}{suffix}"
    steps = []
    if not (ckpt / "config.json").exists():
        steps.append(["synth", "--shape", args.shape, "-o", str(ckpt), "--force"])
    if not (pkg / "qwen_edge.json").exists():
        steps.append(["export", str(ckpt), "-o", str(pkg), "--quant", args.quant,
                      "--block-size", str(block), "--max-context", "4096", "--force"])
    for step in steps:  # each child prints its own clear error (unknown shape, bad block size)
        done = subprocess.run([sys.executable, "-m", "qwen_edge", *step], check=False,
                              stdout=subprocess.DEVNULL)
        if done.returncode:
            msg = f"qwen-edge {step[0]} failed (its error is above); nothing to benchmark"
            raise ExportError(msg)
    return pkg


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import load

    pkg = _prepare(args)
    lengths = [int(n) for n in args.prompt_lengths.split(",")]
    from ..package import read_package

    limit = read_package(pkg, verify=False).max_context
    start = time.perf_counter()
    model = load(pkg, threads=args.threads,
                 max_context=min(limit, max(lengths) + args.decode_tokens + 40))
    load_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {
        "package": str(pkg), "size_mb": round(model.package.nbytes / 1e6, 1),
        "quant": model.package.quantization["method"],
        "block_size": model.package.quantization.get("block_size"),
        "threads": model.engine.threads,
        "load_s": round(load_s, 2),
    }
    greedy = model.config(temperature=0, stop_token_ids=(), repetition_penalty=1.0)
    model.generate(rng.integers(0, 150_000, 16), greedy, max_tokens=4)  # warm up
    # Measure with the weights on huge pages (a background step of load; engine.py).
    results["huge_pages_mb"] = round(model.engine.huge_page_bytes() / 2**20)
    for n in lengths:
        ttft = []
        for _ in range(args.runs):
            c = model.generate(rng.integers(0, 150_000, n), greedy, max_tokens=1)
            ttft.append(_timings(c).ttft_s)
        t = statistics.median(ttft)
        results[f"ttft_ms@{n}"] = round(t * 1000, 1)
        results[f"prefill_tok_s@{n}"] = round(n / t, 1)
    decode = []
    for _ in range(args.runs):
        c = model.generate(rng.integers(0, 150_000, 32), greedy, max_tokens=args.decode_tokens)
        decode.append(_timings(c).decode_tokens_per_s)
    results[f"decode_tok_s@{args.decode_tokens}"] = round(statistics.median(decode), 1)
    results["peak_rss_mb"] = round(_peak_rss_mb())
    if args.json:
        print(json.dumps(results))  # noqa: T201
    else:
        width = max(len(k) for k in results)
        print("\n".join(f"{k:<{width}}  {v}" for k, v in results.items()))  # noqa: T201
    return 0


def _timings(answer: ChatResponse) -> Timings:
    if answer.timings is None:  # a local answer always has them
        msg = "the benchmark's answer has no timings"
        raise GenerationError(msg)
    return answer.timings

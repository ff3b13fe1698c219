"""The child side: one engine loaded, then one JSON line per command over a pipe."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from .common import prompt_ids, rss_mb
from .genai import GenaiRunner
from .llama import LlamaRunner
from .optimum import OptimumRunner
from .ort_loop import LoopRunner
from .ours import OursRunner

# -- children: one engine each, in its own venv --------------------------------------------------
#
# Each runner exposes:
#   cold(ids, gen) -> (ttft_s, [time of each generated token, from submission])
#   warm_turn(prefix, extra) -> ttft_s of ``extra`` with ``prefix`` already cached

RUNNERS = {"qwen-edge": OursRunner, "genai": GenaiRunner, "optimum": OptimumRunner,
           "llama": LlamaRunner, "ort-loop": LoopRunner}


def measure_item(runner: Any, cmd: dict[str, Any], args: argparse.Namespace,
                 ) -> dict[str, Any]:
    """One measurement: a cold generation for a prompt length, or the agent turn."""
    run = cmd["run"]
    if cmd["op"] == "prompt":
        n = cmd["n"]
        ttft, times = runner.cold(prompt_ids(n, args.seed + run), args.gen)
        if len(times) != args.gen:
            msg = f"{args.child}: generated {len(times)} tokens, expected {args.gen}"
            raise RuntimeError(msg)
        return {"ttft_s": ttft, "prefill_tok_s": n / ttft,
                "decode_tok_s": (len(times) - 1) / (times[-1] - times[0])}
    prefix = prompt_ids(args.prefix, args.seed + 100 + run)
    extra = prompt_ids(args.append, args.seed + 200 + run)
    out: dict[str, Any] = {"agent_cold_s": runner.cold(prefix + extra, 1)[0]}
    try:
        out["agent_warm_s"] = runner.warm_turn(prefix, extra)
    except Exception as exc:  # noqa: BLE001 - a peer without prefix reuse: recorded, not fatal
        out["agent_warm_error"] = f"{type(exc).__name__}: {exc}"
    return out


def child_main(args: argparse.Namespace) -> int:
    """Serve one engine: load, warm up, then one JSON line per command read from stdin.

    Commands: ``{"op": "prompt", "n": N, "run": k}`` (a cold N-token prompt + ``--gen`` tokens),
    ``{"op": "agent", "run": k}`` (the agent turn, cold and warm); ``{"op": "finish"}`` ->
    peak RSS (and the SDK's own timings for qwen-edge), then exit. The protocol uses a
    duplicate of the original stdout; fd 1 itself is pointed at stderr so that whatever a
    native library prints cannot corrupt it.
    """
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    start = time.perf_counter()
    runner = RUNNERS[args.child](str(args.model), args.threads)
    load_s = time.perf_counter() - start
    if hasattr(runner, "ready"):
        runner.ready()
    rss_loaded = rss_mb("VmRSS")
    runner.cold(prompt_ids(64, args.seed + 999), 8)  # warm-up: first-call allocations
    send({"engine": args.child, "version": runner.version, "load_s": load_s,
          "rss_after_load_mb": rss_loaded, "weight_bytes": getattr(runner, "weight_bytes", None)})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] in ("prompt", "agent"):
            send(measure_item(runner, cmd, args))
        elif cmd["op"] == "finish":
            final: dict[str, Any] = {"peak_rss_mb": rss_mb("VmHWM")}
            if isinstance(runner, OursRunner):
                lens = [int(x) for x in args.prompt_lens.split(",")]
                final["api_timings"] = {n: runner.api_timings(prompt_ids(n, args.seed), args.gen)
                                        for n in lens}
            send(final)
            break
    return 0

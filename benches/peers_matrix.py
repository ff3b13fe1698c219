
"""One table from several ``compare_peers.py --json`` results (one per shape and quant).

    python benches/peers_matrix.py /tmp/qwen-edge-bench/*.json

Per configuration: a row per engine (medians over that run's ``--runs``), then qwen-edge's
ratio to each peer. Decode ratios are the paired per-run medians (``paired.py``: the two
engines measured back to back in the same run), with their bootstrap 95 % interval.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import paired_ratio


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def _paired(result: dict[str, Any], peer: str, n: int) -> str:
    ours = [r["decode_tok_s"] for r in result["samples"]["qwen-edge"][f"prompt-{n}"]]
    theirs = [r["decode_tok_s"] for r in result["samples"][peer][f"prompt-{n}"]]
    return paired_ratio(ours, theirs).split(", faster")[0]


def table(results: list[dict[str, Any]]) -> str:
    head = ("| shape, quant | engine | TTFT s (128) | prefill tok/s (128 / 1,024) | decode tok/s "
            "(after 128 / 1,024) | agent turn TTFT s (warm / cold) | peak RSS MB | weights "
            "MB/token, roofline share |")
    lines = [head, "|---|---|--:|--:|--:|--:|--:|--:|"]
    for res in results:
        config = f"{res['shape']} {res['quant']}"
        summary = res["summary"]
        lens = res["prompt_lens"]
        short, long = lens[0], lens[-1]
        for engine, s in summary.items():
            lines.append(
                f"| {config} | {engine} | {s[f'ttft_{short}']:.3f} | "
                f"{s[f'prefill_{short}']:.0f} / {s[f'prefill_{long}']:.0f} | "
                f"{s[f'decode_{short}']:.1f} / {s[f'decode_{long}']:.1f} | "
                f"{_fmt(s['agent_warm'], '.3f')} / {s['agent_cold']:.3f} | "
                f"{s['peak_rss_mb']:,.0f} | {s['weights_mb']:.0f} / {s['share']:.0%} |")
        ours = summary.get("qwen-edge")
        if ours is None:
            continue
        for peer, s in summary.items():
            if peer == "qwen-edge":
                continue
            warm = (f"{ours['agent_warm'] / s['agent_cold']:.3f}× its cold"  # noqa: RUF001
                    if ours["agent_warm"] else "n/a")
            lines.append(
                f"| {config} | **qwen-edge ÷ {peer}** | {ours[f'ttft_{short}'] / s[f'ttft_{short}']:.2f} | "
                f"{ours[f'prefill_{short}'] / s[f'prefill_{short}']:.2f} / "
                f"{ours[f'prefill_{long}'] / s[f'prefill_{long}']:.2f} | "
                f"{_paired(res, peer, short)} / {_paired(res, peer, long)} | {warm} | "
                f"{ours['peak_rss_mb'] / s['peak_rss_mb']:.2f} | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="compare_peers.py --json files")
    args = parser.parse_args()
    results = [json.loads(p.read_text()) for p in args.results]
    machines = {(r["machine"]["cpu"], r["threads"]) for r in results}
    bandwidth = ", ".join(f"{r['bandwidth']['copy_gb_s']:.0f}" for r in results)
    print(f"{'; '.join(f'{cpu}, {t} threads' for cpu, t in machines)}; copy bandwidth per "
          f"run (GB/s): {bandwidth}; medians of {sorted({r['runs'] for r in results})} runs\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

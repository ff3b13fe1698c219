"""Medians, the markdown table with ratios, and the paired decode ratios."""

from __future__ import annotations

import argparse
import statistics
from typing import Any


def summarize(samples: dict[str, list[dict[str, Any]]], final: dict[str, Any],
              lens: list[int]) -> dict[str, float | None]:
    """Medians over runs (and the best run, for reference), flat keys."""
    med = statistics.median
    s: dict[str, float | None] = {"peak_rss_mb": final["peak_rss_mb"]}
    for n in lens:
        rs = samples[f"prompt-{n}"]
        s[f"ttft_{n}"] = med(r["ttft_s"] for r in rs)
        s[f"prefill_{n}"] = med(r["prefill_tok_s"] for r in rs)
        s[f"decode_{n}"] = med(r["decode_tok_s"] for r in rs)
        s[f"best_decode_{n}"] = max(r["decode_tok_s"] for r in rs)
        s[f"best_prefill_{n}"] = max(r["prefill_tok_s"] for r in rs)
    agent = samples["agent"]
    s["agent_cold"] = med(r["agent_cold_s"] for r in agent)
    warm = [r["agent_warm_s"] for r in agent if "agent_warm_s" in r]
    s["agent_warm"] = med(warm) if warm else None
    every = [r for rs in samples.values() for r in rs]
    s["others_busy"] = max(r["other_cores_busy"] for r in every)
    s["retries"] = sum(r["attempts"] - 1 for r in every)
    return s


def markdown(summaries: dict[str, dict[str, Any]], lens: list[int],
             args: argparse.Namespace) -> str:
    engines = list(summaries)
    peers = [e for e in engines if e != "qwen-edge"]
    ours = summaries.get("qwen-edge")
    rows: list[tuple[str, str, str]] = []  # (label, key, format)
    for n in lens:
        rows += [(f"TTFT s, {n}-token prompt", f"ttft_{n}", ".3f"),
                 (f"prefill tok/s, {n}-token prompt", f"prefill_{n}", ".0f"),
                 (f"decode tok/s after a {n}-token prompt ({args.gen} generated)",
                  f"decode_{n}", ".1f")]
    rows += [(f"agent turn TTFT s: {args.prefix} cached + {args.append} new (warm)",
              "agent_warm", ".3f"),
             (f"agent turn TTFT s: cold {args.prefix + args.append}-token prompt",
              "agent_cold", ".3f"),
             ("peak RSS MB (VmHWM: load + all runs)", "peak_rss_mb", ".0f"),
             ("weights read per decoded token MB", "weights_mb", ".1f"),
             ("roofline tok/s (copy bandwidth / weights per token)", "roofline", ".0f"),
             (f"roofline share (decode after {lens[0]} / roofline)", "share", ".0%"),
             ("other processes' load during a kept sample (cores, max)", "others_busy", ".2f"),
             ("samples re-measured because others were busy", "retries", "d")]
    head = "| metric | " + " | ".join(engines) + " | " + " | ".join(
        f"qwen-edge / {p}" for p in peers) + " |"
    lines = [head, "|---|" + "--:|" * (len(engines) + len(peers))]
    for label, key, fmt in rows:
        vals = []
        for e in engines:
            v = summaries[e].get(key)
            vals.append("n/a" if v is None else format(v, fmt))
        ratios = []
        for p in peers:
            a = ours.get(key) if ours else None
            b = summaries[p].get(key)
            ratios.append(f"{a / b:.2f}" if a is not None and b and key not in (
                "others_busy", "retries") else "")
        lines.append(f"| {label} | " + " | ".join(vals) + " | " + " | ".join(ratios) + " |")
    if ours and ours.get("agent_warm"):
        for p in peers:
            cold = summaries[p].get("agent_cold")
            if cold:
                lines.append(f"\nagent turn, qwen-edge warm ({ours['agent_warm']:.3f} s) vs "
                             f"{p} cold ({cold:.3f} s): {ours['agent_warm'] / cold:.3f}x")
    return "\n".join(lines)


def paired_ratios(samples: dict[str, dict[str, list[dict[str, Any]]]], lens: list[int],
                  ) -> str:
    """Per-run decode ratios qwen-edge / peer (both measured in the same run, minutes apart),
    their median and a bootstrap 95 % interval of that median (benches/paired.py)."""
    from paired import paired_ratio

    if "qwen-edge" not in samples:
        return ""
    lines = [("paired decode ratios, qwen-edge / peer (per run; median [bootstrap 95 % "
              "interval of the median], runs where qwen-edge was faster):")]
    for peer in (e for e in samples if e != "qwen-edge"):
        for n in lens:
            ours = [r["decode_tok_s"] for r in samples["qwen-edge"][f"prompt-{n}"]]
            theirs = [r["decode_tok_s"] for r in samples[peer][f"prompt-{n}"]]
            per_run = ", ".join(f"{a / b:.2f}" for a, b in zip(ours, theirs, strict=True))
            lines.append(f"- vs {peer}, after a {n}-token prompt: "
                         f"{paired_ratio(ours, theirs)} (per run: {per_run})")
    return "\n".join(lines)

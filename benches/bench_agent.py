"""Agent turns: time to first token of turn 1 vs turn 3 (the cached system + tools prefix).

    python benches/bench_agent.py [--shape qwen2.5-0.5b] [--quant int4] [--threads 2]

Synthesizes and exports the shape once (random weights: speed depends only on shapes), then
runs an Agent over examples/home_tools.py (7 tools, ~1,100 prompt tokens of schemas) for three
user turns with tool_choice="none" and 16 new tokens per turn, and prints each turn's prompt
tokens, cached tokens and TTFT. Turn 1 prefills everything; later turns only their new text.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="qwen2.5-0.5b")
    ap.add_argument("--quant", default="int4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "qwen-edge-bench"))
    args = ap.parse_args()
    work = Path(args.workdir)
    ckpt, pkg = work / f"ckpt-{args.shape}", work / f"pkg-{args.shape}-{args.quant}"
    cli = [sys.executable, "-m", "qwen_edge"]
    if not (ckpt / "config.json").exists():
        subprocess.run([*cli, "synth", "--shape", args.shape, "-o", str(ckpt)], check=True)
    if not (pkg / "qwen_edge.json").exists():
        subprocess.run([*cli, "export", str(ckpt), "-o", str(pkg), "--quant", args.quant,
                        "--max-context", "4096"], check=True)

    sys.path.insert(0, str(ROOT / "examples"))
    import home_tools

    import qwen_edge
    from qwen_edge.agents.agent import Agent

    model = qwen_edge.load(pkg, threads=args.threads)
    agent = Agent(model, home_tools.TOOLS, system="You control a smart home.", max_steps=1,
                  tool_choice="none", temperature=0, max_tokens=16)
    print(f"{args.shape} {args.quant}, {model.engine.threads} threads")
    print("turn  prompt_tokens  cached  ttft_ms")
    for turn, text in enumerate(["Turn on the kitchen lights.", "Now dim them to 30%.",
                                 "And set a timer for ten minutes."], start=1):
        step = agent.run(text).steps[0]
        print(f"{turn:>4}  {step.prompt_tokens:>13}  {step.cached_tokens:>6}  "
              f"{step.ttft_s * 1000:>7.1f}")


if __name__ == "__main__":
    main()

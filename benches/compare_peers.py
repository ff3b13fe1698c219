"""Decode/prefill side by side: qwen-edge vs onnxruntime-genai vs optimum vs llama.cpp.

One random-weight checkpoint of a real shape (``synth_checkpoint(shape, seed=0, bf16)``) is
turned into each engine's own format once, cached in ``--workdir`` (not timed):

    qwen-edge   export_model(ckpt, ExportConfig(quant, block_size=32, max_context=4096))
                int4: MatMulNBits 4-bit symmetric with searched scales (the export
                default; ``--asymmetric``: zero points), block 32, accuracy_level 4; tied
                embedding / lm_head quantized. int8: MatMulNBits 8-bit.
    genai       python -m onnxruntime_genai.models.builder -i CKPT -o OUT -p QUANT -e cpu
                (builder defaults: symmetric, block 32, accuracy_level 4, full logits)
    optimum     optimum-cli export onnx --task text-generation-with-past --no-post-process
                (fp32; its post-processing, which deduplicates the tied embedding / lm_head,
                fails on exports over 2 GB such as qwen3-0.6b's, so it is skipped for every
                shape alike: the lm_head is then a MatMul weight of its own), then
                onnxruntime's MatMulNBitsQuantizer (bits 4 or 8, symmetric, block 32,
                accuracy_level 4: the builder's settings; optimum has no int4 quantizer of
                its own): every MatMul with an initializer weight, lm_head included; the
                embedding table stays fp32. Driven by a
                plain Python loop (``OptimumRunner``): IOBinding, each step's present
                key/values (onnxruntime-allocated, grown by concatenation inside the graph)
                bound as the next step's past, numpy argmax of the last logits row.
    llama.cpp   convert_hf_to_gguf.py --outtype f16 (from llama-cpp-python's sdist), then
                llama_model_quantize to Q4_0 (int4) or Q8_0 (int8). llama.cpp keeps the tied
                token_embd/output tensor in Q8_0 for Q4_0 (896 columns: no Q6_K).

Then each engine is loaded in its own subprocess (``python compare_peers.py --child ENGINE``,
with that engine's venv python), all kept alive and driven in turn over a pipe: every
measurement is interleaved across engines (order rotated each run), waits until the rest of
the machine is idle (``/proc/stat``), and is re-measured when other processes used
``--idle-threshold`` cores or more meanwhile (the quietest attempt is kept), so that noise on a
shared machine falls on every engine alike. Batch size 1, greedy, EOS ignored:

    TTFT s          prompt submitted -> first token sampled (prefill + first draw)
    prefill tok/s   prompt tokens / TTFT
    decode tok/s    (generated - 1) / (time of the last token - time of the first)
    peak RSS MB     VmHWM of the child (/proc/self/status) after load + all runs
    agent turn      1,000-token prefix, then 30 new tokens: time to first token. "warm":
                    the prefix is already in the engine's KV cache (qwen-edge:
                    ``Session`` prefix reuse; genai: ``Generator.rewind_to`` + ``append_tokens``
                    on the same generator, after ``snapshot_state`` for a recurrent model;
                    llama.cpp: ``Llama.eval`` of the 30 tokens after the 1,000, a plain
                    continuation that never rewinds). "cold": a fresh 1,030-token prompt.

for random prompts (ids in [0, 151643), no special tokens; the same ids for every engine) of
128 and 1,024 tokens with 128 generated tokens; medians of ``--runs`` runs after one warm-up.
Below the table, the decode ratio per run (qwen-edge / peer, the two measured back to back
in the same run), its median and a bootstrap 95 % interval: on a shared host whose speed
drifts by +-10 % between runs, the paired ratio is what resolves a few percent.

Roofline: bytes of weights read per decoded token (every weight tensor incl. int4 scales and
zero points, except tensors read only by a Gather, of which one row is read) / memory bandwidth.
Bandwidth is measured in the parent before every run (median reported; it varies on a shared
host): ``np.copyto`` of a 1 GiB float64 array split across
``--threads`` Python threads (numpy releases the GIL), best of 5, counting bytes read + bytes
written (STREAM "copy" convention). "roofline share" = measured decode tok/s / (bandwidth /
bytes per token). KV-cache reads are not counted (at 1,024 tokens they add ~25 MB/token for
qwen-edge's fp32 cache on qwen2.5-0.5b).

Peers live in their own venvs (see benches/README.md, "Runtime vs peers")::

    cd /tmp && PYTHONPATH=/tmp/mydev /work/venv/bin/python /work/main/benches/compare_peers.py \\
        --shape qwen2.5-0.5b --quant int4 --threads 2 --runs 3 \\
        --genai-python /work/venv-genai/bin/python --llama-python /work/venv-llama/bin/python \\
        --json compare_peers.json

Ratios are qwen-edge / peer: above 1 is better for tok/s, below 1 is better for TTFT and RSS.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # peers/, paired.py, compare_graphs.py

from peers.build import prepare
from peers.child import RUNNERS, child_main
from peers.common import ENGINES, LLAMA_FTYPES
from peers.drive import Child, measure_quietly
from peers.machine import machine_info, memory_bandwidth, onnx_weight_bytes, wait_idle
from peers.report import markdown, paired_ratios, summarize

logger = logging.getLogger("compare_peers")


def parent_main(args: argparse.Namespace) -> int:
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for p in peers:
        if p not in ENGINES:
            raise SystemExit(f"--peers: unknown engine {p!r} (known: {', '.join(ENGINES)})")
    pythons = {"qwen-edge": sys.executable, "genai": args.genai_python,
               "optimum": args.optimum_python, "llama": args.llama_python}
    missing = [p for p in peers if p != "qwen-edge" and not pythons[p]]
    if missing:
        raise SystemExit(f"--peers {','.join(missing)} needs --{missing[0]}-python")
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    lens = [int(x) for x in args.prompt_lens.split(",")]

    models = prepare(args, work, peers)

    # All children stay loaded; runs are interleaved (the order rotates every run) and each
    # waits for the rest of the machine to be idle, so that noise from other processes
    # falls on every engine alike.
    children = {e: Child(e, pythons[e], models[e], args, work) for e in peers}
    items = [{"op": "prompt", "n": n} for n in lens] + [{"op": "agent"}]
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {
        e: {f"prompt-{i['n']}" if "n" in i else "agent": [] for i in items} for e in peers}
    bandwidths: list[float] = []  # measured before each run: it varies on a shared host
    for run in range(args.runs):
        wait_idle(args.idle_threshold, args.max_wait)
        bandwidths.append(memory_bandwidth(args.threads)["copy_gb_s"])
        logger.info("copy bandwidth: %.1f GB/s", bandwidths[-1])
        order = peers[run % len(peers):] + peers[:run % len(peers)]
        for item in items:
            key = f"prompt-{item['n']}" if "n" in item else "agent"
            for engine in order:
                r = measure_quietly(children[engine], {**item, "run": run}, args)
                samples[engine][key].append(r)
                logger.info("[%s] run %d %s: %s", engine, run, key, ", ".join(
                    f"{k} {v:.3f}" for k, v in r.items() if isinstance(v, float)))
    finals = {e: c.finish() for e, c in children.items()}
    bandwidth = {"copy_gb_s": statistics.median(bandwidths), "all_gb_s": bandwidths,
                 "bytes": 2**30, "threads": args.threads}

    summaries = {e: summarize(samples[e], finals[e], lens) for e in peers}
    for e, s in summaries.items():
        if e == "llama":
            per_token = children[e].info["weight_bytes"]
        else:
            per_token = onnx_weight_bytes(models[e])["per_token_bytes"]
        s["weights_mb"] = per_token / 1e6
        s["roofline"] = bandwidth["copy_gb_s"] * 1e9 / per_token
        s["share"] = s[f"decode_{lens[0]}"] / s["roofline"]

    info = machine_info()
    llama_q = LLAMA_FTYPES[args.quant][0].upper()
    title = (f"# decode/prefill: qwen-edge vs peers, {args.shape} (synth, bf16 checkpoint), "
             f"{args.quant} (llama.cpp {llama_q}), batch 1, {args.threads} threads, "
             f"greedy, medians of {args.runs}")
    header = (f"CPU: {info['cpu']}, {info['logical_cores']} logical cores, "
              f"{info['memory_gb']} GB; Python {info['python']}; copy bandwidth "
              f"{bandwidth['copy_gb_s']:.1f} GB/s (median over runs of: np.copyto of 1 GiB, "
              f"{args.threads} threads, best of 5, read+write; measured "
              f"{min(bandwidths):.0f}-{max(bandwidths):.0f})\n" + "\n".join(
                  f"- {e}: {c.info['version']}, load {c.info['load_s']:.1f} s, RSS after load "
                  f"{c.info['rss_after_load_mb']:.0f} MB" for e, c in children.items()))
    table = markdown(summaries, lens, args)
    report = f"{title}\n{header}\n\n{table}\n\n{paired_ratios(samples, lens)}"
    sys.stdout.write(report + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": info, "bandwidth": bandwidth, "shape": args.shape, "quant": args.quant,
            "threads": args.threads, "runs": args.runs, "batch_size": 1,
            "prompt_lens": lens, "gen": args.gen, "models": {k: str(v) for k, v in
                                                             models.items()},
            "children": {e: c.info for e, c in children.items()}, "samples": samples,
            "final": finals, "summary": summaries, "markdown": report}, indent=1))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="qwen2.5-0.5b", help="synth shape (%(default)s)")
    parser.add_argument("--quant", default="int4", choices=sorted(LLAMA_FTYPES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--asymmetric", action="store_true",
                        help="export our package with zero points (asymmetric int4/int8)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peers", default=",".join(ENGINES),
                        help="comma-separated engines (%(default)s)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/qwen-edge-bench"),
                        help="cache of checkpoints and built models (%(default)s)")
    parser.add_argument("--genai-python", default=None, help="python of the genai venv")
    parser.add_argument("--optimum-python", default=None,
                        help="python of the optimum venv (optimum-onnx[onnxruntime])")
    parser.add_argument("--llama-python", default=None, help="python of the llama-cpp venv")
    parser.add_argument("--convert-python", default=None,
                        help="python with torch + transformers + sentencepiece for "
                        "convert_hf_to_gguf.py (default: --genai-python)")
    parser.add_argument("--llama-src", type=Path, default=None,
                        help="vendor/llama.cpp of an unpacked llama-cpp-python sdist "
                        "(default: pip download it into WORKDIR/src)")
    parser.add_argument("--prompt-lens", default="128,1024")
    parser.add_argument("--gen", type=int, default=128, help="tokens generated per prompt")
    parser.add_argument("--prefix", type=int, default=1000, help="agent turn: cached prefix")
    parser.add_argument("--append", type=int, default=30, help="agent turn: new tokens")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--idle-threshold", type=float, default=0.15,
                        help="before each run, wait until other processes use fewer cores "
                        "than this (%(default)s)")
    parser.add_argument("--retries", type=int, default=3,
                        help="re-measure a sample at most this often when others were busy")
    parser.add_argument("--max-wait", type=float, default=120,
                        help="longest wait for an idle machine, seconds (%(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument("--child", choices=tuple(RUNNERS), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.child:
        return child_main(args)
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())


"""Export side by side: ``qwen-edge export`` vs optimum's ONNX exporter (+ onnxruntime's int4).

On one random-weight checkpoint of a real shape (``synth_checkpoint(shape, seed=0, bf16)``,
default qwen2.5-0.5b; not timed), runs each step in its own subprocess:

    ours int4          python -m qwen_edge export CKPT -o OUT --quant int4
                       (MatMulNBits 4-bit, block 32, asymmetric, accuracy_level 4;
                        embedding and lm_head quantized too)
    ours fp32          python -m qwen_edge export CKPT -o OUT --quant fp32
    optimum fp32       optimum-cli export onnx --model CKPT --task text-generation-with-past OUT
    optimum+ort int4   MatMulNBitsQuantizer(optimum's fp32 model.onnx, bits 4, block 32,
                       asymmetric, accuracy_level 4) -> model.onnx + model.onnx.data
                       (quantizes MatMuls with an initializer weight: the embedding Gather
                        and the tied lm_head, a MatMul on Transpose(embedding), stay fp32)

and measures, per step:

    wall s         the subprocess from spawn to exit (interpreter start and imports included)
    CPU s          user + system time of the subprocess and its waited-for children (less
                   sensitive than wall time to other load on the machine)
    peak RSS MB    max over time of the RSS summed over the process and all its descendants,
                   polled every 50 ms with psutil (file-backed pages, e.g. mmap'd safetensors,
                   count; spikes shorter than 50 ms can be missed)
    model MB       files named model.onnx* in the output folder (graph + external data)
    folder MB      everything in the output folder (tokenizer and config files included)

Optimum's int4 pipeline is its two steps: times add up, peak RSS is the larger one. Ratios are
ours / optimum (< 1 means we are faster, leaner or smaller).

optimum needs a transformers older than qwen-edge's dev environment has, so it runs from its
own venv::

    python3 -m venv /work/venv-optimum
    /work/venv-optimum/bin/pip install torch==2.13.0
    /work/venv-optimum/bin/pip install "optimum-onnx[onnxruntime]" accelerate onnx-ir

(onnxruntime's quantizer imports onnx-ir. Without accelerate optimum skips deduplicating the
tied embedding / lm_head: its fp32 output is then 0.55 GB larger, its peak RSS ~3 GB lower.)

Usage::

    PYTHONPATH=/tmp/mydev python benches/compare_optimum.py \\
        --optimum-python /work/venv-optimum/bin/python --json compare_optimum.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import onnxruntime
import psutil

logger = logging.getLogger("compare_optimum")

_ORT_INT4 = """
import sys
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

src, dst, block = sys.argv[1], sys.argv[2], int(sys.argv[3])
quant = MatMulNBitsQuantizer(src, bits=4, block_size=block, is_symmetric=False,
                             accuracy_level=4)
quant.process()
quant.model.save_model_to_file(dst, True)  # external data: dst + ".data"
"""


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory and library versions, for the report header."""
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
    }


def run_measured(cmd: list[str], *, log: Path, cwd: Path, env: dict[str, str] | None = None,
                 ) -> dict[str, Any]:
    """Run ``cmd``; return its exit code, wall and CPU seconds and the tree's peak RSS."""
    peak = 0
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        root = psutil.Process(proc.pid)
        while True:
            rss = 0
            try:
                for p in (root, *root.children(recursive=True)):
                    rss += p.memory_info().rss
            except psutil.Error:
                pass  # a process exited between listing and reading it
            peak = max(peak, rss)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # usage: the child's own
            if pid:
                break
            time.sleep(0.05)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"returncode": proc.returncode, "seconds": seconds,
            "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mb": peak / 2**20}


def output_sizes(folder: Path) -> dict[str, Any]:
    """Sizes on disk (MB) and the quantized-op counts of the graph in ``folder``."""
    import onnx

    files = [f for f in folder.rglob("*") if f.is_file()]
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    ops = [n.op_type for n in graph.graph.node]
    return {
        "model_mb": sum(f.stat().st_size for f in files if f.name.startswith("model.onnx")) / 1e6,
        "folder_mb": sum(f.stat().st_size for f in files) / 1e6,
        "matmul_nbits": ops.count("MatMulNBits"),
        "gather_quantized": ops.count("GatherBlockQuantized"),
        "fp32_matmul": ops.count("MatMul"),
    }


def step(name: str, cmd: list[str], out: Path, work: Path,
         env: dict[str, str] | None = None) -> dict[str, Any]:
    """One measured step: run, then size its output; a failure is recorded, not raised."""
    logger.info("[%s] %s", name, " ".join(cmd))
    result = {"step": name, "cmd": cmd, **run_measured(cmd, log=work / f"{name}.log", cwd=work,
                                                       env=env)}
    if result["returncode"] == 0:
        result.update(output_sizes(out))
    else:
        tail = (work / f"{name}.log").read_text(errors="replace")[-2000:]
        logger.error("[%s] failed (exit %d):\n%s", name, result["returncode"], tail)
    logger.info("[%s] %.1f s, %.0f MB", name, result["seconds"], result["peak_rss_mb"])
    return result


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float]:
    keys = ("seconds", "cpu_seconds", "peak_rss_mb", "model_mb")
    if ours["returncode"] or theirs["returncode"]:
        return {}
    return {k: ours[k] / theirs[k] for k in keys}


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [("| step | wall s | CPU s | peak RSS MB | model MB | folder MB | MatMulNBits / "
              "GatherBlockQuantized / MatMul |"),
             "|---|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        if r["returncode"]:
            lines.append(f"| {r['step']} | failed (exit {r['returncode']}) | | | | | |")
            continue
        ops = (f"{r['matmul_nbits']} / {r['gather_quantized']} / {r['fp32_matmul']}"
               if "matmul_nbits" in r else "")
        lines.append(f"| {r['step']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} | "
                     f"{r['model_mb']:.0f} | {r.get('folder_mb', 0):.0f} | {ops} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="qwen2.5-0.5b", help="synth shape (default %(default)s)")
    parser.add_argument("--optimum-python", type=Path, default=None,
                        help="python of a venv with optimum-onnx; without it optimum is skipped")
    parser.add_argument("--block-size", type=int, default=32)
    parser.add_argument("--workdir", type=Path,
                        default=os.environ.get("QWEN_EDGE_BENCH_DIR") or None,
                        help="checkpoint cache and outputs (default $QWEN_EDGE_BENCH_DIR, "
                        "else a temporary folder)")
    parser.add_argument("--no-ort-quant", action="store_true",
                        help="skip onnxruntime's int4 quantization of optimum's fp32 export")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    from qwen_edge.export.synth import synth_checkpoint

    work = (args.workdir or Path(tempfile.mkdtemp(prefix="compare-optimum-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / f"ckpt-{args.shape}-bf16-seed0"
    if not ckpt.exists():
        logger.info("synthesizing %s -> %s", args.shape, ckpt)
        synth_checkpoint(args.shape, ckpt, seed=0, dtype="bfloat16")

    info = machine_info()
    rows: dict[str, dict[str, Any]] = {}
    for quant in ("int4", "fp32"):
        out = work / f"ours-{quant}"
        rows[f"ours {quant}"] = step(f"ours-{quant}", [
            sys.executable, "-m", "qwen_edge", "export", str(ckpt), "-o", str(out),
            "--quant", quant, "--block-size", str(args.block_size), "--force", "--json",
        ], out, work)
    if args.optimum_python is not None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["HF_HUB_OFFLINE"] = "1"
        out = work / "optimum-fp32"
        rows["optimum fp32"] = step("optimum-fp32", [
            str(args.optimum_python), "-m", "optimum.commands.optimum_cli", "export", "onnx",
            "--model", str(ckpt), "--task", "text-generation-with-past", str(out),
        ], out, work, env)
        if not args.no_ort_quant and rows["optimum fp32"]["returncode"] == 0:
            q_out = work / "optimum-ort-int4"
            q_out.mkdir(exist_ok=True)
            for f in q_out.iterdir():
                f.unlink()
            rows["ort int4 (of optimum fp32)"] = step("ort-int4", [
                str(args.optimum_python), "-c", _ORT_INT4, str(out / "model.onnx"),
                str(q_out / "model.onnx"), str(args.block_size),
            ], q_out, work, env)

    result: dict[str, Any] = {"machine": info, "shape": args.shape,
                              "block_size": args.block_size, "steps": list(rows.values())}
    opt_fp32, ort_q = rows.get("optimum fp32"), rows.get("ort int4 (of optimum fp32)")
    table = list(rows.values())
    if opt_fp32 and ort_q and not (opt_fp32["returncode"] or ort_q["returncode"]):
        pipeline = {**ort_q, "step": "optimum+ort int4 (both steps)",
                    "seconds": opt_fp32["seconds"] + ort_q["seconds"],
                    "cpu_seconds": opt_fp32["cpu_seconds"] + ort_q["cpu_seconds"],
                    "peak_rss_mb": max(opt_fp32["peak_rss_mb"], ort_q["peak_rss_mb"])}
        table.append(pipeline)
        result["ratios_int4"] = ratios(rows["ours int4"], pipeline)
    if opt_fp32:
        result["ratios_fp32"] = ratios(rows["ours fp32"], opt_fp32)

    print(f"# export: qwen-edge vs optimum, {args.shape} (synth, bf16 checkpoint), "
          f"block {args.block_size}")
    print(f"CPU: {info['cpu']}, {info['physical_cores']} cores / {info['logical_cores']} "
          f"threads, {info['memory_gb']} GB; Python {info['python']}, "
          f"onnxruntime {info['onnxruntime']}\n")
    print(markdown(table))
    for key in ("ratios_int4", "ratios_fp32"):
        if result.get(key):
            r = result[key]
            print(f"\n{key.replace('_', ' ')} (ours / optimum): wall time {r['seconds']:.2f}x, "
                  f"CPU time {r['cpu_seconds']:.2f}x, peak RSS {r['peak_rss_mb']:.2f}x, "
                  f"model size {r['model_mb']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.workdir is None:
        shutil.rmtree(work)  # a temporary folder of several GB
    return 0 if all(r["returncode"] == 0 for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

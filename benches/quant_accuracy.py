
"""Quantization accuracy on a real shape (random weights): int8 and int4 logits vs fp32.

Synthesizes the checkpoint (``synth_checkpoint(shape, seed=0, bf16)``), exports it to fp32,
int8 and int4 packages (block 32, ``--accuracy-level``: 4 = MatMulNBits with int8 activations,
the export default; 0 = fp32 activations, weight error only; max_context 256) in the export's
three schemes: the default (symmetric, least-squares scale search), ``asym`` (a zero point per
block) and ``sym rtn`` (symmetric round-to-nearest, as onnxruntime-genai and llama.cpp Q4_0),
runs one random prompt of ``--prompt-len`` token ids (uniform over the regular vocabulary,
``--seed``) through each graph as one prefill (tests/helpers.py ``GraphRunner``, onnxruntime
CPU, 1 thread), takes the logits of every position and compares each package with fp32:

    cos min / mean   cosine similarity of the per-position logit vectors (min, mean)
    rel. Frob.       ||L_q - L_fp32||_F / ||L_fp32||_F over the [positions, vocab] matrix
    top-1            fraction of positions whose argmax equals fp32's
    top-5            mean over positions of |top5(L_q) ∩ top5(L_fp32)| / 5
    KL               mean over positions of KL(softmax(L_fp32) || softmax(L_q)), in nats

As a reference for our int4, the fp32 package's graph is also quantized by onnxruntime's own
``MatMulNBitsQuantizer`` (4 bits, same block, asymmetric, same accuracy_level, MatMul and the
embedding Gather) and run the same way (row ``int4 (ort)``; skip with ``--no-ort-reference``).

Random weights make the logits nearly flat (tiny margins between the top tokens), so top-k
agreement is a pessimistic proxy for a trained model; cosine and relative error are the
shape-level numbers.

Usage::

    PYTHONPATH=/tmp/mydev python benches/quant_accuracy.py --shape qwen2.5-0.5b
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import GraphRunner

logger = logging.getLogger("quant_accuracy")

# name -> ExportConfig fields
QUANTS = {
    "fp32": {"quant": "fp32"},
    "int8": {"quant": "int8"},
    "int4": {"quant": "int4"},
    "int4 asym": {"quant": "int4", "symmetric": False},
    "int4 sym rtn": {"quant": "int4", "scale_search": False},
}
MAX_CONTEXT = 256


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def ort_int4(fp32_pkg: Path, out: Path, *, block_size: int, accuracy_level: int) -> Path:
    """A copy of ``fp32_pkg`` whose graph onnxruntime's int4 quantizer has rewritten."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(fp32_pkg, out, ignore=shutil.ignore_patterns("model.onnx*"))
    quant = MatMulNBitsQuantizer(str(fp32_pkg / "model.onnx"), bits=4, block_size=block_size,
                                 is_symmetric=False, accuracy_level=accuracy_level,
                                 op_types_to_quantize=("MatMul", "Gather"))
    quant.process()
    quant.model.save_model_to_file(str(out / "model.onnx"), True)
    return out


def compare(logits: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Accuracy of ``logits`` against ``ref``, both [positions, vocab] float32."""
    a, b = logits.astype(np.float64), ref.astype(np.float64)
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    top5_a = np.argsort(-a, axis=-1)[:, :5]
    top5_b = np.argsort(-b, axis=-1)[:, :5]
    overlap = [len(set(x) & set(y)) / 5 for x, y in zip(top5_a, top5_b, strict=True)]
    log_pa = a - a.max(-1, keepdims=True)
    log_pa -= np.log(np.exp(log_pa).sum(-1, keepdims=True))
    log_pb = b - b.max(-1, keepdims=True)
    log_pb -= np.log(np.exp(log_pb).sum(-1, keepdims=True))
    return {
        "cos_min": float(cos.min()),
        "cos_mean": float(cos.mean()),
        "rel_frobenius": float(np.linalg.norm(a - b) / np.linalg.norm(b)),
        "top1": float((a.argmax(-1) == b.argmax(-1)).mean()),
        "top5": float(np.mean(overlap)),
        "kl": float((np.exp(log_pb) * (log_pb - log_pa)).sum(-1).mean()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="qwen2.5-0.5b", help="synth shape (default %(default)s)")
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="seed of the prompt")
    parser.add_argument("--block-size", type=int, default=32)
    parser.add_argument("--accuracy-level", type=int, default=4,
                        help="MatMulNBits accuracy_level (4 = int8 activations, 0 = fp32)")
    parser.add_argument("--workdir", type=Path,
                        default=os.environ.get("QWEN_EDGE_BENCH_DIR") or None,
                        help="checkpoint cache and packages (default $QWEN_EDGE_BENCH_DIR, "
                        "else a temporary folder)")
    parser.add_argument("--no-ort-reference", action="store_true",
                        help="skip the int4 reference made by onnxruntime's quantizer")
    args = parser.parse_args()
    # Our progress only: onnx_ir logs a stack trace at INFO for every node it cannot type.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logger.setLevel(logging.INFO)

    from qwen_edge.export import ExportConfig, export_model
    from qwen_edge.export.synth import synth_checkpoint

    work = (args.workdir or Path(tempfile.mkdtemp(prefix="quant-accuracy-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / f"ckpt-{args.shape}-bf16-seed0"
    if not ckpt.exists():
        logger.info("synthesizing %s -> %s", args.shape, ckpt)
        synth_checkpoint(args.shape, ckpt, seed=0, dtype="bfloat16")

    vocab = json.loads((ckpt / "config.json").read_text())["vocab_size"]
    regular = min(vocab, 151643)  # Qwen's special tokens start at 151643
    ids = np.random.default_rng(args.seed).integers(0, regular, args.prompt_len)
    packages: dict[str, Path] = {}
    for quant, fields in QUANTS.items():
        cfg = ExportConfig(block_size=args.block_size, accuracy_level=args.accuracy_level,
                           max_context=MAX_CONTEXT, **fields)
        folder = work / f"acc-{args.shape}-{quant.replace(' ', '-')}"
        packages[quant] = export_model(ckpt, folder, cfg, force=True).path
    if not args.no_ort_reference:
        packages["int4 (ort)"] = ort_int4(packages["fp32"], work / f"acc-{args.shape}-int4-ort",
                                          block_size=args.block_size,
                                          accuracy_level=args.accuracy_level)
    logits: dict[str, np.ndarray] = {}
    for name, pkg in packages.items():
        runner = GraphRunner(pkg, max_context=MAX_CONTEXT)
        logits[name] = runner.forward(ids, num_logits=args.prompt_len)  # [positions, vocab]
        logger.info("[%s] ran the prompt through %s", name, pkg)
        del runner

    print(f"# quantization accuracy vs fp32: {args.shape} (synth, random weights), "
          f"block {args.block_size}, accuracy_level {args.accuracy_level}")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} threads; onnxruntime "
          f"{onnxruntime.__version__}; batch 1, prompt {args.prompt_len} random tokens "
          f"(seed {args.seed}), logits of all {args.prompt_len} positions, 1 thread\n")
    print("| quant | cos min | cos mean | rel. Frob. | top-1 | top-5 | KL (nats) |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for quant in list(logits)[1:]:
        m = compare(logits[quant], logits["fp32"])
        print(f"| {quant} | {m['cos_min']:.5f} | {m['cos_mean']:.5f} | "
              f"{m['rel_frobenius']:.4f} | {m['top1']:.3f} | {m['top5']:.3f} | {m['kl']:.2e} |")
    if args.workdir is None:
        shutil.rmtree(work)  # a temporary folder of several GB
    return 0


if __name__ == "__main__":
    sys.exit(main())

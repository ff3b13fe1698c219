"""Evaluate a fine-tune checkpoint: export it as the shipped package would be, then score it.

    python train/smollm/evaluate.py /work/train_run/checkpoint -o /work/train_run/pkg \\
        [--quant int4] [--asymmetric] [--layer-quant 24-29=int8] [--embedding-quant int8]
        [evaluate.py flags: --n 300 --calibrate --json ...]

The checkpoint folder (``finetune.py`` saves one every ``--save-min`` minutes, also while the
run goes on) is exported with ``qwen-edge export --quant int4 --max-context 4096`` and the
package is measured by ``train/tiny/evaluate.py`` through the real runtime (chat template,
tool grammar, router confidence), on the held-out generated set and the hand-written set.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tiny")]

import evaluate as tiny_evaluate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path, help="a Hugging Face folder saved by finetune.py")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="package folder to write (replaced; default: a temporary folder)")
    p.add_argument("--quant", choices=("int4", "int8", "fp32"), default="int4")
    p.add_argument("--max-context", type=int, default=4096)
    p.add_argument("--asymmetric", action="store_true", help="qwen-edge export --asymmetric")
    p.add_argument("--layer-quant", action="append", default=[], help="qwen-edge export --layer-quant")
    p.add_argument("--embedding-quant", default=None, help="qwen-edge export --embedding-quant")
    args, rest = p.parse_known_args(argv)

    from qwen_edge.cli import main as cli

    tmp = None
    if args.output is None:
        tmp = Path(tempfile.mkdtemp(prefix="qwen-edge-eval-"))
        args.output = tmp / "pkg"
    # a snapshot: the running fine-tune may replace the folder while it is read
    snapshot = Path(tempfile.mkdtemp(prefix="qwen-edge-ckpt-")) / "checkpoint"
    try:
        shutil.copytree(args.checkpoint, snapshot)
        flags = ["--asymmetric"] if args.asymmetric else []
        flags += [f"--layer-quant={q}" for q in args.layer_quant]
        flags += ["--embedding-quant", args.embedding_quant] if args.embedding_quant else []
        code = cli(["export", str(snapshot), "-o", str(args.output), "--quant", args.quant,
                    "--max-context", str(args.max_context), "--force", *flags])
        if code:
            return code
        return tiny_evaluate.main([str(args.output), *rest])
    finally:
        shutil.rmtree(snapshot.parent, ignore_errors=True)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

"""``qwen-edge export SRC -o OUT --quant {int4,int8,fp32}``: checkpoint or GGUF -> package."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "export", help="export a Hugging Face Qwen checkpoint or a GGUF file to a quantized ONNX model "
        "package",
        description="Export a Hugging Face Qwen2/Qwen2.5/Qwen3 checkpoint (local folder or hub "
        "id), or a GGUF file (Qwen2/Qwen2.5/Qwen3 or Llama layout, from llama.cpp or Ollama; "
        "needs qwen-edge[gguf]), to a model package: one fused ONNX decoder graph, the "
        "tokenizer and a manifest.",
    )
    p.add_argument("src", help="checkpoint folder, a hub id such as Qwen/Qwen2.5-0.5B-Instruct, "
                   "or a .gguf file")
    p.add_argument("-o", "--output", required=True, help="package folder to create")
    p.add_argument("--quant", choices=("int4", "int8", "fp32"), default="int4")
    p.add_argument("--embedding-quant", choices=("int4", "int8"), default=None,
                   help="token embedding and lm_head (one table when tied) at this precision; "
                        "default: as --quant (docs/export.md, \"Quantization\")")
    p.add_argument("--layer-quant", action="append", type=_layer_quant, default=[],
                   metavar="LAYERS=QUANT",
                   help="decoder layers at their own precision, e.g. 24-29=int8 or 0,3=fp32 "
                        "(repeatable; docs/export.md, \"Quantization\")")
    p.add_argument("--block-size", type=int, default=32, help="quantization block (default 32)")
    p.add_argument("--accuracy-level", type=int, default=4,
                   help="MatMulNBits accuracy_level; 4 = int8 activations (default)")
    zp = p.add_mutually_exclusive_group()
    zp.add_argument("--symmetric", dest="symmetric", action="store_true", default=None,
                    help="int4/int8 without zero points, scales searched by least squares "
                         "(the default: onnxruntime's fastest int4 kernels)")
    zp.add_argument("--asymmetric", dest="symmetric", action="store_false",
                    help="int4/int8 with a zero point per block (more accurate on skewed "
                         "blocks; slower int4 kernels)")
    p.add_argument("--no-scale-search", dest="scale_search", action="store_false",
                   help="symmetric scales by round-to-nearest from each block's range, as "
                        "onnxruntime's and llama.cpp's quantizers do (faster export)")
    p.add_argument("--max-context", type=int, default=None,
                   help="longest context the package supports (default: the model's)")
    p.add_argument("--tool-format", choices=("hermes", "qwen3_xml"), default=None,
                   help="tool-call format recorded in the package (default: detected from the "
                        "chat template: qwen3_xml for Qwen3.5 / Qwen3-Coder, else hermes)")
    p.add_argument("--revision", default=None, help="hub revision (hub ids only)")
    p.add_argument("--force", action="store_true", help="replace the output folder if it exists")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run)


def _layer_quant(text: str) -> dict[int, str]:
    """``24-29=int8`` / ``0,3=fp32`` -> ``{24: "int8", ...}`` (argparse reports the error)."""
    layers, sep, quant = text.partition("=")
    try:
        if not sep or quant not in ("int4", "int8", "fp32"):
            raise ValueError
        out: dict[int, str] = {}
        for part in layers.split(","):
            lo, dash, hi = part.strip().partition("-")
            first, last = int(lo), int(hi) if dash else int(lo)
            if first < 0 or last < first:
                raise ValueError
            out.update(dict.fromkeys(range(first, last + 1), quant))
    except ValueError:
        msg = f"{text!r}: expected LAYERS=QUANT, e.g. 24-29=int8 or 0,3=fp32 (QUANT: int4, int8, fp32)"
        raise argparse.ArgumentTypeError(msg) from None
    return out


def run(args: argparse.Namespace) -> int:
    from ..export import ExportConfig, export_model

    symmetric = {} if args.symmetric is None else {"symmetric": args.symmetric}
    cfg = ExportConfig(quant=args.quant, block_size=args.block_size,
                       accuracy_level=args.accuracy_level, max_context=args.max_context,
                       scale_search=args.scale_search, embedding_quant=args.embedding_quant,
                       layer_quant={k: v for d in args.layer_quant for k, v in d.items()} or None,
                       tool_format=args.tool_format,
                       **symmetric)
    result = export_model(args.src, args.output, cfg, force=args.force, revision=args.revision,
                          show_progress=sys.stderr.isatty() and not args.json)
    summary = {
        "package": str(result.path),
        "quant": cfg.quant,
        "size_mb": round(result.nbytes / 1e6, 1),
        "seconds": round(result.seconds, 1),
        "peak_rss_mb": round(result.peak_rss_mb),
        "ignored": result.ignored,
    }
    if args.json:
        print(json.dumps(summary))  # noqa: T201
    else:
        print(  # noqa: T201
            f"wrote {summary['package']}: {cfg.quant}, {summary['size_mb']} MB in "
            f"{summary['seconds']} s, peak RSS {summary['peak_rss_mb']} MB"
        )
        for part, info in result.ignored.items():
            print(f"  not exported: {part} ({info['tensors']} tensors, "  # noqa: T201
                  f"{info['parameters']:,} parameters): {info['reason']}")
    return 0

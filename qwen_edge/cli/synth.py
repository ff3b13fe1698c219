"""``qwen-edge synth --shape NAME -o DIR``: a random-weight checkpoint of a real model's shape."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "synth", help="write a random-weight Hugging Face checkpoint of a real Qwen shape",
        description="Write a Hugging Face checkpoint with random weights, the exact configuration "
        "of a real Qwen model and a Qwen tokenizer: size a device without downloading. "
        "Tokenizer: Qwen2.5 and Qwen3 shapes carry their real tokenizer (built offline from the "
        "BPE ranks in dashscope). Qwen3.5 shapes carry the Qwen3 tokenizer and chat template "
        "instead (151,669 tokens, <|im_end|> = 151645): the real 248k Qwen3.5 tokenizer cannot "
        "be built offline. Exporting a real Qwen3.5 checkpoint uses that checkpoint's own "
        "tokenizer.json.",
    )
    p.add_argument("--shape", required=True,
                   help="e.g. qwen2.5-0.5b, qwen3-0.6b, qwen3.5-0.8b, qwen3.5-2b, qwen3.5-4b")
    p.add_argument("-o", "--output", required=True, help="checkpoint folder to create")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16")
    p.add_argument("--force", action="store_true", help="replace the output folder if it exists")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..export.synth import synth_checkpoint

    path = synth_checkpoint(args.shape, args.output, seed=args.seed, dtype=args.dtype,
                            force=args.force)
    print(f"wrote {path} ({args.shape}, {args.dtype}, seed {args.seed})")  # noqa: T201
    return 0

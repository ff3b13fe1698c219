"""``qwen-edge sign PKG --key KEY``: sign a model package in place (writes PKG/model.sig)."""

from __future__ import annotations

import argparse
import time
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sign", help="sign a model package (writes model.sig inside it)",
        description="Check the package's sha256 manifest, then sign every file in it with the "
        "private key (OpenSSF model-signing). The signature is PKG/model.sig; re-signing "
        "replaces it.",
    )
    p.add_argument("package", help="model package folder")
    p.add_argument("--key", required=True, help="private key PEM (from `qwen-edge keygen`)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..fleet.trust import sign_package

    start = time.perf_counter()
    signature = sign_package(args.package, args.key)
    print(f"signed {args.package} -> {signature} "  # noqa: T201
          f"in {time.perf_counter() - start:.2f} s")
    return 0

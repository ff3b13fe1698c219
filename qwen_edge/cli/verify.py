"""``qwen-edge verify PKG --trusted-keys DIR``: check a package's signature and every file."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "verify", help="verify a signed model package against trusted public keys",
        description="Check that PKG/model.sig was made by one of the trusted keys and that "
        "every file matches its signed digest (no file changed, missing or added). Always "
        "re-hashes (no cache). Exit 0 when trusted, 1 otherwise.",
    )
    p.add_argument("package", help="model package folder")
    p.add_argument("--trusted-keys", required=True, action="append",
                   help="folder of *.pub files or one .pub file (repeatable)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..fleet.trust import check_package, require_trust

    require_trust()  # import model-signing before the clock starts (one-time ~0.3 s)
    start = time.perf_counter()
    result = check_package(args.package, args.trusted_keys, cache=False)
    elapsed_s = time.perf_counter() - start
    mb = result.nbytes / 1e6
    mb_per_s = mb / elapsed_s if elapsed_s > 0 else float("inf")
    if args.json:
        print(json.dumps({"ok": True, "package": args.package, "key": str(result.key),  # noqa: T201
                          "key_id": result.key_id, "files": result.files,
                          "size_mb": round(mb, 3), "seconds": round(elapsed_s, 4),
                          "mb_per_s": round(mb_per_s, 1)}))
        return 0
    print(f"OK {args.package}: signed by {result.key} (key id {result.key_id[:16]}), "  # noqa: T201
          f"{result.files} files, {mb:.1f} MB verified in {elapsed_s:.2f} s "
          f"({mb_per_s:.0f} MB/s)")
    return 0

"""``qwen-edge keygen -o KEYDIR``: a new EC P-256 signing key pair."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "keygen", help="create a signing key pair (signing-key.pem / signing-key.pub)",
        description="Create an elliptic-curve P-256 key pair for signing model packages: "
        "signing-key.pem (private, mode 0600; keep it off devices) and signing-key.pub (give "
        "it to devices as a trusted key). Existing keys are never overwritten.",
    )
    p.add_argument("-o", "--output", required=True, help="folder for the two key files")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..fleet.trust import generate_keypair, key_fingerprint

    private, public = generate_keypair(args.output)
    print(f"wrote {private} (private, keep secret) and {public} "  # noqa: T201
          f"(key id {key_fingerprint(public)[:16]})")
    return 0

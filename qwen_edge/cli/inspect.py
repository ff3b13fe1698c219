"""``qwen-edge inspect PKG``: print a package's manifest readably and verify its hashes."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "inspect", help="show a model package and verify its files",
        description="Print a model package's manifest and verify every file's sha256.",
    )
    p.add_argument("package", help="model package folder")
    p.add_argument("--no-verify", action="store_true", help="skip hashing the files")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(run=run)


def _row(key: str, value: object) -> str:
    return f"  {key:<22} {value}"


def run(args: argparse.Namespace) -> int:
    from ..package import read_package

    pkg = read_package(args.package, verify=not args.no_verify)
    verified = "not checked" if args.no_verify else "ok"
    if args.json:
        print(json.dumps({**pkg.manifest, "verified": not args.no_verify}, indent=2,  # noqa: T201
                         ensure_ascii=False))
        return 0
    m, s, q = pkg.manifest, pkg.shapes, pkg.quantization
    lines = [
        f"{pkg.path}  (format {m['format_version']}, {pkg.nbytes / 1e6:.1f} MB)",
        _row("architecture", f"{pkg.architecture} ({m.get('model_type', '?')})"),
        _row("layers x hidden", f"{s['num_hidden_layers']} x {s['hidden_size']}"),
        _row("heads (q / kv) x dim",
             f"{s['num_attention_heads']} / {s['num_key_value_heads']} x {s['head_dim']}"),
        _row("intermediate", s["intermediate_size"]),
        _row("vocab", f"{s['vocab_size']} (tied: {s['tie_word_embeddings']})"),
        _row("quantization", ", ".join(f"{k}={v}" for k, v in q.items() if v is not None)),
        _row("max context", pkg.max_context),
        _row("stop tokens", pkg.stop_token_ids),
        _row("chat template", "yes" if pkg.chat_template else "no (built-in renderer)"),
        _row("generation", json.dumps(pkg.generation)),
        _row("package hash", pkg.package_hash[:16]),
        "  files:",
    ]
    lines += [f"    {name:<20} {info['size'] / 1e6:>10.1f} MB  sha256 {info['sha256'][:16]}"
              for name, info in sorted(pkg.files.items())]
    lines.append(_row("verified", verified))
    print("\n".join(lines))  # noqa: T201
    return 0

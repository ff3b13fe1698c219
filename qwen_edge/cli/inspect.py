"""``qwen-edge inspect PKG``: print a package's manifest readably and say exactly what was checked.

Three checks, each reported on its own line, none claimed when it did not run:

- ``hashes``: every file the manifest lists has its recorded size and sha256. This proves the
  files match ``qwen_edge.json``, not that ``qwen_edge.json`` is the one that was exported:
  whoever can write the folder can rewrite both.
- ``signature``: with ``--trusted-keys``, ``model.sig`` is verified as ``qwen-edge verify``
  does (signer and every file). Without keys, its per-file digests are compared with the
  files (``qwen_edge.json`` included), so an edit after signing shows, but the signer is not
  authenticated, and the line says so.
- the graph is checked against the manifest when the package is loaded, not here (that needs
  an onnxruntime session).

Exit code 1 when a check that ran failed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "inspect", help="show a model package and check its files",
        description="Print a model package's manifest, verify every file's sha256 against it "
        "and compare the signature (model.sig), if any, with the files. The signer is "
        "authenticated only with --trusted-keys. Exit 1 when a check fails.",
    )
    p.add_argument("package", help="model package folder")
    p.add_argument("--no-verify", action="store_true", help="skip hashing the files")
    p.add_argument("--trusted-keys", action="append", default=None, metavar="DIR",
                   help="folder of *.pub files or one .pub file (repeatable): also verify "
                   "the signature and its signer, as `qwen-edge verify` does")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(run=run)


def _row(key: str, value: object) -> str:
    return f"  {key:<22} {value}"


def _signature_check(pkg: Any, trusted_keys: list[str] | None,
                     hashed: bool) -> tuple[str, str, bool]:
    """(state, sentence, ok) for the package's signature; see the module docstring."""
    from ..fleet.trust import SIGNATURE_NAME, _parse_signature, check_package
    from ..package import file_sha256

    signature = Path(pkg.path) / SIGNATURE_NAME
    if not signature.is_file():
        return ("unsigned", ("none (unsigned: the hashes above are only as trustworthy as "
                             "qwen_edge.json itself)"), True)
    if trusted_keys:
        result = check_package(pkg.path, trusted_keys, cache=False)  # raises when not trusted
        return ("verified", (f"verified: signed by trusted key {result.key} (key id "
                             f"{result.key_id[:16]}), {result.files} files match"), True)
    signed = _parse_signature(signature)  # raises SignatureError when malformed
    root = Path(pkg.path)
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*")
               if p.is_file() and p.name != SIGNATURE_NAME}
    files = pkg.files
    changed = sorted(name for name in on_disk & set(signed.digests)
                     if (files[name]["sha256"] if hashed and name in files
                         else file_sha256(root / name)) != signed.digests[name])
    added, missing = sorted(on_disk - set(signed.digests)), sorted(set(signed.digests) - on_disk)
    problems = ([f"changed since signing: {', '.join(changed)}"] if changed else []) + (
        [f"not signed: {', '.join(added)}"] if added else []) + (
        [f"missing: {', '.join(missing)}"] if missing else [])
    who = f"model.sig (key id {signed.key_id[:16]})"
    if problems:
        return ("mismatch", (f"FAILED: {who} does not match the package "
                             f"({'; '.join(problems)}); `qwen-edge verify` will refuse it"), False)
    return ("digests-match", (f"{who}: its digests match every file; the signer was NOT "
                              "authenticated (pass --trusted-keys DIR, or run `qwen-edge verify`)"),
            True)


def run(args: argparse.Namespace) -> int:
    from ..package import read_package

    hashed = not args.no_verify
    pkg = read_package(args.package, verify=hashed)  # CorruptPackageError names the file
    state, signature, ok = _signature_check(pkg, args.trusted_keys, hashed)
    hashes = (f"ok: {len(pkg.files)} files match the sizes and sha256 in qwen_edge.json"
              if hashed else "not checked (--no-verify)")
    if args.json:
        print(json.dumps({**pkg.manifest, "verified": hashed,  # noqa: T201
                          "checks": {"hashes": "ok" if hashed else "not checked",
                                     "signature": state, "graph": "checked at load"}},
                         indent=2, ensure_ascii=False))
        return 0 if ok else 1
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
    lines += [_row("hashes", hashes), _row("signature", signature),
              _row("graph vs manifest", "checked when the package is loaded")]
    print("\n".join(lines))  # noqa: T201
    return 0 if ok else 1

"""``qwen-edge publish REPO PKG --name N --version V``: add a signed release to a TUF repository."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "run"]

_ROLES = ("root", "targets", "snapshot", "timestamp")


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "publish", help="publish a signed package to a TUF repository (static files)",
        description="Maintain a TUF repository in REPO (metadata/ and targets/, ready to serve "
        "from any HTTPS server or bucket). The first publish (or --init) creates the root "
        "metadata; each publish adds PKG as NAME-VERSION.tar.gz and re-signs targets, "
        "snapshot and timestamp. Devices trust REPO/metadata/root.json "
        "(`qwen-edge store init --root`).",
    )
    p.add_argument("repo", help="repository folder (the web root to serve)")
    p.add_argument("package", nargs="?", help="signed model package folder (`qwen-edge sign`)")
    p.add_argument("--name", help="release name, e.g. assistant")
    p.add_argument("--version", help="release version, e.g. 1.2.0")
    p.add_argument("--key", default="signing-key.pem",
                   help="private key PEM for every role (default: ./signing-key.pem)")
    for role in _ROLES:
        p.add_argument(f"--{role}-key", default=None, help=f"private key for the {role} role "
                       "(default: --key)")
    p.add_argument("--package-key", action="append", default=None,
                   help="public key(s) the package signature must verify with "
                   "(default: the targets key's public half; repeatable)")
    p.add_argument("--expires-days", type=float, default=None,
                   help="targets and snapshot lifetime in days (default 90)")
    p.add_argument("--timestamp-expires-days", type=float, default=None,
                   help="timestamp lifetime in days (default 7; refresh before it ends)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--init", action="store_true", help="create an empty repository")
    mode.add_argument("--refresh-timestamp", action="store_true",
                      help="re-sign timestamp.json with a new expiry (run from cron)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def _keys(args: argparse.Namespace) -> Any:
    overrides = {role: getattr(args, f"{role}_key") for role in _ROLES}
    if not any(overrides.values()):
        return args.key
    return {role: path or args.key for role, path in overrides.items()}


def _expiry(args: argparse.Namespace) -> dict[str, float]:
    out = {}
    if args.expires_days is not None:
        out["expires_days"] = args.expires_days
    if args.timestamp_expires_days is not None:
        out["timestamp_expires_days"] = args.timestamp_expires_days
    return out


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..fleet.publish import init_repository, publish, refresh_timestamp

    keys = _keys(args)
    if args.init:
        root = init_repository(args.repo, keys, **_expiry(args))
        print(f"initialized {args.repo}; install {root} on devices "  # noqa: T201
              "(`qwen-edge store init --root`)")
        return 0
    if args.refresh_timestamp:
        days = args.timestamp_expires_days or args.expires_days
        version = refresh_timestamp(args.repo, keys, **({} if days is None else
                                                        {"expires_days": days}))
        print(f"re-signed {args.repo}/metadata/timestamp.json (version {version})")  # noqa: T201
        return 0
    if not (args.package and args.name and args.version):
        msg = "publish needs PKG, --name and --version (or --init / --refresh-timestamp)"
        raise ConfigError(msg)
    result = publish(args.repo, args.package, name=args.name, version=args.version, keys=keys,
                     package_keys=args.package_key, **_expiry(args))
    if args.json:
        print(json.dumps({"name": result.name, "version": result.version,  # noqa: T201
                          "target": result.target, "file": str(result.file),
                          "length": result.length, "sha256": result.sha256,
                          "changed": result.changed,
                          "timestamp_version": result.timestamp_version}))
        return 0
    verb = "published" if result.changed else "already published:"
    print(f"{verb} {result.name} {result.version} -> {result.file} "  # noqa: T201
          f"({result.length / 1e6:.1f} MB, sha256 {result.sha256[:16]}), "
          f"repository version {result.timestamp_version}")
    return 0

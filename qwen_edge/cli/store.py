"""``qwen-edge store ...``: the on-device model store (init, update, install, activate, ...)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

_DEFAULT_STORE = "~/.local/share/qwen-edge/store"


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "store", help="manage the on-device model store (verified updates, rollback)",
        description="Versioned model packages with one active version per name. Updates come "
        "from a TUF repository (`qwen-edge publish`) and are verified twice: TUF metadata and "
        "the package signature. Switching versions is atomic.",
    )
    p.add_argument("--store", default=None,
                   help=f"store folder (default: $QWEN_EDGE_STORE or {_DEFAULT_STORE})")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    s = sub.add_parser("init", help="set the trusted TUF root and package keys")
    s.add_argument("--root", default=None, help="the repository's metadata/root.json")
    s.add_argument("--trusted-keys", action="append", default=None,
                   help="folder of *.pub files or one .pub file (repeatable)")
    s = sub.add_parser("list", help="installed versions (* = active)")
    s.add_argument("name", nargs="?", default=None)
    s = sub.add_parser("update", help="install and activate the newest release from a repository")
    s.add_argument("url", help="repository base URL (serving metadata/ and targets/)")
    s.add_argument("name", help="release name, e.g. assistant")
    s.add_argument("--version", default=None, help="this version instead of the newest")
    s.add_argument("--no-activate", action="store_true", help="install only")
    s = sub.add_parser("install", help="install a local archive or package folder")
    s.add_argument("source", help="NAME-VERSION.tar.gz or a signed package folder")
    s.add_argument("--name", default=None)
    s.add_argument("--version", default=None)
    s.add_argument("--no-activate", action="store_true", help="install only")
    s = sub.add_parser("activate", help="switch to an installed version")
    s.add_argument("name")
    s.add_argument("version")
    s = sub.add_parser("rollback", help="return to the previously active version")
    s.add_argument("name")
    s = sub.add_parser("remove", help="delete an installed version (not the active one)")
    s.add_argument("name")
    s.add_argument("version")
    s = sub.add_parser("gc", help="keep the active and newest versions, delete the rest")
    s.add_argument("name")
    s.add_argument("--keep", type=int, default=2, help="versions to keep (default 2)")
    s = sub.add_parser("path", help="print the active package folder of NAME")
    s.add_argument("name")
    p.set_defaults(run=run)


def _print(args: argparse.Namespace, text: str, data: Any) -> None:
    print(json.dumps(data) if args.json else text)  # noqa: T201


def run(args: argparse.Namespace) -> int:
    from ..fleet.store import Store

    root = args.store or os.environ.get("QWEN_EDGE_STORE") or _DEFAULT_STORE
    store = Store(Path(root).expanduser())
    action = args.action
    if action == "init":
        store.trust(args.root, args.trusted_keys)
        _print(args, f"store {store.root}: trust set", {"store": str(store.root)})
    elif action == "list":
        items = store.list(args.name)
        lines = [f"{'*' if m.active else ' '} {m.name} {m.version}  {m.path}" for m in items]
        _print(args, "\n".join(lines) or "(empty)",
               [{"name": m.name, "version": m.version, "path": str(m.path),
                 "active": m.active} for m in items])
    elif action in ("update", "install"):
        if action == "update":
            result = store.update(args.url, name=args.name, version=args.version,
                                  activate=not args.no_activate)
        else:
            result = store.install(args.source, name=args.name, version=args.version,
                                   activate=not args.no_activate)
        text = (f"{result.name}: {result.previous or 'nothing'} -> {result.version}"
                if result.changed else
                f"{result.name} {result.version}: {result.reason}")
        _print(args, text, {"name": result.name, "version": result.version,
                            "previous": result.previous, "changed": result.changed,
                            "reason": result.reason})
    elif action == "activate":
        store.activate(args.name, args.version)
        _print(args, f"{args.name}: {args.version} active", {"active": args.version})
    elif action == "rollback":
        version = store.rollback(args.name)
        _print(args, f"{args.name}: rolled back to {version}", {"active": version})
    elif action == "remove":
        store.remove(args.name, args.version)
        _print(args, f"{args.name}: removed {args.version}", {"removed": [args.version]})
    elif action == "gc":
        removed = store.gc(args.name, keep=args.keep)
        _print(args, f"{args.name}: removed {', '.join(removed) or 'nothing'}",
               {"removed": removed})
    else:  # path
        path = store.active(args.name)
        _print(args, str(path), {"path": str(path)})
    return 0

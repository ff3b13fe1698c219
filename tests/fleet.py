"""Helpers for the fleet-update tests: signed releases of a tiny package, a loopback server."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def make_release(base: Path, out: Path, version: str, key: Path) -> Path:
    """A signed copy of ``base`` whose manifest records ``version`` (so releases differ)."""
    from qwen_edge.fleet.trust import sign_package

    shutil.copytree(base, out)
    manifest = json.loads((out / "qwen_edge.json").read_text())
    manifest["release"] = version
    (out / "qwen_edge.json").write_text(json.dumps(manifest, indent=2))
    (out / "model.sig").unlink(missing_ok=True)
    sign_package(out, key)
    return out


def release_of(path: Path) -> str:
    return str(json.loads((path / "qwen_edge.json").read_text())["release"])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client killed mid-download (the SIGKILL test) is expected here


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port) for the block; yields the URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

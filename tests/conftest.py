"""Session fixtures: tiny random Qwen checkpoints and the packages exported from them, and
the live server the server tests talk to.

Built once per session under tmp_path_factory; nothing is downloaded.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from helpers import ServeApp

# Child Pythons started by tests (``python -c``, ``-m``) must import the installed package,
# not the source tree in the working directory (Python >= 3.11; tests also pass cwd).
os.environ.setdefault("PYTHONSAFEPATH", "1")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """checkpoint(shape) -> folder of a float32 random-weight HF checkpoint (cached)."""
    from qwen_edge.export.synth import synth_checkpoint

    cache: dict[str, Path] = {}

    def make(shape: str) -> Path:
        if shape not in cache:
            out = tmp_path_factory.mktemp("ckpt") / shape
            cache[shape] = synth_checkpoint(shape, out, seed=0, dtype="float32")
        return cache[shape]

    return make


@pytest.fixture(scope="session")
def package(
    tmp_path_factory: pytest.TempPathFactory, checkpoint: Callable[[str], Path]
) -> Callable[..., Path]:
    """package(shape, quant="fp32") -> exported model package folder (cached)."""
    from qwen_edge.export import ExportConfig, export_model

    cache: dict[tuple[str, str], Path] = {}

    def make(shape: str, quant: str = "fp32") -> Path:
        key = (shape, quant)
        if key not in cache:
            out = tmp_path_factory.mktemp("pkg") / f"{shape}-{quant}"
            export_model(checkpoint(shape), out, ExportConfig(quant=quant, max_context=2048))
            cache[key] = out
        return cache[key]

    return make


SERVER_START_S = 60  # how long a server may take to start: a deadline, never a speed limit


@pytest.fixture(scope="session")
def live_server() -> ServeApp:
    """``live_server(app, log_level="warning")``: a context manager that serves an ASGI app
    with uvicorn in a thread, on a loopback port the OS picks, and yields its base URL.

    The socket is bound before the server starts, so the URL is right without racing for a
    port; leaving the ``with`` stops the server and joins its thread.
    """
    uvicorn = pytest.importorskip("uvicorn", reason="qwen-edge[serve] is not installed")

    @contextmanager
    def serve(app: Any, *, log_level: str = "warning") -> Iterator[str]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, access_log=False, log_level=log_level,
                                               ws="none", http="h11", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + SERVER_START_S
        try:
            while not server.started:
                assert thread.is_alive(), "the server thread died"
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.02)
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()

    return serve

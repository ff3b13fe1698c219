"""Remote and Router against a third-party server: llama-cpp-python's OpenAI-compatible server.

Slow and opt-in (llama-cpp-python builds from source in ~10 min, so it lives in its own venv):

    QWEN_EDGE_LLAMA_PYTHON=/path/venv-llama/bin/python        # has llama-cpp-python[server]
    QWEN_EDGE_GGUF_CONVERT=/path/llama.cpp/convert_hf_to_gguf.py  # from its source distribution
    QWEN_EDGE_CONVERT_PYTHON=/path/venv/bin/python            # has torch, numpy, sentencepiece
    pytest -m slow tests/test_remote_llama.py

The GGUF is converted from the same tiny random-weight checkpoint the other tests use; the
server runs on loopback with ``chatml-function-calling`` so it can return tool calls.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.network]

LLAMA_PY = os.environ.get("QWEN_EDGE_LLAMA_PYTHON")
CONVERT = os.environ.get("QWEN_EDGE_GGUF_CONVERT")
CONVERT_PY = os.environ.get("QWEN_EDGE_CONVERT_PYTHON", sys.executable)
if not (LLAMA_PY and CONVERT):
    pytest.skip("set QWEN_EDGE_LLAMA_PYTHON and QWEN_EDGE_GGUF_CONVERT to run the "
                "llama-cpp-python server tests", allow_module_level=True)

httpx = pytest.importorskip("httpx")

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


@pytest.fixture(scope="module")
def llama_server(checkpoint: Callable[[str], Path],
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("llama")
    gguf = work / "tiny.gguf"
    # The converter imports modules next to it: no PYTHONSAFEPATH (see conftest) here.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    env["PYTHONPATH"] = str(Path(CONVERT).parent / "gguf-py")  # type: ignore[arg-type]
    done = subprocess.run([CONVERT_PY, CONVERT, str(checkpoint("tiny-qwen2")), "--outfile",  # type: ignore[list-item]
                           str(gguf), "--outtype", "f32"], env=env, cwd=work,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen(
        [LLAMA_PY, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",  # type: ignore[list-item]
         "--port", str(port), "--n_ctx", "2048", "--n_threads", "1",
         "--chat_format", "chatml-function-calling"],
        stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (work / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "llama_cpp.server did not start"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_plain_and_streaming(llama_server: str) -> None:
    from qwen_edge.routing.remote import Remote

    with Remote(llama_server, "tiny", timeout=60, max_retries=0) as remote:
        messages = [{"role": "user", "content": "Hello"}]
        answer = remote.chat(messages, max_tokens=8, temperature=0)
        assert isinstance(answer.text, str)
        assert answer.finish_reason in ("stop", "length")
        streamed = "".join(remote.stream_chat(messages, max_tokens=8, temperature=0))
        assert streamed == answer.text  # greedy: the same text both ways


def test_tool_calls(llama_server: str) -> None:
    from qwen_edge.routing.remote import Remote

    with Remote(llama_server, "tiny", timeout=60, max_retries=0) as remote:
        answer = remote.chat([{"role": "user", "content": "Weather in Oslo?"}],
                             tools=[WEATHER], max_tokens=32, temperature=0,
                             tool_choice={"type": "function", "function": {"name": "get_weather"}})
        assert [c.name for c in answer.tool_calls] == ["get_weather"]
        assert isinstance(answer.tool_calls[0].arguments, dict)


def test_router_escalates_to_llama_cpp(llama_server: str, package: Callable[..., Path]) -> None:
    import qwen_edge
    from qwen_edge.routing import Router, RoutingPolicy
    from qwen_edge.routing.remote import Remote

    model = qwen_edge.load(package("tiny-qwen2", "int4"), threads=1)
    router = Router(model, Remote(llama_server, "tiny", timeout=60, max_retries=0),
                    RoutingPolicy(cascade=False))
    routed = router.generate([{"role": "user", "content": "Hi"}], hard=True, max_tokens=8,
                             temperature=0)
    assert routed.route == "remote", routed.route_reason
    local = router.generate([{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0)
    assert local.route == "local"
    assert json.dumps(routed.to_openai())  # OpenAI-shaped either way


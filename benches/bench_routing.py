"""Hybrid routing latency and server throughput, on loopback.

    python benches/bench_routing.py PKG [--threads 1] [--clients 1,4,8] [--requests 24]

Starts ``qwen-edge serve PKG`` as a subprocess (the "server"; on a real deployment it is a
bigger machine), loads PKG locally too, and measures with a Router:
  - local: an answer on the device (no escalation),
  - remote: the same request escalated (``hard=True``) to the server,
  - fallback: escalated to a dead server (a closed port): time to the local fallback answer,
and the server's throughput with N concurrent clients (requests/s, completion tokens/s,
429s). Each request generates 16 tokens greedily after a short chat prompt.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

import qwen_edge
from qwen_edge.routing import Router, RoutingPolicy
from qwen_edge.routing.remote import Remote

MESSAGES = [{"role": "user", "content": "What is the weather like in Zurich today?"}]
OPTS = {"max_tokens": 16, "temperature": 0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn, n: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("package")
    ap.add_argument("--threads", type=int, default=1, help="threads for each side")
    ap.add_argument("--clients", default="1,4,8")
    ap.add_argument("--requests", type=int, default=24)
    args = ap.parse_args()
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"bench-serve-{port}.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "qwen_edge", "serve", args.package, "--port", str(port),
             "--threads", str(args.threads), "--model-name", "m", "--max-queue", "64"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tempfile.gettempdir())
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        model = qwen_edge.load(args.package, threads=args.threads)
        never = RoutingPolicy(cascade=False)
        router = Router(model, Remote(f"{url}/v1", "m", timeout=30), never)
        dead = Router(model, Remote(f"http://127.0.0.1:{free_port()}/v1", "m", timeout=2,
                                    max_retries=0), never)
        print(f"{args.package}, {args.threads} thread(s) per side")
        print(f"local answer      {timed(lambda: router.generate(MESSAGES, **OPTS)):8.1f} ms")
        print(f"remote (hard)     "
              f"{timed(lambda: router.generate(MESSAGES, hard=True, **OPTS)):8.1f} ms")
        r = dead.generate(MESSAGES, hard=True, **OPTS)
        assert r.route == "local-fallback", r.route_reason
        print(f"fallback (dead)   "
              f"{timed(lambda: dead.generate(MESSAGES, hard=True, **OPTS)):8.1f} ms")

        for n in (int(c) for c in args.clients.split(",")):
            counts = {"ok": 0, "429": 0, "tokens": 0}
            lock = threading.Lock()
            per = max(1, args.requests // n)

            def work(per: int = per, lock: threading.Lock = lock,
                     counts: dict[str, int] = counts) -> None:
                with httpx.Client(timeout=120) as c:
                    for _ in range(per):
                        resp = c.post(f"{url}/v1/chat/completions",
                                      json={"model": "m", "messages": MESSAGES, **OPTS})
                        with lock:
                            if resp.status_code == 429:
                                counts["429"] += 1
                            else:
                                resp.raise_for_status()
                                counts["ok"] += 1
                                counts["tokens"] += resp.json()["usage"]["completion_tokens"]

            threads = [threading.Thread(target=work) for _ in range(n)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
            print(f"server, {n:>2} clients: {counts['ok'] / wall:6.2f} req/s, "
                  f"{counts['tokens'] / wall:7.1f} completion tok/s, {counts['429']} x 429")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()

"""The machine: weight bytes per token, copy bandwidth, CPU model, how busy the others are."""

from __future__ import annotations

import os
import platform
import threading
import time
from pathlib import Path
from typing import Any


def onnx_weight_bytes(folder: Path) -> dict[str, int]:
    """Weight bytes read per decoded token: all initializers except Gather-only tables."""
    import onnx

    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    sizes: dict[str, int] = {}
    for t in graph.initializer:
        ext = {e.key: e.value for e in t.external_data}
        sizes[t.name] = int(ext["length"]) if "length" in ext else len(t.raw_data)
    users: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            if name in sizes:
                users.setdefault(name, set()).add(node.op_type)
    gather_only = {n for n, ops in users.items() if ops <= {"Gather", "GatherBlockQuantized"}}
    return {"file_bytes": sum(sizes.values()),
            "per_token_bytes": sum(v for n, v in sizes.items() if n not in gather_only)}


def memory_bandwidth(threads: int, size: int = 2**30, repeats: int = 5) -> dict[str, float]:
    """Copy bandwidth (bytes read + written / s) of a ``size``-byte array, ``threads`` threads."""
    import numpy as np

    src = np.ones(size // 8, np.float64)
    dst = np.zeros_like(src)
    bounds = np.linspace(0, src.size, threads + 1).astype(int)

    def part(a: int, b: int) -> None:
        np.copyto(dst[a:b], src[a:b])  # releases the GIL

    best = float("inf")
    for _ in range(repeats):
        workers = [threading.Thread(target=part, args=(int(bounds[i]), int(bounds[i + 1])))
                   for i in range(threads)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - start)
    return {"copy_gb_s": 2 * size / best / 1e9, "bytes": size, "threads": threads}


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0.0
    with Path("/proc/meminfo").open(encoding="ascii") as f:
        mem = int(f.readline().split()[1]) / 2**20
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "memory_gb": round(mem, 1),
            "python": platform.python_version()}


def busy_seconds() -> float:
    """CPU-seconds spent busy by the whole machine since boot (/proc/stat, all cores)."""
    with Path("/proc/stat").open(encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def others_busy(seconds: float = 1.0) -> float:
    """Cores kept busy by the rest of the machine over ``seconds`` (we are idle meanwhile)."""
    before = busy_seconds()
    time.sleep(seconds)
    return (busy_seconds() - before) / seconds


def wait_idle(threshold: float, max_wait: float) -> float:
    """Wait until other processes use < ``threshold`` cores (at most ``max_wait`` s)."""
    deadline = time.monotonic() + max_wait
    busy = others_busy()
    while busy >= threshold and time.monotonic() < deadline:
        busy = others_busy(2.0)
    return busy

"""The parent side of the pipe: a child per engine, measured when the machine is quiet."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from .build import peer_env
from .machine import busy_seconds, cpu_seconds, wait_idle

logger = logging.getLogger("compare_peers")
COMPARE_PEERS = Path(__file__).resolve().parents[1] / "compare_peers.py"  # its --child mode


class Child:
    """One engine's child process, driven line by line (see ``child_main``)."""

    def __init__(self, engine: str, python: str, model: Path, args: argparse.Namespace,
                 work: Path) -> None:
        cmd = [python, str(COMPARE_PEERS), "--child", engine, "--model", str(model),
               "--threads", str(args.threads), "--prompt-lens", args.prompt_lens,
               "--gen", str(args.gen), "--prefix", str(args.prefix), "--append",
               str(args.append), "--seed", str(args.seed)]
        env = os.environ.copy() if engine == "qwen-edge" else peer_env()
        logger.info("[%s] %s", engine, " ".join(cmd))
        self.engine = engine
        self.log = (work / f"child-{engine}.log").open("w")
        self.proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            self.proc.wait()
            msg = f"{self.engine}: child exited {self.proc.returncode} (see {self.log.name})"
            raise RuntimeError(msg)
        return json.loads(line)

    def ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(cmd) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self._read()

    def measure(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """One item, plus how many cores other processes kept busy while it ran."""
        busy0, own0, start = busy_seconds(), cpu_seconds(self.proc.pid), time.perf_counter()
        result = self.ask(cmd)
        wall = time.perf_counter() - start
        own = cpu_seconds(self.proc.pid) - own0
        result["other_cores_busy"] = max(busy_seconds() - busy0 - own, 0.0) / wall
        result["child_cores_busy"] = own / wall
        return result

    def finish(self) -> dict[str, Any]:
        final = self.ask({"op": "finish"})
        self.proc.wait()
        self.log.close()
        return final


def measure_quietly(child: Child, cmd: dict[str, Any], args: argparse.Namespace,
                    ) -> dict[str, Any]:
    """Measure after waiting for an idle machine; re-measure (up to ``--retries`` times) when
    other processes used ``--idle-threshold`` cores or more meanwhile; keep the quietest."""
    best: dict[str, Any] | None = None
    for attempt in range(1, args.retries + 2):
        wait_idle(args.idle_threshold, args.max_wait)
        r = child.measure(cmd)
        r["attempts"] = attempt
        if best is None or r["other_cores_busy"] < best["other_cores_busy"]:
            best = r
        if r["other_cores_busy"] < args.idle_threshold:
            break
    assert best is not None
    best["attempts"] = attempt
    return best

"""A bare onnxruntime loop over either engine's graph (for ab_engines.py).

One engine in a child process of compare_peers.py (see ``peers.child`` for the protocol).
"""

from __future__ import annotations

import time
from pathlib import Path

from .common import MAX_CONTEXT


class LoopRunner:
    """A bare onnxruntime loop (compare_graphs.Graph: IOBinding, KV bound once, numpy argmax)
    over either engine's graph, in this interpreter's onnxruntime: the plain-Python-loop
    reference for ab_engines.py (``loop=ort-loop:DIR_OR_ONNX``). Cold prompts only."""

    def __init__(self, model: str, threads: int) -> None:
        import numpy as np
        import onnxruntime as ort
        from compare_graphs import Graph

        path = Path(model)
        path = path / "model.onnx" if path.is_dir() else path
        self.np = np
        self.graph = Graph(path, threads, MAX_CONTEXT)
        self.version = f"onnxruntime {ort.__version__}, bare loop over {path.parent.name}"

    def cold(self, ids: list[int], gen: int) -> tuple[float, list[float]]:
        np, graph = self.np, self.graph
        start = time.perf_counter()
        token = int(graph.step(np.array(ids, np.int64), len(ids)).argmax())
        times = [time.perf_counter() - start]
        for total in range(len(ids) + 1, len(ids) + gen):
            token = int(graph.step(np.array([token], np.int64), total).argmax())
            times.append(time.perf_counter() - start)
        return times[0], times

    def warm_turn(self, prefix: list[int], extra: list[int]) -> float:
        msg = "the bare loop has no prefix cache"
        raise NotImplementedError(msg)

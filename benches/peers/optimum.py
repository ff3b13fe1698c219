"""optimum's ONNX export driven by a plain Python loop over IOBinding.

One engine in a child process of compare_peers.py (see ``peers.child`` for the protocol).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


class OptimumRunner:
    """optimum's export (past_key_values in, present out, logits for every position) driven
    by a plain Python loop over onnxruntime: what an optimum user without
    ``ORTModelForCausalLM.generate`` (torch) writes. IOBinding keeps the KV values in
    onnxruntime's memory: the presents of a step are bound as the pasts of the next."""

    def __init__(self, model: str, threads: int) -> None:
        import numpy as np
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.np, self.ort = np, ort
        self.session = ort.InferenceSession(str(Path(model) / "model.onnx"), opts,
                                            providers=["CPUExecutionProvider"])
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.pasts = [n for n in self.inputs if n.startswith("past_key_values.")]
        self.presents = [n.replace("past_key_values.", "present.") for n in self.pasts]
        _, kv_heads, _, head_dim = self.inputs[self.pasts[0]].shape
        self.empty = ort.OrtValue.ortvalue_from_numpy(
            np.zeros((1, int(kv_heads), 0, int(head_dim)), np.float32))
        self.version = f"onnxruntime {ort.__version__}, plain Python loop over optimum's export"

    def _step(self, ids: list[int], past: list[Any] | None, total: int) -> tuple[int, list[Any]]:
        """Feed ``ids`` after ``total - len(ids)`` cached tokens: (argmax, presents)."""
        np, ort = self.np, self.ort
        n = len(ids)
        io = self.session.io_binding()
        feeds = {"input_ids": np.asarray([ids], np.int64),
                 "attention_mask": np.ones((1, total), np.int64),
                 "position_ids": np.arange(total - n, total, dtype=np.int64)[None]}
        for name, value in feeds.items():
            if name in self.inputs:
                io.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value))
        for name, value in zip(self.pasts, past or [self.empty] * len(self.pasts),
                               strict=True):
            io.bind_ortvalue_input(name, value)
        io.bind_output("logits", "cpu")
        for name in self.presents:
            io.bind_output(name, "cpu")
        self.session.run_with_iobinding(io)
        out = io.get_outputs()
        logits = out[0].numpy()  # [1, n, vocab]: optimum's graph computes every position
        return int(logits[0, -1].argmax()), list(out[1:])

    def cold(self, ids: list[int], gen: int) -> tuple[float, list[float]]:
        start = time.perf_counter()
        token, past = self._step(ids, None, len(ids))
        times = [time.perf_counter() - start]
        for total in range(len(ids) + 1, len(ids) + gen):
            token, past = self._step([token], past, total)
            times.append(time.perf_counter() - start)
        return times[0], times

    def warm_turn(self, prefix: list[int], extra: list[int]) -> float:
        _, past = self._step(prefix, None, len(prefix))
        start = time.perf_counter()
        self._step(extra, past, len(prefix) + len(extra))
        return time.perf_counter() - start

"""onnxruntime-genai: ``Generator`` with ``rewind_to`` for the warm agent turn.

One engine in a child process of compare_peers.py (see ``peers.child`` for the protocol).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .common import MAX_CONTEXT


class GenaiRunner:
    def __init__(self, model: str, threads: int) -> None:
        import numpy as np
        import onnxruntime_genai as og

        self.og, self.np = og, np
        config = og.Config(model)
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": threads, "inter_op_num_threads": 1}}}}))
        self.model = og.Model(config)
        self.version = f"onnxruntime-genai {og.__version__}"
        with (Path(model) / "genai_config.json").open() as f:
            inputs = json.load(f)["model"]["decoder"]["inputs"]
        self.recurrent = "past_recurrent_names" in inputs  # hybrid linear-attention layers

    def _generator(self) -> Any:
        params = self.og.GeneratorParams(self.model)
        # min_length = max_length keeps EOS masked: greedy decoding never stops early.
        params.set_search_options(do_sample=False, max_length=MAX_CONTEXT,
                                  min_length=MAX_CONTEXT, batch_size=1)
        return self.og.Generator(self.model, params)

    def cold(self, ids: list[int], gen: int) -> tuple[float, list[float]]:
        times: list[float] = []
        start = time.perf_counter()
        generator = self._generator()
        generator.append_tokens(self.np.asarray([ids], self.np.int32))
        for _ in range(gen):
            generator.generate_next_token()  # forward of the previous token (if any) + draw
            times.append(time.perf_counter() - start)
        return times[0], times

    def warm_turn(self, prefix: list[int], extra: list[int]) -> float:
        generator = self._generator()
        generator.append_tokens(self.np.asarray([prefix], self.np.int32))
        if self.recurrent:
            # A recurrent state (Qwen3.5) cannot be rewound without a snapshot taken at the
            # target length: genai's own prefix-reuse mechanism, like our HybridCache's.
            generator.snapshot_state()
        generator.generate_next_token()
        generator.rewind_to(len(prefix))  # drop the drawn token; the prefix stays cached
        start = time.perf_counter()
        generator.append_tokens(self.np.asarray([extra], self.np.int32))
        generator.generate_next_token()
        return time.perf_counter() - start

"""llama.cpp through llama-cpp-python: ``Llama.eval`` token by token.

One engine in a child process of compare_peers.py (see ``peers.child`` for the protocol).
"""

from __future__ import annotations

import time

from .common import MAX_CONTEXT


class LlamaRunner:
    def __init__(self, model: str, threads: int) -> None:
        import llama_cpp
        import numpy as np

        self.llama_cpp, self.np = llama_cpp, np
        self.llm = llama_cpp.Llama(model_path=model, n_ctx=MAX_CONTEXT, n_threads=threads,
                                   n_threads_batch=threads, n_batch=512, logits_all=False,
                                   verbose=False)
        self.n_vocab = self.llm.n_vocab()
        self.version = f"llama-cpp-python {llama_cpp.__version__}"
        self.weight_bytes = int(llama_cpp.llama_model_size(self.llm.model))

    def _argmax(self) -> int:
        """Greedy draw from the last evaluated position (the C logits buffer, no copy)."""
        ptr = self.llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return int(self.np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).argmax())

    def cold(self, ids: list[int], gen: int) -> tuple[float, list[float]]:
        times: list[float] = []
        start = time.perf_counter()
        self.llm.reset()  # n_tokens = 0; eval() then clears the KV cache from position 0
        self.llm.eval(ids)
        token = self._argmax()
        times.append(time.perf_counter() - start)
        for _ in range(gen - 1):  # EOS is never checked: ignored
            self.llm.eval([token])
            token = self._argmax()
            times.append(time.perf_counter() - start)
        return times[0], times

    def warm_turn(self, prefix: list[int], extra: list[int]) -> float:
        self.llm.reset()
        self.llm.eval(prefix)
        self._argmax()
        start = time.perf_counter()
        self.llm.eval(extra)  # appends after the cached prefix
        self._argmax()
        return time.perf_counter() - start

"""qwen-edge: ``Session`` streaming, prefix reuse, the SDK's own timings.

One engine in a child process of compare_peers.py (see ``peers.child`` for the protocol).
"""

from __future__ import annotations

import time

from .common import MAX_CONTEXT


class OursRunner:
    def __init__(self, model: str, threads: int) -> None:
        import qwen_edge

        self.version = f"qwen-edge {qwen_edge.__version__}"
        self.model = qwen_edge.load(model, threads=threads, max_context=MAX_CONTEXT)

    def ready(self) -> None:
        """Wait for load's background step (weights onto huge pages) before measuring."""
        wait = getattr(self.model.engine, "huge_page_bytes", None)  # older checkouts: none
        if wait is not None:
            self.version += f" ({wait() / 2**20:.0f} MB of weights on huge pages)"

    def cold(self, ids: list[int], gen: int) -> tuple[float, list[float]]:
        times: list[float] = []
        start = time.perf_counter()
        session = self.model.session()
        for chunk in session.stream_chunks(ids, max_tokens=gen, temperature=0,
                                           stop_token_ids=()):
            if chunk.token is not None:
                times.append(time.perf_counter() - start)
        return times[0], times

    def api_timings(self, ids: list[int], gen: int) -> dict[str, float]:
        """The SDK's own ``Completion.timings`` (cross-check of the external clock)."""
        c = self.model.generate(ids, max_tokens=gen, temperature=0, stop_token_ids=())
        return {"ttft_s": c.timings.ttft_s, "prefill_tok_s": c.timings.prefill_tokens_per_s,
                "decode_tok_s": c.timings.decode_tokens_per_s}

    def warm_turn(self, prefix: list[int], extra: list[int]) -> float:
        session = self.model.session()
        session.generate(prefix, max_tokens=1, temperature=0, stop_token_ids=())
        start = time.perf_counter()
        c = session.generate(prefix + extra, max_tokens=1, temperature=0, stop_token_ids=())
        ttft = time.perf_counter() - start
        if c.usage.cached_tokens != len(prefix):
            msg = f"prefix reuse: {c.usage.cached_tokens} cached, expected {len(prefix)}"
            raise RuntimeError(msg)
        return ttft

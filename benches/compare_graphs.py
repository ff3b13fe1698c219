"""Decode speed of decoder graphs under one bare onnxruntime loop, paired rounds in one process.

    python benches/compare_graphs.py BASELINE.onnx OTHER.onnx [...] [--rounds 18] [--threads 2]

Takes the engine out of the comparison: every graph gets the engine's session options and
the same Python loop (IOBinding, KV buffers bound once as past and present, greedy argmax),
so a difference is the graph's (operators, attributes, layout). Graphs may be qwen-edge's
(inputs ``seqlens_k`` / ``total_sequence_length`` / ``num_logits_to_keep``) or
onnxruntime-genai's model builder output (``attention_mask``; a shared past/present buffer).
Each round decodes ``--gen`` tokens after the same ``--prompt``-token random prompt with every
graph, in a rotated order; prints each graph's median tok/s and its paired ratio to the first
graph (per-round ratios, so machine-wide slow phases cancel), with a bootstrap 95 % interval.

Each session's prepacked weights are collapsed onto huge pages, as the engine does
(``--no-huge-pages``: not). Without that the comparison is biased by where each session's
weights land: on an AMD EPYC the first graph loaded decoded ~5 % slower than the same graph
loaded second (two identical graphs listed in both orders); on huge pages the effect was gone.
Stop 16 found "folding the q/k/v bias into MatMulNBits is slower than a separate Add" with
this script before it collapsed pages; on huge pages the two are within noise (benches/README.md,
"Measurement log").
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from paired import paired_ratio, round_order

from qwen_edge.engine import open_session


class Graph:
    """One decoder graph with its KV buffers bound once."""

    def __init__(self, path: Path, threads: int, max_context: int,
                 huge_pages: bool = True, options: ort.SessionOptions | None = None) -> None:
        self.path = path
        proto = onnx.load(str(path), load_external_data=False)
        inputs = {i.name: i for i in proto.graph.input}
        self.ours = "seqlens_k" in inputs
        past = [name for name in inputs if name.startswith("past_key_values.")]
        dims = inputs[past[0]].type.tensor_type.shape.dim
        kv_heads, head_dim = dims[1].dim_value, dims[3].dim_value
        if not head_dim:  # genai leaves it symbolic; its config next to the graph has it
            config = json.loads((path.parent / "genai_config.json").read_text())
            head_dim = int(config["model"]["decoder"]["head_size"])
        # As the engine does: the prepacked weights onto huge pages (see the module docstring).
        self.session, collapse = open_session(str(path), threads, huge_pages=huge_pages,
                                              options=options)
        self.huge_bytes = collapse.wait()
        self.vocab = self.session.get_outputs()[0].shape[-1]
        self.io = self.session.io_binding()
        self.kv = []
        for name in past:
            array = np.zeros((1, kv_heads, max_context, head_dim), np.float32)
            value = ort.OrtValue.ortvalue_from_numpy(array)
            self.io.bind_ortvalue_input(name, value)
            self.io.bind_ortvalue_output(name.replace("past_key_values", "present"), value)
            self.kv.append(array)
        # Qwen3.5's linear-attention layers: conv and recurrent states (ours
        # ``past_conv_state.{i}`` / ``past_recurrent_state.{i}``, genai's ``past.{i}.conv`` /
        # ``past.{i}.recurrent``), bound once as past and present like the KV cache (the
        # kernels read the past state before writing the present one) and zeroed by a prefill:
        # unlike the KV cache, a state is not overwritten by position.
        self.states: list[np.ndarray] = []
        for name, value_info in inputs.items():
            if not name.startswith(("past_conv_state.", "past_recurrent_state.", "past.")):
                continue
            shape = [1] + [d.dim_value for d in value_info.type.tensor_type.shape.dim[1:]]
            array = np.zeros(shape, np.float32)
            value = ort.OrtValue.ortvalue_from_numpy(array)
            self.io.bind_ortvalue_input(name, value)
            self.io.bind_ortvalue_output(name.replace("past", "present", 1), value)
            self.states.append(array)
        # genai's Qwen3.5 graph takes mRoPE position ids [3, batch, sequence]
        self.mrope = ("position_ids" in inputs and not self.ours
                      and inputs["position_ids"].type.tensor_type.shape.dim[0].dim_value == 3)
        self.logits: dict[int, tuple[np.ndarray, ort.OrtValue]] = {}

    def step(self, tokens: np.ndarray, total: int) -> np.ndarray:
        io = self.io
        io.bind_cpu_input("input_ids", tokens.reshape(1, -1))
        if total == tokens.size:  # a new prompt: the recurrent states start from zero
            for state in self.states:
                state.fill(0)
        if self.mrope:  # text only: the three mRoPE axes carry the same position
            positions = np.arange(total - tokens.size, total, dtype=np.int64)
            io.bind_cpu_input("position_ids", np.ascontiguousarray(
                np.broadcast_to(positions, (3, 1, tokens.size))))
        rows = 1
        if self.ours:
            io.bind_cpu_input("seqlens_k", np.array([total - 1], np.int32))
            io.bind_cpu_input("total_sequence_length", np.array(total, np.int32))
            io.bind_cpu_input("num_logits_to_keep", np.array(1, np.int64))
        else:  # genai: logits for every input position
            io.bind_cpu_input("attention_mask", np.ones((1, total), np.int64))
            rows = tokens.size
        if rows not in self.logits:
            array = np.empty((1, rows, self.vocab), np.float32)
            self.logits[rows] = (array, ort.OrtValue.ortvalue_from_numpy(array))
        io.bind_ortvalue_output("logits", self.logits[rows][1])
        self.session.run_with_iobinding(io)
        return self.logits[rows][0][0, -1]

    def decode(self, prompt: np.ndarray, gen: int) -> float:
        """Prefill ``prompt``, then ``gen`` greedy tokens; decode tok/s after the first."""
        token = int(self.step(prompt, prompt.size).argmax())
        total = prompt.size
        start = time.perf_counter()
        for _ in range(gen - 1):
            total += 1
            token = int(self.step(np.array([token], np.int64), total).argmax())
        return (gen - 1) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("graphs", nargs="+", type=Path, help="model.onnx files; ratios vs the first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=18)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--gen", type=int, default=96)
    ap.add_argument("--no-huge-pages", action="store_true",
                    help="leave the weights on the pages onnxruntime allocated")
    args = ap.parse_args()
    graphs = [Graph(p, args.threads, args.prompt + args.gen, not args.no_huge_pages)
              for p in args.graphs]
    prompt = np.random.default_rng(0).integers(0, 150_000, args.prompt).astype(np.int64)
    rates: list[list[float]] = [[] for _ in graphs]
    for r in range(args.rounds):
        for i in round_order(range(len(graphs)), r):
            rates[i].append(graphs[i].decode(prompt, args.gen))
        print(f"round {r}: " + "  ".join(f"{x[-1]:.1f}" for x in rates), flush=True)
    for graph, values in zip(graphs, rates, strict=True):
        print(f"{graph.path}: median {statistics.median(values):.1f} tok/s; vs first: paired "
              f"median {paired_ratio(values, rates[0])} rounds")


if __name__ == "__main__":
    main()


"""One MatMulNBits node in isolation: block size, and gate/up fused vs separate.

    python benches/bench_matmulnbits.py [--threads 2] [--rounds 9]

Random int4 weights (symmetric: no zero points), accuracy_level 4 (int8 activations), batch 1
(a decode step), onnxruntime CPU with ``--threads`` intra-op threads. Every variant is timed
in turn, ``--rounds`` times (median reported, in µs per run), so machine noise falls on all:

1. qwen2.5-0.5b's projection shapes (896→4864, 4864→896, the 896→151,936 lm_head) at block
   32, 64 and 128;
2. one layer's gate/up: two MatMulNBits (896→4864) + QuickGelu + Mul, against one fused
   MatMulNBits (896→9728) + Split + QuickGelu + Mul.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)


def _matmul(name: str, k: int, n: int, block: int, out: str) -> tuple[object, list[object]]:
    blocks = k // block
    weight = RNG.integers(0, 256, (n, blocks, block // 2), dtype=np.uint8)
    scales = (RNG.random(n * blocks) * 0.01 + 0.001).astype(np.float32)
    node = helper.make_node("MatMulNBits", ["A", f"B{name}", f"S{name}"], [out],
                            domain="com.microsoft", K=k, N=n, bits=4, block_size=block,
                            accuracy_level=4)
    return node, [numpy_helper.from_array(weight, f"B{name}"),
                  numpy_helper.from_array(scales, f"S{name}")]


def _session(k: int, nodes: list, inits: list, outputs: list[str], threads: int):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [1, k])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def _time(sessions: dict[str, object], k: int, rounds: int, calls: int) -> dict[str, float]:
    a = RNG.standard_normal((1, k)).astype(np.float32)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, sess in sessions.items():
            start = time.perf_counter()
            for _ in range(calls):
                sess.run(None, {"A": a})
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    print(f"onnxruntime {ort.__version__}, {args.threads} threads, median of {args.rounds}\n")
    print("| K → N | block 32 µs | block 64 µs | block 128 µs |\n|---|--:|--:|--:|")
    for k, n in ((896, 4864), (4864, 896), (896, 151936)):
        sessions = {}
        for block in (32, 64, 128):
            node, inits = _matmul(str(block), k, n, block, "Y")
            sessions[str(block)] = _session(k, [node], inits, ["Y"], args.threads)
        t = _time(sessions, k, args.rounds, 20 if n > 100_000 else 200)
        print(f"| {k} → {n} | {t['32']:.0f} | {t['64']:.0f} | {t['128']:.0f} |")

    k, inter = 896, 4864
    act = [helper.make_node("QuickGelu", ["G"], ["GA"], domain="com.microsoft", alpha=1.0),
           helper.make_node("Mul", ["GA", "U"], ["Y"])]
    gate, gate_w = _matmul("g", k, inter, 32, "G")
    up, up_w = _matmul("u", k, inter, 32, "U")
    fused, fused_w = _matmul("f", k, 2 * inter, 32, "F")
    split = helper.make_node("Split", ["F", "sizes"], ["G", "U"], axis=-1)
    sizes = numpy_helper.from_array(np.array([inter, inter], np.int64), "sizes")
    t = _time({"separate": _session(k, [gate, up, *act], gate_w + up_w, ["Y"], args.threads),
               "fused": _session(k, [fused, split, *act], [*fused_w, sizes], ["Y"],
                                 args.threads)}, k, args.rounds, 300)
    print(f"\ngate/up + SiLU·mul, one layer: separate {t['separate']:.0f} µs, "
          f"fused + Split {t['fused']:.0f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

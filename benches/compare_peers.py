"""Decode/prefill side by side: qwen-edge vs onnxruntime-genai vs optimum vs llama.cpp.

One random-weight checkpoint of a real shape (``synth_checkpoint(shape, seed=0, bf16)``) is
turned into each engine's own format once, cached in ``--workdir`` (not timed):

    qwen-edge   export_model(ckpt, ExportConfig(quant, block_size=32, max_context=4096))
                int4: MatMulNBits 4-bit symmetric with searched scales (the export
                default; ``--asymmetric``: zero points), block 32, accuracy_level 4; tied
                embedding / lm_head quantized. int8: MatMulNBits 8-bit.
    genai       python -m onnxruntime_genai.models.builder -i CKPT -o OUT -p QUANT -e cpu
                (builder defaults: symmetric, block 32, accuracy_level 4, full logits)
    optimum     optimum-cli export onnx --task text-generation-with-past --no-post-process
                (fp32; its post-processing, which deduplicates the tied embedding / lm_head,
                fails on exports over 2 GB such as qwen3-0.6b's, so it is skipped for every
                shape alike: the lm_head is then a MatMul weight of its own), then
                onnxruntime's MatMulNBitsQuantizer (bits 4 or 8, symmetric, block 32,
                accuracy_level 4: the builder's settings; optimum has no int4 quantizer of
                its own): every MatMul with an initializer weight, lm_head included; the
                embedding table stays fp32. Driven by a
                plain Python loop (``OptimumRunner``): IOBinding, each step's present
                key/values (onnxruntime-allocated, grown by concatenation inside the graph)
                bound as the next step's past, numpy argmax of the last logits row.
    llama.cpp   convert_hf_to_gguf.py --outtype f16 (from llama-cpp-python's sdist), then
                llama_model_quantize to Q4_0 (int4) or Q8_0 (int8). llama.cpp keeps the tied
                token_embd/output tensor in Q8_0 for Q4_0 (896 columns: no Q6_K).

Then each engine is loaded in its own subprocess (``python compare_peers.py --child ENGINE``,
with that engine's venv python), all kept alive and driven in turn over a pipe: every
measurement is interleaved across engines (order rotated each run), waits until the rest of
the machine is idle (``/proc/stat``), and is re-measured when other processes used
``--idle-threshold`` cores or more meanwhile (the quietest attempt is kept), so that noise on a
shared machine falls on every engine alike. Batch size 1, greedy, EOS ignored:

    TTFT s          prompt submitted -> first token sampled (prefill + first draw)
    prefill tok/s   prompt tokens / TTFT
    decode tok/s    (generated - 1) / (time of the last token - time of the first)
    peak RSS MB     VmHWM of the child (/proc/self/status) after load + all runs
    agent turn      1,000-token prefix, then 30 new tokens: time to first token. "warm":
                    the prefix is already in the engine's KV cache (qwen-edge:
                    ``Session`` prefix reuse; genai: ``Generator.rewind_to`` + ``append_tokens``
                    on the same generator, after ``snapshot_state`` for a recurrent model;
                    llama.cpp: ``Llama.eval`` of the 30 tokens after the 1,000, a plain
                    continuation that never rewinds). "cold": a fresh 1,030-token prompt.

for random prompts (ids in [0, 151643), no special tokens; the same ids for every engine) of
128 and 1,024 tokens with 128 generated tokens; medians of ``--runs`` runs after one warm-up.
Below the table, the decode ratio per run (qwen-edge / peer, the two measured back to back
in the same run), its median and a bootstrap 95 % interval: on a shared host whose speed
drifts by +-10 % between runs, the paired ratio is what resolves a few percent.

Roofline: bytes of weights read per decoded token (every weight tensor incl. int4 scales and
zero points, except tensors read only by a Gather, of which one row is read) / memory bandwidth.
Bandwidth is measured in the parent before every run (median reported; it varies on a shared
host): ``np.copyto`` of a 1 GiB float64 array split across
``--threads`` Python threads (numpy releases the GIL), best of 5, counting bytes read + bytes
written (STREAM "copy" convention). "roofline share" = measured decode tok/s / (bandwidth /
bytes per token). KV-cache reads are not counted (at 1,024 tokens they add ~25 MB/token for
qwen-edge's fp32 cache on qwen2.5-0.5b).

Peers live in their own venvs (see benches/README.md, "Runtime vs peers")::

    cd /tmp && PYTHONPATH=/tmp/mydev /work/venv/bin/python /work/main/benches/compare_peers.py \\
        --shape qwen2.5-0.5b --quant int4 --threads 2 --runs 3 \\
        --genai-python /work/venv-genai/bin/python --llama-python /work/venv-llama/bin/python \\
        --json compare_peers.json

Ratios are qwen-edge / peer: above 1 is better for tok/s, below 1 is better for TTFT and RSS.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("compare_peers")

ENGINES = ("qwen-edge", "genai", "optimum", "llama")
FIRST_SPECIAL_ID = 151643  # <|endoftext|> in Qwen2.5 and Qwen3; ids at or above it are special
LLAMA_FTYPES = {"int4": ("q4_0", 2), "int8": ("q8_0", 7)}  # LLAMA_FTYPE_MOSTLY_Q4_0 / Q8_0
MAX_CONTEXT = 2048  # KV reservation for every engine (qwen-edge max_context, genai max_length,
#                     llama.cpp n_ctx)


# -- prompts and stats -------------------------------------------------------------------------

def prompt_ids(n: int, seed: int) -> list[int]:
    """``n`` random non-special token ids; a pure function of (n, seed) for every engine."""
    import numpy as np

    return np.random.default_rng([seed, n]).integers(0, FIRST_SPECIAL_ID, n).tolist()


def rss_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc/self/status.

    (``getrusage().ru_maxrss`` would be wrong here: Linux carries it across ``execve``, so a
    child would report its parent's peak.)
    """
    with Path("/proc/self/status").open(encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- children: one engine each, in its own venv --------------------------------------------------
#
# Each runner exposes:
#   cold(ids, gen) -> (ttft_s, [time of each generated token, from submission])
#   warm_turn(prefix, extra) -> ttft_s of ``extra`` with ``prefix`` already cached

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


RUNNERS = {"qwen-edge": OursRunner, "genai": GenaiRunner, "optimum": OptimumRunner,
           "llama": LlamaRunner, "ort-loop": LoopRunner}


def measure_item(runner: Any, cmd: dict[str, Any], args: argparse.Namespace,
                 ) -> dict[str, Any]:
    """One measurement: a cold generation for a prompt length, or the agent turn."""
    run = cmd["run"]
    if cmd["op"] == "prompt":
        n = cmd["n"]
        ttft, times = runner.cold(prompt_ids(n, args.seed + run), args.gen)
        if len(times) != args.gen:
            msg = f"{args.child}: generated {len(times)} tokens, expected {args.gen}"
            raise RuntimeError(msg)
        return {"ttft_s": ttft, "prefill_tok_s": n / ttft,
                "decode_tok_s": (len(times) - 1) / (times[-1] - times[0])}
    prefix = prompt_ids(args.prefix, args.seed + 100 + run)
    extra = prompt_ids(args.append, args.seed + 200 + run)
    out: dict[str, Any] = {"agent_cold_s": runner.cold(prefix + extra, 1)[0]}
    try:
        out["agent_warm_s"] = runner.warm_turn(prefix, extra)
    except Exception as exc:  # noqa: BLE001 - a peer without prefix reuse: recorded, not fatal
        out["agent_warm_error"] = f"{type(exc).__name__}: {exc}"
    return out


def child_main(args: argparse.Namespace) -> int:
    """Serve one engine: load, warm up, then one JSON line per command read from stdin.

    Commands: ``{"op": "prompt", "n": N, "run": k}`` (a cold N-token prompt + ``--gen`` tokens),
    ``{"op": "agent", "run": k}`` (the agent turn, cold and warm); ``{"op": "finish"}`` ->
    peak RSS (and the SDK's own timings for qwen-edge), then exit. The protocol uses a
    duplicate of the original stdout; fd 1 itself is pointed at stderr so that whatever a
    native library prints cannot corrupt it.
    """
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    start = time.perf_counter()
    runner = RUNNERS[args.child](str(args.model), args.threads)
    load_s = time.perf_counter() - start
    if hasattr(runner, "ready"):
        runner.ready()
    rss_loaded = rss_mb("VmRSS")
    runner.cold(prompt_ids(64, args.seed + 999), 8)  # warm-up: first-call allocations
    send({"engine": args.child, "version": runner.version, "load_s": load_s,
          "rss_after_load_mb": rss_loaded, "weight_bytes": getattr(runner, "weight_bytes", None)})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] in ("prompt", "agent"):
            send(measure_item(runner, cmd, args))
        elif cmd["op"] == "finish":
            final: dict[str, Any] = {"peak_rss_mb": rss_mb("VmHWM")}
            if isinstance(runner, OursRunner):
                lens = [int(x) for x in args.prompt_lens.split(",")]
                final["api_timings"] = {n: runner.api_timings(prompt_ids(n, args.seed), args.gen)
                                        for n in lens}
            send(final)
            break
    return 0


# -- parent: build once, run children, report ----------------------------------------------------

def run(cmd: list[str], *, log: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
    logger.info("$ %s", " ".join(cmd))
    with log.open("w") as out:
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    if rc:
        tail = log.read_text(errors="replace")[-3000:]
        msg = f"exit {rc}: {' '.join(cmd)}\n{tail}"
        raise RuntimeError(msg)


def peer_env() -> dict[str, str]:
    """The environment for peers: without our dev PYTHONPATH, offline for the hub."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    return env


_SYNTH = """
import sys
from qwen_edge.export.synth import synth_checkpoint
synth_checkpoint(sys.argv[1], sys.argv[2], seed=0, dtype="bfloat16", force=True)
"""
_EXPORT = """
import sys
from qwen_edge.export import ExportConfig, export_model
export_model(sys.argv[1], sys.argv[2], ExportConfig(quant=sys.argv[3], block_size=32,
             max_context=4096, symmetric=sys.argv[4] != "asym"), force=True)
"""
_OPTIMUM_QUANTIZE = """
import sys
import onnx
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
src, out, bits = sys.argv[1], sys.argv[2], int(sys.argv[3])
quant = MatMulNBitsQuantizer(onnx.load(src), bits=bits, block_size=32, is_symmetric=True,
                             accuracy_level=4)
quant.process()
quant.model.save_model_to_file(out, use_external_data_format=True)
"""
_QUANTIZE = """
import sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = int(sys.argv[3]); p.nthread = int(sys.argv[4])
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), p))
"""


def llama_source(args: argparse.Namespace, work: Path) -> Path:
    """llama-cpp-python's sdist (its vendored llama.cpp has convert_hf_to_gguf.py + gguf-py)."""
    if args.llama_src is not None:
        return args.llama_src
    found = sorted((work / "src").glob("llama_cpp_python-*/vendor/llama.cpp"))
    if found:
        return found[-1]
    version = subprocess.check_output(
        [args.llama_python, "-c", "import llama_cpp; print(llama_cpp.__version__)"],
        text=True, env=peer_env()).strip()
    (work / "src").mkdir(exist_ok=True)
    run([args.llama_python, "-m", "pip", "download", f"llama-cpp-python=={version}",
         "--no-binary", ":all:", "--no-deps", "-d", str(work / "src")],
        log=work / "llama-sdist.log", cwd=work, env=peer_env())
    with tarfile.open(next((work / "src").glob("llama_cpp_python-*.tar.gz"))) as tar:
        tar.extractall(work / "src", filter="data")
    return max((work / "src").glob("llama_cpp_python-*/vendor/llama.cpp"))


def prepare(args: argparse.Namespace, work: Path, peers: list[str]) -> dict[str, Path]:
    """Checkpoint, then each engine's model, each built once (skipped when present)."""
    ckpt = work / f"ckpt-{args.shape}"
    if not (ckpt / "config.json").exists():
        run([sys.executable, "-c", _SYNTH, args.shape, str(ckpt)], log=work / "synth.log",
            cwd=work)
    models: dict[str, Path] = {}
    if "qwen-edge" in peers:
        sym = "-asym" if args.asymmetric else ""
        models["qwen-edge"] = work / f"pkg-{args.shape}-{args.quant}{sym}"
        if not (models["qwen-edge"] / "qwen_edge.json").exists():
            run([sys.executable, "-c", _EXPORT, str(ckpt), str(models["qwen-edge"]),
                 args.quant, "asym" if args.asymmetric else "default"],
                log=work / f"export-{args.shape}-{args.quant}{sym}.log", cwd=work)
    if "genai" in peers:
        models["genai"] = work / f"genai-{args.shape}-{args.quant}"
        if not (models["genai"] / "genai_config.json").exists():
            # Qwen3.5: the builder exports a ConditionalGeneration checkpoint's decoder for an
            # embeddings-in model only with exclude_embeds=false (otherwise it expects the
            # vision pipeline to feed inputs_embeds). exclude_mtp=true leaves the MTP head
            # out, as our export does; with it, genai 0.18.0 writes a lm_head shared between
            # model.onnx and mtp.onnx (`shared_initializers`) that og.Model refuses on CPU
            # ("GetMemoryInfo for CPU should not be used"). The vision tower is left out by
            # the builder. Text-only Qwen3_5ForCausalLM is not accepted by builder 0.18.0.
            extra = (["--extra_options", "exclude_embeds=false", "exclude_mtp=true"]
                     if args.shape.startswith(("qwen3.5", "tiny-qwen3.5")) else [])
            run([args.genai_python, "-m", "onnxruntime_genai.models.builder", "-i", str(ckpt),
                 "-o", str(models["genai"]), "-p", args.quant, "-e", "cpu",
                 "-c", str(work / "genai-cache"), *extra],
                log=work / f"genai-build-{args.shape}-{args.quant}.log", cwd=work,
                env=peer_env())
    if "optimum" in peers:
        fp32 = work / f"optimum-{args.shape}-fp32"
        models["optimum"] = work / f"optimum-{args.shape}-{args.quant}"
        if not (fp32 / "model.onnx").exists():
            run([str(Path(args.optimum_python).parent / "optimum-cli"), "export", "onnx",
                 "--model", str(ckpt), "--task", "text-generation-with-past", "--no-post-process",
                 str(fp32)],
                log=work / f"optimum-export-{args.shape}.log", cwd=work, env=peer_env())
        if not (models["optimum"] / "model.onnx").exists():
            models["optimum"].mkdir(exist_ok=True)
            run([args.optimum_python, "-c", _OPTIMUM_QUANTIZE, str(fp32 / "model.onnx"),
                 str(models["optimum"] / "model.onnx"), args.quant.removeprefix("int")],
                log=work / f"optimum-quantize-{args.shape}-{args.quant}.log", cwd=work,
                env=peer_env())
    if "llama" in peers:
        name, ftype = LLAMA_FTYPES[args.quant]
        f16 = work / f"gguf-{args.shape}-f16.gguf"
        models["llama"] = work / f"gguf-{args.shape}-{name}.gguf"
        if not f16.exists():
            src = llama_source(args, work)
            env = peer_env()
            env["PYTHONPATH"] = str(src / "gguf-py")  # the gguf-py that matches the script
            run([args.convert_python or args.genai_python, str(src / "convert_hf_to_gguf.py"),
                 str(ckpt), "--outtype", "f16", "--outfile", str(f16)],
                log=work / f"gguf-convert-{args.shape}.log", cwd=work, env=env)
        if not models["llama"].exists():
            run([args.llama_python, "-c", _QUANTIZE, str(f16), str(models["llama"]),
                 str(ftype), str(args.threads)],
                log=work / f"gguf-quantize-{args.shape}-{name}.log", cwd=work, env=peer_env())
    return models


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


class Child:
    """One engine's child process, driven line by line (see ``child_main``)."""

    def __init__(self, engine: str, python: str, model: Path, args: argparse.Namespace,
                 work: Path) -> None:
        cmd = [python, str(Path(__file__).resolve()), "--child", engine, "--model", str(model),
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


def summarize(samples: dict[str, list[dict[str, Any]]], final: dict[str, Any],
              lens: list[int]) -> dict[str, float | None]:
    """Medians over runs (and the best run, for reference), flat keys."""
    med = statistics.median
    s: dict[str, float | None] = {"peak_rss_mb": final["peak_rss_mb"]}
    for n in lens:
        rs = samples[f"prompt-{n}"]
        s[f"ttft_{n}"] = med(r["ttft_s"] for r in rs)
        s[f"prefill_{n}"] = med(r["prefill_tok_s"] for r in rs)
        s[f"decode_{n}"] = med(r["decode_tok_s"] for r in rs)
        s[f"best_decode_{n}"] = max(r["decode_tok_s"] for r in rs)
        s[f"best_prefill_{n}"] = max(r["prefill_tok_s"] for r in rs)
    agent = samples["agent"]
    s["agent_cold"] = med(r["agent_cold_s"] for r in agent)
    warm = [r["agent_warm_s"] for r in agent if "agent_warm_s" in r]
    s["agent_warm"] = med(warm) if warm else None
    every = [r for rs in samples.values() for r in rs]
    s["others_busy"] = max(r["other_cores_busy"] for r in every)
    s["retries"] = sum(r["attempts"] - 1 for r in every)
    return s


def markdown(summaries: dict[str, dict[str, Any]], lens: list[int],
             args: argparse.Namespace) -> str:
    engines = list(summaries)
    peers = [e for e in engines if e != "qwen-edge"]
    ours = summaries.get("qwen-edge")
    rows: list[tuple[str, str, str]] = []  # (label, key, format)
    for n in lens:
        rows += [(f"TTFT s, {n}-token prompt", f"ttft_{n}", ".3f"),
                 (f"prefill tok/s, {n}-token prompt", f"prefill_{n}", ".0f"),
                 (f"decode tok/s after a {n}-token prompt ({args.gen} generated)",
                  f"decode_{n}", ".1f")]
    rows += [(f"agent turn TTFT s: {args.prefix} cached + {args.append} new (warm)",
              "agent_warm", ".3f"),
             (f"agent turn TTFT s: cold {args.prefix + args.append}-token prompt",
              "agent_cold", ".3f"),
             ("peak RSS MB (VmHWM: load + all runs)", "peak_rss_mb", ".0f"),
             ("weights read per decoded token MB", "weights_mb", ".1f"),
             ("roofline tok/s (copy bandwidth / weights per token)", "roofline", ".0f"),
             (f"roofline share (decode after {lens[0]} / roofline)", "share", ".0%"),
             ("other processes' load during a kept sample (cores, max)", "others_busy", ".2f"),
             ("samples re-measured because others were busy", "retries", "d")]
    head = "| metric | " + " | ".join(engines) + " | " + " | ".join(
        f"qwen-edge / {p}" for p in peers) + " |"
    lines = [head, "|---|" + "--:|" * (len(engines) + len(peers))]
    for label, key, fmt in rows:
        vals = []
        for e in engines:
            v = summaries[e].get(key)
            vals.append("n/a" if v is None else format(v, fmt))
        ratios = []
        for p in peers:
            a = ours.get(key) if ours else None
            b = summaries[p].get(key)
            ratios.append(f"{a / b:.2f}" if a is not None and b and key not in (
                "others_busy", "retries") else "")
        lines.append(f"| {label} | " + " | ".join(vals) + " | " + " | ".join(ratios) + " |")
    if ours and ours.get("agent_warm"):
        for p in peers:
            cold = summaries[p].get("agent_cold")
            if cold:
                lines.append(f"\nagent turn, qwen-edge warm ({ours['agent_warm']:.3f} s) vs "
                             f"{p} cold ({cold:.3f} s): {ours['agent_warm'] / cold:.3f}x")
    return "\n".join(lines)


def paired_ratios(samples: dict[str, dict[str, list[dict[str, Any]]]], lens: list[int],
                  ) -> str:
    """Per-run decode ratios qwen-edge / peer (both measured in the same run, minutes apart),
    their median and a bootstrap 95 % interval of that median (benches/paired.py)."""
    from paired import paired_ratio

    if "qwen-edge" not in samples:
        return ""
    lines = [("paired decode ratios, qwen-edge / peer (per run; median [bootstrap 95 % "
              "interval of the median], runs where qwen-edge was faster):")]
    for peer in (e for e in samples if e != "qwen-edge"):
        for n in lens:
            ours = [r["decode_tok_s"] for r in samples["qwen-edge"][f"prompt-{n}"]]
            theirs = [r["decode_tok_s"] for r in samples[peer][f"prompt-{n}"]]
            per_run = ", ".join(f"{a / b:.2f}" for a, b in zip(ours, theirs, strict=True))
            lines.append(f"- vs {peer}, after a {n}-token prompt: "
                         f"{paired_ratio(ours, theirs)} (per run: {per_run})")
    return "\n".join(lines)


def parent_main(args: argparse.Namespace) -> int:
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for p in peers:
        if p not in ENGINES:
            raise SystemExit(f"--peers: unknown engine {p!r} (known: {', '.join(ENGINES)})")
    pythons = {"qwen-edge": sys.executable, "genai": args.genai_python,
               "optimum": args.optimum_python, "llama": args.llama_python}
    missing = [p for p in peers if p != "qwen-edge" and not pythons[p]]
    if missing:
        raise SystemExit(f"--peers {','.join(missing)} needs --{missing[0]}-python")
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    lens = [int(x) for x in args.prompt_lens.split(",")]

    models = prepare(args, work, peers)

    # All children stay loaded; runs are interleaved (the order rotates every run) and each
    # waits for the rest of the machine to be idle, so that noise from other processes
    # falls on every engine alike.
    children = {e: Child(e, pythons[e], models[e], args, work) for e in peers}
    items = [{"op": "prompt", "n": n} for n in lens] + [{"op": "agent"}]
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {
        e: {f"prompt-{i['n']}" if "n" in i else "agent": [] for i in items} for e in peers}
    bandwidths: list[float] = []  # measured before each run: it varies on a shared host
    for run in range(args.runs):
        wait_idle(args.idle_threshold, args.max_wait)
        bandwidths.append(memory_bandwidth(args.threads)["copy_gb_s"])
        logger.info("copy bandwidth: %.1f GB/s", bandwidths[-1])
        order = peers[run % len(peers):] + peers[:run % len(peers)]
        for item in items:
            key = f"prompt-{item['n']}" if "n" in item else "agent"
            for engine in order:
                r = measure_quietly(children[engine], {**item, "run": run}, args)
                samples[engine][key].append(r)
                logger.info("[%s] run %d %s: %s", engine, run, key, ", ".join(
                    f"{k} {v:.3f}" for k, v in r.items() if isinstance(v, float)))
    finals = {e: c.finish() for e, c in children.items()}
    bandwidth = {"copy_gb_s": statistics.median(bandwidths), "all_gb_s": bandwidths,
                 "bytes": 2**30, "threads": args.threads}

    summaries = {e: summarize(samples[e], finals[e], lens) for e in peers}
    for e, s in summaries.items():
        if e == "llama":
            per_token = children[e].info["weight_bytes"]
        else:
            per_token = onnx_weight_bytes(models[e])["per_token_bytes"]
        s["weights_mb"] = per_token / 1e6
        s["roofline"] = bandwidth["copy_gb_s"] * 1e9 / per_token
        s["share"] = s[f"decode_{lens[0]}"] / s["roofline"]

    info = machine_info()
    llama_q = LLAMA_FTYPES[args.quant][0].upper()
    title = (f"# decode/prefill: qwen-edge vs peers, {args.shape} (synth, bf16 checkpoint), "
             f"{args.quant} (llama.cpp {llama_q}), batch 1, {args.threads} threads, "
             f"greedy, medians of {args.runs}")
    header = (f"CPU: {info['cpu']}, {info['logical_cores']} logical cores, "
              f"{info['memory_gb']} GB; Python {info['python']}; copy bandwidth "
              f"{bandwidth['copy_gb_s']:.1f} GB/s (median over runs of: np.copyto of 1 GiB, "
              f"{args.threads} threads, best of 5, read+write; measured "
              f"{min(bandwidths):.0f}-{max(bandwidths):.0f})\n" + "\n".join(
                  f"- {e}: {c.info['version']}, load {c.info['load_s']:.1f} s, RSS after load "
                  f"{c.info['rss_after_load_mb']:.0f} MB" for e, c in children.items()))
    table = markdown(summaries, lens, args)
    report = f"{title}\n{header}\n\n{table}\n\n{paired_ratios(samples, lens)}"
    sys.stdout.write(report + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": info, "bandwidth": bandwidth, "shape": args.shape, "quant": args.quant,
            "threads": args.threads, "runs": args.runs, "batch_size": 1,
            "prompt_lens": lens, "gen": args.gen, "models": {k: str(v) for k, v in
                                                             models.items()},
            "children": {e: c.info for e, c in children.items()}, "samples": samples,
            "final": finals, "summary": summaries, "markdown": report}, indent=1))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="qwen2.5-0.5b", help="synth shape (%(default)s)")
    parser.add_argument("--quant", default="int4", choices=sorted(LLAMA_FTYPES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--asymmetric", action="store_true",
                        help="export our package with zero points (asymmetric int4/int8)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peers", default=",".join(ENGINES),
                        help="comma-separated engines (%(default)s)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/qwen-edge-bench"),
                        help="cache of checkpoints and built models (%(default)s)")
    parser.add_argument("--genai-python", default=None, help="python of the genai venv")
    parser.add_argument("--optimum-python", default=None,
                        help="python of the optimum venv (optimum-onnx[onnxruntime])")
    parser.add_argument("--llama-python", default=None, help="python of the llama-cpp venv")
    parser.add_argument("--convert-python", default=None,
                        help="python with torch + transformers + sentencepiece for "
                        "convert_hf_to_gguf.py (default: --genai-python)")
    parser.add_argument("--llama-src", type=Path, default=None,
                        help="vendor/llama.cpp of an unpacked llama-cpp-python sdist "
                        "(default: pip download it into WORKDIR/src)")
    parser.add_argument("--prompt-lens", default="128,1024")
    parser.add_argument("--gen", type=int, default=128, help="tokens generated per prompt")
    parser.add_argument("--prefix", type=int, default=1000, help="agent turn: cached prefix")
    parser.add_argument("--append", type=int, default=30, help="agent turn: new tokens")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--idle-threshold", type=float, default=0.15,
                        help="before each run, wait until other processes use fewer cores "
                        "than this (%(default)s)")
    parser.add_argument("--retries", type=int, default=3,
                        help="re-measure a sample at most this often when others were busy")
    parser.add_argument("--max-wait", type=float, default=120,
                        help="longest wait for an idle machine, seconds (%(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument("--child", choices=tuple(RUNNERS), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.child:
        return child_main(args)
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())

"""Engine: one onnxruntime session over a package's decoder graph, driven with IOBinding.

``forward(tokens, cache, num_logits)`` appends tokens to a ``KVCache`` and returns logits for
the last ``num_logits`` positions only. Everything is bound once per cache and written in
place: the KV buffers as both past and present (the graph writes the new rows itself), the
scalar inputs as numpy buffers that ``forward`` overwrites, and an input-ids / logits buffer
per distinct length, rebound only when the length changes. A decode step therefore writes
four numbers and calls ``run_with_iobinding``: nothing is allocated or bound. Long prompts are
prefilled in chunks, so activations stay bounded whatever the prompt length.

Qwen3.5 (hybrid) packages: only the full-attention layers have a KV cache; each linear
layer's conv and recurrent states (``HybridCache.state_values``) are bound the same way, as
both past and present, so a decode step copies no state either.

Huge pages: decoding streams every weight once per token, and on 4 KiB pages that costs a
TLB miss every 4 KiB. Where transparent huge pages are in "madvise" mode (most
distributions), the memory onnxruntime allocates for its prepacked weights stays on small
pages, so after the session is created the engine collapses the chunks that became resident
during its creation into huge pages (``_core.HugePageCollapse``: MADV_COLLAPSE, Linux >= 6.1,
on a background thread; addresses, contents and resident size unchanged). It runs in the
background because collapsing takes a while and generation need not wait for it; it touches
only chunks that were already fully resident, so it never makes memory resident that was not.
What it gains is measured in docs/performance.md ("Huge pages and the KV cache").
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from . import _core
from .cache import DEFAULT_SNAPSHOT_BUDGET, HybridCache, KVCache
from .errors import ConfigError, CorruptPackageError, GenerationError, PackageError, QwenEdgeError
from .package import ModelPackage

__all__ = ["DEFAULT_MAX_CONTEXT", "Engine", "native_errors", "open_session", "session_options"]

DEFAULT_MAX_CONTEXT = 4096  # per-session KV reservation when the caller does not choose
PREFILL_CHUNK = 512
_MAX_BUFFERS = 8  # per cache, of each kind (ids, logits)


# Every exception class onnxruntime's bindings define (Fail, InvalidArgument, NoSuchFile,
# InvalidProtobuf, EPFail, NotImplemented, ...), plus RuntimeError: its Python wrappers re-raise
# errors of run / run_with_iobinding as plain RuntimeError ("Error in execution: ...").
_ORT_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, *(
    cls for cls in vars(ort.capi.onnxruntime_pybind11_state).values()
    if isinstance(cls, type) and issubclass(cls, Exception)))


@contextlib.contextmanager
def native_errors(what: str) -> Iterator[None]:
    """Translate onnxruntime's exceptions into ours, once, at the boundary."""
    try:
        yield
    except QwenEdgeError:
        raise
    except _ORT_ERRORS as exc:
        msg = f"{what}: {exc}"
        raise (PackageError if "load" in what else GenerationError)(msg) from exc


def _buffer(shape: tuple[int, ...], dtype: type) -> tuple[np.ndarray, ort.OrtValue]:
    """A numpy array and an OrtValue over the same memory (writes to one show in the other)."""
    array: np.ndarray = np.zeros(shape, dtype)
    return array, ort.OrtValue.ortvalue_from_numpy(array)


@dataclass(slots=True)
class _Binding:
    """One cache's IOBinding and the buffers bound in it."""

    io: ort.IOBinding
    seqlens: np.ndarray  # seqlens_k [1] int32: total - 1
    total: np.ndarray  # total_sequence_length, int32 scalar
    keep: np.ndarray  # num_logits_to_keep, int64 scalar
    # length -> [1, n] int64 input ids / num_logits -> [1, n, vocab] logits. Bounded: decode
    # (1), a prefill chunk and its tail, speculation (k + 1).
    ids: dict[int, tuple[np.ndarray, ort.OrtValue]] = field(default_factory=dict)
    logits: dict[int, tuple[np.ndarray, ort.OrtValue]] = field(default_factory=dict)
    bound: tuple[int, int] = (0, 0)  # (ids length, num_logits) bound right now

    def rebind(self, n: int, num_logits: int, vocab: int) -> None:
        """Bind the ids buffer for ``n`` tokens and the logits buffer for ``num_logits``."""
        for table, size, shape, dtype in ((self.ids, n, (1, n), np.int64),
                                          (self.logits, num_logits, (1, num_logits, vocab),
                                           np.float32)):
            if size not in table and len(table) >= _MAX_BUFFERS:
                table.clear()
            if size not in table:
                table[size] = _buffer(shape, dtype)
        self.io.bind_ortvalue_input("input_ids", self.ids[n][1])
        self.io.bind_ortvalue_output("logits", self.logits[num_logits][1])
        self.bound = (n, num_logits)


def _physical_cores() -> int:
    """Physical cores (hyperthreads slow down memory-bound decoding); falls back to CPUs."""
    try:
        with Path("/proc/cpuinfo").open(encoding="ascii", errors="ignore") as f:
            cores = {
                line.split(":")[1].strip() for line in f if line.startswith("core id")
            }
        ids = len(cores)
    except OSError:
        ids = 0
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(ids or available or 1, available or 1))


def session_options(threads: int) -> ort.SessionOptions:
    """The engine's onnxruntime session options (benches start from these too)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_cpu_mem_arena = True
    opts.enable_mem_pattern = False  # shapes change every call; patterns would not reuse
    opts.log_severity_level = 3
    return opts


def open_session(path: str, threads: int, *, huge_pages: bool = True,
                 options: ort.SessionOptions | None = None,
                 ) -> tuple[ort.InferenceSession, _core.HugePageCollapse]:
    """An onnxruntime session with the engine's options (or ``options``, e.g. those with
    profiling on), and the background step that moves the memory it made resident (its
    prepacked weights) onto huge pages (module docstring). Benches open their sessions with
    this too."""
    before = set(_core.resident_huge_chunks()) if huge_pages else set()
    session = ort.InferenceSession(path, options or session_options(threads),
                                   providers=["CPUExecutionProvider"])
    new = sorted(set(_core.resident_huge_chunks()) - before) if huge_pages else []
    return session, _core.HugePageCollapse(new)


class Engine:
    """The onnxruntime session of one package. Immutable after construction; thread-safe
    as long as each thread uses its own ``KVCache``.
    """

    def __init__(self, package: ModelPackage, *, threads: int | None = None,
                 huge_pages: bool = True) -> None:
        if threads is not None and threads < 1:
            msg = f"threads={threads}: must be >= 1"
            raise ConfigError(msg)
        shapes = package.shapes
        self.package = package
        self.kv_heads = int(shapes["num_key_value_heads"])
        self.head_dim = int(shapes["head_dim"])
        self.vocab_size = int(shapes["vocab_size"])
        self.threads = threads or _physical_cores()
        # Qwen3.5: a KV cache on the full-attention layers only, two states on the others.
        layer_types = shapes.get("layer_types") or (
            ["full_attention"] * int(shapes["num_hidden_layers"]))
        full = [i for i, t in enumerate(layer_types) if t == "full_attention"]
        linear = [i for i, t in enumerate(layer_types) if t == "linear_attention"]
        self.hybrid = bool(linear)
        self.layers = len(full)  # layers with a KV cache
        self._state_shapes: list[tuple[int, ...]] = []
        self._state_names: list[tuple[str, str]] = []
        if linear:
            lin = shapes["linear_attention"]
            for i in linear:
                self._state_shapes += [tuple(lin["conv_state_shape"]),
                                       tuple(lin["recurrent_state_shape"])]
                self._state_names += [(f"past_conv_state.{i}", f"present_conv_state.{i}"),
                                      (f"past_recurrent_state.{i}", f"present_recurrent_state.{i}")]
        special = package.manifest.get("tokenizer", {}).get("special_tokens", {})
        self._reuse_marker: int | None = special.get("<|im_start|>")

        with native_errors(f"{package.path}: load model"):
            self.session, self._huge_pages = open_session(
                str(package.model_file), self.threads, huge_pages=huge_pages)
        self._kv_names = [
            (f"past_key_values.{i}.{kind}", f"present.{i}.{kind}")
            for i in full for kind in ("key", "value")
        ]
        _check_graph(self.session, package, self._kv_names,
                     list(zip(self._state_names, self._state_shapes, strict=True)))
        # Per cache (so threads with their own caches never share a buffer): an IOBinding
        # with every input and output bound once (see the module docstring).
        self._bindings: weakref.WeakKeyDictionary[KVCache, _Binding] = (
            weakref.WeakKeyDictionary())

    def huge_page_bytes(self) -> int:
        """Bytes of the session's memory moved onto huge pages (waits until that is done)."""
        return self._huge_pages.wait()

    def new_cache(self, max_context: int | None = None, *,
                  snapshot_budget_bytes: int = DEFAULT_SNAPSHOT_BUDGET) -> KVCache:
        """A cache for one conversation (default: min(package limit, 4096) tokens).

        For a hybrid (Qwen3.5) package it is a ``HybridCache``, whose state snapshots take at
        most ``snapshot_budget_bytes`` (ignored otherwise: a KV cache needs none).
        """
        limit = self.package.max_context
        n = max_context or min(limit, DEFAULT_MAX_CONTEXT)
        if n > limit:
            msg = f"max_context={n}: the package supports at most {limit} (re-export with --max-context)"
            raise ConfigError(msg)
        if self.hybrid:
            return HybridCache(layers=self.layers, kv_heads=self.kv_heads, head_dim=self.head_dim,
                               max_context=n, states=self._state_shapes,
                               reuse_marker=self._reuse_marker,
                               snapshot_budget_bytes=snapshot_budget_bytes)
        return KVCache(layers=self.layers, kv_heads=self.kv_heads, head_dim=self.head_dim,
                       max_context=n)

    def _binding(self, cache: KVCache) -> _Binding:
        bound = self._bindings.get(cache)
        if bound is None:
            with native_errors("bind the cache"):
                bound = self._bindings[cache] = self._new_binding(cache)
        return bound

    def _new_binding(self, cache: KVCache) -> _Binding:
        io = self.session.io_binding()
        for (past, present), value in zip(self._kv_names, cache.values, strict=True):
            io.bind_ortvalue_input(past, value)
            io.bind_ortvalue_output(present, value)
        if isinstance(cache, HybridCache):  # states: in place too (the kernels allow it)
            for (past, present), value in zip(self._state_names, cache.state_values,
                                              strict=True):
                io.bind_ortvalue_input(past, value)
                io.bind_ortvalue_output(present, value)
        seqlens, total, keep = (_buffer((1,), np.int32), _buffer((), np.int32),
                                _buffer((), np.int64))
        io.bind_ortvalue_input("seqlens_k", seqlens[1])
        io.bind_ortvalue_input("total_sequence_length", total[1])
        io.bind_ortvalue_input("num_logits_to_keep", keep[1])
        return _Binding(io, seqlens=seqlens[0], total=total[0], keep=keep[0])

    def forward(self, tokens: np.ndarray, cache: KVCache, *, num_logits: int = 1) -> np.ndarray:
        """Append ``tokens`` (int, [n]) to ``cache``; logits [num_logits, vocab] of the last positions.

        The returned array is a view of an internal buffer, valid until the next call.
        """
        tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
        n = tokens.shape[0]
        if n == 0:
            msg = "forward() needs at least one token"
            raise GenerationError(msg)
        if not 1 <= num_logits <= n:
            msg = f"num_logits={num_logits}: must be in [1, {n}]"
            raise ConfigError(msg)
        cache.reserve(n)
        start = 0
        # Prefill in chunks (bounded activations); the last chunk holds the requested logits.
        while n - start > PREFILL_CHUNK and n - start - PREFILL_CHUNK >= num_logits:
            self._run(tokens[start:start + PREFILL_CHUNK], cache, 1)
            start += PREFILL_CHUNK
        return self._run(tokens[start:], cache, num_logits)

    def _run(self, tokens: np.ndarray, cache: KVCache, num_logits: int) -> np.ndarray:
        n = tokens.shape[0]
        total = cache.offset + n
        bound = self._binding(cache)
        if bound.bound != (n, num_logits):
            with native_errors("bind the inputs"):
                bound.rebind(n, num_logits, self.vocab_size)
        bound.ids[n][0][0] = tokens
        bound.seqlens[0] = total - 1
        bound.total[()] = total
        bound.keep[()] = num_logits
        with native_errors("forward"):
            self.session.run_with_iobinding(bound.io)
        cache.offset = total
        logits: np.ndarray = bound.logits[num_logits][0][0]
        return logits


_SCALAR_INPUTS = {"input_ids": "tensor(int64)", "seqlens_k": "tensor(int32)",
                  "total_sequence_length": "tensor(int32)",
                  "num_logits_to_keep": "tensor(int64)"}


def _check_graph(session: ort.InferenceSession, package: ModelPackage,
                 kv_names: list[tuple[str, str]],
                 states: list[tuple[tuple[str, str], tuple[int, ...]]]) -> None:
    """The graph has exactly the inputs and outputs the manifest implies, with its shapes.

    A manifest that does not describe its graph (edited, or from another export: hashes cover
    the files, not the manifest, unless the package is signed) would otherwise load and fail
    at the first generate with onnxruntime's message about dimensions.

    Raises:
        CorruptPackageError: naming the first input or output that does not match.
    """
    shapes = package.shapes
    kv = ("batch_size", int(shapes["num_key_value_heads"]), "max_sequence_length",
          int(shapes["head_dim"]))
    expected_in: dict[str, tuple[str, tuple[object, ...] | None]] = {
        name: (kind, None) for name, kind in _SCALAR_INPUTS.items()}
    expected_out: dict[str, tuple[str, tuple[object, ...] | None]] = {
        "logits": ("tensor(float)", (None, None, int(shapes["vocab_size"])))}
    for past, present in kv_names:
        expected_in[past] = ("tensor(float)", kv)
        expected_out[present] = ("tensor(float)", kv)
    for (past, present), shape in states:  # hybrid (Qwen3.5): the manifest's [1, *state]
        expected_in[past] = expected_out[present] = ("tensor(float)", ("batch_size", *shape[1:]))
    where = f"{package.path}: qwen_edge.json does not match {package.model_file.name}"
    fix = "re-export the model, or restore the package's original qwen_edge.json"
    for kind, expected, actual in (("input", expected_in, session.get_inputs()),
                                   ("output", expected_out, session.get_outputs())):
        graph = {arg.name: arg for arg in actual}
        missing = [name for name in expected if name not in graph]
        extra = [name for name in graph if name not in expected]
        if missing or extra:
            layers = sum(name.startswith(("past_key_values.", "present.")) for name in graph) // 2
            msg = (f"{where}: the manifest says {shapes['num_hidden_layers']} layers, the graph "
                   f"has {kind}s for {layers} ("
                   + (f"missing {kind} {missing[0]!r}" if missing else f"unexpected {kind} "
                      f"{extra[0]!r}") + f"); {fix}")
            raise CorruptPackageError(msg)
        for name, (dtype, dims) in expected.items():
            arg = graph[name]
            if arg.type != dtype:
                msg = f"{where}: {kind} {name!r} is {arg.type}, the engine feeds {dtype}; {fix}"
                raise CorruptPackageError(msg)
            if dims is None:
                continue
            for axis, (want, got) in enumerate(zip(dims, arg.shape, strict=False)):
                # symbolic or unknown axes are bound at run time; fixed ones must agree
                if isinstance(want, int) and isinstance(got, int) and want != got:
                    field = ("shapes.linear_attention" if "_state." in name
                             else _SHAPE_FIELD.get((name == "logits", axis), "shapes"))
                    msg = (f"{where}: {kind} {name!r} has {got} at axis {axis}, the manifest's "
                           f"{field} is {want}; {fix}")
                    raise CorruptPackageError(msg)


_SHAPE_FIELD = {(True, 2): "shapes.vocab_size", (False, 1): "shapes.num_key_value_heads",
                (False, 3): "shapes.head_dim"}

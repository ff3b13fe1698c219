"""Shared test helpers: a minimal onnxruntime loop over an exported decoder graph
(deliberately independent of ``qwen_edge.engine`` so export tests check the graph itself), and
loading the qwen-edge-tiny training scripts (``train/tiny``, not an installed package).
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from types import ModuleType
from typing import Any, TypeAlias

import numpy as np
import onnxruntime as ort

ServeApp: TypeAlias = Callable[..., AbstractContextManager[str]]
"""The ``live_server`` fixture (conftest.py): ``live_server(app) as url`` serves an ASGI app."""


def ref_log_softmax(x: np.ndarray) -> np.ndarray:
    """float64 log-softmax, the reference for the core's logprobs."""
    z = np.asarray(x, dtype=np.float64)
    m = z.max()
    return z - m - np.log(np.exp(z - m).sum())


def ref_entropy(x: np.ndarray) -> float:
    """Entropy (nats) of softmax(x) in float64, the reference for the core's entropy."""
    lp = ref_log_softmax(x)
    p = np.exp(lp)
    return float(-(p[p > 0] * lp[p > 0]).sum())


def grammar_matcher(ll: Any, lark: str) -> Any:
    """An llguidance matcher of a Lark grammar, which must compile without a warning."""
    import llguidance

    grammar = llguidance.LLMatcher.grammar_from_lark(lark)
    assert llguidance.LLMatcher.validate_grammar_with_warnings(grammar, ll) == (False, [])
    return llguidance.LLMatcher(ll, grammar)


def allowed_tokens(matcher: Any, vocab: int) -> np.ndarray:
    """The token ids the matcher allows next."""
    import llguidance.numpy as lln

    bitmask = lln.allocate_token_bitmask(1, vocab)
    lln.fill_next_token_bitmask(matcher, bitmask, 0)
    return np.nonzero(np.unpackbits(bitmask[0].view(np.uint8), bitorder="little"))[0]


def random_walk(matcher: Any, vocab: int, rng: random.Random, preferred: np.ndarray, *,
                prefer_p: float, max_tokens: int, decode: Callable[[list[int]], str]) -> list[int]:
    """Drive a grammar with random allowed tokens until it stops; ``preferred`` (a bool mask
    over the vocabulary) is drawn from with probability ``prefer_p``, so walks end."""
    ids: list[int] = []
    while not matcher.is_stopped():
        assert len(ids) < max_tokens, decode(ids)
        allowed = allowed_tokens(matcher, vocab)
        pool = allowed[preferred[allowed]]
        pool = pool if len(pool) and rng.random() < prefer_p else allowed
        token = int(pool[rng.randrange(len(pool))])
        assert matcher.consume_token(token), matcher.get_error()
        ids.append(token)
    return ids


def smaps_bytes(lo: int, hi: int, field: str) -> int:
    """Sum of ``field`` (e.g. "Rss", "AnonHugePages") in bytes over the mappings of this
    process that overlap [lo, hi) (Linux; madvise and merging move mapping boundaries, so
    a buffer may span several)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and ":" not in head:
            start, end = (int(x, 16) for x in head.split("-"))
            inside = start < hi and end > lo
        elif inside and line.startswith(f"{field}:"):
            total += int(line.split()[1]) * 1024
    return total


# Tiny shapes (see qwen_edge.export.synth.SHAPES) covering the export matrix: tied and untied
# embeddings, head_dim != hidden / heads, GQA ratio 1 and > 1, intermediate sizes that are not
# multiples of the quantization block.
TINY_SHAPES = ("tiny-qwen2", "tiny-qwen2-untied", "tiny-qwen3", "tiny-qwen3-mha")


class GraphRunner:
    """Runs model.onnx of a package, with the KV cache shared between past and present.

    ``shared=True`` binds past and present to one preallocated [1, kv, max_context, head_dim]
    buffer per layer (what the runtime does); ``shared=False`` feeds the growing present back.
    Qwen3.5 packages (``layer_types`` in the manifest) have a KV cache on their full-attention
    layers only, and a conv and a recurrent state on the others: with ``shared=True`` those
    are bound in place too, with ``shared=False`` each step's present state is fed back.
    """

    def __init__(self, package: Path, *, max_context: int = 256, shared: bool = True) -> None:
        manifest = json.loads((package / "qwen_edge.json").read_text())
        s = manifest["shapes"]
        self.layers, self.kv_heads, self.head_dim = (
            s["num_hidden_layers"], s["num_key_value_heads"], s["head_dim"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(package / "model.onnx"), opts,
                                            providers=["CPUExecutionProvider"])
        self.shared = shared
        self.offset = 0
        length = max_context if shared else 0
        layer_types = s.get("layer_types") or ["full_attention"] * self.layers
        self.names: list[str] = []  # past input names, in the order of self.kv
        self.kv = []
        for i, kind in enumerate(layer_types):
            if kind == "full_attention":
                for kv in ("key", "value"):
                    self.names.append(f"past_key_values.{i}.{kv}")
                    self.kv.append(np.zeros((1, self.kv_heads, length, self.head_dim), np.float32))
            else:
                lin = s["linear_attention"]
                self.names += [f"past_conv_state.{i}", f"past_recurrent_state.{i}"]
                self.kv += [np.zeros(lin["conv_state_shape"], np.float32),
                            np.zeros(lin["recurrent_state_shape"], np.float32)]
        self.kv_ort = [ort.OrtValue.ortvalue_from_numpy(a) for a in self.kv]

    def forward(self, tokens: list[int] | np.ndarray, num_logits: int = 1) -> np.ndarray:
        """Append ``tokens`` to the cache and return logits [num_logits, vocab]."""
        ids = np.asarray(tokens, dtype=np.int64).reshape(1, -1)
        total = self.offset + ids.shape[1]
        feeds = {
            "input_ids": ids,
            "seqlens_k": np.array([total - 1], np.int32),
            "total_sequence_length": np.array(total, np.int32),
            "num_logits_to_keep": np.array(num_logits, np.int64),
        }
        names = self.names
        if self.shared:
            binding = self.session.io_binding()
            for name, value in feeds.items():
                binding.bind_cpu_input(name, value)
            binding.bind_output("logits")  # first: outputs come back in binding order
            for name, value in zip(names, self.kv_ort, strict=False):
                binding.bind_ortvalue_input(name, value)
                binding.bind_ortvalue_output(_present(name), value)
            self.session.run_with_iobinding(binding)
            logits = binding.copy_outputs_to_cpu()[0]
        else:
            outputs = self.session.run(None, {**feeds, **dict(zip(names, self.kv, strict=False))})
            logits, self.kv = outputs[0], outputs[1:]
        self.offset = total
        return logits[0]


def _present(past: str) -> str:
    return past.replace("past_key_values", "present").replace("past_", "present_")


def reference_logits(hf_model, ids: list[int]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """transformers' logits for every position of ``ids`` (fp32, eager)."""
    import torch

    with torch.no_grad():
        return hf_model(torch.tensor([ids])).logits[0].float().numpy()


TINY = Path(__file__).resolve().parents[1] / "train" / "tiny"


def load_tiny(name: str) -> ModuleType:
    """``train/tiny/{name}.py`` as the module ``name``, loaded once.

    The scripts import each other by plain name (``import corpus``), so ``train/tiny`` goes on
    ``sys.path`` and each module is registered under that name: tests and scripts share one copy.
    """
    if str(TINY) not in sys.path:
        sys.path.insert(0, str(TINY))
    path = TINY / f"{name}.py"
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__file__", None) == str(path):
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

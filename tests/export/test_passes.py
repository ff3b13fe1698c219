"""Graph passes: idempotent, deterministic, and they leave no fp32 weight matrix behind."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

from qwen_edge.export import ExportConfig
from qwen_edge.export.passes import QuantizeEmbedding, QuantizeMatMulNBits, default_pipeline
from qwen_edge.export.qwen import build_decoder
from qwen_edge.export.synth import SHAPES


def _cfg(shape: str):  # type: ignore[no-untyped-def]
    from qwen_edge.export.hf_config import QwenConfig

    return QwenConfig.from_dict(SHAPES[shape])


def _fp32_model(shape: str) -> ir.Model:
    cfg = _cfg(shape)
    rng = np.random.default_rng(0)
    cache: dict[str, np.ndarray] = {}

    def load(name: str) -> np.ndarray:
        if name not in cache:
            from qwen_edge.export.hf_config import expected_tensors

            cache[name] = rng.standard_normal(expected_tensors(cfg)[name]).astype(np.float32)
        return cache[name]

    return build_decoder(cfg, load, max_context=64)


def _ops(model: ir.Model) -> list[str]:
    return sorted(n.op_type for n in model.graph)


@pytest.mark.parametrize("shape", ["tiny-qwen2", "tiny-qwen2-untied", "tiny-qwen3"])
@pytest.mark.parametrize("bits", [4, 8])
def test_quantization_passes_are_idempotent(shape, bits):  # type: ignore[no-untyped-def]
    model = _fp32_model(shape)
    matmul = QuantizeMatMulNBits(bits=bits, block_size=32)
    embedding = QuantizeEmbedding(bits=bits, block_size=32)
    assert matmul(model).modified
    assert embedding(model).modified
    ops, inits = _ops(model), sorted(model.graph.initializers)
    assert not matmul(model).modified
    assert not embedding(model).modified
    assert (_ops(model), sorted(model.graph.initializers)) == (ops, inits)
    assert "MatMul" not in ops
    assert "Gather" not in ops
    fp32_matrices = [v.name for v in model.graph.initializers.values()
                     if v.dtype == ir.DataType.FLOAT and len(v.shape) == 2
                     and v.name not in ("cos_cache", "sin_cache")
                     and not v.name.endswith(".scales")]
    assert fp32_matrices == []


def test_pipeline_is_deterministic():  # type: ignore[no-untyped-def]
    cfg = ExportConfig(quant="int4", block_size=32)
    a = default_pipeline(cfg)(_fp32_model("tiny-qwen3")).model
    b = default_pipeline(cfg)(_fp32_model("tiny-qwen3")).model
    assert ir.to_proto(a).SerializeToString() == ir.to_proto(b).SerializeToString()


def test_tied_embedding_shares_the_lm_head_bytes():  # type: ignore[no-untyped-def]
    model = _fp32_model("tiny-qwen2")
    QuantizeMatMulNBits(bits=4)(model)
    QuantizeEmbedding(bits=4)(model)
    gather = next(n for n in model.graph if n.op_type == "GatherBlockQuantized")
    head = next(n for n in model.graph if n.name.startswith("/lm_head"))
    assert gather.inputs[0] is head.inputs[1]

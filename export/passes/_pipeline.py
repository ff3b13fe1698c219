"""The default pass pipeline, and the final structural check."""

from __future__ import annotations

from typing import TYPE_CHECKING

import onnx_ir as ir
from onnx_ir.passes import common

from .quantize_embedding import QuantizeEmbedding
from .quantize_matmul import QuantizeMatMulNBits

if TYPE_CHECKING:
    from ..pipeline import ExportConfig

__all__ = ["CheckModel", "default_pipeline"]

BITS = {"int4": 4, "int8": 8}


class CheckModel(ir.passes.InPlacePass):
    """Fail early on a malformed graph: every node input is produced, every output named.

    (onnx.checker would need the weights in memory or on disk; this check needs neither.)
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        known = {v.name for v in graph.inputs} | set(graph.initializers)
        for node in graph:
            for value in node.inputs:
                if value is not None and value.producer() is None and value.name not in known:
                    msg = f"{node.name}: input {value.name!r} is neither produced nor an input"
                    raise ir.passes.PostconditionError(msg)
            known.update(v.name for v in node.outputs)
        names = [v.name for v in graph.outputs]
        if None in names or len(set(names)) != len(names):
            msg = f"graph outputs must have unique names, got {names}"
            raise ir.passes.PostconditionError(msg)
        return ir.passes.PassResult(model, modified=False)


def default_pipeline(cfg: ExportConfig) -> ir.passes.PassManager:
    """Quantize (for int4 / int8), drop what became unused, check, sort."""
    passes: list[ir.passes.PassBase] = []
    if cfg.quant in BITS:
        bits = BITS[cfg.quant]
        head_bits = BITS[cfg.embedding_quant or cfg.quant]
        layer_bits = {i: BITS.get(q) for i, q in (cfg.layer_quant or {}).items()}  # fp32: None
        passes += [
            QuantizeMatMulNBits(bits=bits, head_bits=head_bits, layer_bits=layer_bits,
                                block_size=cfg.block_size,
                                accuracy_level=cfg.accuracy_level, symmetric=cfg.symmetric,
                                search=cfg.symmetric and cfg.scale_search),
            QuantizeEmbedding(bits=head_bits, block_size=cfg.block_size, symmetric=cfg.symmetric,
                              search=cfg.symmetric and cfg.scale_search),
        ]
    passes += [common.RemoveUnusedNodesPass(), CheckModel(), common.TopologicalSortPass()]
    return ir.passes.PassManager(passes)

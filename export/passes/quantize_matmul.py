"""QuantizeMatMulNBits: fp32 MatMul on a constant weight -> MatMulNBits.

Before::

    x ──► MatMul(W^T: f32[K, N]) ──► y

After::

    x ──► MatMulNBits(B: u8[N, k_blocks, blob], scales: f32[N, k_blocks]
                      [, zero_points: u8[N, ceil(k_blocks*bits/8)]]) ──► y

Weights are quantized block-wise along K (``quant.quantize_blockwise``) when the writer
reaches them, so no quantized copy of the whole model is ever held. ``symmetric=True`` (what
``ExportConfig`` asks for by default) writes no zero points: the op then applies its default
zero point 2^(bits-1), the form onnxruntime-genai and llama.cpp's Q4_0 use, and one that
onnxruntime's int8-activation kernels run faster on some CPUs; ``search=True`` chooses each
block's scale by least squares.
``symmetric=False`` (this class's own default, for direct use) adds a zero point per block,
more accurate on skewed blocks. ``accuracy_level=4`` lets onnxruntime quantize the activations
to int8 per block and use its integer dot-product kernels, the fast path on CPU.

A following bias Add stays a separate Add, as in onnxruntime-genai's graphs: folding it into
MatMulNBits' bias input saves a node but did not decode faster (benches/README.md,
"Measurement log"), and keeping genai's form keeps the graphs comparable.

Only MatMuls whose weight came from a checkpoint (metadata ``qwen_edge.transposed``) are
touched, so running the pass twice changes nothing the second time.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import onnx_ir as ir
from onnx_ir.passes.common import RemoveUnusedNodesPass

from ..graph import MS_DOMAIN, SOURCE_KEY, SOURCE_LOADER, TRANSPOSED_KEY
from ._lazy import LazyQuantized

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np

    from ..quant import QuantizedWeight

__all__ = ["QuantizeMatMulNBits", "is_head", "layer_index"]

BITS_KEY = "qwen_edge.bits"
BLOCK_KEY = "qwen_edge.block_size"
ROLE_KEY = "qwen_edge.role"  # qweight | scales | zero_points
LAZY_META = "qwen_edge.lazy"  # in-memory only: the LazyQuantized behind a qweight


class QuantizeMatMulNBits(ir.passes.InPlacePass):
    """Replace weight MatMuls by MatMulNBits with ``bits``-bit block-wise weights."""

    def __init__(self, *, bits: int, head_bits: int | None = None,
                 layer_bits: Mapping[int, int | None] | None = None, block_size: int = 32,
                 accuracy_level: int = 4, symmetric: bool = False, search: bool = False) -> None:
        super().__init__()
        self.bits = bits
        self.head_bits = bits if head_bits is None else head_bits  # the lm_head's (is_head)
        # per decoder layer (layer_index): other bits, or None to leave its MatMuls fp32
        self.layer_bits = dict(layer_bits or {})
        self.block_size = block_size
        self.accuracy_level = accuracy_level
        self.symmetric = symmetric  # no zero points: the ops' default 2^(bits-1) applies
        self.search = search  # least-squares scale search (symmetric only; quant.py)

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        modified = False
        for node in list(graph):
            if node.op_type != "MatMul" or node.domain != "":
                continue
            weight = node.inputs[1]
            if (
                weight is None
                or weight.const_value is None
                or weight.metadata_props.get(TRANSPOSED_KEY) != "1"
                or weight.shape is None
                or len(weight.shape) != 2
            ):
                continue
            bits = self._bits(weight.metadata_props.get(SOURCE_KEY, weight.name or ""))
            if bits is None:
                continue
            self._replace(graph, node, weight, bits)
            modified = True
        if modified:
            RemoveUnusedNodesPass()(model)
        return ir.passes.PassResult(model, modified)

    def _bits(self, source: str) -> int | None:
        if is_head(source):
            return self.head_bits
        layer = layer_index(source)
        return self.layer_bits.get(layer, self.bits) if layer is not None else self.bits

    def _replace(self, graph: ir.Graph, node: ir.Node, weight: ir.Value, bits: int) -> None:
        assert weight.shape is not None
        k, n = weight.shape.numpy()  # weight holds W^T: [K, N]
        transposed = weight.const_value
        assert transposed is not None
        source = weight.metadata_props.get(SOURCE_KEY, weight.name or "")
        # Read W [N, K] straight from the checkpoint when the builder left us its loader.
        load_w = weight.meta.get(SOURCE_LOADER) or (lambda: transposed.numpy().T)
        lazy = LazyQuantized(load_w, bits=bits, block_size=self.block_size,
                             symmetric=self.symmetric, search=self.search, shape=(n, k))
        base = weight.name[:-2] if weight.name and weight.name.endswith(".T") else weight.name
        meta = {SOURCE_KEY: source, BITS_KEY: str(bits), BLOCK_KEY: str(self.block_size)}
        blob = self.block_size * bits // 8
        zp_bytes = -(-lazy.k_blocks * bits // 8)
        qweight = lazy.part(f"{base}.qweight", lambda q: q.packed, ir.DataType.UINT8,
                            (n, lazy.k_blocks, blob), {**meta, ROLE_KEY: "qweight"})
        scales = lazy.part(f"{base}.scales", lambda q: q.scales, ir.DataType.FLOAT,
                           (n, lazy.k_blocks), {**meta, ROLE_KEY: "scales"})
        zeros = None if self.symmetric else lazy.part(
            f"{base}.zero_points", _zero_points, ir.DataType.UINT8, (n, zp_bytes),
            {**meta, ROLE_KEY: "zero_points"})
        qweight.meta[LAZY_META] = lazy
        for value in (qweight, scales, zeros):
            if value is not None:
                graph.register_initializer(value)

        output = node.outputs[0]
        name = (node.name or "").replace("/MatMul", "/MatMulNBits")
        new = ir.Node(
            MS_DOMAIN, "MatMulNBits",
            [node.inputs[0], qweight, scales, *([zeros] if zeros is not None else [])],
            ir.convenience.convert_attributes({
                "K": k, "N": n, "bits": bits, "block_size": self.block_size,
                "accuracy_level": self.accuracy_level,
            }),
            name=name, num_outputs=1,
        )
        graph.insert_before(node, new)
        is_output = output in graph.outputs
        old_name = output.name
        ir.convenience.replace_all_uses_with(output, new.outputs[0], replace_graph_outputs=True)
        output.name = None  # free the name for the new value
        new.outputs[0].name = old_name if is_output else f"{name}/output_0"


def is_head(source: str) -> bool:
    """Whether a checkpoint tensor is the token embedding or the lm_head (``head_bits``).

    A tied lm_head's MatMul reads the embedding table itself (Qwen3.5 nests it under
    ``model.language_model.``), so both names count.
    """
    return source.endswith(("embed_tokens.weight", "lm_head.weight"))


def layer_index(source: str) -> int | None:
    """The decoder layer a checkpoint tensor belongs to (``model.layers.7.mlp...`` -> 7)."""
    match = _LAYER.search(source)
    return int(match.group(1)) if match else None


_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def _zero_points(q: QuantizedWeight) -> np.ndarray:
    """The zero points of an asymmetric quantization (only asymmetric passes ask for them)."""
    assert q.zero_points is not None
    return q.zero_points

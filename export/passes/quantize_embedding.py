"""QuantizeEmbedding: the token lookup Gather -> GatherBlockQuantized, sharing a tied lm_head.

The 151,936 x hidden embedding is the largest matrix of a small Qwen. With tied embeddings it
is also the lm_head, which ``QuantizeMatMulNBits`` has already turned into MatMulNBits; the
lookup then reads the very same packed bytes.

Before (tied)::

    ids ──► Gather(E: f32[V, H])                      h ──► MatMulNBits(Bq: u8[V, nb, blob], S, Z)

After::

    ids ──► GatherBlockQuantized(Bq, Reshape(S) -> [V, nb, 1], Zg: u8[V, nb, 1])
        ──► Reshape [.., nb * block] (──► Slice [.., :H] when H is not a multiple of block)
                                                      h ──► MatMulNBits(Bq, S, Z)   (unchanged)

GatherBlockQuantized reads ``Bq`` as data of shape [V, nb, blob] quantized along its last axis,
so one block is one row of the last axis; its zero points are one per byte (shape [V, nb, 1]),
which is why they are a separate (small) initializer. MatMulNBits wants scales [V, nb], the
gather [V, nb, 1]: a Reshape bridges them (onnxruntime folds it at load time). Untied models get
their own quantized table in the same layout.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx_ir as ir
from onnx_ir.passes.common import RemoveUnusedNodesPass

from ..graph import MS_DOMAIN, SOURCE_KEY, TRANSPOSED_KEY
from ._lazy import LazyQuantized
from .quantize_matmul import BITS_KEY, BLOCK_KEY, LAZY_META, ROLE_KEY

__all__ = ["QuantizeEmbedding"]


class QuantizeEmbedding(ir.passes.InPlacePass):
    """Replace the embedding Gather by GatherBlockQuantized (``bits`` in {4, 8})."""

    def __init__(self, *, bits: int, block_size: int = 32, symmetric: bool = False,
                 search: bool = False) -> None:
        super().__init__()
        self.bits = bits
        self.block_size = block_size
        self.symmetric = symmetric
        self.search = search

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        modified = False
        for node in list(graph):
            table = node.inputs[0] if node.inputs else None
            if (
                node.op_type != "Gather"
                or node.domain != ""
                or table is None
                or table.const_value is None
                or table.metadata_props.get(TRANSPOSED_KEY) == "1"
                or table.shape is None
                or len(table.shape) != 2
                or node.attributes.get_int("axis", 0) != 0
            ):
                continue
            self._replace(model, graph, node, table)
            modified = True
        if modified:
            RemoveUnusedNodesPass()(model)
        return ir.passes.PassResult(model, modified)

    def _find_tied(self, graph: ir.Graph, source: str) -> dict[str, ir.Value]:
        """The lm_head MatMulNBits initializers quantized from the same source, if any."""
        parts: dict[str, ir.Value] = {}
        for value in graph.initializers.values():
            meta = value.metadata_props
            if (
                meta.get(SOURCE_KEY) == source
                and meta.get(BITS_KEY) == str(self.bits)
                and meta.get(BLOCK_KEY) == str(self.block_size)
                and ROLE_KEY in meta
            ):
                parts[meta[ROLE_KEY]] = value
        if {"qweight", "scales"} <= parts.keys() and LAZY_META in parts["qweight"].meta:
            return parts
        return {}

    def _replace(self, model: ir.Model, graph: ir.Graph, node: ir.Node, table: ir.Value) -> None:
        del model
        assert table.shape is not None
        vocab, hidden = table.shape.numpy()
        source = table.metadata_props.get(SOURCE_KEY, table.name or "")
        name = (node.name or "/model/embed_tokens/Gather").replace("/Gather", "")
        k_blocks = -(-hidden // self.block_size)
        blob = self.block_size * self.bits // 8
        tensor = table.const_value
        assert tensor is not None
        meta = {SOURCE_KEY: source, BITS_KEY: str(self.bits), BLOCK_KEY: str(self.block_size)}
        tied = self._find_tied(graph, source)
        if tied:  # reuse the lm_head's bytes, and its quantization for the zero points
            qweight = tied["qweight"]
            scales_2d = tied["scales"]
            lazy = qweight.meta[LAZY_META]
        else:
            lazy = LazyQuantized(tensor.numpy, bits=self.bits, block_size=self.block_size,
                                 symmetric=self.symmetric, search=self.search,
                                 shape=(vocab, hidden))
            qweight = lazy.part(f"{source}.qweight", lambda q: q.packed, ir.DataType.UINT8,
                                (vocab, k_blocks, blob), {**meta, ROLE_KEY: "qweight"})
            scales_2d = lazy.part(f"{source}.scales", lambda q: q.scales, ir.DataType.FLOAT,
                                  (vocab, k_blocks), {**meta, ROLE_KEY: "scales"})
            graph.register_initializer(qweight)
            graph.register_initializer(scales_2d)
        zeros = None
        if not self.symmetric:  # symmetric: both ops default to the zero point 2^(bits-1)
            zeros = lazy.part(f"{source}.gather_zero_points", lambda q: q.gather_zero_points(),
                              ir.DataType.UINT8, (vocab, k_blocks, 1),
                              {**meta, ROLE_KEY: "gather_zp"})
            graph.register_initializer(zeros)

        def const(const_name: str, array: np.ndarray) -> ir.Value:
            existing = graph.initializers.get(const_name)
            if existing is not None:
                return existing
            value = ir.Value(name=const_name, shape=ir.Shape(array.shape),
                             type=ir.TensorType(ir.DataType.INT64), const_value=ir.tensor(array))
            graph.register_initializer(value)
            return value

        new_nodes: list[ir.Node] = []

        def add(op_type: str, inputs: list[ir.Value | None], attrs: Mapping[str, int],
                node_name: str, domain: str = "") -> ir.Value:
            n = ir.Node(domain, op_type, inputs, ir.convenience.convert_attributes(attrs),
                        name=node_name, num_outputs=1)
            n.outputs[0].name = f"{node_name}/output_0"
            new_nodes.append(n)
            return n.outputs[0]

        scales = add("Reshape", [scales_2d, const(f"{name}/scales_shape",
                                                   np.array([vocab, k_blocks, 1]))],
                     {}, f"{name}/scales/Reshape")
        gathered = add(
            "GatherBlockQuantized", [qweight, node.inputs[1], scales, zeros],
            {"bits": self.bits, "block_size": self.block_size, "gather_axis": 0,
             "quantize_axis": 2},
            f"{name}/GatherBlockQuantized", MS_DOMAIN,
        )
        # [.., nb, block] -> [.., nb * block]
        out = add("Reshape", [gathered, const(f"{name}/flat_shape",
                                              np.array([0, 0, k_blocks * self.block_size]))],
                  {}, f"{name}/Reshape")
        if k_blocks * self.block_size != hidden:  # drop the zero-padded tail of the last block
            out = add("Slice", [out, const(f"{name}/zero", np.array([0])),
                                const(f"{name}/hidden", np.array([hidden])),
                                const(f"{name}/axis", np.array([2]))],
                      {}, f"{name}/Slice")
        for n in new_nodes:
            graph.insert_before(node, n)
        ir.convenience.replace_all_uses_with(node.outputs[0], out)

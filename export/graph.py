"""GraphBuilder: the mechanics of building an ONNX graph with onnx-ir (naming, nodes, lazy weights).

It knows nothing about Qwen: ``qwen.py`` describes the decoder with it. Node names follow
onnxruntime-genai's convention (``/model/layers.{i}/attn/q_proj/MatMul``) and a node's outputs
are ``{node}/output_{j}``, so a profile or a Netron view reads like the model.

Weights are ``onnx_ir.LazyTensor``: a closure that reads (and converts, or quantizes) one
tensor only when the writer serializes it, so the exporter never holds the whole model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

__all__ = ["MS_DOMAIN", "OPSET", "SOURCE_KEY", "SOURCE_LOADER", "TRANSPOSED_KEY", "GraphBuilder",
           "lazy_initializer"]

OPSET = 21
MS_DOMAIN = "com.microsoft"

# Initializer metadata keys (read by passes, e.g. to find a tied embedding).
SOURCE_KEY = "qwen_edge.source"  # the checkpoint tensor an initializer comes from
TRANSPOSED_KEY = "qwen_edge.transposed"  # "1" when the initializer holds source.T
SOURCE_LOADER = "qwen_edge.load_source"  # in-memory meta: () -> the source tensor itself


def lazy_initializer(
    name: str,
    load: Callable[[], np.ndarray],
    dtype: ir.DataType,
    shape: Sequence[int],
    metadata: Mapping[str, str] | None = None,
) -> ir.Value:
    """An initializer whose bytes are produced by ``load()`` when it is written."""

    def func() -> ir.TensorProtocol:
        return ir.Tensor(np.ascontiguousarray(load()), dtype=dtype)

    tensor = ir.LazyTensor(func, dtype=dtype, shape=ir.Shape(shape), name=name)
    return ir.Value(
        name=name,
        shape=ir.Shape(shape),
        type=ir.TensorType(dtype),
        const_value=tensor,
        metadata_props=dict(metadata or {}),
    )


class GraphBuilder:
    """Collects inputs, nodes, initializers and outputs, then makes an ``ir.Model``."""

    def __init__(self) -> None:
        self.inputs: list[ir.Value] = []
        self.outputs: list[ir.Value] = []
        self.nodes: list[ir.Node] = []
        self.initializers: dict[str, ir.Value] = {}

    # -- values ---------------------------------------------------------------------------

    def input(self, name: str, dtype: ir.DataType, shape: Sequence[int | str]) -> ir.Value:
        value = ir.Value(name=name, shape=ir.Shape(shape), type=ir.TensorType(dtype))
        self.inputs.append(value)
        return value

    def output(self, value: ir.Value, name: str) -> None:
        value.name = name
        self.outputs.append(value)

    def initializer(self, value: ir.Value) -> ir.Value:
        if value.name in self.initializers:
            msg = f"initializer {value.name!r} defined twice"
            raise ValueError(msg)
        assert value.name is not None
        self.initializers[value.name] = value
        return value

    def weight(
        self,
        name: str,
        load: Callable[[], np.ndarray],
        shape: Sequence[int],
        dtype: ir.DataType = ir.DataType.FLOAT,
        metadata: Mapping[str, str] | None = None,
    ) -> ir.Value:
        """A lazily loaded initializer (shared if the same name is asked twice)."""
        if name in self.initializers:
            return self.initializers[name]
        return self.initializer(lazy_initializer(name, load, dtype, shape, metadata))

    def const(self, name: str, array: np.ndarray | float | Sequence[int]) -> ir.Value:
        """A small constant initializer (shared by name)."""
        if name in self.initializers:
            return self.initializers[name]
        data = np.asarray(array)
        tensor = ir.tensor(data, name=name)
        value = ir.Value(
            name=name, shape=ir.Shape(data.shape), type=ir.TensorType(tensor.dtype),
            const_value=tensor,
        )
        return self.initializer(value)

    # -- nodes ----------------------------------------------------------------------------

    def op(
        self,
        op_type: str,
        inputs: Sequence[ir.Value | None],
        attributes: Mapping[str, Any] | None = None,
        *,
        name: str,
        domain: str = "",
        num_outputs: int = 1,
    ) -> ir.Value:
        """Add one node and return its first output."""
        return self.op_multi(
            op_type, inputs, attributes, name=name, domain=domain, num_outputs=num_outputs
        )[0]

    def op_multi(
        self,
        op_type: str,
        inputs: Sequence[ir.Value | None],
        attributes: Mapping[str, Any] | None = None,
        *,
        name: str,
        domain: str = "",
        num_outputs: int = 1,
        unused: Sequence[int] = (),
    ) -> Sequence[ir.Value]:
        """Add one node and return all its outputs (named ``{name}/output_{j}``).

        ``unused``: optional outputs to leave out (empty names), so the kernel neither
        computes nor allocates them.
        """
        attrs = ir.convenience.convert_attributes(attributes or {})
        outputs = [ir.Value(name="" if j in unused else f"{name}/output_{j}")
                   for j in range(num_outputs)]
        node = ir.Node(domain, op_type, inputs, attrs, outputs=outputs, name=name)
        self.nodes.append(node)
        return node.outputs

    # -- model ----------------------------------------------------------------------------

    def build(self, *, metadata: Mapping[str, str] | None = None) -> ir.Model:
        graph = ir.Graph(
            self.inputs,
            self.outputs,
            nodes=self.nodes,
            initializers=list(self.initializers.values()),
            opset_imports={"": OPSET, MS_DOMAIN: 1},
            name="qwen_edge_decoder",
        )
        return ir.Model(
            graph,
            ir_version=10,
            producer_name="qwen-edge",
            metadata_props=dict(metadata or {}),
        )

"""Lazy quantized initializers: quantize a weight once, when the writer reaches its first part.

A quantized weight is written as several initializers (packed bits, scales, zero points). Each
is a ``LazyTensor`` over one shared ``LazyQuantized``, which quantizes on the first read and
forgets the result once every part has been read, so the exporter holds at most one
quantized weight (plus the fp32 tensor it came from) at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from ..quant import QuantizedWeight, quantize_blockwise

__all__ = ["LazyQuantized"]


class LazyQuantized:
    """Quantizes ``source()`` ([N, K] float32) on demand; parts are read through ``part``."""

    def __init__(
        self, source: Callable[[], np.ndarray], *, bits: int, block_size: int, symmetric: bool,
        shape: tuple[int, int], search: bool = False,
    ) -> None:
        self._source = source
        self.bits = bits
        self.block_size = block_size
        self.symmetric = symmetric
        self.search = search
        self.N, self.K = shape
        self.k_blocks = -(-self.K // block_size)
        self._lock = threading.Lock()
        self._result: QuantizedWeight | None = None
        self._parts = 0
        self._reads = 0

    def _get(self) -> QuantizedWeight:
        if self._result is None:
            self._result = quantize_blockwise(
                self._source(), bits=self.bits, block_size=self.block_size,
                symmetric=self.symmetric, search=self.search,
            )
        return self._result

    def part(
        self, name: str, pick: Callable[[QuantizedWeight], np.ndarray], dtype: ir.DataType,
        shape: tuple[int, ...], metadata: dict[str, str] | None = None,
    ) -> ir.Value:
        """A new initializer holding ``pick(quantized)``, computed lazily."""
        self._parts += 1

        def func() -> ir.TensorProtocol:
            with self._lock:
                array = np.ascontiguousarray(pick(self._get()))
                self._reads += 1
                if self._reads >= self._parts:  # every part written: free the memory
                    self._result = None
                    self._reads = 0
            return ir.Tensor(array.reshape(shape), dtype=dtype)

        tensor = ir.LazyTensor(func, dtype=dtype, shape=ir.Shape(shape), name=name)
        return ir.Value(name=name, shape=ir.Shape(shape), type=ir.TensorType(dtype),
                        const_value=tensor, metadata_props=dict(metadata or {}))

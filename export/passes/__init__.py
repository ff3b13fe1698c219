"""Graph passes over the fp32 decoder; ``default_pipeline`` picks them for an export config."""

from __future__ import annotations

from ._pipeline import CheckModel, default_pipeline
from .quantize_embedding import QuantizeEmbedding
from .quantize_matmul import QuantizeMatMulNBits

__all__ = ["CheckModel", "QuantizeEmbedding", "QuantizeMatMulNBits", "default_pipeline"]

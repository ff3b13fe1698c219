"""The export toolchain: Hugging Face Qwen checkpoints -> quantized ONNX model packages.

Installed as ``qwen_edge.export`` (needs ``pip install "qwen-edge[export]"``); the runtime
never imports it.
"""

from __future__ import annotations

from .pipeline import QUANT_METHODS, ExportConfig, ExportResult, export_model

__all__ = ["QUANT_METHODS", "ExportConfig", "ExportResult", "export_model"]

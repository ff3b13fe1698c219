"""qwen-edge: on-device inference for small Qwen models.

The runtime (this package) needs only onnxruntime, numpy, tokenizers, jinja2 and the compiled
core. The export toolchain is ``qwen_edge.export`` (extra ``qwen-edge[export]``), imported
explicitly and never by the runtime.
"""

from __future__ import annotations

from .errors import (
    CheckpointError,
    ConfigError,
    ContextLengthError,
    CorruptPackageError,
    ExportError,
    GenerationError,
    GrammarError,
    HubUnavailableError,
    IncompatiblePackageError,
    OutputExistsError,
    PackageError,
    PackageNotFoundError,
    QwenEdgeError,
    RemoteError,
    RemoteResponseError,
    RemoteUnavailableError,
    TokenizerError,
    ToolCallParseError,
    ToolError,
    ToolExecutionError,
    ToolPermissionError,
    UnknownToolError,
    UnsupportedArchitectureError,
)
from .package import ModelPackage, read_package

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ContextLengthError",
    "CorruptPackageError",
    "ExportError",
    "GenerationError",
    "GrammarError",
    "HubUnavailableError",
    "IncompatiblePackageError",
    "ModelPackage",
    "OutputExistsError",
    "PackageError",
    "PackageNotFoundError",
    "QwenEdgeError",
    "RemoteError",
    "RemoteResponseError",
    "RemoteUnavailableError",
    "TokenizerError",
    "ToolCallParseError",
    "ToolError",
    "ToolExecutionError",
    "ToolPermissionError",
    "UnknownToolError",
    "UnsupportedArchitectureError",
    "__version__",
    "read_package",
]

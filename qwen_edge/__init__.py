"""qwen-edge: on-device inference for small Qwen models.

The runtime (this package) needs only onnxruntime, numpy, tokenizers, jinja2 and the compiled
core. The export toolchain is ``qwen_edge.export`` (extra ``qwen-edge[export]``), imported
explicitly and never by the runtime.
"""

from __future__ import annotations

from .agents.agent import Agent, AgentResult
from .agents.tools import Tool, tool
from .config import GenerationConfig, SamplingConfig
from .default_model import load_default
from .errors import (
    AuditLogError,
    AuditTamperedError,
    BrokenStreamError,
    CheckpointError,
    ConfigError,
    ContextLengthError,
    CorruptPackageError,
    ExportError,
    GenerationError,
    GrammarError,
    HubUnavailableError,
    IncompatiblePackageError,
    IntegrityError,
    OutputExistsError,
    PackageError,
    PackageNotFoundError,
    QwenEdgeError,
    RemoteError,
    RemoteResponseError,
    RemoteUnavailableError,
    SignatureError,
    StoreError,
    TokenizerError,
    ToolArgumentsError,
    ToolCallParseError,
    ToolError,
    ToolExecutionError,
    ToolPermissionError,
    UnknownToolError,
    UnsupportedArchitectureError,
    UpdateError,
)
from .fleet.store import Store
from .generate import GenerationChunk
from .model import Completion, Model, Session, load
from .package import ModelPackage, read_package
from .routing import Backend, LocalBackend, RemoteBackend, Router, RoutingPolicy
from .routing.remote import Remote
from .tool_formats import parse_tool_calls
from .types import ChatDelta, ChatResponse, Usage

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentResult",
    "AuditLogError",
    "AuditTamperedError",
    "Backend",
    "BrokenStreamError",
    "ChatDelta",
    "ChatResponse",
    "CheckpointError",
    "Completion",
    "ConfigError",
    "ContextLengthError",
    "CorruptPackageError",
    "ExportError",
    "GenerationChunk",
    "GenerationConfig",
    "GenerationError",
    "GrammarError",
    "HubUnavailableError",
    "IncompatiblePackageError",
    "IntegrityError",
    "LocalBackend",
    "Model",
    "ModelPackage",
    "OutputExistsError",
    "PackageError",
    "PackageNotFoundError",
    "QwenEdgeError",
    "Remote",
    "RemoteBackend",
    "RemoteError",
    "RemoteResponseError",
    "RemoteUnavailableError",
    "Router",
    "RoutingPolicy",
    "SamplingConfig",
    "Session",
    "SignatureError",
    "Store",
    "StoreError",
    "TokenizerError",
    "Tool",
    "ToolArgumentsError",
    "ToolCallParseError",
    "ToolError",
    "ToolExecutionError",
    "ToolPermissionError",
    "UnknownToolError",
    "UnsupportedArchitectureError",
    "UpdateError",
    "Usage",
    "__version__",
    "load",
    "load_default",
    "parse_tool_calls",
    "read_package",
    "tool",
]

"""Every exception qwen-edge raises on purpose.

One hierarchy, so that ``except QwenEdgeError`` catches everything the SDK reports and
``except ValueError`` still catches bad arguments::

    QwenEdgeError
    ├── ConfigError(ValueError)            bad argument or config value
    ├── PackageError
    │   ├── PackageNotFoundError(FileNotFoundError)
    │   ├── CorruptPackageError            a file is missing or its sha256 differs
    │   │   └── IntegrityError             a file differs from what the signature covers
    │   ├── SignatureError                 unsigned, bad signature, or an untrusted key
    │   └── IncompatiblePackageError       unknown format_version, wrong architecture
    ├── ExportError
    │   ├── CheckpointError                missing/corrupt config.json or safetensors
    │   ├── UnsupportedArchitectureError
    │   ├── HubUnavailableError            a hub id was given and the hub cannot be reached
    │   └── OutputExistsError(FileExistsError)
    ├── TokenizerError
    ├── GenerationError
    │   ├── ContextLengthError             the prompt (plus generation) does not fit
    │   └── GrammarError                   a json_schema / regex / grammar llguidance rejects
    ├── ToolError
    │   ├── ToolCallParseError
    │   ├── ToolArgumentsError             arguments do not match the tool's schema
    │   ├── UnknownToolError
    │   ├── ToolPermissionError
    │   ├── ToolExecutionError
    │   └── AuditLogError                  the audit log cannot be written or read
    │       └── AuditTamperedError         a record was edited, deleted or reordered
    ├── StoreError                         the on-device model store (qwen_edge.Store)
    │   └── UpdateError                    an update was refused (TUF metadata, archive)
    └── RemoteError
        ├── RemoteUnavailableError         connection refused, timeout, broken stream
        │   └── BrokenStreamError          a streamed answer stopped midway (.partial)
        └── RemoteResponseError            the server answered with an error status

Messages name the thing that is wrong and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "AuditLogError",
    "AuditTamperedError",
    "BrokenStreamError",
    "CheckpointError",
    "ConfigError",
    "ContextLengthError",
    "CorruptPackageError",
    "ExportError",
    "GenerationError",
    "GrammarError",
    "HubUnavailableError",
    "IncompatiblePackageError",
    "IntegrityError",
    "OutputExistsError",
    "PackageError",
    "PackageNotFoundError",
    "QwenEdgeError",
    "RemoteError",
    "RemoteResponseError",
    "RemoteUnavailableError",
    "SignatureError",
    "StoreError",
    "TokenizerError",
    "ToolArgumentsError",
    "ToolCallParseError",
    "ToolError",
    "ToolExecutionError",
    "ToolPermissionError",
    "UnknownToolError",
    "UnsupportedArchitectureError",
    "UpdateError",
]


class QwenEdgeError(Exception):
    """Base class of every error qwen-edge raises on purpose.

    Example:
        >>> try:
        ...     qwen_edge.load("missing/")
        ... except qwen_edge.QwenEdgeError as exc:
        ...     print(exc)
    """


class ConfigError(QwenEdgeError, ValueError):
    """An argument or configuration value is out of range.

    Example: ``SamplingConfig(temperature=-1)`` -> ``temperature=-1: must be >= 0``.
    """


# -- packages -----------------------------------------------------------------------------


class PackageError(QwenEdgeError):
    """A model package cannot be used."""


class PackageNotFoundError(PackageError, FileNotFoundError):
    """The package folder or its manifest ``qwen_edge.json`` does not exist.

    Example: ``qwen_edge.load("nope/")`` -> ``nope: not a model package (no qwen_edge.json)``.
    """


class CorruptPackageError(PackageError):
    """A file of the package is missing, or its sha256 differs from the manifest.

    Example: ``model.onnx.data: sha256 mismatch (expected 3f2a..., got 9c1b...)``.
    """


class IntegrityError(CorruptPackageError):
    """A file of a signed package differs from what its signature covers (or is missing/extra).

    Example: ``model.onnx.data: digest differs from the signed manifest``.
    """


class SignatureError(PackageError):
    """A package must be signed by a trusted key and is not: no signature, a signature that
    does not verify, or a key that is not among the trusted keys.

    Example: ``pkg/: not signed (no model.sig); sign it with `qwen-edge sign```.
    """


class IncompatiblePackageError(PackageError):
    """The package was written by an incompatible qwen-edge (unknown ``format_version``)."""


# -- export -------------------------------------------------------------------------------


class ExportError(QwenEdgeError):
    """Turning a checkpoint into a model package failed."""


class CheckpointError(ExportError):
    """The Hugging Face checkpoint is missing a file, or a file is corrupt or inconsistent.

    Example: ``ckpt/: no config.json; pass a Hugging Face checkpoint folder``.
    """


class UnsupportedArchitectureError(ExportError):
    """The checkpoint's architecture is not one qwen-edge can export.

    Example: ``LlamaForCausalLM is not supported; supported: Qwen2ForCausalLM, Qwen3ForCausalLM``.
    """


class HubUnavailableError(ExportError):
    """A hub id was given but the Hugging Face hub cannot be reached (offline)."""


class OutputExistsError(ExportError, FileExistsError):
    """The output folder exists; pass ``force=True`` (``--force``) to replace it."""


# -- runtime ------------------------------------------------------------------------------


class TokenizerError(QwenEdgeError):
    """The tokenizer cannot be built or loaded, or cannot encode the input."""


class GenerationError(QwenEdgeError):
    """Generation cannot start or continue."""


class ContextLengthError(GenerationError):
    """The prompt does not fit in the context window.

    Example: ``prompt has 4100 tokens; the context holds 4096 (max_context)``.
    """


class GrammarError(GenerationError):
    """A ``json_schema``, ``regex`` or ``grammar`` constraint is invalid."""


# -- tools --------------------------------------------------------------------------------


class ToolError(QwenEdgeError):
    """A tool could not be declared, parsed, allowed or run."""


class ToolCallParseError(ToolError):
    """The model's ``<tool_call>`` block is not valid JSON of the expected shape."""


class ToolArgumentsError(ToolError):
    """The arguments of a call do not validate against the tool's JSON schema.

    Example: ``set_timer: arguments['minutes']: 'five' is not of type 'integer'``.
    """


class UnknownToolError(ToolError):
    """The model called a tool that was not offered."""


class ToolPermissionError(ToolError):
    """The policy denied the call."""


class ToolExecutionError(ToolError):
    """The tool raised or timed out."""


class AuditLogError(ToolError):
    """The audit log (SQLite) cannot be written or read: disk full, locked too long."""


class AuditTamperedError(AuditLogError):
    """The audit log's hash chain is broken: a record was edited, deleted, reordered or
    inserted after it was written. ``record_id`` is the first record that does not match.

    Example: ``audit.db: record 7 was changed after it was written (its content does not
    match its hash)``.
    """

    def __init__(self, message: str, record_id: int) -> None:
        super().__init__(message)
        self.record_id = record_id


# -- model store --------------------------------------------------------------------------


class StoreError(QwenEdgeError):
    """The on-device model store cannot do what was asked (unknown model or version,
    nothing to roll back to, a damaged store)."""


class UpdateError(StoreError):
    """An update was refused: TUF metadata or the archive failed verification, the archive is
    unsafe to unpack, or the package inside is not correctly signed. The active version is
    untouched."""


# -- remote -------------------------------------------------------------------------------


class RemoteError(QwenEdgeError):
    """Talking to an OpenAI-compatible server failed."""


class RemoteUnavailableError(RemoteError):
    """The server cannot be reached (refused, timed out, stream broken); the router falls back."""


class BrokenStreamError(RemoteUnavailableError):
    """A streamed answer stopped before it was complete.

    Attributes:
        partial: the text received (and yielded) before the break.

    Example: ``http://gpu:8000/v1: the stream broke after 12 characters (the server closed
    the connection: incomplete chunked read)``.
    """

    def __init__(self, message: str, *, partial: str) -> None:
        super().__init__(message)
        self.partial = partial


class RemoteResponseError(RemoteError):
    """The server answered with an error status.

    Attributes:
        status: the HTTP status code.
    """

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status

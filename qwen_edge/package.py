"""Model packages: a folder with ``model.onnx`` (+ external data), ``tokenizer.json`` and the
manifest ``qwen_edge.json``, which records the format version, the model's shapes, its
quantization, tokens, chat template, generation defaults, and the sha256 of every file.

``read_package`` parses and validates the manifest; ``verify_files`` checks the hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CorruptPackageError, IncompatiblePackageError, PackageNotFoundError

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "ModelPackage",
    "file_sha256",
    "read_package",
    "verify_files",
]

FORMAT_VERSION = 1
MANIFEST_NAME = "qwen_edge.json"
_HASH_CHUNK = 1 << 22  # 4 MiB


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelPackage:
    """A parsed manifest plus the folder it lives in (immutable)."""

    path: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def architecture(self) -> str:
        return str(self.manifest["architecture"])

    @property
    def shapes(self) -> dict[str, Any]:
        return dict(self.manifest["shapes"])

    @property
    def quantization(self) -> dict[str, Any]:
        return dict(self.manifest["quantization"])

    @property
    def max_context(self) -> int:
        return int(self.manifest["max_context"])

    @property
    def model_file(self) -> Path:
        return self.path / str(self.manifest["graph"]["file"])

    @property
    def tokenizer_file(self) -> Path:
        return self.path / str(self.manifest["tokenizer"]["file"])

    @property
    def special_tokens(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.manifest["tokenizer"]["special_tokens"].items()}

    @property
    def stop_token_ids(self) -> list[int]:
        return [int(t) for t in self.manifest["stop_token_ids"]]

    @property
    def chat_template(self) -> str | None:
        template = self.manifest.get("chat_template")
        return None if template is None else str(template)

    @property
    def tool_format(self) -> str:
        """The tool-call format the model writes; packages from before it was recorded are
        Hermes (Qwen2.5 / Qwen3)."""
        return str(self.manifest.get("tool_format") or "hermes")

    @property
    def generation(self) -> dict[str, Any]:
        return dict(self.manifest.get("generation", {}))

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return {str(k): dict(v) for k, v in self.manifest["files"].items()}

    @property
    def package_hash(self) -> str:
        """One digest for the whole package: the sha256 of its sorted file hashes."""
        joined = "\n".join(f"{name}:{info['sha256']}" for name, info in sorted(self.files.items()))
        return hashlib.sha256(joined.encode()).hexdigest()

    @property
    def nbytes(self) -> int:
        return sum(int(info["size"]) for info in self.files.values())


_REQUIRED = {
    "format_version": int,
    "architecture": str,
    "shapes": dict,
    "quantization": dict,
    "max_context": int,
    "graph": dict,
    "tokenizer": dict,
    "stop_token_ids": list,
    "files": dict,
}


def read_package(path: str | os.PathLike[str], *, verify: bool = True) -> ModelPackage:
    """Read and validate ``qwen_edge.json``; with ``verify`` also check every file's sha256.

    Raises:
        PackageNotFoundError: no folder or no manifest.
        IncompatiblePackageError: unknown ``format_version``.
        CorruptPackageError: malformed manifest, a missing file or a hash mismatch.
    """
    root = Path(path)
    manifest_path = root / MANIFEST_NAME
    if not root.is_dir():
        msg = f"{root}: no such model package folder"
        raise PackageNotFoundError(msg)
    if not manifest_path.is_file():
        msg = f"{root}: not a model package (no {MANIFEST_NAME}); create one with `qwen-edge export`"
        raise PackageNotFoundError(msg)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"{manifest_path}: cannot read the manifest ({exc.strerror})"
        raise CorruptPackageError(msg) from exc
    except (ValueError, RecursionError) as exc:  # bad UTF-8 / JSON, huge ints, deep nesting
        msg = f"{manifest_path}: not valid JSON ({type(exc).__name__}: {str(exc)[:200]})"
        raise CorruptPackageError(msg) from exc
    if not isinstance(manifest, dict):
        msg = f"{manifest_path}: expected a JSON object"
        raise CorruptPackageError(msg)
    version = manifest.get("format_version")
    if not _is_int(version) or version != FORMAT_VERSION:
        msg = (
            f"{manifest_path}: format_version {version!r} is not supported by this qwen-edge "
            f"(supports {FORMAT_VERSION}); re-export the model or upgrade qwen-edge"
        )
        raise IncompatiblePackageError(msg)
    for key, kind in _REQUIRED.items():
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            msg = f"{manifest_path}: field {key!r} missing or not a {kind.__name__}"
            raise CorruptPackageError(msg)
    _check_fields(manifest, manifest_path)
    package = ModelPackage(path=root, manifest=manifest)
    if verify:
        verify_files(package)
    return package


_SHAPE_INTS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
               "num_attention_heads", "num_key_value_heads", "head_dim")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_fields(manifest: dict[str, Any], manifest_path: Path) -> None:
    """Everything ``ModelPackage`` and the engine read has the right type (else
    CorruptPackageError naming the field), so no KeyError/TypeError escapes later."""

    def bad(what: str) -> CorruptPackageError:
        return CorruptPackageError(f"{manifest_path}: {what}")

    for name, info in manifest["files"].items():
        if (
            not name
            or "\x00" in name
            or not isinstance(info, dict)
            or not isinstance(info.get("sha256"), str)
            or not _is_int(info.get("size"))
            or info["size"] < 0
            or Path(name).is_absolute()
            or ".." in Path(name).parts
        ):
            raise bad(f"bad files entry {name!r}")
    for section in ("graph", "tokenizer"):
        name = manifest[section].get("file")
        if not isinstance(name, str) or name not in manifest["files"]:
            raise bad(f"{section}.file {name!r} is not listed in files")
    special = manifest["tokenizer"].get("special_tokens")
    if not isinstance(special, dict) or not all(_is_int(v) for v in special.values()):
        raise bad("tokenizer.special_tokens missing or not a {token: id} object")
    if not all(_is_int(t) for t in manifest["stop_token_ids"]):
        raise bad("stop_token_ids must be a list of token ids")
    for key in _SHAPE_INTS:
        value = manifest["shapes"].get(key)
        if not _is_int(value) or value < 1:
            raise bad(f"shapes.{key} missing or not a positive integer")
    if manifest["max_context"] < 1:
        raise bad("max_context must be >= 1")
    if not isinstance(manifest.get("chat_template", ""), (str, type(None))):
        raise bad("chat_template must be a string or null")
    if not isinstance(manifest.get("tool_format", ""), (str, type(None))):
        raise bad("tool_format must be a string or null")
    if not isinstance(manifest.get("generation", {}), dict):
        raise bad("generation must be an object")


def verify_files(package: ModelPackage) -> None:
    """Check that every file in the manifest exists with its recorded size and sha256.

    Raises:
        CorruptPackageError: naming the first file that is missing or differs.
    """
    for name, info in sorted(package.files.items()):
        file = package.path / name
        if not file.is_file():
            msg = f"{file}: missing from the package (listed in {MANIFEST_NAME})"
            raise CorruptPackageError(msg)
        size = file.stat().st_size
        if size != info["size"]:
            msg = f"{file}: size {size} differs from the manifest ({info['size']}); the file is truncated or was replaced"
            raise CorruptPackageError(msg)
        digest = file_sha256(file)
        if digest != info["sha256"]:
            msg = f"{file}: sha256 mismatch (expected {info['sha256'][:16]}..., got {digest[:16]}...)"
            raise CorruptPackageError(msg)

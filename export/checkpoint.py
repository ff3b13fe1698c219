"""Open a Hugging Face Qwen2 / Qwen2.5 / Qwen3 / Qwen3.5 checkpoint: its config, then weights.

::

    load_checkpoint("ckpt/" | "Qwen/Qwen2.5-0.5B-Instruct") -> Checkpoint
        .config            QwenConfig (frozen; parsed from config.json, unknown keys dropped)
        .validate()        every tensor the architecture needs exists with the derived shape
        .tensor(name)      float32 [*shape], read on demand from a memory map of its file

This module only finds the parts and joins them; each subsystem lives in its own module:
``hf_config`` parses config.json, ``weights`` streams the safetensors files, ``hub`` fetches a
hub id. A GGUF file is opened by ``gguf.load_gguf`` into the same interface.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qwen_edge.errors import CheckpointError, ConfigError

from .hf_config import QwenConfig
from .hub import download, is_hub_id, looks_local
from .weights import Checkpoint, index_tensors, read_json_object

__all__ = ["load_checkpoint"]


def load_checkpoint(src: str | os.PathLike[str], *, revision: str | None = None) -> Checkpoint:
    """Open a Hugging Face Qwen checkpoint: a local folder, or a hub id (``org/name``).

    A hub id is fetched with ``huggingface_hub.snapshot_download`` (configs, safetensors and
    tokenizer files only). Only headers are read here; tensors are read by ``tensor``.

    Args:
        src: a checkpoint folder, or a hub id that is not an existing path.
        revision: a hub branch, tag or commit (hub ids only).

    Raises:
        CheckpointError: a missing folder, config.json or safetensors file, or a corrupt one.
        UnsupportedArchitectureError: config.json describes another architecture.
        HubUnavailableError: a hub id was given and the hub cannot be reached.
        ConfigError: ``revision`` was given with a local folder.

    Example:
        >>> ckpt = load_checkpoint("Qwen/Qwen2.5-0.5B-Instruct")
        >>> ckpt.config.hidden_size
        896
    """
    text = os.fspath(src)
    if isinstance(src, os.PathLike) or looks_local(text):
        if revision is not None:
            raise ConfigError(f"revision={revision!r}: only applies to hub ids, not to {text}")
        return _load_folder(Path(text).expanduser())
    if is_hub_id(text):
        return _load_folder(download(text, revision))
    raise CheckpointError(
        f"{text}: no such folder, and not a hub id; pass a Hugging Face checkpoint folder "
        "or a hub id like Qwen/Qwen2.5-0.5B-Instruct"
    )



def _load_folder(path: Path) -> Checkpoint:
    if not path.exists():
        raise CheckpointError(
            f"{path}: no such folder; pass a Hugging Face checkpoint folder (config.json and "
            "*.safetensors) or a hub id like Qwen/Qwen2.5-0.5B-Instruct"
        )
    if not path.is_dir():
        if path.suffix.lower() == ".gguf":
            raise CheckpointError(
                f"{path}: a GGUF file, not a Hugging Face folder; export it with "
                "export_model / `qwen-edge export` (or open it with qwen_edge.export.gguf.load_gguf)"
            )
        raise CheckpointError(f"{path}: not a folder; pass the checkpoint folder that holds it")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path}: no config.json; pass a Hugging Face checkpoint folder")
    raw_config = read_json_object(config_file)
    config = QwenConfig.from_dict(raw_config, source=str(config_file))
    tokenizer_config = _read_optional(path / "tokenizer_config.json")
    tokenizer_json = path / "tokenizer.json"
    return Checkpoint(
        path=path,
        config=config,
        raw_config=raw_config,
        generation_config=_read_optional(path / "generation_config.json"),
        tokenizer_json=tokenizer_json if tokenizer_json.is_file() else None,
        tokenizer_config=tokenizer_config,
        chat_template=_chat_template(path, tokenizer_config),
        _tensors=index_tensors(path),
    )



def _read_optional(file: Path) -> dict[str, Any]:
    return read_json_object(file) if file.is_file() else {}


def _chat_template(path: Path, tokenizer_config: Mapping[str, Any]) -> str | None:
    """chat_template.jinja (transformers >= 4.50 saves it there) or tokenizer_config's entry."""
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default", next(iter(named.values()), None))
    return template if isinstance(template, str) else None


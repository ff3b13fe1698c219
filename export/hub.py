"""Fetch a checkpoint from the Hugging Face hub, or say in one line why it cannot be fetched.

The hub is the one network path of the exporter, so it is kept apart: offline, behind a
firewall or without ``huggingface_hub`` installed, the user gets ``HubUnavailableError`` with
the command that downloads the folder elsewhere, never a traceback from the HTTP stack.
"""

from __future__ import annotations

import re
from pathlib import Path

from qwen_edge.errors import CheckpointError, HubUnavailableError

__all__ = ["HUB_ALLOW_PATTERNS", "download", "is_hub_id", "looks_local"]

# What snapshot_download fetches: configs, weights and tokenizer files; never *.bin / *.pth.
HUB_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def is_hub_id(text: str) -> bool:
    """Whether ``text`` has the shape of a hub id (``org/name``)."""
    return _HUB_ID.fullmatch(text) is not None


def looks_local(text: str) -> bool:
    """Whether ``text`` names a local path (it exists, or is written like one)."""
    path = Path(text).expanduser()
    return text.startswith((".", "/", "~", "\\")) or path.is_absolute() or path.exists()


def download(repo_id: str, revision: str | None) -> Path:
    """``snapshot_download`` of the files the exporter reads; hub failures as our errors.

    Raises:
        HubUnavailableError: the hub cannot be reached (offline, no huggingface_hub).
        CheckpointError: the hub answered: gated, unknown id or revision, invalid id.
    """
    folder_name = repo_id.rpartition("/")[2]
    hint = (
        f"download it where the hub is reachable (`hf download {repo_id} --local-dir "
        f"{folder_name}`), copy the folder here and pass its path instead of the hub id"
    )
    try:
        import huggingface_hub
        from huggingface_hub import errors  # huggingface_hub >= 0.24
    except ImportError as exc:
        raise HubUnavailableError(
            f"{repo_id}: the Hugging Face hub cannot be reached: huggingface_hub is not "
            f"installed (pip install 'qwen-edge[export]'); or {hint}"
        ) from exc
    # Connection errors, offline mode and HTTP errors are OSErrors; newer versions raise
    # their transport errors (HTTPError) and Xet download errors outside that tree.
    unreachable: tuple[type[BaseException], ...] = (
        OSError,
        *(
            cls
            for cls in (getattr(errors, name, None) for name in ("HTTPError", "XetDownloadError"))
            if isinstance(cls, type) and issubclass(cls, BaseException)
        ),
    )
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id, revision=revision, allow_patterns=HUB_ALLOW_PATTERNS
        )
    except errors.GatedRepoError as exc:
        raise CheckpointError(
            f"{repo_id}: gated on the Hugging Face hub; accept its terms on huggingface.co and "
            f"log in (`hf auth login`), or {hint}"
        ) from exc
    except errors.RepositoryNotFoundError as exc:
        raise CheckpointError(
            f"{repo_id}: no such model on the Hugging Face hub (private models need "
            "`hf auth login`); check the id, or pass a local checkpoint folder"
        ) from exc
    except errors.RevisionNotFoundError as exc:
        raise CheckpointError(f"{repo_id}: revision {revision!r} not found on the hub") from exc
    except errors.HFValidationError as exc:
        raise CheckpointError(f"{repo_id}: not a valid hub id ({exc})") from exc
    except unreachable as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise HubUnavailableError(
            f"{repo_id}: the Hugging Face hub cannot be reached ({type(exc).__name__}: "
            f"{reason}); to export offline, {hint}"
        ) from exc
    return Path(folder)



"""A store's folder: where everything lives, its lock, its leftovers and ``state.json``.

The layout (described in ``store``) is the store's on-disk contract: ``Store`` changes it only
through these methods, and readers rely on them (``state.json`` is replaced atomically,
installed folders never change).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import _fs
from ..errors import StoreError
from .archive import check_release, version_key

__all__ = ["_State", "_StoreFolder"]

logger = logging.getLogger("qwen_edge.fleet.store")  # the store's one logger name

_STATE_NAME = "state.json"
_STATE_FORMAT = 1


@dataclass(slots=True, kw_only=True)
class _State:
    active: str | None = None
    previous: list[str] = field(default_factory=list)  # activation history, newest last
    skipped: list[str] = field(default_factory=list)  # rolled back: `update` passes them by


class _StoreFolder:
    """The folder of a ``Store``: paths, the change lock, cleaning and the per-name state."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        for folder in (self.root, self.root / "trust", self.root / "models", self._tmp):
            folder.mkdir(parents=True, exist_ok=True)
        with _fs.locked(self._lock_file, blocking=False) as held:
            if held:  # a change in progress elsewhere owns the leftovers otherwise
                self._clean()

    # -- paths ------------------------------------------------------------------------------

    @property
    def keys_dir(self) -> Path:
        """The trusted package public keys (pass as ``qwen_edge.load(trusted_keys=...)``)."""
        return self.root / "trust" / "keys"

    @property
    def _tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def _lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def _anchor(self) -> Path:
        return self.root / "trust" / "root.json"

    @property
    def _tuf_dir(self) -> Path:
        return self.root / "tuf"

    def _model_dir(self, name: str) -> Path:
        return self.root / "models" / name

    def _slot(self, name: str, version: str) -> Path:
        check_release(name, version)
        return self._model_dir(name) / version

    # -- housekeeping -------------------------------------------------------------------

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the store lock and start from a clean slate (leftovers are from dead runs)."""
        with _fs.locked(self._lock_file):
            self._clean()
            yield

    def _clean(self) -> None:
        for leftover in self._tmp.iterdir():
            logger.info("removing leftover %s", leftover)
            _fs.remove_tree(leftover)
        for folder in (self.root / "trust", self.keys_dir, *self.root.glob("models/*")):
            for leftover in folder.glob(f"{_fs.TEMP_PREFIX}*"):
                _fs.remove_tree(leftover)
        if self._tuf_dir.is_dir():  # ngclient's own temp files (tempfile: "tmp...")
            for leftover in self._tuf_dir.glob("tmp*"):
                _fs.remove_tree(leftover)

    @contextlib.contextmanager
    def _staging(self) -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(prefix=_fs.TEMP_PREFIX, dir=self._tmp))
        try:
            yield folder
        finally:
            _fs.remove_tree(folder)

    # -- state ----------------------------------------------------------------------------

    def _state(self, name: str) -> _State:
        path = self._model_dir(name) / _STATE_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return _State()
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            msg = f"{path}: unreadable store state ({exc}); activate a version to rewrite it"
            raise StoreError(msg) from exc
        if not isinstance(data, dict) or data.get("format") != _STATE_FORMAT:
            msg = f"{path}: unknown store state format; activate a version to rewrite it"
            raise StoreError(msg)
        return _State(active=data.get("active"), previous=list(data.get("previous", [])),
                      skipped=list(data.get("skipped", [])))

    def _write_state(self, name: str, state: _State) -> None:
        data = {"format": _STATE_FORMAT, "active": state.active, "previous": state.previous,
                "skipped": state.skipped}
        _fs.atomic_write(self._model_dir(name) / _STATE_NAME,
                         (json.dumps(data, indent=2) + "\n").encode())

    # -- queries --------------------------------------------------------------------------

    def versions(self, name: str) -> list[str]:
        """Installed versions of ``name``, oldest first."""
        folder = self._model_dir(name)
        if not folder.is_dir():
            return []
        found = [p.name for p in folder.iterdir()
                 if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
        return sorted(found, key=version_key)

    def _package_keys(self) -> Path:
        if not any(self.keys_dir.glob("*.pub")):
            msg = (f"{self.root}: no trusted package keys; run `qwen-edge store init "
                   "--trusted-keys DIR` (or Store.trust(package_keys=...))")
            raise StoreError(msg)
        return self.keys_dir

"""The on-device model store: versioned packages, verified updates, atomic switching.

A store is one folder::

    ROOT/trust/root.json          TUF trust anchor (the repository's root.json)
    ROOT/trust/keys/*.pub         public keys package signatures must verify with
    ROOT/tuf/                     TUF client state: the newest metadata seen (rollback defence)
    ROOT/models/NAME/VERSION/     installed packages; never modified once in place
    ROOT/models/NAME/state.json   {"active": "1.2.0", "previous": ["1.1.0"], "skipped": []}
    ROOT/tmp/                     downloads and unpacking; emptied whenever the store opens
    ROOT/.lock                    flock held by the one process changing the store

An update downloads through TUF (python-tuf's ``ngclient``, which refuses rolled-back,
expired, mix-and-match, wrongly signed and oversized metadata and archives), unpacks into
``tmp/`` refusing unsafe archive members, verifies the package signature against the
trusted keys, renames the folder into ``models/NAME/VERSION`` and only then rewrites
``state.json`` (temp file, fsync, ``os.replace``, fsync of the folder). A crash or SIGKILL
at any moment leaves the old or the new version active, never a mix; leftovers in ``tmp/``
are removed when the store is next opened.

The folder itself (paths, lock, cleaning, ``state.json``) is ``_layout``; getting a release in
(TUF download, unpack, verify, place) is ``_pull``; this module is the store's operations.

Readers (``active``, ``list``) take no lock: ``state.json`` is replaced atomically and
installed folders never change, so an app can open ``store.active(name)`` at any time.

Example:
    >>> store = qwen_edge.Store("/var/lib/qwen-edge")
    >>> store.trust("root.json", "trusted-keys/")            # once, at provisioning
    >>> store.update("https://models.example.com/repo", name="assistant")
    >>> model = qwen_edge.load(store.active("assistant"), trusted_keys=store.keys_dir)
"""

from __future__ import annotations

import builtins
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import _fs
from ..errors import ConfigError, StoreError, UpdateError
from ..package import MANIFEST_NAME
from ._layout import _State, _StoreFolder
from ._pull import download_install, open_updater, unpack_verify_place
from ._pull import releases as _releases
from ._tuf import _read_root, _tuf_errors
from .archive import check_release, parse_archive_name, version_key

__all__ = ["InstalledModel", "Store", "UpdateResult"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class InstalledModel:
    """One installed version (``Store.list``)."""

    name: str
    version: str
    path: Path
    active: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateResult:
    """What ``Store.update`` / ``Store.install`` did.

    Attributes:
        version: the version installed (and active, unless ``activate=False``).
        previous: the version active before, if any.
        changed: False when there was nothing newer to install.
        reason: why nothing changed (``"up to date"``, ``"1.2.0 was rolled back"``), or "".
    """

    name: str
    version: str
    previous: str | None
    changed: bool
    reason: str = ""


class Store(_StoreFolder):
    """A folder of versioned model packages with one active version per name.

    Opening a store creates its folders and removes leftovers of an interrupted change.
    Changes (``update``, ``install``, ``activate``, ``rollback``, ``remove``, ``gc``) hold
    an exclusive lock on the store, so two processes never change it at once.

    Example:
        >>> store = qwen_edge.Store("/var/lib/qwen-edge")
        >>> store.update("https://models.example.com/repo", name="assistant")
        >>> store.rollback("assistant")
    """

    # -- queries (no lock: state.json is replaced atomically) -----------------------------

    def active_version(self, name: str) -> str | None:
        """The active version of ``name``, or None if nothing is active."""
        return self._state(name).active

    def active(self, name: str) -> Path:
        """Folder of the active package of ``name`` (open it with ``qwen_edge.load``).

        Raises:
            StoreError: nothing of that name is installed or active.
        """
        version = self.active_version(name)
        if version is None:
            installed = ", ".join(self.names()) or "none"
            msg = (f"no active version of {name!r} in {self.root} (installed: {installed}); "
                   "run `qwen-edge store update` or `store install`")
            raise StoreError(msg)
        path = self._slot(name, version)
        if not (path / MANIFEST_NAME).is_file():
            msg = f"{path}: the active version's folder is missing; activate another version"
            raise StoreError(msg)
        return path

    def names(self) -> list[str]:
        """Names with at least one installed version."""
        models = self.root / "models"
        return sorted(p.name for p in models.iterdir() if p.is_dir() and self.versions(p.name))

    def list(self, name: str | None = None) -> list[InstalledModel]:
        """Every installed version (of ``name``, or of all names), oldest first per name."""
        out = []
        for n in [name] if name is not None else self.names():
            active = self.active_version(n)
            out += [InstalledModel(name=n, version=v, path=self._slot(n, v), active=v == active)
                    for v in self.versions(n)]
        return out

    # -- trust ----------------------------------------------------------------------------

    def trust(self, tuf_root: str | os.PathLike[str] | None = None,
              package_keys: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None
              = None) -> None:
        """Set what this store trusts (do it once when provisioning a device).

        Args:
            tuf_root: the repository's ``metadata/root.json`` (from ``qwen-edge publish``),
                obtained out of band; later root versions are fetched and verified by TUF.
                Replacing it with a different root resets the TUF client state.
            package_keys: the public keys package signatures must verify with (a folder of
                ``*.pub``, one file or a list); replaces the store's set.

        Raises:
            ConfigError: not TUF root metadata, or a key cannot be read.
        """
        with self._changing():
            if tuf_root is not None:
                data = _read_root(Path(tuf_root))
                old = self._anchor.read_bytes() if self._anchor.is_file() else None
                if data != old:
                    _fs.remove_tree(self._tuf_dir)
                    _fs.atomic_write(self._anchor, data)
            if package_keys is not None:
                from .trust import key_fingerprint, load_public_keys

                self.keys_dir.mkdir(exist_ok=True)
                wanted: dict[str, bytes] = {}
                for path in load_public_keys(package_keys):
                    wanted[f"{key_fingerprint(path)[:16]}.pub"] = path.read_bytes()
                for file_name, data in wanted.items():
                    _fs.atomic_write(self.keys_dir / file_name, data)
                for stale in self.keys_dir.glob("*.pub"):
                    if stale.name not in wanted:
                        stale.unlink()
                _fs.fsync_dir(self.keys_dir)

    # -- changes --------------------------------------------------------------------------

    def update(self, url: str, *, name: str, version: str | None = None,
               activate: bool = True) -> UpdateResult:
        """Install (and activate) the newest published version of ``name`` from a TUF repository.

        Args:
            url: the repository's base URL (serving ``metadata/`` and ``targets/``).
            name: the release name (``assistant``).
            version: install this version instead of the newest (also a deliberate downgrade,
                or a version that was rolled back).
            activate: switch to it; False only stages it for ``activate`` later.

        Returns:
            What changed. Nothing changes when the newest version is already active, older
            than the active one, or was rolled back on this device.

        Raises:
            UpdateError: TUF refused the metadata or the archive (rollback, freeze, wrong
                key, hash or length mismatch), the archive is unsafe, or the package is not
                signed by a trusted key. The active version is untouched.
            StoreError: the store has no trust anchor or no package keys.
        """
        check_release(name, version or "0")
        if not self._anchor.is_file():
            msg = (f"{self.root}: no TUF trust anchor; run `qwen-edge store init --root "
                   "root.json --trusted-keys DIR` first")
            raise StoreError(msg)
        self._package_keys()
        base = url.rstrip("/")
        with self._changing():
            updater = open_updater(self, base)
            with _tuf_errors(base, "the repository metadata"):
                updater.refresh()
            releases = _releases(self, name)
            state = self._state(name)
            if version is None:
                if not releases:
                    msg = f"{base}: no release named {name!r} in the repository"
                    raise UpdateError(msg)
                fresh = [v for v in releases if v not in state.skipped]
                newest = max(fresh, key=version_key) if fresh else None
                if newest is None or (state.active is not None and
                                      version_key(newest) <= version_key(state.active)):
                    latest = max(releases, key=version_key)
                    reason = "up to date"
                    if latest in state.skipped and latest != state.active:
                        reason = (f"{latest} was rolled back on this device; update with "
                                  f"version={latest!r} to install it again")
                    return UpdateResult(name=name, version=state.active or latest,
                                        previous=state.active, changed=False, reason=reason)
                version = newest
            elif version not in releases:
                known = ", ".join(sorted(releases, key=version_key)) or "none"
                msg = f"{base}: {name} {version} is not published (published: {known})"
                raise UpdateError(msg)
            if not self._slot(name, version).is_dir():
                download_install(self, updater, base, name, version, releases[version])
            return self._finish(name, version, state, activate=activate)

    def install(self, source: str | os.PathLike[str], *, name: str | None = None,
                version: str | None = None, activate: bool = True) -> UpdateResult:
        """Install a release from a local archive (``assistant-1.2.0.tar.gz``) or package folder.

        Verified like an update: safe unpacking, then the package signature against the
        store's trusted keys. ``name`` and ``version`` default to the file or folder name
        (``NAME-VERSION``). Installing an installed version again only activates it.

        Raises:
            UpdateError: unsafe archive, or the package is not signed by a trusted key.
            ConfigError: no name/version given and none in the file name.
        """
        src = Path(source)
        if name is None or version is None:
            parsed = parse_archive_name(src)
            if parsed is None:
                msg = f"{src}: pass name= and version= (the file name is not NAME-VERSION)"
                raise ConfigError(msg)
            name, version = name or parsed[0], version or parsed[1]
        check_release(name, version)
        if not src.exists():
            msg = f"{src}: no such archive or package folder"
            raise StoreError(msg)
        self._package_keys()
        with self._changing():
            state = self._state(name)
            if not self._slot(name, version).is_dir():
                with self._staging() as staging:
                    unpack_verify_place(self, src, staging, name, version)
            return self._finish(name, version, state, activate=activate)

    def _finish(self, name: str, version: str, state: _State, *, activate: bool) -> UpdateResult:
        previous = state.active
        if not activate:
            return UpdateResult(name=name, version=version, previous=previous, changed=False,
                                reason="installed, not activated")
        self._switch(name, version, state)
        return UpdateResult(name=name, version=version, previous=previous,
                            changed=previous != version,
                            reason="" if previous != version else "already active")

    def _switch(self, name: str, version: str, state: _State) -> None:
        """Make ``version`` active: one atomic replace of state.json."""
        if state.active == version:
            return
        history = [v for v in state.previous if v not in (version, state.active)]
        if state.active is not None:
            history.append(state.active)
        skipped = [v for v in state.skipped if v != version]
        self._write_state(name, _State(active=version, previous=history, skipped=skipped))
        logger.info("activated %s %s (was %s)", name, version, state.active)

    def activate(self, name: str, version: str) -> None:
        """Make an installed version the active one (atomically).

        Raises:
            StoreError: that version is not installed.
        """
        with self._changing():
            self._require_installed(name, version)
            self._switch(name, version, self._state(name))

    def _require_installed(self, name: str, version: str) -> None:
        if not (self._slot(name, version) / MANIFEST_NAME).is_file():
            installed = ", ".join(self.versions(name)) or "none"
            msg = f"{name} {version} is not installed in {self.root} (installed: {installed})"
            raise StoreError(msg)

    def rollback(self, name: str) -> str:
        """Return to the version that was active before the current one.

        The version rolled back from is marked skipped, so ``update`` does not reinstall it
        (pass its version to ``update`` or ``activate`` it to undo that).

        Returns:
            The version now active.

        Raises:
            StoreError: no earlier version is installed to roll back to.
        """
        with self._changing():
            state = self._state(name)
            history = list(state.previous)
            while history and not self._slot(name, history[-1]).is_dir():
                history.pop()  # removed since; look further back
            if not history or state.active is None:
                msg = f"{name}: nothing to roll back to (no earlier version is installed)"
                raise StoreError(msg)
            target = history.pop()
            skipped = [v for v in state.skipped if v != state.active] + [state.active]
            self._write_state(name, _State(active=target, previous=history, skipped=skipped))
            logger.info("rolled %s back from %s to %s", name, state.active, target)
            return target

    def remove(self, name: str, version: str) -> None:
        """Delete an installed version that is not active.

        Raises:
            StoreError: it is the active version, or not installed.
        """
        with self._changing():
            self._remove(name, version, self._state(name))

    def _remove(self, name: str, version: str, state: _State) -> _State:
        if state.active == version:
            msg = f"{name} {version} is the active version; activate another one first"
            raise StoreError(msg)
        slot = self._slot(name, version)
        if not slot.is_dir():
            msg = f"{name} {version} is not installed in {self.root}"
            raise StoreError(msg)
        if version in state.previous:
            state = _State(active=state.active, skipped=state.skipped,
                           previous=[v for v in state.previous if v != version])
            self._write_state(name, state)
        trash = Path(tempfile.mkdtemp(prefix=_fs.TEMP_PREFIX, dir=self._tmp))
        slot.rename(trash / version)  # atomic: gone from models/ at once
        _fs.fsync_dir(slot.parent)
        _fs.remove_tree(trash)
        logger.info("removed %s %s", name, version)
        return state

    def gc(self, name: str, *, keep: int = 2) -> builtins.list[str]:
        """Keep the active version and the newest others, ``keep`` versions in all.

        Returns:
            The versions removed.
        """
        if keep < 1:
            msg = f"keep={keep}: must be >= 1 (the active version is always kept)"
            raise ConfigError(msg)
        with self._changing():
            state = self._state(name)
            others = [v for v in reversed(self.versions(name)) if v != state.active]
            kept = keep - (1 if state.active is not None else 0)
            removed = others[kept:]
            for version in removed:
                state = self._remove(name, version, state)
            return removed

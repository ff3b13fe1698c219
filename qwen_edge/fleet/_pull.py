"""Getting a release into a store: the TUF download, then unpack, verify and place.

``update`` pulls through python-tuf's ``ngclient`` (imported here only, so a store without
the trust extra still opens and lists); ``install`` enters at ``unpack_verify_place``. Both
end with the package folder renamed into its slot, complete or not at all.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .. import _fs
from ..errors import ConfigError, PackageError, StoreError, UpdateError
from ..package import MANIFEST_NAME
from ._layout import _StoreFolder
from ._tuf import _tuf_errors
from .archive import archive_name, unpack_archive

if TYPE_CHECKING:
    from tuf.ngclient import Updater

__all__ = ["download_install", "open_updater", "releases", "unpack_verify_place"]

logger = logging.getLogger("qwen_edge.fleet.store")  # the store's one logger name

_DISK_MARGIN_BYTES = 64 << 20  # leave this much free after unpacking
_INSTALL_HINT = 'fleet updates need the trust extra: pip install "qwen-edge[trust]"'


def open_updater(folder: _StoreFolder, base: str) -> Updater:
    try:
        from tuf.api import exceptions
        from tuf.ngclient import Updater
    except ImportError as exc:
        raise ConfigError(_INSTALL_HINT) from exc
    folder._tuf_dir.mkdir(exist_ok=True)
    try:
        return Updater(str(folder._tuf_dir), f"{base}/metadata/", target_base_url=f"{base}/targets/",
                       bootstrap=folder._anchor.read_bytes())
    except (exceptions.RepositoryError, ValueError) as exc:
        msg = f"{folder._anchor}: the trust anchor is not valid TUF root metadata ({exc})"
        raise StoreError(msg) from exc

def releases(folder: _StoreFolder, name: str) -> dict[str, str]:
    """version -> target path, from the targets metadata TUF just verified (and cached)."""
    from tuf.api.metadata import Metadata, Targets

    targets = Metadata[Targets].from_file(str(folder._tuf_dir / "targets.json")).signed
    out: dict[str, str] = {}
    for path, info in targets.targets.items():
        custom = info.unrecognized_fields.get("custom")
        if not isinstance(custom, dict) or custom.get("name") != name:
            continue
        version = str(custom.get("version"))
        try:
            if path == f"{name}/{archive_name(name, version)}":
                out[version] = path
        except ConfigError:
            logger.warning("ignoring target %s: bad version %r", path, version)
    return out

def download_install(folder: _StoreFolder, updater: Updater, base: str, name: str, version: str,
                      target: str) -> None:
    with _tuf_errors(base, f"the archive {target}"):
        info = updater.get_targetinfo(target)
    if info is None:  # pragma: no cover - listed in the same verified metadata
        msg = f"{base}: {target} vanished from the repository metadata"
        raise UpdateError(msg)
    free = shutil.disk_usage(folder.root).free
    if info.length + _DISK_MARGIN_BYTES > free:
        msg = (f"{name} {version}: the archive needs {info.length / 1e6:.0f} MB, "
               f"{folder.root} has {free / 1e6:.0f} MB free; run `qwen-edge store gc`")
        raise UpdateError(msg)
    with folder._staging() as staging:
        archive = staging / "archive"
        with _tuf_errors(base, f"the archive {target}"):
            updater.download_target(info, filepath=str(archive))
        unpack_verify_place(folder, archive, staging, name, version)


def unpack_verify_place(folder: _StoreFolder, source: Path, staging: Path, name: str, version: str) -> None:
    unpacked = staging / "unpacked"
    if source.is_dir():
        _copy_package(source, unpacked)
    else:
        budget = shutil.disk_usage(folder.root).free - _DISK_MARGIN_BYTES
        unpack_archive(source, unpacked, max_bytes=max(budget, 0))
    package = _find_package(unpacked, source)
    from .trust import verify_package

    try:
        verify_package(package, folder._package_keys())
    except PackageError as exc:
        msg = f"{name} {version}: package refused ({exc})"
        raise UpdateError(msg) from exc
    slot = folder._slot(name, version)
    slot.parent.mkdir(parents=True, exist_ok=True)
    _fs.fsync_tree(package)
    package.rename(slot)  # atomic: the slot appears complete or not at all
    _fs.fsync_dir(slot.parent)
    logger.info("installed %s %s", name, version)


def _copy_package(source: Path, dest: Path) -> None:
    for folder, dirs, files in os.walk(source):
        for entry in (*dirs, *files):
            path = Path(folder, entry)
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                msg = f"{path}: not a plain file or folder; refusing to install"
                raise UpdateError(msg)
    shutil.copytree(source, dest)


def _find_package(unpacked: Path, source: Path) -> Path:
    """The package folder: the archive's top level, or its single top folder."""
    if (unpacked / MANIFEST_NAME).is_file():
        return unpacked
    entries = list(unpacked.iterdir())
    if len(entries) == 1 and (entries[0] / MANIFEST_NAME).is_file():
        return entries[0]
    msg = f"{source}: no model package inside (no {MANIFEST_NAME} at the top or in one folder)"
    raise UpdateError(msg)

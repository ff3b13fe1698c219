"""Release archives: a model package folder as one ``NAME-VERSION.tar.gz``, and back.

``pack_package`` writes a deterministic archive (sorted members, zero times and owners), so
the same package always gives the same bytes and the same TUF hash. ``unpack_archive``
refuses anything but plain files and folders under relative, ``..``-free names: no
absolute paths, no symlinks or hardlinks, no devices or FIFOs, no duplicates, and no more
bytes than the caller allows. It never calls ``tarfile.extract*``: each file is created with
``O_EXCL | O_NOFOLLOW`` inside a fresh folder, so nothing can be written outside it.

Release names and versions double as folder names on devices, so they are checked here too.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import ConfigError, UpdateError

__all__ = [
    "archive_name",
    "check_release",
    "pack_package",
    "parse_archive_name",
    "unpack_archive",
    "version_key",
]

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}", re.IGNORECASE)
_VERSION = re.compile(r"[0-9][0-9a-z_.+-]{0,63}", re.IGNORECASE)
_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_COPY_CHUNK = 1 << 20
# a new file only, never through a symlink (O_NOFOLLOW is POSIX; O_EXCL alone refuses links)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def check_release(name: str, version: str) -> None:
    """Raise ConfigError unless ``name`` and ``version`` are safe folder names.

    A name is letters, digits, ``_.-`` (``assistant``); a version starts with a digit
    (``1.2.0``, ``2.0.0-rc1``). Neither may contain ``/`` or ``..``.
    """
    if not _NAME.fullmatch(name) or ".." in name:
        msg = f"name {name!r}: use letters, digits, '_', '.', '-' (e.g. 'assistant')"
        raise ConfigError(msg)
    if not _VERSION.fullmatch(version) or ".." in version:
        msg = f"version {version!r}: start with a digit, then letters, digits, '.+_-' (e.g. '1.2.0')"
        raise ConfigError(msg)


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key for versions: dotted numbers compare as numbers, and a pre-release suffix
    sorts before its release (``1.9.0 < 1.10.0``, ``2.0.0-rc1 < 2.0.0``)."""
    release, sep, suffix = _split(version)
    parts: list[tuple[int, int | str]] = [
        (1, int(p)) if p.isdigit() else (0, p) for p in release.split(".")]
    # a pre-release sorts below its bare release, build metadata just above
    parts.append({"-": (-1, suffix), "+": (2, suffix)}.get(sep, (0, "")))
    return tuple(parts)


def _split(version: str) -> tuple[str, str, str]:
    match = re.search(r"[-+]", version)
    if match is None:
        return version, "", ""
    return version[: match.start()], match.group(), version[match.end():]


def archive_name(name: str, version: str) -> str:
    """``assistant``, ``1.2.0`` -> ``assistant-1.2.0.tar.gz``."""
    check_release(name, version)
    return f"{name}-{version}.tar.gz"


def parse_archive_name(path: str | os.PathLike[str]) -> tuple[str, str] | None:
    """``.../assistant-1.2.0.tar.gz`` (or a folder ``assistant-1.2.0``) -> (name, version)."""
    base = Path(path).name
    for suffix in _SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    match = re.fullmatch(r"(.+?)-(\d.*)", base)
    if match is None:
        return None
    try:
        check_release(match.group(1), match.group(2))
    except ConfigError:
        return None
    return match.group(1), match.group(2)


# -- pack ---------------------------------------------------------------------------------


def pack_package(package_dir: str | os.PathLike[str], out_file: str | os.PathLike[str], *,
                 arcname: str) -> Path:
    """Write ``package_dir`` as a deterministic ``.tar.gz`` whose members sit under ``arcname/``.

    Raises:
        ConfigError: the folder holds a symlink or something that is not a file or folder.
    """
    root = Path(package_dir)
    out = Path(out_file)
    entries: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted([*dirs, *files]):
            path = Path(folder, name)
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                msg = f"{path}: not a plain file or folder; a release holds only files"
                raise ConfigError(msg)
            entries.append(path)
    entries.sort(key=lambda p: p.relative_to(root).parts)
    with out.open("wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info(arcname, is_dir=True))
        for path in entries:
            member = f"{arcname}/{path.relative_to(root).as_posix()}"
            if path.is_dir():
                tar.addfile(_info(member, is_dir=True))
            else:
                info = _info(member, is_dir=False)
                info.size = path.stat().st_size
                with path.open("rb") as f:
                    tar.addfile(info, f)
        raw.flush()
    return out


def _info(name: str, *, is_dir: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.mode = 0o755 if is_dir else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


# -- unpack -------------------------------------------------------------------------------


def _member_path(member: tarfile.TarInfo, archive: Path) -> PurePosixPath | None:
    """The member's safe relative path (None for the archive's ``.`` entry), or raise."""
    name = member.name
    if "\\" in name or "\x00" in name:
        msg = f"{archive}: member {name!r} has a backslash or NUL in its name; refusing the archive"
        raise UpdateError(msg)
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        msg = f"{archive}: member {name!r} has an absolute path; refusing the archive"
        raise UpdateError(msg)
    parts = [p for p in PurePosixPath(name).parts if p != "."]
    if ".." in parts:
        msg = f"{archive}: member {name!r} points outside the archive (..); refusing the archive"
        raise UpdateError(msg)
    if member.issym() or member.islnk():
        kind = "symlink" if member.issym() else "hardlink"
        msg = (f"{archive}: member {name!r} is a {kind} (to {member.linkname!r}); release "
               "archives hold only files and folders, refusing the archive")
        raise UpdateError(msg)
    if not (member.isreg() or member.isdir()):
        kind = ("character device" if member.ischr() else "block device" if member.isblk()
                else "FIFO" if member.isfifo() else f"type {member.type!r}")
        msg = f"{archive}: member {name!r} is a {kind}; refusing the archive"
        raise UpdateError(msg)
    return PurePosixPath(*parts) if parts else None


def unpack_archive(archive: str | os.PathLike[str], dest: str | os.PathLike[str], *,
                   max_bytes: int) -> None:
    """Unpack a release archive into the new folder ``dest`` (must not exist), safely.

    Args:
        archive: a ``.tar``, ``.tar.gz``, ``.tar.bz2`` or ``.tar.xz`` file.
        dest: created here; the caller deletes it if this raises.
        max_bytes: refuse archives whose files add up to more (a decompression bomb, or
            less free disk than the model needs).

    Raises:
        UpdateError: not a tar archive, or an unsafe member (named in the message).
    """
    source = Path(archive)
    root = Path(dest)
    root.mkdir(parents=True)
    seen: set[PurePosixPath] = set()
    total = 0
    try:
        with tarfile.open(source, mode="r|*") as tar:
            for member in tar:
                rel = _member_path(member, source)
                if rel is None:
                    continue
                if rel in seen:
                    msg = f"{source}: member {member.name!r} appears twice; refusing the archive"
                    raise UpdateError(msg)
                seen.add(rel)
                target = root.joinpath(*rel.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                total += member.size
                if total > max_bytes:
                    msg = (f"{source}: unpacks to more than {max_bytes / 1e6:.0f} MB (free disk "
                           "or the size limit); refusing the archive")
                    raise UpdateError(msg)
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:  # pragma: no cover - isreg() members always have data
                    msg = f"{source}: member {member.name!r} has no data"
                    raise UpdateError(msg)
                fd = os.open(target, _CREATE_FLAGS, 0o644)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out, _COPY_CHUNK)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, io.UnsupportedOperation,
            ) as exc:
        msg = f"{source}: not a valid tar archive ({exc})"
        raise UpdateError(msg) from exc
    except FileExistsError as exc:
        msg = f"{source}: member {exc.filename!r} clashes with another member; refusing the archive"
        raise UpdateError(msg) from exc

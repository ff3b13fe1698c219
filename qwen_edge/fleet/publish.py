"""Publish signed model releases to a TUF repository: static files for any HTTPS server.

A repository folder, served as is (nginx, S3, GCS, ``python -m http.server``)::

    REPO/metadata/root.json                 trust anchor: copy it to every device
    REPO/metadata/1.root.json               the same root, versioned (clients look for 2.root.json)
    REPO/metadata/timestamp.json            the only file clients poll; short expiry
    REPO/metadata/N.snapshot.json           versions of the targets metadata
    REPO/metadata/N.targets.json            name, version, length and sha256 of every release
    REPO/targets/NAME/SHA256.NAME-VERSION.tar.gz

It uses consistent snapshots (versioned metadata, hash-prefixed archives), so a client
reading while a publish is in progress sees the old or the new release set, never a mix.
Files are written bottom up (archive, targets, snapshot) and ``timestamp.json`` is replaced
last, atomically. Each role's key is the PEM private key from ``qwen-edge keygen``; one key
may serve every role, or pass one per role (``{"root": ..., "targets": ..., ...}``) so the
root key can stay offline. The packages themselves must be signed (``qwen-edge sign``):
devices verify both the TUF metadata and the package signature.

Example:
    >>> from qwen_edge.fleet import publish
    >>> publish.publish("repo/", "pkg/assistant", name="assistant", version="1.2.0",
    ...                 keys="keys/signing-key.pem")
    >>> publish.refresh_timestamp("repo/", "keys/signing-key.pem")  # daily, from cron
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _fs
from ..errors import ConfigError, StoreError
from .archive import archive_name, check_release, pack_package

if TYPE_CHECKING:
    from securesystemslib.signer import Signer
    from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp

__all__ = [
    "DEFAULT_EXPIRES_DAYS",
    "DEFAULT_ROOT_EXPIRES_DAYS",
    "DEFAULT_TIMESTAMP_EXPIRES_DAYS",
    "ROLES",
    "PublishResult",
    "RoleKeys",
    "init_repository",
    "publish",
    "refresh_timestamp",
]

logger = logging.getLogger(__name__)

ROLES = ("root", "targets", "snapshot", "timestamp")
DEFAULT_ROOT_EXPIRES_DAYS = 365.0
DEFAULT_EXPIRES_DAYS = 90.0  # targets and snapshot
DEFAULT_TIMESTAMP_EXPIRES_DAYS = 7.0  # re-sign before: `qwen-edge publish --refresh-timestamp`
_INSTALL_HINT = 'publishing needs the trust extra: pip install "qwen-edge[trust]"'
_LOCK_NAME = ".publish.lock"

# One PEM private key for every role, or a mapping role -> key file.
RoleKeys = str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishResult:
    """What ``publish`` wrote.

    Attributes:
        target: the TUF target path (``assistant/assistant-1.2.0.tar.gz``).
        file: the archive on disk (``REPO/targets/assistant/<sha256>.assistant-1.2.0.tar.gz``).
        changed: False when this exact release was already published (nothing re-signed).
        timestamp_version: the repository's version after the publish.
    """

    name: str
    version: str
    target: str
    file: Path
    length: int
    sha256: str
    changed: bool
    timestamp_version: int


@dataclass(slots=True)
class _State:
    root: Metadata[Root]
    timestamp: Metadata[Timestamp]
    snapshot: Metadata[Snapshot]
    targets: Metadata[Targets]


def _require_tuf() -> None:
    try:
        import securesystemslib.signer  # noqa: F401
        import tuf.api.metadata  # noqa: F401
    except ImportError as exc:
        raise ConfigError(_INSTALL_HINT) from exc


def _expiry(days: float, what: str) -> datetime:
    if not days > 0:
        msg = f"{what}={days}: must be > 0 days"
        raise ConfigError(msg)
    return (datetime.now(timezone.utc) + timedelta(days=days)).replace(microsecond=0)


def _key_paths(keys: RoleKeys, roles: tuple[str, ...]) -> dict[str, Path]:
    if isinstance(keys, (str, os.PathLike)):
        return dict.fromkeys(roles, Path(keys))
    unknown = set(keys) - set(ROLES)
    if unknown:
        msg = f"keys: unknown role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}"
        raise ConfigError(msg)
    missing = [role for role in roles if role not in keys]
    if missing:
        msg = f"keys: no key for role(s) {', '.join(missing)}"
        raise ConfigError(msg)
    return {role: Path(keys[role]) for role in roles}


def _signers(keys: RoleKeys, roles: tuple[str, ...]) -> dict[str, tuple[Signer, Path]]:
    from securesystemslib.signer import CryptoSigner

    from .trust import load_private_key

    cache: dict[Path, Signer] = {}
    out: dict[str, tuple[Signer, Path]] = {}
    for role, path in _key_paths(keys, roles).items():
        if path not in cache:
            cache[path] = CryptoSigner(load_private_key(path))
        out[role] = (cache[path], path)
    return out


def _meta_dir(repo: Path) -> Path:
    return repo / "metadata"


def _write(md: Metadata[Any], path: Path) -> bytes:
    from tuf.api.serialization.json import JSONSerializer

    data = md.to_bytes(JSONSerializer(compact=False))
    _fs.atomic_write(path, data)
    return data


def _sign(md: Metadata[Any], role: str, signers: dict[str, tuple[Signer, Path]],
          root: Root) -> None:
    signer, path = signers[role]
    keyid = signer.public_key.keyid
    if keyid not in root.roles[role].keyids:
        msg = (f"{path}: not the repository's {role} key (root.json trusts key ids "
               f"{', '.join(k[:12] for k in root.roles[role].keyids)}; this key is {keyid[:12]}); "
               "use the key the repository was initialized with")
        raise ConfigError(msg)
    md.sign(signer)


def _clean_temp(repo: Path) -> None:
    for folder in (_meta_dir(repo), *sorted((repo / "targets").glob("*"))):
        if folder.is_dir():
            for leftover in folder.glob(f"{_fs.TEMP_PREFIX}*"):
                _fs.remove_tree(leftover)


def init_repository(repo_dir: str | os.PathLike[str], keys: RoleKeys, *,
                    root_expires_days: float = DEFAULT_ROOT_EXPIRES_DAYS,
                    expires_days: float = DEFAULT_EXPIRES_DAYS,
                    timestamp_expires_days: float = DEFAULT_TIMESTAMP_EXPIRES_DAYS) -> Path:
    """Create an empty TUF repository: root (v1) trusting the given keys, empty targets.

    Args:
        repo_dir: created if missing; must not hold a repository yet.
        keys: one PEM private key for every role, or ``{role: key file}`` for all four roles.

    Returns:
        ``REPO/metadata/root.json``: the trust anchor to install on devices
        (``qwen-edge store init --root``).

    Raises:
        ConfigError: the folder already holds a repository, or a key cannot be read.
    """
    _require_tuf()
    repo = Path(repo_dir)
    repo.mkdir(parents=True, exist_ok=True)
    with _fs.locked(repo / _LOCK_NAME):
        return _init(repo, keys, root_expires_days=root_expires_days,
                     expires_days=expires_days, timestamp_expires_days=timestamp_expires_days)


def _init(repo: Path, keys: RoleKeys, *, root_expires_days: float, expires_days: float,
          timestamp_expires_days: float) -> Path:
    from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, Targets, Timestamp

    meta = _meta_dir(repo)
    if (meta / "root.json").exists():
        msg = f"{repo}: already a TUF repository (metadata/root.json exists)"
        raise ConfigError(msg)
    signers = _signers(keys, ROLES)
    root = Root(expires=_expiry(root_expires_days, "root_expires_days"), consistent_snapshot=True)
    for role, (signer, _path) in signers.items():
        root.add_key(signer.public_key, role)
    meta.mkdir(parents=True, exist_ok=True)
    (repo / "targets").mkdir(exist_ok=True)
    root_md = Metadata(root)
    _sign(root_md, "root", signers, root)
    state = _State(
        root=root_md,
        targets=Metadata(Targets(expires=_expiry(expires_days, "expires_days"))),
        snapshot=Metadata(Snapshot(expires=_expiry(expires_days, "expires_days"))),
        timestamp=Metadata(Timestamp(expires=_expiry(timestamp_expires_days,
                                                     "timestamp_expires_days"),
                                     snapshot_meta=MetaFile(version=1))),
    )
    _commit(repo, state, signers, bump=False, expires_days=expires_days,
            timestamp_expires_days=timestamp_expires_days)
    _write(root_md, meta / "1.root.json")
    _write(root_md, meta / "root.json")
    logger.info("initialized TUF repository %s", repo)
    return meta / "root.json"


def _load(repo: Path) -> _State:
    from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp

    meta = _meta_dir(repo)
    try:
        root = Metadata[Root].from_file(str(meta / "root.json"))
        timestamp = Metadata[Timestamp].from_file(str(meta / "timestamp.json"))
        snapshot = Metadata[Snapshot].from_file(
            str(meta / f"{timestamp.signed.snapshot_meta.version}.snapshot.json"))
        targets = Metadata[Targets].from_file(
            str(meta / f"{snapshot.signed.meta['targets.json'].version}.targets.json"))
    except FileNotFoundError as exc:
        msg = f"{repo}: not a complete TUF repository ({exc.filename} is missing)"
        raise StoreError(msg) from exc
    except (ValueError, KeyError) as exc:  # tuf's DeserializationError is a ValueError
        msg = f"{repo}: damaged TUF metadata ({exc})"
        raise StoreError(msg) from exc
    return _State(root=root, timestamp=timestamp, snapshot=snapshot, targets=targets)


def _commit(repo: Path, state: _State, signers: dict[str, tuple[Signer, Path]], *, bump: bool,
            expires_days: float, timestamp_expires_days: float) -> None:
    """Sign and write targets, snapshot, then timestamp (last: clients see it all or nothing)."""
    from tuf.api.metadata import MetaFile

    root, meta = state.root.signed, _meta_dir(repo)
    targets, snapshot, timestamp = state.targets, state.snapshot, state.timestamp
    if bump:
        targets.signed.version += 1
        snapshot.signed.version += 1
        timestamp.signed.version += 1
    targets.signed.expires = _expiry(expires_days, "expires_days")
    snapshot.signed.expires = _expiry(expires_days, "expires_days")
    timestamp.signed.expires = _expiry(timestamp_expires_days, "timestamp_expires_days")
    _sign(targets, "targets", signers, root)
    data = _write(targets, meta / f"{targets.signed.version}.targets.json")
    snapshot.signed.meta["targets.json"] = MetaFile.from_data(targets.signed.version, data,
                                                              ["sha256"])
    _sign(snapshot, "snapshot", signers, root)
    data = _write(snapshot, meta / f"{snapshot.signed.version}.snapshot.json")
    timestamp.signed.snapshot_meta = MetaFile.from_data(snapshot.signed.version, data, ["sha256"])
    _sign(timestamp, "timestamp", signers, root)
    _write(timestamp, meta / "timestamp.json")


def _check_package(package: Path, keys: RoleKeys,
                   package_keys: str | os.PathLike[str] | list[str | os.PathLike[str]] | None,
                   ) -> None:
    """The package must be intact and signed by a key devices will trust."""
    from ..package import read_package
    from .trust import verify_package

    read_package(package, verify=True)
    if package_keys is not None:
        verify_package(package, package_keys)
        return
    # Default: the package is signed with the same key as the targets metadata.
    from cryptography.hazmat.primitives import serialization

    from .trust import load_private_key

    key_path = _key_paths(keys, ("targets",))["targets"]
    public = load_private_key(key_path).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with tempfile.TemporaryDirectory() as tmp:
        pub = Path(tmp, "targets-key.pub")
        pub.write_bytes(public)
        verify_package(package, pub)


def publish(repo_dir: str | os.PathLike[str], package_dir: str | os.PathLike[str], *,
            name: str, version: str, keys: RoleKeys,
            package_keys: str | os.PathLike[str] | list[str | os.PathLike[str]] | None = None,
            expires_days: float = DEFAULT_EXPIRES_DAYS,
            timestamp_expires_days: float = DEFAULT_TIMESTAMP_EXPIRES_DAYS) -> PublishResult:
    """Add a signed model package to the repository as release ``name`` ``version``.

    The first publish initializes the repository (``init_repository``). Each publish bumps
    the targets, snapshot and timestamp versions and re-signs them with fresh expiries.
    Publishing the exact same release again changes nothing; the same version with other
    content is refused.

    Args:
        repo_dir: the repository folder (the web root to serve).
        package_dir: a package signed with ``qwen-edge sign``.
        keys: one PEM private key for every role, or ``{role: key file}``.
        package_keys: public key(s) the package signature must verify with; default: the
            public half of the targets key.
        expires_days: lifetime of the targets and snapshot metadata.
        timestamp_expires_days: lifetime of the timestamp; refresh it before with
            ``refresh_timestamp`` (devices refuse expired metadata).

    Raises:
        ConfigError: bad name/version, a key that is not the repository's, or the version is
            already published with other content.
        PackageError: the package is corrupt or not signed by a trusted key.
    """
    _require_tuf()
    from tuf.api.metadata import TargetFile

    check_release(name, version)
    repo, package = Path(repo_dir), Path(package_dir)
    _check_package(package, keys, package_keys)
    repo.mkdir(parents=True, exist_ok=True)
    with _fs.locked(repo / _LOCK_NAME):
        if not (_meta_dir(repo) / "root.json").exists():
            _init(repo, keys, root_expires_days=DEFAULT_ROOT_EXPIRES_DAYS,
                  expires_days=expires_days, timestamp_expires_days=timestamp_expires_days)
        _clean_temp(repo)
        state = _load(repo)
        signers = _signers(keys, ("targets", "snapshot", "timestamp"))
        target = f"{name}/{archive_name(name, version)}"
        folder = repo / "targets" / name
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{_fs.TEMP_PREFIX}{os.getpid()}.tar.gz"
        try:
            pack_package(package, tmp, arcname=f"{name}-{version}")
            info = TargetFile.from_file(target, str(tmp), ["sha256"])
            sha256 = info.hashes["sha256"]
            final = folder / f"{sha256}.{archive_name(name, version)}"
            existing = state.targets.signed.targets.get(target)
            if existing is not None:
                if existing.hashes.get("sha256") != sha256:
                    msg = (f"{name} {version} is already published with other content "
                           f"(sha256 {existing.hashes.get('sha256', '?')[:16]}...); publish "
                           "a new version")
                    raise ConfigError(msg)
                if final.is_file():
                    return PublishResult(name=name, version=version, target=target, file=final,
                                         length=info.length, sha256=sha256, changed=False,
                                         timestamp_version=state.timestamp.signed.version)
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
            tmp.replace(final)
            _fs.fsync_dir(folder)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        info.unrecognized_fields["custom"] = {"name": name, "version": version}
        state.targets.signed.targets[target] = info
        _commit(repo, state, signers, bump=True, expires_days=expires_days,
                timestamp_expires_days=timestamp_expires_days)
    logger.info("published %s (%d bytes) to %s", target, info.length, repo)
    return PublishResult(name=name, version=version, target=target, file=final,
                         length=info.length, sha256=sha256, changed=True,
                         timestamp_version=state.timestamp.signed.version)


def refresh_timestamp(repo_dir: str | os.PathLike[str], keys: RoleKeys, *,
                      expires_days: float = DEFAULT_TIMESTAMP_EXPIRES_DAYS) -> int:
    """Re-sign ``timestamp.json`` with a new expiry (a new version, same releases).

    Run it from cron well before the timestamp expires; devices refuse expired metadata
    (that is how they notice a frozen mirror). Only the timestamp key is needed.

    Returns:
        The new timestamp version.
    """
    _require_tuf()
    repo = Path(repo_dir)
    with _fs.locked(repo / _LOCK_NAME):
        state = _load(repo)
        signers = _signers(keys, ("timestamp",))
        timestamp = state.timestamp
        timestamp.signed.version += 1
        timestamp.signed.expires = _expiry(expires_days, "expires_days")
        _sign(timestamp, "timestamp", signers, state.root.signed)
        _write(timestamp, _meta_dir(repo) / "timestamp.json")
        return timestamp.signed.version

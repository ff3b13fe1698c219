"""Signed model packages: keys, signing, verification (extra ``qwen-edge[trust]``).

A package is signed with the OpenSSF ``model-signing`` library and an elliptic-curve key
(P-256 by default). The signature, ``model.sig`` inside the package, is a Sigstore bundle
whose DSSE payload lists the sha256 of **every** file in the folder, the manifest
``qwen_edge.json`` included; only ``model.sig`` itself is left out. Verification checks the
signature against the operator's trusted public keys, then re-hashes the folder and compares
file by file, so a changed, missing or added file is refused.

The heavy imports (``model_signing``, ``cryptography``) happen inside the functions, so
``import qwen_edge`` stays light and works without the extra.

Verification cache (``load(..., trusted_keys=..., verify_cache=True)``): after a successful
verification, ``(size, mtime_ns, ctime_ns, inode)`` of every file and the fingerprint of the
key that verified are stored under ``$XDG_CACHE_HOME/qwen-edge/verified/`` (default
``~/.cache``). The next load of the unchanged folder skips the re-hash; touching, rewriting,
adding or removing any file invalidates the entry. Threat model: the cache trusts file
metadata. Someone who can write the package *and* restore size, mtime, ctime and inode (root,
raw access to the block device), or who can write the cache folder, can defeat it; pass
``verify_cache=False`` where that matters. No verification protects against a file being
swapped between the check and the moment onnxruntime reads it: keep packages on storage
only the loading user can write.

Example:
    >>> from qwen_edge.fleet import trust
    >>> private, public = trust.generate_keypair("keys/")
    >>> trust.sign_package("pkg/qwen2.5-0.5b-int4", private)
    >>> trust.verify_package("pkg/qwen2.5-0.5b-int4", "keys/")   # or a list of .pub files
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import (
    ConfigError,
    IntegrityError,
    PackageNotFoundError,
    SignatureError,
)
from ..package import read_package
from .keys import (
    PRIVATE_KEY_NAME,
    PUBLIC_KEY_NAME,
    TrustedKeys,
    _fingerprint,
    _load_public_key,
    generate_keypair,
    key_fingerprint,
    load_private_key,
    load_public_keys,
    require_trust,
)

__all__ = [
    "PRIVATE_KEY_NAME",
    "PUBLIC_KEY_NAME",
    "SIGNATURE_NAME",
    "TrustedKeys",
    "Verification",
    "check_package",
    "generate_keypair",
    "key_fingerprint",
    "load_private_key",
    "load_public_keys",
    "require_trust",
    "sign_package",
    "verify_package",
]

logger = logging.getLogger(__name__)

SIGNATURE_NAME = "model.sig"
_CACHE_FORMAT = 1





# -- signing ------------------------------------------------------------------------------


def _hashing_config() -> Any:
    """Hash every file (sha256, no symlinks) except the signature; git files are not exempt."""
    from model_signing import hashing

    return (hashing.Config()  # type: ignore[no-untyped-call]
            .use_file_serialization(hashing_algorithm="sha256", allow_symlinks=False)
            .set_ignored_paths(paths=[SIGNATURE_NAME], ignore_git_paths=False))


def sign_package(pkg_dir: str | os.PathLike[str], private_key_path: str | os.PathLike[str]) -> Path:
    """Sign a model package in place: writes ``model.sig`` covering every other file.

    The package's own sha256 manifest is checked first, so a corrupt package is never signed.
    Re-signing (a new key, a changed file) replaces ``model.sig``.

    Returns:
        The signature path (``pkg_dir/model.sig``).

    Raises:
        PackageNotFoundError, CorruptPackageError: the folder is not an intact package.
        ConfigError: the key cannot be used, or the trust extra is missing.

    Example:
        >>> sign_package("pkg/qwen2.5-0.5b-int4", "keys/signing-key.pem")
    """
    require_trust()
    from model_signing import signing

    root = Path(pkg_dir)
    read_package(root, verify=True)
    load_private_key(private_key_path)  # our error messages for a bad key
    config = (signing.Config()  # type: ignore[no-untyped-call]
              .use_elliptic_key_signer(private_key=Path(private_key_path))
              .set_hashing_config(_hashing_config()))
    with tempfile.TemporaryDirectory(prefix="qwen-edge-sign-") as work:
        # Sign outside the package (nothing new appears while it is hashed), then move in.
        staged = Path(work) / SIGNATURE_NAME
        with _mapped_errors(root):
            config.sign(root, staged)
        data = staged.read_bytes()
    signature = root / SIGNATURE_NAME
    tmp: str | None = None
    try:  # atomic: a reader sees the old signature or the new one, never half of one
        fd, tmp = tempfile.mkstemp(prefix=".model.sig.", dir=root)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # noqa: PTH101
        Path(tmp).replace(signature)
    except OSError as exc:
        msg = f"{signature}: cannot write the signature ({exc.strerror})"
        raise ConfigError(msg) from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return signature


# -- verification -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Signed:
    """What ``model.sig`` claims, parsed before any cryptography (not yet authenticated)."""

    key_id: str  # sha256 of the signer's PEM public key
    digests: dict[str, str]  # file name -> sha256 hex


@dataclass(frozen=True, slots=True)
class Verification:
    """How a package verified: the trusted key, the files covered and whether it was cached."""

    key: Path
    key_id: str
    files: int
    nbytes: int
    cached: bool


def verify_package(pkg_dir: str | os.PathLike[str], trusted_keys: TrustedKeys, *,
                   cache: bool = False) -> None:
    """Check that a package is signed by one of ``trusted_keys`` and that no file changed.

    Args:
        pkg_dir: the package folder.
        trusted_keys: a folder of ``*.pub`` files, one public key file, or a list of them.
        cache: reuse (and record) a previous successful verification of the unchanged folder
            (see the module docstring for what the cache trusts).

    Raises:
        PackageNotFoundError: no such folder.
        SignatureError: no ``model.sig``, a malformed signature, a signature that does not
            verify, or one made by a key that is not trusted.
        IntegrityError: a file differs from its signed digest, is missing, or was added.
        ConfigError: a trusted key cannot be read, or the trust extra is missing.

    Example:
        >>> verify_package("pkg/qwen2.5-0.5b-int4", "/etc/qwen-edge/trusted-keys/")
    """
    check_package(pkg_dir, trusted_keys, cache=cache)


def check_package(pkg_dir: str | os.PathLike[str], trusted_keys: TrustedKeys, *,
                  cache: bool = False) -> Verification:
    """``verify_package`` that also says which key verified and how much was hashed."""
    require_trust()
    root = Path(pkg_dir)
    if not root.is_dir():
        msg = f"{root}: no such model package folder"
        raise PackageNotFoundError(msg)
    trusted: dict[str, Path] = {}
    for path in load_public_keys(trusted_keys):
        trusted.setdefault(_fingerprint(_load_public_key(path)), path)
    signature = root / SIGNATURE_NAME
    if signature.is_symlink() or not signature.is_file():
        msg = f"{root}: not signed (no {SIGNATURE_NAME}); sign it with `qwen-edge sign`"
        raise SignatureError(msg)
    signed = _parse_signature(signature)
    key_path = trusted.get(signed.key_id)
    if key_path is None:
        msg = (f"{root}: signed by key {signed.key_id[:16]}, which is not among the trusted "
               f"keys ({', '.join(f'{p.name}={fp[:16]}' for fp, p in trusted.items())})")
        raise SignatureError(msg)
    before = _snapshot(root) if cache else None
    if before is not None and _cache_hit(root, before, signed.key_id):
        logger.debug("%s: verification cache hit", root)
        covered = {n: v for n, v in before.items() if n != SIGNATURE_NAME}
        return Verification(key=key_path, key_id=signed.key_id, files=len(covered),
                            nbytes=sum(v[0] for v in covered.values()), cached=True)
    actual = _verify_with_key(root, signature, key_path, signed)
    nbytes = sum(_size(root / name) for name in actual)
    if before is not None and _snapshot(root) == before:
        _cache_store(root, before, signed.key_id)
    return Verification(key=key_path, key_id=signed.key_id, files=len(actual), nbytes=nbytes,
                        cached=False)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _parse_signature(signature: Path) -> _Signed:
    """Read the key id and the per-file digests from the bundle, refusing anything odd."""
    try:
        bundle = json.loads(signature.read_bytes().decode("utf-8"))
        key_id = bundle["verificationMaterial"]["publicKey"]["hint"]
        payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"], validate=True))
        predicate = payload["predicate"]
        serialization = predicate["serialization"]
        digests = {r["name"]: r["digest"] for r in predicate["resources"]}
    except OSError as exc:
        msg = f"{signature}: cannot read the signature ({exc.strerror})"
        raise SignatureError(msg) from exc
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        msg = f"{signature}: malformed signature ({type(exc).__name__}: {str(exc)[:200]}); re-sign with `qwen-edge sign`"
        raise SignatureError(msg) from exc
    if not isinstance(key_id, str) or len(key_id) != 64:
        msg = f"{signature}: malformed signature (no key id); re-sign with `qwen-edge sign`"
        raise SignatureError(msg)
    # A trusted signer could still have left files out (model-signing's own defaults skip
    # git files); we accept only signatures that cover every file but model.sig.
    ignored = serialization.get("ignore_paths", []) if isinstance(serialization, dict) else None
    if (not isinstance(serialization, dict) or serialization.get("method") != "files"
            or serialization.get("hash_type") != "sha256"
            or not isinstance(ignored, list) or set(ignored) - {SIGNATURE_NAME}):
        msg = (f"{signature}: the signature does not cover every file of the package "
               f"(serialization {serialization!r}); re-sign with `qwen-edge sign`")
        raise SignatureError(msg)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in digests.items()):
        msg = f"{signature}: malformed signature (resources); re-sign with `qwen-edge sign`"
        raise SignatureError(msg)
    return _Signed(key_id=key_id, digests=digests)


def _verify_with_key(root: Path, signature: Path, key_path: Path, signed: _Signed,
                     ) -> dict[str, str]:
    """Verify the signature with one key, then re-hash the folder; returns name -> sha256."""
    from cryptography.exceptions import InvalidSignature
    from model_signing import hashing, verifying

    class _Recording(hashing.Config):
        """Our hashing config, remembering whether hashing began and what it produced."""

        started = False
        manifest: Any = None

        def hash(self, model_path: Any, *, files_to_hash: Any = None) -> Any:
            self.started = True
            self.manifest = super().hash(model_path, files_to_hash=files_to_hash)
            return self.manifest

    recording = _Recording()  # type: ignore[no-untyped-call]
    recording.use_file_serialization(hashing_algorithm="sha256", allow_symlinks=False)
    recording.set_ignored_paths(paths=[SIGNATURE_NAME], ignore_git_paths=False)
    config = (verifying.Config()  # type: ignore[no-untyped-call]
              .use_elliptic_key_verifier(public_key=key_path)
              .set_hashing_config(recording))
    try:
        config.verify(root, signature)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OSError,
            InvalidSignature) as exc:
        if not recording.started:
            msg = (f"{signature}: the signature does not verify with trusted key "
                   f"{key_path} ({type(exc).__name__}: {exc}); the signature file is damaged "
                   "or was forged")
            raise SignatureError(msg) from exc
        if recording.manifest is None:  # hashing itself failed: a symlink, unreadable file
            msg = f"{root}: cannot check the package's files ({exc})"
            raise IntegrityError(msg) from exc
        raise IntegrityError(_diff(root, signed.digests, _digests(recording.manifest))) from exc
    return _digests(recording.manifest)


def _digests(manifest: Any) -> dict[str, str]:
    return {str(rd.identifier): rd.digest.digest_hex for rd in manifest.resource_descriptors()}


def _diff(root: Path, expected: dict[str, str], actual: dict[str, str]) -> str:
    """One message naming every file that differs, is missing or was added."""
    changed = sorted(n for n in expected.keys() & actual.keys() if expected[n] != actual[n])
    missing = sorted(expected.keys() - actual.keys())
    extra = sorted(actual.keys() - expected.keys())
    parts = [f"{n}: differs from its signed digest (modified, truncated or replaced)"
             for n in changed]
    parts += [f"{n}: missing (the signature covers it)" for n in missing]
    parts += [f"{n}: not covered by the signature (added after signing)" for n in extra]
    if not parts:  # the manifests differ in a way the per-file view does not show
        parts = ["the files differ from the signed manifest"]
    return f"{root}: " + "; ".join(parts)


# -- verification cache -------------------------------------------------------------------

_Snapshot = dict[str, list[int]]


def _snapshot(root: Path) -> _Snapshot | None:
    """(size, mtime_ns, ctime_ns, inode, device) of every file; None if anything is not a
    plain file or folder (then there is no caching and verification reports it)."""
    out: _Snapshot = {}

    def walk(folder: Path, prefix: str) -> bool:
        with os.scandir(folder) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                name = prefix + entry.name
                if stat.S_ISDIR(st.st_mode):
                    if not walk(Path(entry.path), name + "/"):
                        return False
                elif stat.S_ISREG(st.st_mode):
                    out[name] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
                else:
                    return False
        return True

    try:
        return out if walk(root, "") else None
    except OSError:
        return None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qwen-edge" / "verified"


def _cache_file(root: Path) -> Path:
    real = os.path.realpath(root)
    return _cache_dir() / f"{hashlib.sha256(real.encode()).hexdigest()}.json"


def _cache_hit(root: Path, snapshot: _Snapshot, key_id: str) -> bool:
    try:
        entry = json.loads(_cache_file(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(entry, dict) and entry.get("format") == _CACHE_FORMAT
            and entry.get("path") == os.path.realpath(root)
            and entry.get("key_id") == key_id and entry.get("files") == snapshot)


def _cache_store(root: Path, snapshot: _Snapshot, key_id: str) -> None:
    entry = {"format": _CACHE_FORMAT, "path": os.path.realpath(root), "key_id": key_id,
             "files": snapshot}
    target = _cache_file(root)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entry, f)
        Path(tmp).replace(target)
        tmp = None
    except OSError as exc:
        logger.debug("cannot write the verification cache %s: %s", target, exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


@contextmanager
def _mapped_errors(root: Path) -> Iterator[None]:
    """Translate model-signing's errors while signing (symlinks, unreadable files)."""
    try:
        yield
    except (ValueError, OSError) as exc:
        msg = f"{root}: cannot sign this package ({exc})"
        raise ConfigError(msg) from exc

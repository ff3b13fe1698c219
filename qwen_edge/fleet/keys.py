"""Signing keys: make a pair, load them, name them by fingerprint.

EC keys on the curves model-signing accepts; private keys are written 0600 and never
overwritten. Needs the trust extra (``cryptography``, ``model-signing``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, OutputExistsError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["PRIVATE_KEY_NAME", "PUBLIC_KEY_NAME", "TrustedKeys", "generate_keypair",
           "key_fingerprint", "load_private_key", "load_public_keys", "require_trust"]

PRIVATE_KEY_NAME = "signing-key.pem"
PUBLIC_KEY_NAME = "signing-key.pub"
_INSTALL_HINT = 'signing needs the trust extra: pip install "qwen-edge[trust]"'
_SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")  # what model-signing accepts

TrustedKeys = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def require_trust() -> None:
    """Raise ConfigError naming the extra when model-signing / cryptography are missing."""
    try:
        import cryptography  # noqa: F401
        import model_signing  # noqa: F401
    except ImportError as exc:
        raise ConfigError(_INSTALL_HINT) from exc


def generate_keypair(out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write a new EC P-256 key pair: ``signing-key.pem`` (0600) and ``signing-key.pub``.

    The same keys sign packages (``sign_package``) and fleet-update metadata.

    Returns:
        (private key path, public key path).

    Raises:
        OutputExistsError: a key file already exists in ``out_dir`` (never overwritten).
        ConfigError: the trust extra is missing.

    Example:
        >>> private, public = generate_keypair("keys/")
    """
    require_trust()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    out = Path(out_dir)
    private_path, public_path = out / PRIVATE_KEY_NAME, out / PUBLIC_KEY_NAME
    for path in (private_path, public_path):
        if path.exists():
            msg = f"{path}: already exists; keys are never overwritten, pick another folder"
            raise OutputExistsError(msg)
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        msg = f"{out}: cannot create the key folder ({exc.strerror})"
        raise ConfigError(msg) from exc
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(private_path, private_pem, 0o600)
    try:
        _write_new(public_path, public_pem, 0o644)
    except OutputExistsError:
        private_path.unlink()
        raise
    return private_path, public_path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` exclusively with ``mode`` (no window where a key is world-readable)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        msg = f"{path}: already exists; keys are never overwritten, pick another folder"
        raise OutputExistsError(msg) from exc
    except OSError as exc:
        msg = f"{path}: cannot write ({exc.strerror})"
        raise ConfigError(msg) from exc
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def load_private_key(path: str | os.PathLike[str]) -> ec.EllipticCurvePrivateKey:
    """Read an unencrypted PEM elliptic-curve private key (as written by ``generate_keypair``).

    Returns:
        A ``cryptography`` ``EllipticCurvePrivateKey``.

    Raises:
        ConfigError: no such file, not a PEM private key, not an EC key on P-256/384/521, or
            the trust extra is missing.
    """
    require_trust()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    file = Path(path)
    data = _read_key_file(file)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        msg = (f"{file}: not an unencrypted PEM private key ({exc}); create one with "
               "`qwen-edge keygen`")
        raise ConfigError(msg) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _SUPPORTED_CURVES:
        msg = f"{file}: not an elliptic-curve P-256/P-384/P-521 private key"
        raise ConfigError(msg)
    return key


def load_public_keys(trusted_keys: TrustedKeys) -> list[Path]:
    """Resolve trusted public keys: a folder of ``*.pub`` files, one file, or a list of them.

    Returns:
        The key file paths (a folder's ``*.pub`` files sorted by name).

    Raises:
        ConfigError: a path does not exist, or a folder holds no ``*.pub`` file.
    """
    items = [trusted_keys] if isinstance(trusted_keys, (str, os.PathLike)) else list(trusted_keys)
    if not items:
        msg = "trusted_keys is empty; pass a folder of *.pub files, a .pub file or a list"
        raise ConfigError(msg)
    keys: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.pub") if p.is_file())
            if not found:
                msg = f"{path}: no *.pub public keys in this folder"
                raise ConfigError(msg)
            keys += found
        elif path.is_file():
            keys.append(path)
        else:
            msg = f"{path}: no such trusted key file or folder"
            raise ConfigError(msg)
    return keys


def key_fingerprint(public_key_path: str | os.PathLike[str]) -> str:
    """Hex sha256 of the key's PEM SubjectPublicKeyInfo: the key id ``model.sig`` records.

    Raises:
        ConfigError: not a PEM elliptic-curve public key, or the trust extra is missing.
    """
    return _fingerprint(_load_public_key(Path(public_key_path)))


def _read_key_file(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        msg = f"{file}: cannot read the key ({exc.strerror})"
        raise ConfigError(msg) from exc


def _load_public_key(file: Path) -> ec.EllipticCurvePublicKey:
    require_trust()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_public_key(_read_key_file(file))
    except (ValueError, TypeError) as exc:
        msg = f"{file}: not a PEM public key ({exc})"
        raise ConfigError(msg) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _SUPPORTED_CURVES:
        msg = f"{file}: not an elliptic-curve P-256/P-384/P-521 public key"
        raise ConfigError(msg)
    return key


def _fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    # The same digest model-signing records as the bundle's public-key hint.
    pem = key.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()

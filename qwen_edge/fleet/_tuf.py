"""python-tuf at the store's boundary: the trusted root, and TUF's errors in our words.

Each refusal names the attack it stops (freeze, rollback, tampering, endless data), so an
operator knows whether to re-sign the repository or to worry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError, UpdateError

_INSTALL_HINT = 'fleet updates need the trust extra: pip install "qwen-edge[trust]"'


def _read_root(path: Path) -> bytes:
    try:
        from tuf.api.exceptions import RepositoryError
        from tuf.api.metadata import Metadata, Root
    except ImportError as exc:
        raise ConfigError(_INSTALL_HINT) from exc
    try:
        data = path.read_bytes()
    except OSError as exc:
        msg = f"{path}: cannot read the TUF root metadata ({exc.strerror})"
        raise ConfigError(msg) from exc
    try:
        md = Metadata[Root].from_bytes(data)
        if md.signed.type != "root":
            raise ValueError(md.signed.type)
        md.signed.verify_delegate("root", md.signed_bytes, md.signatures)
    except (RepositoryError, ValueError, KeyError, TypeError) as exc:
        msg = (f"{path}: not valid, self-signed TUF root metadata ({exc}); pass the "
               "repository's metadata/root.json")
        raise ConfigError(msg) from exc
    return data


@contextlib.contextmanager
def _tuf_errors(url: str, what: str) -> Iterator[None]:
    """Translate python-tuf and urllib3 errors into UpdateError, naming the attack."""
    import urllib3
    from tuf.api import exceptions as tuf

    try:
        yield
    except tuf.ExpiredMetadataError as exc:
        msg = (f"{url}: {what} refused: the metadata has expired ({exc}). The repository is "
               "stale: a mirror frozen by an attacker (freeze attack), or the publisher must "
               "re-sign it (`qwen-edge publish --refresh-timestamp`)")
        raise UpdateError(msg) from exc
    except tuf.BadVersionNumberError as exc:
        msg = (f"{url}: {what} refused: older than metadata this device already trusts "
               f"({exc}); a rollback attack, or the repository was restored from a backup")
        raise UpdateError(msg) from exc
    except tuf.UnsignedMetadataError as exc:
        msg = (f"{url}: {what} refused: not signed by the keys the trusted root names "
               f"({exc}); tampered metadata or a wrong signing key")
        raise UpdateError(msg) from exc
    except tuf.LengthOrHashMismatchError as exc:
        msg = (f"{url}: {what} refused: its length or sha256 hash differs from the signed "
               f"metadata ({exc}); the file was tampered with or corrupted")
        raise UpdateError(msg) from exc
    except tuf.DownloadLengthMismatchError as exc:
        msg = (f"{url}: {what} refused: longer than the length in the signed metadata "
               f"({exc}); an endless-data attack or a wrong file")
        raise UpdateError(msg) from exc
    except tuf.RepositoryError as exc:
        msg = f"{url}: {what} failed verification ({type(exc).__name__}: {exc})"
        raise UpdateError(msg) from exc
    except tuf.DownloadHTTPError as exc:
        msg = f"{url}: fetching {what} failed with HTTP {exc.status_code}"
        raise UpdateError(msg) from exc
    except tuf.SlowRetrievalError as exc:
        reason = getattr(exc.__cause__, "reason", None)
        if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError
            msg = f"{url}: cannot connect to fetch {what} ({reason})"
        else:
            msg = f"{url}: fetching {what} timed out (slow retrieval)"
        raise UpdateError(msg) from exc
    except (tuf.DownloadError, urllib3.exceptions.HTTPError) as exc:
        msg = f"{url}: cannot fetch {what} ({type(exc).__name__}: {exc})"
        raise UpdateError(msg) from exc


"""write_package: graph + tokenizer + manifest into a folder, atomically.

Everything is written into a temporary sibling folder; the manifest (with every file's
sha256) is written last, and only then is the folder renamed into place. An interrupted
export leaves no half-written package behind, and never destroys the previous one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import onnx_ir as ir

from qwen_edge.errors import OutputExistsError
from qwen_edge.package import FORMAT_VERSION, MANIFEST_NAME, file_sha256

__all__ = ["MODEL_FILE", "TOKENIZER_FILE", "write_package"]

MODEL_FILE = "model.onnx"
DATA_FILE = "model.onnx.data"
TOKENIZER_FILE = "tokenizer.json"

ProgressCallback = Callable[[int, int], None]  # (tensors written, total)


def check_output(out: Path, *, force: bool) -> None:
    """Refuse an existing output folder unless ``force`` (checked before any work is done)."""
    if out.exists() and not force:
        msg = f"{out}: already exists; pass --force (force=True) to replace it"
        raise OutputExistsError(msg)
    if out.exists() and not out.is_dir():
        msg = f"{out}: exists and is not a folder"
        raise OutputExistsError(msg)


@contextlib.contextmanager
def _staging(out: Path) -> Iterator[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_package(
    model: ir.Model,
    out: str | os.PathLike[str],
    *,
    manifest: dict[str, Any],
    tokenizer_json: str,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    """Write a model package folder and return its path.

    Args:
        model: the decoder graph (initializers may be lazy; each is materialized once, in turn).
        out: the package folder to create.
        manifest: every manifest field except ``format_version`` and ``files``.
        tokenizer_json: the serialized ``tokenizers`` tokenizer.
        force: replace an existing folder.
        progress: called after each tensor is written.

    Raises:
        OutputExistsError: ``out`` exists and ``force`` is false.
    """
    out = Path(out)
    check_output(out, force=force)

    def on_tensor(_tensor: ir.TensorProtocol, info: ir.external_data.CallbackInfo) -> None:
        if progress is not None:
            progress(info.index + 1, info.total)

    with _staging(out) as tmp:
        # One writer thread: tensors are produced lazily (read, convert, quantize) and must
        # not pile up in memory; the quantization itself is vectorized numpy.
        ir.save(
            model, tmp / MODEL_FILE, external_data=DATA_FILE, callback=on_tensor,
            max_workers=1, max_in_flight_bytes=64 << 20, alignment=4096,
        )
        (tmp / TOKENIZER_FILE).write_text(_compact_json(tokenizer_json), encoding="utf-8")
        files = {
            name: {"sha256": file_sha256(tmp / name), "size": (tmp / name).stat().st_size}
            for name in sorted(p.name for p in tmp.iterdir())
        }
        full = {"format_version": FORMAT_VERSION, **manifest, "files": files}
        (tmp / MANIFEST_NAME).write_text(
            json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        if out.exists():  # force: swap, then delete the old package
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    return out


def _compact_json(text: str) -> str:
    """The same JSON without indentation: Qwen's tokenizer.json shrinks from 11 to 5 MB."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        return text  # not JSON: the tokenizer check reports it with a better message

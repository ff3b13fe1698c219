"""read_package / verify_files: manifests are validated and every byte is checked."""

from __future__ import annotations

import json
import shutil

import pytest

from qwen_edge.errors import CorruptPackageError, IncompatiblePackageError, PackageNotFoundError
from qwen_edge.package import read_package


@pytest.fixture
def pkg(package, tmp_path):  # type: ignore[no-untyped-def]
    return shutil.copytree(package("tiny-qwen2", "int4"), tmp_path / "pkg")


def test_reads_a_valid_package(pkg):  # type: ignore[no-untyped-def]
    p = read_package(pkg)
    assert p.model_file.name == "model.onnx"
    assert len(p.package_hash) == 64
    assert p.nbytes == sum(f.stat().st_size for f in pkg.iterdir() if f.name != "qwen_edge.json")


def _edit(pkg, **changes):  # type: ignore[no-untyped-def]
    manifest = json.loads((pkg / "qwen_edge.json").read_text())
    manifest.update(changes)
    (pkg / "qwen_edge.json").write_text(json.dumps(manifest))


def test_missing_folder_and_manifest(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(PackageNotFoundError, match="no such"):
        read_package(tmp_path / "nope")
    with pytest.raises(PackageNotFoundError, match=r"qwen_edge\.json"):
        read_package(tmp_path)


def test_unknown_format_version(pkg):  # type: ignore[no-untyped-def]
    _edit(pkg, format_version=99)
    with pytest.raises(IncompatiblePackageError, match="format_version 99"):
        read_package(pkg)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: (p / "qwen_edge.json").write_text("{"),
        lambda p: (p / "qwen_edge.json").write_text("[]"),
        lambda p: _edit(p, shapes=None),
        lambda p: _edit(p, files={"../../etc/passwd": {"sha256": "0", "size": 1}}),
        lambda p: (p / "tokenizer.json").unlink(),
        lambda p: (p / "model.onnx.data").write_bytes((p / "model.onnx.data").read_bytes()[:-1]),
    ],
    ids=["bad-json", "not-object", "missing-field", "path-traversal", "missing-file", "truncated"],
)
def test_damaged_packages(pkg, damage):  # type: ignore[no-untyped-def]
    damage(pkg)
    with pytest.raises(CorruptPackageError):
        read_package(pkg)


@pytest.mark.parametrize("name", ["model.onnx", "model.onnx.data", "tokenizer.json"])
def test_single_byte_flip_is_caught(pkg, name):  # type: ignore[no-untyped-def]
    data = bytearray((pkg / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (pkg / name).write_bytes(bytes(data))
    with pytest.raises(CorruptPackageError, match=f"{name}: sha256 mismatch"):
        read_package(pkg)
    read_package(pkg, verify=False)  # the manifest itself is fine

"""Release archives: deterministic packing, and refusal of every unsafe member type."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from qwen_edge.errors import ConfigError, UpdateError
from qwen_edge.fleet.archive import (
    check_release,
    pack_package,
    parse_archive_name,
    unpack_archive,
    version_key,
)


def _folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)) * 10)
    return root


def test_pack_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    src = _folder(tmp_path / "src")
    first = pack_package(src, tmp_path / "one.tar.gz", arcname="assistant-1.0.0")
    (src / "a.txt").touch()  # a new mtime must not change the bytes
    second = pack_package(src, tmp_path / "two.tar.gz", arcname="assistant-1.0.0")
    assert first.read_bytes() == second.read_bytes()
    unpack_archive(first, tmp_path / "out", max_bytes=1 << 20)
    top = tmp_path / "out" / "assistant-1.0.0"
    assert (top / "a.txt").read_text() == "alpha"
    assert (top / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 10


def test_pack_refuses_symlinks(tmp_path: Path) -> None:
    src = _folder(tmp_path / "src")
    (src / "link").symlink_to(src / "a.txt")
    with pytest.raises(ConfigError, match="not a plain file"):
        pack_package(src, tmp_path / "x.tar.gz", arcname="x-1")


def _tar(path: Path, members: list[tuple[str, bytes | str, str]]) -> Path:
    """members: (name, data or link target, kind) with kind in file/dir/sym/hard/chr/blk/fifo."""
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
             "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
             "fifo": tarfile.FIFOTYPE}
    with tarfile.open(path, "w:gz") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type = types[kind]
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            if kind in ("sym", "hard"):
                info.linkname = str(data)
            if kind in ("chr", "blk"):
                info.devmajor, info.devminor = 1, 3  # /dev/null
            tar.addfile(info)
    return path


UNSAFE = [
    ("traversal", [("../evil.txt", b"x", "file")], "outside the archive"),
    ("nested traversal", [("pkg/../../evil.txt", b"x", "file")], "outside the archive"),
    ("absolute", [("/tmp/evil.txt", b"x", "file")], "absolute path"),
    ("symlink", [("model.onnx", "/etc/passwd", "sym")], "symlink"),
    ("symlink dir then file", [("d", "/tmp", "sym"), ("d/evil.txt", b"x", "file")], "symlink"),
    ("hardlink", [("ok.txt", b"x", "file"), ("hl", "/etc/passwd", "hard")], "hardlink"),
    ("character device", [("null", "", "chr")], "character device"),
    ("block device", [("disk", "", "blk")], "block device"),
    ("fifo", [("pipe", "", "fifo")], "FIFO"),
    ("duplicate", [("a.txt", b"1", "file"), ("a.txt", b"2", "file")], "appears twice"),
    ("backslash", [("..\\evil.txt", b"x", "file")], "backslash"),
]


@pytest.mark.parametrize(("members", "message"), [c[1:] for c in UNSAFE],
                         ids=[c[0] for c in UNSAFE])
def test_unpack_refuses_unsafe_members(tmp_path: Path, members: list[tuple[str, bytes | str, str]],
                                       message: str) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", members)
    with pytest.raises(UpdateError, match=message):
        unpack_archive(archive, tmp_path / "deep" / "out", max_bytes=1 << 20)
    assert list(tmp_path.rglob("evil.txt")) == []


def test_unpack_refuses_more_bytes_than_allowed(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "big.tar.gz", [("zeros", bytes(1 << 20), "file")])
    with pytest.raises(UpdateError, match="unpacks to more than"):
        unpack_archive(archive, tmp_path / "out", max_bytes=1 << 19)


def test_unpack_refuses_garbage(tmp_path: Path) -> None:
    garbage = tmp_path / "x.tar.gz"
    garbage.write_bytes(b"\x1f\x8b not really gzip" * 100)
    with pytest.raises(UpdateError, match="not a valid tar archive"):
        unpack_archive(garbage, tmp_path / "out", max_bytes=1 << 20)


def test_versions_sort_numerically_with_prereleases_first() -> None:
    versions = ["1.10.0", "1.9.0", "2.0.0", "2.0.0-rc1", "1.2", "1.2.0", "2.0.0-rc2"]
    assert sorted(versions, key=version_key) == [
        "1.2", "1.2.0", "1.9.0", "1.10.0", "2.0.0-rc1", "2.0.0-rc2", "2.0.0"]


@pytest.mark.parametrize(("name", "version"), [
    ("../x", "1.0"), ("a/b", "1.0"), ("", "1.0"), ("ok", "v1"), ("ok", "1/2"), ("ok", "1..2"),
    (".hidden", "1.0"),
])
def test_bad_release_names_are_refused(name: str, version: str) -> None:
    with pytest.raises(ConfigError):
        check_release(name, version)


def test_parse_archive_name() -> None:
    assert parse_archive_name("/x/assistant-1.2.0.tar.gz") == ("assistant", "1.2.0")
    assert parse_archive_name("qwen-small-2.0.0-rc1.tgz") == ("qwen-small", "2.0.0-rc1")
    assert parse_archive_name("pkg/assistant-1.2.0") == ("assistant", "1.2.0")
    assert parse_archive_name("model.tar.gz") is None

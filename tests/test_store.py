"""The on-device store: updates over a real loopback HTTP server from a real TUF repository,
TUF attacks refused, unsafe archives refused, and SIGKILL at random points never leaves a
half-switched store."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fleet import make_release, release_of, serve

import qwen_edge
from qwen_edge import Store, _fs
from qwen_edge.errors import ConfigError, StoreError, UpdateError
from qwen_edge.fleet.publish import publish
from qwen_edge.fleet.trust import generate_keypair, verify_package

NAME = "assistant"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, package: Callable[..., Path]) -> dict[str, Path]:
    """Keys, three signed releases, and two repositories: v1 (1.0.0) and v2 (1.0.0, 1.1.0)."""
    work = tmp_path_factory.mktemp("fleet")
    key, _pub = generate_keypair(work / "keys")
    evil_key, _evil_pub = generate_keypair(work / "evil-keys")
    base = package("tiny-qwen2")
    out: dict[str, Path] = {"work": work, "key": key, "keys": work / "keys",
                            "evil_key": evil_key, "evil_keys": work / "evil-keys"}
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        out[version] = make_release(base, work / f"pkg-{version}", version, key)
    out["evil-1.2.0"] = make_release(base, work / "evil-pkg-1.2.0", "1.2.0", evil_key)
    publish(work / "repo-v1", out["1.0.0"], name=NAME, version="1.0.0", keys=key)
    shutil.copytree(work / "repo-v1", work / "repo-v2")
    publish(work / "repo-v2", out["1.1.0"], name=NAME, version="1.1.0", keys=key)
    out["repo-v1"], out["repo-v2"] = work / "repo-v1", work / "repo-v2"
    return out


def _repo(fleet: dict[str, Path], which: str, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(fleet[which], repo)
    return repo


def _store(tmp_path: Path, repo: Path, keys: Path) -> Store:
    store = Store(tmp_path / "store")
    store.trust(repo / "metadata" / "root.json", keys)
    return store


def _leftovers(store: Store) -> list[Path]:
    return list((store.root / "tmp").iterdir())


@pytest.mark.network
def test_update_rollback_gc_then_load_and_generate(fleet: dict[str, Path], tmp_path: Path) -> None:
    repo = _repo(fleet, "repo-v1", tmp_path)
    store = _store(tmp_path, repo, fleet["keys"])
    with serve(repo) as url:
        first = store.update(url, name=NAME)
        assert (first.version, first.previous, first.changed) == ("1.0.0", None, True)
        assert store.update(url, name=NAME).reason == "up to date"
        publish(repo, fleet["1.1.0"], name=NAME, version="1.1.0", keys=fleet["key"])
        second = store.update(url, name=NAME)
        assert (second.version, second.previous, second.changed) == ("1.1.0", "1.0.0", True)
        assert release_of(store.active(NAME)) == "1.1.0"

        assert store.rollback(NAME) == "1.0.0"
        assert release_of(store.active(NAME)) == "1.0.0"
        again = store.update(url, name=NAME)  # the rolled-back version is not reinstalled
        assert (again.changed, store.active_version(NAME)) == (False, "1.0.0")
        assert "1.1.0 was rolled back" in again.reason
        with pytest.raises(StoreError, match="nothing to roll back to"):
            store.rollback(NAME)

        publish(repo, fleet["1.2.0"], name=NAME, version="1.2.0", keys=fleet["key"])
        third = store.update(url, name=NAME)  # a newer release goes past the skipped one
        assert (third.version, third.previous) == ("1.2.0", "1.0.0")
    assert store.versions(NAME) == ["1.0.0", "1.1.0", "1.2.0"]
    assert store.gc(NAME, keep=2) == ["1.0.0"]
    assert [(m.version, m.active) for m in store.list()] == [("1.1.0", False), ("1.2.0", True)]
    assert _leftovers(store) == []

    model = qwen_edge.load(store.active(NAME), trusted_keys=store.keys_dir, verify_cache=False)
    reference = qwen_edge.load(fleet["1.2.0"])
    prompt = [{"role": "user", "content": "Hello"}]
    got = model.generate(prompt, max_tokens=8, temperature=0)
    want = reference.generate(prompt, max_tokens=8, temperature=0)
    assert got.usage.completion_tokens == 8
    assert got.text == want.text


@pytest.mark.network
def test_update_specific_version_and_stage_without_activating(fleet: dict[str, Path],
                                                              tmp_path: Path) -> None:
    repo = _repo(fleet, "repo-v2", tmp_path)
    store = _store(tmp_path, repo, fleet["keys"])
    with serve(repo) as url:
        assert store.update(url, name=NAME, version="1.0.0").version == "1.0.0"
        staged = store.update(url, name=NAME, activate=False)
        assert (staged.version, staged.changed) == ("1.1.0", False)
        assert store.active_version(NAME) == "1.0.0"
        assert store.versions(NAME) == ["1.0.0", "1.1.0"]
        store.activate(NAME, "1.1.0")
        assert release_of(store.active(NAME)) == "1.1.0"
        with pytest.raises(UpdateError, match=r"9\.9\.9 is not published \(published: 1\.0\.0, 1\.1\.0\)"):
            store.update(url, name=NAME, version="9.9.9")
        with pytest.raises(UpdateError, match="no release named 'other'"):
            store.update(url, name="other")
        with pytest.raises(UpdateError, match="HTTP 404"):
            store.update(f"{url}/no-such-repo", name=NAME)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(UpdateError, match="cannot connect"):
        store.update(dead, name=NAME)
    assert store.active_version(NAME) == "1.1.0"


# -- TUF attacks --------------------------------------------------------------------------


def _resign_timestamp(repo: Path, key: Path, *, expires: datetime) -> None:
    """Re-sign timestamp.json (version + 1) with ``key`` and the given expiry."""
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata, Timestamp

    path = repo / "metadata" / "timestamp.json"
    md = Metadata[Timestamp].from_file(str(path))
    md.signed.version += 1
    md.signed.expires = expires.replace(microsecond=0)
    md.sign(CryptoSigner(qwen_edge.fleet.trust.load_private_key(key)))
    md.to_file(str(path))


def _archive(repo: Path, version: str) -> Path:
    (found,) = (repo / "targets" / NAME).glob(f"*.{NAME}-{version}.tar.gz")
    return found


def _rollback_attack(repo: Path, fleet: dict[str, Path]) -> None:
    # serve the older repository state (timestamp v2) after the device saw v3
    shutil.rmtree(repo / "metadata")
    shutil.copytree(fleet["repo-v1"] / "metadata", repo / "metadata")


def _freeze_attack(repo: Path, fleet: dict[str, Path]) -> None:
    _resign_timestamp(repo, fleet["key"], expires=datetime.now(timezone.utc) - timedelta(days=1))


def _tampered_archive(repo: Path, fleet: dict[str, Path]) -> None:  # noqa: ARG001
    archive = _archive(repo, "1.1.0")
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))


def _endless_data(repo: Path, fleet: dict[str, Path]) -> None:  # noqa: ARG001
    with _archive(repo, "1.1.0").open("ab") as f:
        f.write(os.urandom(1 << 20))


def _wrong_key(repo: Path, fleet: dict[str, Path]) -> None:
    _resign_timestamp(repo, fleet["evil_key"],
                      expires=datetime.now(timezone.utc) + timedelta(days=7))


def _untrusted_package(repo: Path, fleet: dict[str, Path]) -> None:
    # valid TUF metadata, but the package inside is signed by a key the device does not trust
    publish(repo, fleet["evil-1.2.0"], name=NAME, version="1.2.0", keys=fleet["key"],
            package_keys=fleet["evil_keys"])


ATTACKS = [
    ("rollback", _rollback_attack, "older than metadata this device already trusts"),
    ("freeze", _freeze_attack, "metadata has expired"),
    ("tampered-archive", _tampered_archive, "sha256 hash differs from the signed metadata"),
    ("endless-data", _endless_data, "longer than the length in the signed metadata"),
    ("wrong-key", _wrong_key, "not signed by the keys the trusted root names"),
    ("untrusted-package", _untrusted_package, "package refused .*not among the trusted keys"),
]


@pytest.mark.network
@pytest.mark.parametrize(("attack", "message"), [a[1:] for a in ATTACKS],
                         ids=[a[0] for a in ATTACKS])
def test_attacks_are_refused_and_the_active_version_is_untouched(
        fleet: dict[str, Path], tmp_path: Path,
        attack: Callable[[Path, dict[str, Path]], None], message: str) -> None:
    repo = _repo(fleet, "repo-v2", tmp_path)
    store = _store(tmp_path, repo, fleet["keys"])
    with serve(repo) as url:
        store.update(url, name=NAME, version="1.0.0")  # the device has seen the v2 metadata
        state_before = (store.root / "models" / NAME / "state.json").read_bytes()
        attack(repo, fleet)
        with pytest.raises(UpdateError, match=message):
            store.update(url, name=NAME)
    assert (store.root / "models" / NAME / "state.json").read_bytes() == state_before
    assert store.versions(NAME) == ["1.0.0"]
    assert release_of(store.active(NAME)) == "1.0.0"
    assert _leftovers(store) == []


# -- local installs -----------------------------------------------------------------------


def test_install_archive_and_folder_activate_remove(fleet: dict[str, Path], tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with pytest.raises(StoreError, match="no trusted package keys"):
        store.install(fleet["1.0.0"], name=NAME, version="1.0.0")
    store.trust(None, fleet["keys"])
    archive = tmp_path / f"{NAME}-1.1.0.tar.gz"
    shutil.copy(_archive(fleet["repo-v2"], "1.1.0"), archive)

    assert store.install(fleet["1.0.0"], name=NAME, version="1.0.0").changed
    result = store.install(archive)  # name and version from the file name
    assert (result.name, result.version, result.previous) == (NAME, "1.1.0", "1.0.0")
    assert release_of(store.active(NAME)) == "1.1.0"
    assert store.install(archive).reason == "already active"

    with pytest.raises(StoreError, match="is the active version"):
        store.remove(NAME, "1.1.0")
    with pytest.raises(StoreError, match=r"2\.0\.0 is not installed .*installed: 1\.0\.0, 1\.1\.0"):
        store.activate(NAME, "2.0.0")
    with pytest.raises(ConfigError, match="pass name= and version="):
        store.install(tmp_path / "model.tar.gz")
    store.activate(NAME, "1.0.0")
    store.remove(NAME, "1.1.0")
    assert store.versions(NAME) == ["1.0.0"]
    with pytest.raises(StoreError, match="nothing to roll back to"):
        store.rollback(NAME)
    with pytest.raises(StoreError, match="no active version of 'other'"):
        store.active("other")
    assert _leftovers(store) == []


def _unsigned_copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    (dest / "model.sig").unlink()
    return dest


def _tampered_copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    manifest = json.loads((dest / "qwen_edge.json").read_text())
    manifest["release"] = "9.9.9"
    (dest / "qwen_edge.json").write_text(json.dumps(manifest))
    return dest


@pytest.mark.parametrize(("make", "message"), [
    (_unsigned_copy, "not signed"),
    (_tampered_copy, "qwen_edge.json"),
], ids=["unsigned", "tampered"])
def test_install_refuses_bad_packages(fleet: dict[str, Path], tmp_path: Path,
                                      make: Callable[[Path, Path], Path], message: str) -> None:
    store = Store(tmp_path / "store")
    store.trust(None, fleet["keys"])
    store.install(fleet["1.0.0"], name=NAME, version="1.0.0")
    bad = make(fleet["1.1.0"], tmp_path / "bad")
    with pytest.raises(UpdateError, match=f"package refused .*{message}"):
        store.install(bad, name=NAME, version="1.1.0")
    assert store.versions(NAME) == ["1.0.0"]
    assert store.active_version(NAME) == "1.0.0"
    assert _leftovers(store) == []


def _package_tar(path: Path, package: Path, extra: tarfile.TarInfo) -> Path:
    """A valid package archive (uncompressed: fast to build) with one hostile member."""
    with tarfile.open(path, "w") as tar:
        for file in sorted(package.iterdir()):
            tar.add(file, arcname=f"pkg/{file.name}")
        tar.addfile(extra, io.BytesIO(b"x" * extra.size) if extra.isreg() else None)
    return path


def _member(name: str, kind: bytes, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, size
    return info


@pytest.mark.parametrize(("member", "message"), [
    (_member("../../evil", tarfile.REGTYPE, size=1), "outside the archive"),
    (_member("/tmp/evil", tarfile.REGTYPE, size=1), "absolute path"),
    (_member("pkg/tokenizer2.json", tarfile.SYMTYPE, "/etc/passwd"), "symlink"),
    (_member("pkg/copy", tarfile.LNKTYPE, "pkg/model.onnx"), "hardlink"),
    (_member("pkg/null", tarfile.CHRTYPE), "character device"),
], ids=["traversal", "absolute", "symlink", "hardlink", "device"])
def test_install_refuses_unsafe_archives(fleet: dict[str, Path], tmp_path: Path,
                                         member: tarfile.TarInfo, message: str) -> None:
    store = Store(tmp_path / "store")
    store.trust(None, fleet["keys"])
    store.install(fleet["1.0.0"], name=NAME, version="1.0.0")
    archive = _package_tar(tmp_path / f"{NAME}-1.1.0.tar", fleet["1.1.0"], member)
    with pytest.raises(UpdateError, match=message):
        store.install(archive)
    assert store.versions(NAME) == ["1.0.0"]
    assert store.active_version(NAME) == "1.0.0"
    assert list(tmp_path.rglob("evil")) == []
    assert _leftovers(store) == []


def test_open_removes_leftovers_of_a_dead_process(fleet: dict[str, Path], tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.trust(None, fleet["keys"])
    store.install(fleet["1.0.0"], name=NAME, version="1.0.0")
    (store.root / "tmp" / ".tmp-dead" / "unpacked").mkdir(parents=True)
    (store.root / "tmp" / ".tmp-dead" / "archive").write_bytes(b"half")
    (store.root / "models" / NAME / ".tmp-state").write_text("{")
    with _fs.locked(store.root / ".lock"):  # a live process is changing the store: hands off
        assert len(_leftovers(Store(store.root))) == 1
    reopened = Store(store.root)
    assert _leftovers(reopened) == []
    assert not (store.root / "models" / NAME / ".tmp-state").exists()
    assert reopened.versions(NAME) == ["1.0.0"]
    assert reopened.active_version(NAME) == "1.0.0"


# -- SIGKILL at random points -------------------------------------------------------------

_CHILD = """
import sys
import model_signing, tuf.ngclient  # warm imports: the kill delay lands on store work
from qwen_edge import Store

def step(name):
    print(name, flush=True)  # the last line printed names the step the kill interrupted

root, url = sys.argv[1], sys.argv[2]
store = Store(root)
step("ready")
while True:
    step("activate")
    store.activate("assistant", "1.0.0")
    if "1.1.0" in store.versions("assistant"):
        step("remove")
        store.remove("assistant", "1.1.0")
    step("update")
    store.update(url, name="assistant", version="1.1.0")  # download, unpack, verify, switch
    for _ in range(25):  # switching is quick: many switches for as much time as one update
        step("rollback")
        store.rollback("assistant")              # -> 1.0.0
        step("activate")
        store.activate("assistant", "1.1.0")     # -> 1.1.0
    step("gc")
    store.gc("assistant", keep=2)
"""


@pytest.mark.network
@pytest.mark.parametrize("iterations", [
    20,
    pytest.param(60, marks=pytest.mark.slow),
])
def test_sigkill_during_update_and_activate_leaves_a_consistent_store(
        fleet: dict[str, Path], tmp_path: Path, iterations: int) -> None:
    repo = _repo(fleet, "repo-v2", tmp_path)
    store = _store(tmp_path, repo, fleet["keys"])
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    rng = random.Random(1234)
    seen: Counter[str] = Counter()
    interrupted: Counter[str] = Counter()
    with serve(repo) as url:
        store.update(url, name=NAME, version="1.0.0")
        for _ in range(iterations):
            child = subprocess.Popen([sys.executable, str(script), str(store.root), url],
                                     cwd=tmp_path, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 1.5))  # one loop of the child takes about that
            child.send_signal(signal.SIGKILL)
            out, err = child.communicate()
            assert child.returncode == -signal.SIGKILL, err  # it died by our hand, not its own
            interrupted[(out.split() or ["ready"])[-1]] += 1

            reopened = Store(store.root)  # opening cleans what the dead process left
            assert _leftovers(reopened) == []
            active = reopened.active_version(NAME)
            assert active in {"1.0.0", "1.1.0"}
            seen[str(active)] += 1
            assert release_of(reopened.active(NAME)) == active
            verify_package(reopened.active(NAME), fleet["keys"])  # every file, signed
            for version in reopened.versions(NAME):
                assert release_of(reopened.root / "models" / NAME / version) == version
        final = Store(store.root).update(url, name=NAME, version="1.1.0")
    assert final.version == "1.1.0"
    model = qwen_edge.load(Store(store.root).active(NAME), trusted_keys=fleet["keys"])
    assert model.generate("Hi", max_tokens=2, temperature=0).usage.completion_tokens == 2
    print(f"\nactive after a kill: {dict(seen)}; killed during: {dict(interrupted)}")  # noqa: T201

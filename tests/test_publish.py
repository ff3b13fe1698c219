"""The TUF publisher: repository layout, versions, keys, refresh; and the publish/store CLI
end to end over a loopback server."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fleet import make_release, release_of, serve

from qwen_edge.errors import ConfigError, SignatureError
from qwen_edge.fleet.publish import init_repository, publish, refresh_timestamp
from qwen_edge.fleet.trust import generate_keypair

NAME = "assistant"


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory,
             package: Callable[..., Path]) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("releases")
    key, _pub = generate_keypair(work / "keys")
    other_key, _other_pub = generate_keypair(work / "other-keys")
    base = package("tiny-qwen2")
    out = {"work": work, "key": key, "keys": work / "keys", "other_key": other_key}
    for version in ("1.0.0", "1.1.0"):
        out[version] = make_release(base, work / f"pkg-{version}", version, key)
    out["other-signed"] = make_release(base, work / "pkg-other", "1.1.0", other_key)
    return out


def _metadata(repo: Path) -> dict[str, Any]:
    from tuf.api.metadata import Metadata

    meta = repo / "metadata"
    root = Metadata.from_file(str(meta / "root.json"))
    timestamp = Metadata.from_file(str(meta / "timestamp.json"))
    snapshot = Metadata.from_file(
        str(meta / f"{timestamp.signed.snapshot_meta.version}.snapshot.json"))
    targets = Metadata.from_file(
        str(meta / f"{snapshot.signed.meta['targets.json'].version}.targets.json"))
    for role, md in (("root", root), ("timestamp", timestamp), ("snapshot", snapshot),
                     ("targets", targets)):
        root.signed.verify_delegate(role, md.signed_bytes, md.signatures)  # raises if not
    return {"root": root, "timestamp": timestamp, "snapshot": snapshot, "targets": targets}


def test_publish_writes_a_consistent_snapshot_repository(releases: dict[str, Path],
                                                         tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    first = publish(repo, releases["1.0.0"], name=NAME, version="1.0.0", keys=releases["key"])
    second = publish(repo, releases["1.1.0"], name=NAME, version="1.1.0", keys=releases["key"])
    assert (first.timestamp_version, second.timestamp_version) == (2, 3)  # init is version 1
    md = _metadata(repo)
    assert md["root"].signed.consistent_snapshot is True
    assert (repo / "metadata" / "1.root.json").read_bytes() == (
        repo / "metadata" / "root.json").read_bytes()
    assert [md[r].signed.version for r in ("timestamp", "snapshot", "targets")] == [3, 3, 3]
    targets = md["targets"].signed.targets
    assert sorted(targets) == [f"{NAME}/{NAME}-1.0.0.tar.gz", f"{NAME}/{NAME}-1.1.0.tar.gz"]
    info = targets[f"{NAME}/{NAME}-1.1.0.tar.gz"]
    assert info.custom == {"name": NAME, "version": "1.1.0"}
    digest = hashlib.sha256(second.file.read_bytes()).hexdigest()
    assert (info.hashes["sha256"], info.length) == (digest, second.file.stat().st_size)
    assert second.file == repo / "targets" / NAME / f"{digest}.{NAME}-1.1.0.tar.gz"
    now = datetime.now(timezone.utc)
    assert timedelta(days=6) < md["timestamp"].signed.expires - now <= timedelta(days=7)
    assert timedelta(days=89) < md["targets"].signed.expires - now <= timedelta(days=90)
    assert timedelta(days=364) < md["root"].signed.expires - now <= timedelta(days=365)
    assert list(repo.rglob(".tmp-*")) == []


def test_republishing(releases: dict[str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    publish(repo, releases["1.0.0"], name=NAME, version="1.0.0", keys=releases["key"])
    again = publish(repo, releases["1.0.0"], name=NAME, version="1.0.0", keys=releases["key"])
    assert (again.changed, again.timestamp_version) == (False, 2)  # deterministic archive
    with pytest.raises(ConfigError, match="already published with other content"):
        publish(repo, releases["1.1.0"], name=NAME, version="1.0.0", keys=releases["key"])
    assert _metadata(repo)["timestamp"].signed.version == 2


def test_publish_refuses_unsigned_and_untrusted_packages(releases: dict[str, Path],
                                                         tmp_path: Path) -> None:
    unsigned = tmp_path / "unsigned"
    shutil.copytree(releases["1.0.0"], unsigned)
    (unsigned / "model.sig").unlink()
    with pytest.raises(SignatureError, match="not signed"):
        publish(tmp_path / "repo", unsigned, name=NAME, version="1.0.0", keys=releases["key"])
    with pytest.raises(SignatureError, match="not among the trusted keys"):
        publish(tmp_path / "repo", releases["other-signed"], name=NAME, version="1.0.0",
                keys=releases["key"])
    assert not (tmp_path / "repo").exists()  # nothing was written


def test_publish_refuses_a_key_the_repository_does_not_trust(releases: dict[str, Path],
                                                             tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repository(repo, releases["key"])
    with pytest.raises(ConfigError, match="not the repository's targets key"):
        publish(repo, releases["other-signed"], name=NAME, version="1.0.0",
                keys=releases["other_key"])
    with pytest.raises(ConfigError, match="already a TUF repository"):
        init_repository(repo, releases["key"])
    assert _metadata(repo)["timestamp"].signed.version == 1


def test_refresh_timestamp_re_signs_only_the_timestamp(releases: dict[str, Path],
                                                      tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    publish(repo, releases["1.0.0"], name=NAME, version="1.0.0", keys=releases["key"],
            timestamp_expires_days=1)
    before = _metadata(repo)
    assert refresh_timestamp(repo, releases["key"], expires_days=30) == 3
    after = _metadata(repo)
    assert after["snapshot"] == before["snapshot"]
    assert after["timestamp"].signed.snapshot_meta == before["timestamp"].signed.snapshot_meta
    remaining = after["timestamp"].signed.expires - datetime.now(timezone.utc)
    assert timedelta(days=29) < remaining <= timedelta(days=30)
    with pytest.raises(ConfigError, match="must be > 0"):
        refresh_timestamp(repo, releases["key"], expires_days=0)


def test_one_key_per_role(releases: dict[str, Path], tmp_path: Path) -> None:
    keys = {role: generate_keypair(tmp_path / role)[0]
            for role in ("root", "targets", "snapshot", "timestamp")}
    repo = tmp_path / "repo"
    init_repository(repo, keys)
    root = _metadata(repo)["root"].signed
    assert len({root.roles[role].keyids[0] for role in keys}) == 4
    online = {role: keys[role] for role in ("targets", "snapshot", "timestamp")}
    result = publish(repo, releases["1.0.0"], name=NAME, version="1.0.0", keys=online,
                     package_keys=releases["keys"])
    assert result.changed
    assert refresh_timestamp(repo, {"timestamp": keys["timestamp"]}) == 3
    with pytest.raises(ConfigError, match="not the repository's timestamp key"):
        refresh_timestamp(repo, keys["root"])
    with pytest.raises(ConfigError, match="no key for role"):
        publish(repo, releases["1.1.0"], name=NAME, version="1.1.0",
                keys={"targets": keys["targets"]}, package_keys=releases["keys"])


@pytest.mark.parametrize(("name", "version"), [("../x", "1.0.0"), (NAME, "latest")])
def test_publish_refuses_bad_names(releases: dict[str, Path], tmp_path: Path, name: str,
                                   version: str) -> None:
    with pytest.raises(ConfigError):
        publish(tmp_path / "repo", releases["1.0.0"], name=name, version=version,
                keys=releases["key"])


# -- CLI end to end -----------------------------------------------------------------------


def _cli(cwd: Path, *args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "qwen_edge", *map(str, args)], cwd=cwd,
                         capture_output=True, text=True, timeout=120, check=False)
    assert (out.returncode == 0) == ok, out.stderr
    return out


@pytest.mark.network
def test_cli_publish_and_store_end_to_end(releases: dict[str, Path], tmp_path: Path) -> None:
    repo, store = tmp_path / "repo", tmp_path / "store"
    key = releases["key"]
    _cli(tmp_path, "publish", repo, "--init", "--key", key)
    published = json.loads(_cli(tmp_path, "publish", repo, releases["1.0.0"], "--name", NAME,
                                "--version", "1.0.0", "--key", key, "--json").stdout)
    assert (published["version"], published["timestamp_version"]) == ("1.0.0", 2)
    _cli(tmp_path, "store", "--store", store, "init", "--root", repo / "metadata" / "root.json",
         "--trusted-keys", releases["keys"])
    with serve(repo) as url:
        first = json.loads(_cli(tmp_path, "store", "--store", store, "--json", "update", url,
                                NAME).stdout)
        assert (first["version"], first["changed"]) == ("1.0.0", True)
        _cli(tmp_path, "publish", repo, releases["1.1.0"], "--name", NAME, "--version", "1.1.0",
             "--key", key)
        second = _cli(tmp_path, "store", "--store", store, "update", url, NAME).stdout
        assert second.strip() == f"{NAME}: 1.0.0 -> 1.1.0"
        assert "re-signed" in _cli(tmp_path, "publish", repo, "--refresh-timestamp",
                                   "--key", key).stdout
        assert "up to date" in _cli(tmp_path, "store", "--store", store, "update", url,
                                    NAME).stdout
    listing = json.loads(_cli(tmp_path, "store", "--store", store, "--json", "list").stdout)
    assert [(m["version"], m["active"]) for m in listing] == [("1.0.0", False), ("1.1.0", True)]
    assert "rolled back to 1.0.0" in _cli(tmp_path, "store", "--store", store, "rollback",
                                          NAME).stdout
    path = Path(_cli(tmp_path, "store", "--store", store, "path", NAME).stdout.strip())
    assert release_of(path) == "1.0.0"
    gc = json.loads(_cli(tmp_path, "store", "--store", store, "--json", "gc", NAME,
                         "--keep", "1").stdout)
    assert gc == {"removed": ["1.1.0"]}
    failed = _cli(tmp_path, "store", "--store", store, "activate", NAME, "1.1.0", ok=False)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: assistant 1.1.0 is not installed")
    again = _cli(tmp_path, "publish", repo, "--init", "--key", key, ok=False)
    assert "already a TUF repository" in again.stderr

"""Signed packages (qwen_edge.fleet.trust): real keys, real model-signing signatures, real files.

Every package is a copy of the session's tiny int4 package, so the session fixture is never
touched. The verification cache lives under a per-test XDG_CACHE_HOME.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qwen_edge
from qwen_edge.errors import (
    ConfigError,
    CorruptPackageError,
    IntegrityError,
    OutputExistsError,
    PackageNotFoundError,
    QwenEdgeError,
    SignatureError,
)
from qwen_edge.fleet import trust
from qwen_edge.package import MANIFEST_NAME, read_package

SIG = trust.SIGNATURE_NAME


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Two independent key pairs: 'a' signs, 'b' is someone else."""
    root = tmp_path_factory.mktemp("keys")
    return {name: trust.generate_keypair(root / name) for name in ("a", "b")}


@pytest.fixture(scope="module")
def signed_template(package, keys, tmp_path_factory):  # type: ignore[no-untyped-def]
    pkg = shutil.copytree(package("tiny-qwen2", "int4"), tmp_path_factory.mktemp("s") / "pkg")
    trust.sign_package(pkg, keys["a"][0])
    return pkg


@pytest.fixture
def signed(signed_template, tmp_path):  # type: ignore[no-untyped-def]
    return shutil.copytree(signed_template, tmp_path / "pkg")


def _payload(pkg: Path) -> dict:  # type: ignore[type-arg]
    bundle = json.loads((pkg / SIG).read_text())
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def _files(pkg: Path) -> list[str]:
    return sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file())


# -- keys -----------------------------------------------------------------------------------


def test_generate_keypair(tmp_path):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import ec

    private, public = trust.generate_keypair(tmp_path / "k")
    assert (private.name, public.name) == ("signing-key.pem", "signing-key.pub")
    assert private.stat().st_mode & 0o777 == 0o600
    key = trust.load_private_key(private)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert trust.key_fingerprint(public) == trust._fingerprint(key.public_key())
    before = private.read_bytes()
    with pytest.raises(OutputExistsError, match="never overwritten"):
        trust.generate_keypair(tmp_path / "k")
    assert private.read_bytes() == before


@pytest.mark.parametrize("content", [None, b"", b"not a key", "public"],
                         ids=["missing", "empty", "garbage", "public-key"])
def test_load_private_key_errors(tmp_path, keys, content):  # type: ignore[no-untyped-def]
    path = tmp_path / "key.pem"
    if content == "public":
        path.write_bytes(keys["a"][1].read_bytes())
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"key\.pem"):
        trust.load_private_key(path)


def test_load_public_keys(tmp_path, keys):  # type: ignore[no-untyped-def]
    a_dir = keys["a"][1].parent
    assert trust.load_public_keys(a_dir) == [keys["a"][1]]
    assert trust.load_public_keys(str(keys["b"][1])) == [keys["b"][1]]
    assert trust.load_public_keys([a_dir, keys["b"][1]]) == [keys["a"][1], keys["b"][1]]
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "empty", tmp_path / "missing", []):
        with pytest.raises(ConfigError):
            trust.load_public_keys(bad)


# -- sign and verify ------------------------------------------------------------------------


def test_signature_covers_every_file_with_its_sha256(signed, keys):  # type: ignore[no-untyped-def]
    trust.verify_package(signed, keys["a"][1].parent)
    payload = _payload(signed)
    assert payload["predicate"]["serialization"]["ignore_paths"] == [SIG]
    signed_digests = {r["name"]: r["digest"] for r in payload["predicate"]["resources"]}
    covered = [f for f in _files(signed) if f != SIG]
    assert MANIFEST_NAME in covered
    assert "model.onnx.data" in covered
    assert signed_digests == {f: hashlib.sha256((signed / f).read_bytes()).hexdigest()
                              for f in covered}
    result = trust.check_package(signed, [keys["b"][1], keys["a"][1]])
    assert result.key == keys["a"][1]
    assert not result.cached
    assert result.files == len(covered)
    assert result.nbytes == sum((signed / f).stat().st_size for f in covered)


def test_resigning_replaces_the_signature(signed, keys):  # type: ignore[no-untyped-def]
    trust.sign_package(signed, keys["b"][0])
    trust.verify_package(signed, keys["b"][1])
    with pytest.raises(SignatureError, match="not among the trusted keys"):
        trust.verify_package(signed, keys["a"][1])
    assert [f for f in _files(signed) if f.startswith(".")] == []  # no temp file left


def test_sign_refuses_a_corrupt_package(package, keys, tmp_path):  # type: ignore[no-untyped-def]
    pkg = shutil.copytree(package("tiny-qwen2", "int4"), tmp_path / "bad")
    data = pkg / "model.onnx.data"
    data.write_bytes(data.read_bytes()[:-1])
    with pytest.raises(CorruptPackageError):
        trust.sign_package(pkg, keys["a"][0])
    assert not (pkg / SIG).exists()


def test_load_trusted_generates_like_unsigned(package, signed, keys):  # type: ignore[no-untyped-def]
    prompt, opts = "Hello there", {"max_tokens": 6, "temperature": 0}
    reference = qwen_edge.load(package("tiny-qwen2", "int4")).generate(prompt, **opts)
    model = qwen_edge.load(signed, trusted_keys=keys["a"][1].parent)
    assert model.generate(prompt, **opts).token_ids == reference.token_ids


@pytest.fixture
def no_parsing(monkeypatch):  # type: ignore[no-untyped-def]
    """Fail the test if onnxruntime or the manifest reader is reached."""
    import onnxruntime

    import qwen_edge.model

    def forbidden(*args, **kwargs):  # type: ignore[no-untyped-def]  # noqa: ARG001
        msg = "reached before the signature was checked"
        raise AssertionError(msg)

    monkeypatch.setattr(onnxruntime, "InferenceSession", forbidden)
    monkeypatch.setattr(qwen_edge.model, "read_package", forbidden)


@pytest.mark.usefixtures("no_parsing")
def test_unsigned_package_refused_before_parsing(package, keys, tmp_path):  # type: ignore[no-untyped-def]
    pkg = shutil.copytree(package("tiny-qwen2", "int4"), tmp_path / "unsigned")
    with pytest.raises(SignatureError, match="not signed"):
        qwen_edge.load(pkg, trusted_keys=keys["a"][1].parent)


@pytest.mark.usefixtures("no_parsing")
def test_wrong_key_refused_before_parsing(signed, keys):  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureError, match="not among the trusted keys"):
        qwen_edge.load(signed, trusted_keys=keys["b"][1])


def test_missing_folder(tmp_path, keys):  # type: ignore[no-untyped-def]
    with pytest.raises(PackageNotFoundError):
        trust.verify_package(tmp_path / "nope", keys["a"][1])


def _rewrite_payload(pkg: Path, edit) -> None:  # type: ignore[no-untyped-def]
    bundle = json.loads((pkg / SIG).read_text())
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    edit(payload)
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    (pkg / SIG).write_text(json.dumps(bundle))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda p: (p / SIG).write_bytes(b""), "malformed"),
        (lambda p: (p / SIG).write_bytes(b"\xff\xfe garbage"), "malformed"),
        (lambda p: (p / SIG).write_text("[1, 2]"), "malformed"),
        (lambda p: (p / SIG).write_text((p / SIG).read_text()[:-40]), "malformed"),
        (lambda p: (p / SIG).write_text("[" * 100_000), "malformed"),
        (lambda p: _rewrite_payload(p, lambda d: d["predicate"]["resources"].pop()),
         "does not verify"),
        (lambda p: _rewrite_payload(p, lambda d: d.update(predicate=None)), "malformed"),
    ],
    ids=["empty", "binary", "wrong-shape", "truncated", "deep-nesting", "edited-payload",
         "null-predicate"],
)
def test_damaged_signature(signed, keys, damage, match):  # type: ignore[no-untyped-def]
    damage(signed)
    with pytest.raises(SignatureError, match=match):
        trust.verify_package(signed, keys["a"][1])


def test_signature_that_skips_files_is_refused(signed, keys):  # type: ignore[no-untyped-def]
    """A trusted key signed, but with model-signing told to ignore the weights."""
    from model_signing import hashing, signing

    config = (hashing.Config().use_file_serialization(hashing_algorithm="sha256")
              .set_ignored_paths(paths=[SIG, "model.onnx.data"], ignore_git_paths=False))
    (signing.Config().use_elliptic_key_signer(private_key=keys["a"][0])
     .set_hashing_config(config).sign(signed, signed / SIG))
    with pytest.raises(SignatureError, match="does not cover every file"):
        trust.verify_package(signed, keys["a"][1])


def test_signature_of_another_package_is_refused(signed, keys, tmp_path):  # type: ignore[no-untyped-def]
    other = shutil.copytree(signed, tmp_path / "other")
    manifest = json.loads((other / MANIFEST_NAME).read_text())
    (other / MANIFEST_NAME).write_text(json.dumps({**manifest, "name": "another model"}))
    trust.sign_package(other, keys["a"][0])
    shutil.copy(other / SIG, signed / SIG)  # valid signature, trusted key, other files
    with pytest.raises(IntegrityError, match=f"{MANIFEST_NAME}: differs from its signed digest"):
        trust.verify_package(signed, keys["a"][1])


# -- every byte matters ----------------------------------------------------------------------


def _positions(size: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return sorted({0, size - 1, size // 2, *(rng.randrange(size) for _ in range(4))})


@pytest.mark.parametrize("name", ["model.onnx", "model.onnx.data", MANIFEST_NAME,
                                  "tokenizer.json", SIG])
def test_every_flip_and_truncation_is_refused(signed, keys, name):  # type: ignore[no-untyped-def]
    path, trusted = signed / name, keys["a"][1]
    original = path.read_bytes()
    expected = SignatureError if name == SIG else IntegrityError
    checked = 0
    for pos in _positions(len(original), seed=len(name)):
        for mutated in (original[:pos] + bytes([original[pos] ^ 0xFF]) + original[pos + 1:],
                        original[:pos] + bytes([original[pos] ^ 0x01]) + original[pos + 1:],
                        original[:pos]):
            path.write_bytes(mutated)
            with pytest.raises(expected) as exc:
                trust.verify_package(signed, trusted)
            if expected is IntegrityError:
                assert f"{name}: differs from its signed digest" in str(exc.value)
            checked += 1
    path.write_bytes(original)
    trust.verify_package(signed, trusted)  # restored: trusted again
    assert checked >= 3 * 5


@pytest.mark.usefixtures("no_parsing")
def test_flipped_weights_refused_by_load(signed, keys):  # type: ignore[no-untyped-def]
    with (signed / "model.onnx.data").open("r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0x10]))
    with pytest.raises(IntegrityError, match=r"model\.onnx\.data"):
        qwen_edge.load(signed, trusted_keys=keys["a"][1])


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda p: (p / "extra.bin").write_bytes(b"x"), "extra.bin: not covered"),
        (lambda p: (p / ".gitignore").write_text("*"), ".gitignore: not covered"),
        (lambda p: ((p / "sub").mkdir(), (p / "sub" / "a.py").write_text("")), "sub/a.py"),
        (lambda p: (p / "tokenizer.json").unlink(), "tokenizer.json: missing"),
        (lambda p: (p / MANIFEST_NAME).unlink(), f"{MANIFEST_NAME}: missing"),
        (lambda p: (p / "model.onnx.data").unlink(), "model.onnx.data: missing"),
        (lambda p: (p / "link").symlink_to(p / "model.onnx"), "symlink"),
        (lambda p: (p / "model.onnx").replace(p / "renamed.onnx"), "renamed.onnx"),
    ],
    ids=["extra", "gitignore", "extra-in-subfolder", "deleted-tokenizer", "deleted-manifest",
         "deleted-weights", "symlink", "renamed"],
)
def test_added_or_deleted_files_are_refused(signed, keys, damage, match):  # type: ignore[no-untyped-def]
    damage(signed)
    with pytest.raises(IntegrityError, match=match):
        trust.verify_package(signed, keys["a"][1])


# -- verification cache ----------------------------------------------------------------------


@pytest.fixture
def verify_calls(monkeypatch):  # type: ignore[no-untyped-def]
    """Count model-signing verifications (the expensive re-hash)."""
    from model_signing import verifying

    calls: list[Path] = []
    original = verifying.Config.verify

    def spy(self, model_path, signature_path):  # type: ignore[no-untyped-def]
        calls.append(Path(model_path))
        return original(self, model_path, signature_path)

    monkeypatch.setattr(verifying.Config, "verify", spy)
    return calls


def test_second_load_hits_the_cache(signed, keys, verify_calls, tmp_path):  # type: ignore[no-untyped-def]
    trusted = keys["a"][1]
    qwen_edge.load(signed, trusted_keys=trusted)
    assert len(verify_calls) == 1
    assert len(list((tmp_path / "cache" / "qwen-edge" / "verified").glob("*.json"))) == 1
    qwen_edge.load(signed, trusted_keys=trusted)
    assert len(verify_calls) == 1
    assert trust.check_package(signed, trusted, cache=True).cached
    qwen_edge.load(signed, trusted_keys=trusted, verify_cache=False)
    qwen_edge.load(signed, trusted_keys=trusted, verify_cache=False)
    assert len(verify_calls) == 3
    trust.verify_package(signed, trusted)  # the plain function never reads the cache
    assert len(verify_calls) == 4


def test_cache_invalidated_by_a_same_size_rewrite(signed, keys, verify_calls):  # type: ignore[no-untyped-def]
    trusted = keys["a"][1]
    trust.verify_package(signed, trusted, cache=True)
    data = signed / "model.onnx.data"
    st = data.stat()
    with data.open("r+b") as f:  # same size, same inode, mtime put back
        f.seek(12345)
        byte = f.read(1)
        f.seek(12345)
        f.write(bytes([byte[0] ^ 1]))
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (data.stat().st_size, data.stat().st_ino, data.stat().st_mtime_ns) == (
        st.st_size, st.st_ino, st.st_mtime_ns)
    with pytest.raises(IntegrityError, match=r"model\.onnx\.data"):
        trust.verify_package(signed, trusted, cache=True)
    assert len(verify_calls) == 2


@pytest.mark.parametrize(
    "change",
    [
        lambda p: os.utime(p / "tokenizer.json"),  # touch
        lambda p: (p / "model.onnx").write_bytes((p / "model.onnx").read_bytes()),  # rewrite
        lambda p: os.chmod(p / MANIFEST_NAME, 0o600),  # noqa: PTH101  metadata only
    ],
    ids=["touch", "rewrite-same-bytes", "chmod"],
)
def test_cache_invalidated_by_any_change(signed, keys, verify_calls, change):  # type: ignore[no-untyped-def]
    trusted = keys["a"][1]
    trust.verify_package(signed, trusted, cache=True)
    trust.verify_package(signed, trusted, cache=True)
    assert len(verify_calls) == 1
    change(signed)
    assert not trust.check_package(signed, trusted, cache=True).cached
    assert len(verify_calls) == 2


def test_cache_never_overrides_the_trusted_keys(signed, keys, verify_calls):  # type: ignore[no-untyped-def]
    trust.verify_package(signed, keys["a"][1], cache=True)
    with pytest.raises(SignatureError, match="not among the trusted keys"):
        trust.verify_package(signed, keys["b"][1], cache=True)
    assert len(verify_calls) == 1


def test_broken_or_unwritable_cache_still_verifies(signed, keys, tmp_path, monkeypatch,
                                                   verify_calls):  # type: ignore[no-untyped-def]
    trusted = keys["a"][1]
    trust.verify_package(signed, trusted, cache=True)
    for entry in (tmp_path / "cache" / "qwen-edge" / "verified").glob("*.json"):
        entry.write_text("{not json")
    assert not trust.check_package(signed, trusted, cache=True).cached
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert not trust.check_package(signed, trusted, cache=True).cached
    assert not trust.check_package(signed, trusted, cache=True).cached
    assert len(verify_calls) == 4


# -- without the trust extra ------------------------------------------------------------------


def test_missing_extra_says_how_to_install(signed, keys, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "model_signing", None)  # import raises ImportError
    calls = [
        lambda: trust.generate_keypair(tmp_path / "k"),
        lambda: trust.sign_package(signed, keys["a"][0]),
        lambda: trust.verify_package(signed, keys["a"][1]),
        lambda: qwen_edge.load(signed, trusted_keys=keys["a"][1]),
    ]
    for call in calls:
        with pytest.raises(ConfigError, match=r'pip install "qwen-edge\[trust\]"'):
            call()


# -- manifest parser fuzz --------------------------------------------------------------------

_PROPERTIES = ("architecture", "shapes", "quantization", "max_context", "model_file",
               "tokenizer_file", "special_tokens", "stop_token_ids", "chat_template",
               "generation", "files", "package_hash", "nbytes")


@pytest.fixture(scope="module")
def fuzz_dir(package, tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("fuzz")
    valid = json.loads((package("tiny-qwen2", "int4") / MANIFEST_NAME).read_text())
    (root / "model.onnx").write_bytes(b"small")  # present but with the wrong size/hash
    return root, valid


def _parse(root: Path, data: bytes) -> None:
    """read_package on these bytes raises only QwenEdgeError; a package it accepts is usable."""
    (root / MANIFEST_NAME).write_bytes(data)
    for verify in (False, True):
        try:
            pkg = read_package(root, verify=verify)
        except QwenEdgeError:
            continue
        for name in _PROPERTIES:
            getattr(pkg, name)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=16,
)
_fuzz = settings(max_examples=250, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@_fuzz
@given(data=st.binary(max_size=512))
def test_fuzz_manifest_bytes(fuzz_dir, data):  # type: ignore[no-untyped-def]
    _parse(fuzz_dir[0], data)


@_fuzz
@given(value=_json)
def test_fuzz_manifest_json_values(fuzz_dir, value):  # type: ignore[no-untyped-def]
    _parse(fuzz_dir[0], json.dumps(value).encode())


@st.composite
def _mutated(draw, valid):  # type: ignore[no-untyped-def]
    """The real manifest with 1-3 values deleted or replaced, at any depth."""
    manifest = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, 3))):
        parent, key, node = None, None, manifest
        while isinstance(node, (dict, list)) and node and (parent is None or draw(st.booleans())):
            keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, draw(st.sampled_from(keys))
            node = parent[key]
        if parent is None:
            continue
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(_json)
    return manifest


@_fuzz
@given(data=st.data())
def test_fuzz_mutated_valid_manifest(fuzz_dir, data):  # type: ignore[no-untyped-def]
    root, valid = fuzz_dir
    _parse(root, json.dumps(data.draw(_mutated(valid))).encode())


@pytest.mark.parametrize("text", ["9" * 5000, "[" * 100_000, '{"format_version": true}',
                                  '{"format_version": 1.0}'])
def test_manifest_edge_cases(fuzz_dir, text):  # type: ignore[no-untyped-def]
    with pytest.raises(QwenEdgeError):
        read_package(_write(fuzz_dir[0], text), verify=False)


def _write(root: Path, text: str) -> Path:
    (root / MANIFEST_NAME).write_text(text)
    return root


# -- CLI ------------------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "qwen_edge", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120, check=False)


def test_cli_keygen_sign_verify(package, tmp_path):  # type: ignore[no-untyped-def]
    pkg = shutil.copytree(package("tiny-qwen2", "int4"), tmp_path / "pkg")
    out = _cli("keygen", "-o", "keys", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "keys" / "signing-key.pem").stat().st_mode & 0o777 == 0o600
    again = _cli("keygen", "-o", "keys", cwd=tmp_path)
    assert again.returncode == 1
    assert "already exists" in again.stderr

    out = _cli("verify", "pkg", "--trusted-keys", "keys", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ")
    assert "not signed" in out.stderr
    assert "Traceback" not in out.stderr

    out = _cli("sign", "pkg", "--key", "keys/signing-key.pem", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (pkg / SIG).is_file()

    out = _cli("verify", "pkg", "--trusted-keys", "keys", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith("OK pkg:")
    assert "MB/s" in line
    assert "\n" not in line
    out = _cli("verify", "pkg", "--trusted-keys", "keys/signing-key.pub", "--json", cwd=tmp_path)
    result = json.loads(out.stdout)
    assert result["ok"]
    assert result["key_id"] == trust.key_fingerprint(
        tmp_path / "keys" / "signing-key.pub")
    assert result["files"] == 4
    assert result["mb_per_s"] > 0

    (pkg / "tokenizer.json").write_text("{}")
    out = _cli("verify", "pkg", "--trusted-keys", "keys", cwd=tmp_path)
    assert out.returncode == 1
    assert "tokenizer.json: differs from its signed digest" in out.stderr
    assert out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr


def test_cli_wrong_key_and_bad_key(signed, keys, tmp_path):  # type: ignore[no-untyped-def]
    out = _cli("verify", str(signed), "--trusted-keys", str(keys["b"][1]), cwd=tmp_path)
    assert out.returncode == 1
    assert "not among the trusted keys" in out.stderr
    out = _cli("sign", str(signed), "--key", str(keys["a"][1]), cwd=tmp_path)  # a public key
    assert out.returncode == 1
    assert "private key" in out.stderr
    assert "Traceback" not in out.stderr


# -- qwen-edge inspect: says what it checked ----------------------------------------------------


def _inspect(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str]]:
    """Exit code and the check rows (hashes, signature, graph vs manifest) of the table."""
    from qwen_edge.cli import main

    code = main(["inspect", *argv])
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        for key in ("hashes", "signature", "graph vs manifest", "verified"):
            if line.startswith(f"  {key} "):
                rows[key] = line[2 + 22 + 1:]
    return code, rows


def test_inspect_unsigned(package, capsys):  # type: ignore[no-untyped-def]
    pkg = package("tiny-qwen2", "int4")
    code, rows = _inspect(str(pkg), capsys=capsys)
    assert code == 0
    n = len(read_package(pkg, verify=False).files)
    assert rows["hashes"] == f"ok: {n} files match the sizes and sha256 in qwen_edge.json"
    assert rows["signature"].startswith("none (unsigned")
    assert rows["graph vs manifest"] == "checked when the package is loaded"
    assert "verified" not in rows


def test_inspect_signed(signed, keys, capsys):  # type: ignore[no-untyped-def]
    code, rows = _inspect(str(signed), capsys=capsys)
    assert code == 0
    assert rows["signature"].startswith(f"model.sig (key id {trust.key_fingerprint(keys['a'][1])[:16]})"
                                        ": its digests match every file; the signer was NOT "
                                        "authenticated")
    code, rows = _inspect(str(signed), "--trusted-keys", str(keys["a"][1]), capsys=capsys)
    assert code == 0
    assert rows["signature"].startswith(f"verified: signed by trusted key {keys['a'][1]}")


def test_inspect_does_not_pass_a_manifest_edited_after_signing(signed, keys, capsys):  # type: ignore[no-untyped-def]
    """The reproduction of issue 24: the hashes still match the (edited) manifest, verify
    fails, and inspect used to print "verified ok"."""
    manifest = json.loads((signed / MANIFEST_NAME).read_text())
    manifest["generation"] = {**manifest.get("generation", {}), "temperature": 1.9}
    (signed / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError):
        trust.verify_package(signed, keys["a"][1])
    code, rows = _inspect(str(signed), capsys=capsys)
    assert code == 1
    assert rows["hashes"].startswith("ok: ")  # true, and all it claims
    assert rows["signature"].startswith("FAILED: model.sig (key id ")
    assert f"changed since signing: {MANIFEST_NAME}" in rows["signature"]
    assert "verified" not in rows

    (signed / "extra.txt").write_text("x")
    (signed / "tokenizer.json").unlink()
    manifest["files"].pop("tokenizer.json")
    manifest["tokenizer"]["file"] = "model.onnx"  # still readable without it
    (signed / MANIFEST_NAME).write_text(json.dumps(manifest))
    code, rows = _inspect(str(signed), capsys=capsys)
    assert code == 1
    assert "not signed: extra.txt" in rows["signature"]
    assert "missing: tokenizer.json" in rows["signature"]

    from qwen_edge.cli import main

    assert main(["inspect", str(signed), "--json"]) == 1
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert checks == {"hashes": "ok", "signature": "mismatch", "graph": "checked at load"}
    assert main(["inspect", str(signed), "--trusted-keys", str(keys["a"][1])]) == 1
    assert capsys.readouterr().err.startswith("error: ")

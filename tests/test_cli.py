"""The qwen-edge command, driven in-process through main(argv)."""

from __future__ import annotations

import json

import pytest

from qwen_edge.cli import main


def test_help_lists_subcommands(capsys):  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ("export", "synth", "inspect", "run", "chat", "bench"):
        assert name in out


def test_synth_export_inspect(tmp_path, capsys):  # type: ignore[no-untyped-def]
    ckpt, pkg = tmp_path / "ckpt", tmp_path / "pkg"
    assert main(["synth", "--shape", "tiny-qwen3", "-o", str(ckpt), "--dtype", "float32"]) == 0
    assert (ckpt / "config.json").exists()
    assert main(["export", str(ckpt), "-o", str(pkg), "--quant", "int8", "--max-context",
                 "128", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["quant"] == "int8"
    assert summary["size_mb"] > 0
    assert main(["inspect", str(pkg)]) == 0
    out = capsys.readouterr().out
    assert "Qwen3ForCausalLM" in out
    assert "  hashes                 ok: " in out
    assert main(["inspect", str(pkg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["quantization"]["method"] == "int8"


@pytest.mark.parametrize(("flags", "symmetric", "search", "zero_points"), [
    ([], True, True, False),
    (["--symmetric"], True, True, False),
    (["--no-scale-search"], True, False, False),
    (["--asymmetric"], False, False, True),
])
def test_export_int4_scheme_flags(checkpoint, tmp_path, capsys, flags, symmetric, search,  # type: ignore[no-untyped-def]
                                  zero_points):
    onnx = pytest.importorskip("onnx")
    pkg = tmp_path / "pkg"
    assert main(["export", str(checkpoint("tiny-qwen2")), "-o", str(pkg), "--max-context", "64",
                 "--json", *flags]) == 0
    capsys.readouterr()
    quant = json.loads((pkg / "qwen_edge.json").read_text())["quantization"]
    assert (quant["method"], quant["symmetric"], quant["scale_search"]) == ("int4", symmetric, search)
    graph = onnx.load(str(pkg / "model.onnx"), load_external_data=False).graph
    assert any("zero_points" in i.name for i in graph.initializer) == zero_points


def test_export_layer_quant_flag(checkpoint, tmp_path, capsys):  # type: ignore[no-untyped-def]
    pkg = tmp_path / "pkg"
    assert main(["export", str(checkpoint("tiny-qwen2")), "-o", str(pkg), "--max-context", "64",
                 "--json", "--layer-quant", "0=int8", "--layer-quant", "1-1=fp32"]) == 0
    capsys.readouterr()
    quant = json.loads((pkg / "qwen_edge.json").read_text())["quantization"]
    assert quant["layers"] == {"0": "int8", "1": "fp32"}


@pytest.mark.parametrize("value", ["24-29", "24-29=int2", "3-1=int8", "a=int8", "-1=int8", "1,,2=int8"])
def test_export_layer_quant_flag_rejects(value, capsys):  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exc:
        main(["export", "src", "-o", "out", f"--layer-quant={value}"])
    assert exc.value.code == 2
    assert "expected LAYERS=QUANT" in capsys.readouterr().err


def test_export_scheme_flags_are_exclusive(capsys):  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exc:
        main(["export", "src", "-o", "out", "--symmetric", "--asymmetric"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_errors_are_one_line_and_exit_1(tmp_path, capsys):  # type: ignore[no-untyped-def]
    assert main(["inspect", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "missing" in err
    assert "Traceback" not in err
    assert main(["export", str(tmp_path / "nope"), "-o", str(tmp_path / "out")]) == 1
    assert "error:" in capsys.readouterr().err
    assert main(["synth", "--shape", "qwen9-1b", "-o", str(tmp_path / "x")]) == 1
    assert "qwen2.5-0.5b" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):  # type: ignore[no-untyped-def]  # noqa: ARG001
    with pytest.raises(SystemExit) as exc:
        main(["export", "src"])  # -o is required
    assert exc.value.code == 2


def test_run_streams_text(package, capsys):  # type: ignore[no-untyped-def]
    pkg = package("tiny-qwen2", "int4")
    assert main(["run", str(pkg), "Hello", "--max-tokens", "8", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert len(out) > 1
    assert main(["run", str(pkg), "Hi", "--chat", "--temperature", "-1"]) == 1
    assert "temperature" in capsys.readouterr().err


def test_bench_shape_block_size(tmp_path, capfd):  # type: ignore[no-untyped-def]
    work = str(tmp_path / "bench")
    assert main(["bench", "--shape", "tiny-qwen2", "--block-size", "64", "--workdir", work,
                 "--runs", "1", "--prompt-lengths", "16", "--decode-tokens", "4", "--json"]) == 0
    result = json.loads(capfd.readouterr().out)
    assert result["block_size"] == 64
    assert result["package"].endswith("tiny-qwen2-int4-b64")
    # The export's own error reaches the user; the bench stops with an ExportError.
    assert main(["bench", "--shape", "tiny-qwen2", "--block-size", "48", "--workdir", work]) == 1
    err = capfd.readouterr().err
    assert "block_size=48: must be a power of two" in err
    assert "export failed" in err
    with pytest.raises(SystemExit) as exc:  # a package is already quantized: a usage error
        main(["bench", result["package"], "--block-size", "64"])
    assert exc.value.code == 2
    assert "--block-size applies to --shape" in capfd.readouterr().err


def test_bench_json(package, capsys):  # type: ignore[no-untyped-def]
    pkg = package("tiny-qwen2", "int4")
    assert main(["bench", str(pkg), "--runs", "1", "--prompt-lengths", "16,64",
                 "--decode-tokens", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["quant"] == "int4"
    assert result["prefill_tok_s@64"] > 0
    assert result["decode_tok_s@8"] > 0
    assert result["huge_pages_mb"] >= 0

"""export_model end to end: the package it writes, and every way it must refuse bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qwen_edge.errors import (
    CheckpointError,
    ConfigError,
    OutputExistsError,
    UnsupportedArchitectureError,
)
from qwen_edge.export import ExportConfig, export_model
from qwen_edge.package import read_package


def test_manifest_describes_the_model(package, checkpoint):  # type: ignore[no-untyped-def]
    pkg = read_package(package("tiny-qwen3", "int4"))
    config = json.loads((checkpoint("tiny-qwen3") / "config.json").read_text())
    assert pkg.architecture == "Qwen3ForCausalLM"
    assert pkg.shapes["head_dim"] == config["head_dim"]
    assert pkg.shapes["num_key_value_heads"] == config["num_key_value_heads"]
    assert pkg.quantization == {
        "method": "int4", "bits": 4, "block_size": 32, "accuracy_level": 4,
        "embedding": "int4", "lm_head": "int4", "symmetric": True, "scale_search": True,
        "layers": {},
    }
    assert pkg.max_context == 2048
    assert pkg.special_tokens["<|im_end|>"] == 151645
    assert pkg.special_tokens["<tool_call>"] == 151657
    assert 151645 in pkg.stop_token_ids
    assert 151643 in pkg.stop_token_ids
    assert pkg.chat_template
    assert "<|im_start|>" in pkg.chat_template
    assert set(pkg.files) == {"model.onnx", "model.onnx.data", "tokenizer.json"}


def test_quantized_package_uses_fused_ops_and_no_fp32_matrices(package):  # type: ignore[no-untyped-def]
    onnx = pytest.importorskip("onnx")
    path = package("tiny-qwen2", "int4")
    model = onnx.load(str(path / "model.onnx"), load_external_data=False)
    ops = {n.op_type for n in model.graph.node}
    assert {"GroupQueryAttention", "MatMulNBits", "GatherBlockQuantized",
            "SkipSimplifiedLayerNormalization"} <= ops
    assert "MatMul" not in ops
    assert "Gather" not in ops
    float_2d = [i.name for i in model.graph.initializer
                if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) == 2
                and i.name not in ("cos_cache", "sin_cache") and not i.name.endswith(".scales")]
    assert float_2d == []
    # The tied embedding and the lm_head share one packed tensor.
    gather = next(n for n in model.graph.node if n.op_type == "GatherBlockQuantized")
    head = next(n for n in model.graph.node if n.name.startswith("/lm_head"))
    assert gather.input[0] == head.input[1]


def test_embedding_quant_sets_the_head_apart(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    """int4 layers with an int8 embedding / tied lm_head: one int8 table feeds both ops, the
    layers stay int4, and the logits move towards the fp32 export's."""
    onnx = pytest.importorskip("onnx")
    src = checkpoint("tiny-qwen2")
    out = {}
    for name, cfg in {"fp32": ExportConfig(quant="fp32"), "int4": ExportConfig(quant="int4"),
                      "mixed": ExportConfig(quant="int4", embedding_quant="int8")}.items():
        export_model(src, tmp_path / name, cfg)
        out[name] = tmp_path / name
    pkg = read_package(out["mixed"])
    assert (pkg.quantization["embedding"], pkg.quantization["lm_head"]) == ("int8", "int8")
    assert pkg.quantization["bits"] == 4
    graph = onnx.load(str(out["mixed"] / "model.onnx"), load_external_data=False).graph
    bits = {n.name: next(a.i for a in n.attribute if a.name == "bits") for n in graph.node
            if n.op_type in ("MatMulNBits", "GatherBlockQuantized")}
    head = next(n for n in graph.node if n.name.startswith("/lm_head"))
    gather = next(n for n in graph.node if n.op_type == "GatherBlockQuantized")
    assert bits[head.name] == bits[gather.name] == 8
    assert gather.input[0] == head.input[1]  # still one shared table
    assert {b for name, b in bits.items() if name not in (head.name, gather.name)} == {4}
    err = _errors_from_fp32(out)
    assert err["mixed"] < err["int4"], err


def test_layer_quant_overrides_whole_layers(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    """Layer 0 at int8 and layer 1 left fp32, the head int4: every MatMul of a layer follows
    its override, the manifest records them, and the logits move towards the fp32 export's."""
    onnx = pytest.importorskip("onnx")
    src = checkpoint("tiny-qwen2")
    layers = json.loads((src / "config.json").read_text())["num_hidden_layers"]
    assert layers == 2
    cfgs = {"fp32": ExportConfig(quant="fp32"), "int4": ExportConfig(quant="int4"),
            "mixed": ExportConfig(quant="int4", layer_quant={0: "int8", 1: "fp32"})}
    out = {name: export_model(src, tmp_path / name, cfg).path for name, cfg in cfgs.items()}
    assert read_package(out["mixed"]).quantization["layers"] == {"0": "int8", "1": "fp32"}
    graph = onnx.load(str(out["mixed"] / "model.onnx"), load_external_data=False).graph
    seen: dict[str, set[object]] = {}
    for node in graph.node:
        if node.op_type in ("MatMul", "MatMulNBits") and node.name.startswith("/model/layers."):
            layer = node.name.split(".")[1].split("/")[0]
            bits = next((a.i for a in node.attribute if a.name == "bits"), "fp32")
            seen.setdefault(layer, set()).add(bits)
    assert seen == {"0": {8}, "1": {"fp32"}}
    head = next(n for n in graph.node if n.name.startswith("/lm_head"))
    assert next(a.i for a in head.attribute if a.name == "bits") == 4
    err = _errors_from_fp32(out)
    assert err["mixed"] < err["int4"], err


def test_layer_quant_beyond_the_model_is_an_error(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    src = checkpoint("tiny-qwen2")
    layers = json.loads((src / "config.json").read_text())["num_hidden_layers"]
    with pytest.raises(ConfigError, match=f"has {layers} layers"):
        export_model(src, tmp_path / "out", ExportConfig(layer_quant={layers: "int8"}))
    assert not (tmp_path / "out").exists()


def _errors_from_fp32(packages: dict[str, Path]) -> dict[str, float]:
    """Mean absolute logit difference of each package from the ``fp32`` one."""
    import qwen_edge

    ids = np.arange(3, 40)
    logits = {}
    for name, path in packages.items():
        m = qwen_edge.load(path, threads=1)
        logits[name] = m.engine.forward(ids, m.session().cache, num_logits=len(ids)).copy()
    return {k: float(np.abs(v - logits["fp32"]).mean()) for k, v in logits.items() if k != "fp32"}


def test_export_is_deterministic(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    cfg = ExportConfig(quant="int4", max_context=64)
    a = export_model(checkpoint("tiny-qwen2"), tmp_path / "a", cfg).path
    b = export_model(checkpoint("tiny-qwen2"), tmp_path / "b", cfg).path
    assert read_package(a).files == read_package(b).files


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_config(ckpt: Path, **changes: object) -> None:
    config = json.loads((ckpt / "config.json").read_text())
    config.update(changes)
    (ckpt / "config.json").write_text(json.dumps(config))


def test_refuses_existing_output_unless_forced(checkpoint, tmp_path):  # type: ignore[no-untyped-def]
    out = tmp_path / "pkg"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--force"):
        export_model(checkpoint("tiny-qwen2"), out, ExportConfig(quant="fp32", max_context=64))
    assert (out / "keep.txt").read_text() == "mine"
    export_model(checkpoint("tiny-qwen2"), out, ExportConfig(quant="fp32", max_context=64),
                 force=True)
    assert not (out / "keep.txt").exists()
    read_package(out)


@pytest.mark.parametrize(
    ("corrupt", "error", "match"),
    [
        (lambda p: (p / "config.json").unlink(), CheckpointError, "config.json"),
        (lambda p: (p / "config.json").write_text("{not json"), CheckpointError, "config.json"),
        (lambda p: _edit_config(p, architectures=["LlamaForCausalLM"], model_type="llama"),
         UnsupportedArchitectureError, "Qwen2ForCausalLM"),
        (lambda p: _edit_config(p, hidden_size=96), CheckpointError, "shape"),
        (lambda p: (p / "model.safetensors").unlink(), CheckpointError, "safetensors"),
        (lambda p: (p / "model.safetensors").write_bytes(
            (p / "model.safetensors").read_bytes()[:5000]), CheckpointError, "model.safetensors"),
    ],
    ids=["no-config", "bad-config", "llama", "shape-mismatch", "no-weights", "truncated"],
)
def test_bad_checkpoints_are_clear_errors(checkpoint, tmp_path, corrupt, error, match):  # type: ignore[no-untyped-def]
    ckpt = _copy(checkpoint("tiny-qwen2"), tmp_path / "ckpt")
    corrupt(ckpt)
    with pytest.raises(error, match=match):
        export_model(ckpt, tmp_path / "out", ExportConfig(quant="int4", max_context=64))
    assert not (tmp_path / "out").exists()


def test_missing_source_folder(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(CheckpointError):
        export_model(tmp_path / "nope", tmp_path / "out")


@pytest.mark.parametrize("kwargs", [{"quant": "int3"}, {"block_size": 48}, {"block_size": 8},
                                    {"max_context": 0}, {"accuracy_level": 7},
                                    {"quant": "fp32", "embedding_quant": "int8"},
                                    {"embedding_quant": "int2"},
                                    {"quant": "fp32", "layer_quant": {0: "int8"}},
                                    {"layer_quant": {0: "int2"}}, {"layer_quant": {-1: "int8"}},
                                    {"layer_quant": {"0": "int8"}}])
def test_bad_export_config(kwargs):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        ExportConfig(**kwargs)


def test_interrupted_export_leaves_nothing(checkpoint, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from qwen_edge.export import weights as ckpt_module

    calls = {"n": 0}
    original = ckpt_module.Checkpoint.tensor

    def failing(self, name):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, name)

    monkeypatch.setattr(ckpt_module.Checkpoint, "tensor", failing)
    with pytest.raises(KeyboardInterrupt):
        export_model(checkpoint("tiny-qwen2"), tmp_path / "out",
                     ExportConfig(quant="int4", max_context=64))
    assert list(tmp_path.iterdir()) == []  # neither the package nor a partial folder


def test_bf16_checkpoint_exports_like_its_fp32_values(tmp_path):  # type: ignore[no-untyped-def]
    """bf16 weights are converted exactly (no torch): the graph sees the same values."""
    from helpers import GraphRunner

    from qwen_edge.export.synth import synth_checkpoint

    bf16 = synth_checkpoint("tiny-qwen2", tmp_path / "bf16", seed=3, dtype="bfloat16")
    pkg = export_model(bf16, tmp_path / "pkg", ExportConfig(quant="fp32", max_context=64)).path
    logits = GraphRunner(pkg, max_context=64).forward([9707, 1879], num_logits=2)
    assert logits.shape == (2, 151936)
    assert np.isfinite(logits).all()

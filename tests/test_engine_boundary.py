"""qwen_edge.engine at its boundary: a manifest that does not describe its graph is refused at
load with our error, and onnxruntime's own errors never reach the caller raw."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import qwen_edge
from qwen_edge.errors import CorruptPackageError, GenerationError


def _edited(package: Callable[..., Path], tmp_path: Path, edit: Callable[[dict[str, Any]], None],
            ) -> Path:
    pkg = Path(shutil.copytree(package("tiny-qwen2", "int4"), tmp_path / "pkg"))
    manifest = json.loads((pkg / "qwen_edge.json").read_text())
    edit(manifest)
    (pkg / "qwen_edge.json").write_text(json.dumps(manifest))
    return pkg


def _shape(key: str, value: int) -> Callable[[dict[str, Any]], None]:
    return lambda manifest: manifest["shapes"].__setitem__(key, value)


@pytest.mark.parametrize(("edit", "match"), [
    (_shape("num_key_value_heads", 4), (r"input 'past_key_values.0.key' has 2 at axis 1, the "
                                        r"manifest's shapes.num_key_value_heads is 4")),
    (_shape("head_dim", 32), (r"'past_key_values.0.key' has 16 at axis 3, the manifest's "
                              r"shapes.head_dim is 32")),
    (_shape("vocab_size", 1000), (r"output 'logits' has 151936 at axis 2, the manifest's "
                                  r"shapes.vocab_size is 1000")),
    (_shape("num_hidden_layers", 3), (r"the manifest says 3 layers, the graph has inputs for 2 "
                                      r"\(missing input 'past_key_values.2.key'\)")),
    (_shape("num_hidden_layers", 1), (r"the manifest says 1 layers, the graph has inputs for 2 "
                                      r"\(unexpected input 'past_key_values.1.key'\)")),
], ids=["kv-heads", "head-dim", "vocab", "more-layers", "fewer-layers"])
def test_a_manifest_that_does_not_match_the_graph_is_refused_at_load(
        package: Callable[..., Path], tmp_path: Path, edit: Callable[[dict[str, Any]], None],
        match: str) -> None:
    pkg = _edited(package, tmp_path, edit)
    with pytest.raises(CorruptPackageError, match=match) as info:
        qwen_edge.load(pkg, threads=1)
    message = str(info.value)
    assert message.startswith(f"{pkg}: qwen_edge.json does not match model.onnx")
    assert message.endswith("re-export the model, or restore the package's original "
                            "qwen_edge.json")


def test_onnxruntime_errors_are_translated(package: Callable[..., Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime's Python wrapper raises plain RuntimeError from a run (as it does for
    wrong dimensions): the caller gets a GenerationError with the cause chained."""
    model = qwen_edge.load(package("tiny-qwen2", "int4"), threads=1)
    assert model.generate("Hi", max_tokens=1).usage.completion_tokens == 1

    def fail(*_: Any) -> None:
        msg = "Error in execution: Got invalid dimensions for input: past_key_values.0.key"
        raise RuntimeError(msg)

    monkeypatch.setattr(model.engine.session, "run_with_iobinding", fail)
    with pytest.raises(GenerationError, match=r"^forward: Error in execution") as info:
        model.generate("Hello there", max_tokens=2)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_hybrid_manifest_whose_state_shape_does_not_match_is_refused(
        package: Callable[..., Path], tmp_path: Path) -> None:
    pkg = Path(shutil.copytree(package("tiny-qwen3.5-text", "fp32"), tmp_path / "hybrid"))
    manifest = json.loads((pkg / "qwen_edge.json").read_text())
    conv = manifest["shapes"]["linear_attention"]["conv_state_shape"]
    conv[1] += 1  # channels
    (pkg / "qwen_edge.json").write_text(json.dumps(manifest))
    with pytest.raises(CorruptPackageError, match=(
            rf"input 'past_conv_state\.0' has {conv[1] - 1} at axis 1, the manifest's "
            rf"shapes\.linear_attention is {conv[1]}")):
        qwen_edge.load(pkg, threads=1, verify=False)

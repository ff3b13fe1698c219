"""The tool-call format is detected from the chat template at export, recorded in the manifest,
overridable at export (``ExportConfig.tool_format``, ``--tool-format``) and at load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import qwen_edge
from qwen_edge.chat import builtin_template
from qwen_edge.cli import main
from qwen_edge.errors import ConfigError
from qwen_edge.export import ExportConfig, export_model
from qwen_edge.package import read_package

QWEN35_TEMPLATE = builtin_template("Qwen3_5ForCausalLM")


@pytest.fixture(scope="module")
def qwen35_templated(checkpoint: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Qwen3 checkpoint carrying Qwen3.5's chat template (chat_template.jinja)."""
    out = tmp_path_factory.mktemp("ckpt") / "tiny-qwen3-xml"
    shutil.copytree(checkpoint("tiny-qwen3"), out)
    (out / "chat_template.jinja").write_text(QWEN35_TEMPLATE, encoding="utf-8")
    return out


def _manifest(path: Path) -> dict[str, Any]:
    return dict(json.loads((path / "qwen_edge.json").read_text(encoding="utf-8")))


def test_qwen_templates_export_as_hermes(package: Any) -> None:
    pkg = package("tiny-qwen3", "int4")
    assert _manifest(pkg)["tool_format"] == "hermes"
    assert read_package(pkg).tool_format == "hermes"


def test_a_qwen35_template_is_detected_as_xml(qwen35_templated: Path, tmp_path: Path) -> None:
    pkg = export_model(qwen35_templated, tmp_path / "pkg",
                       ExportConfig(quant="fp32", max_context=64)).path
    assert _manifest(pkg)["tool_format"] == "qwen3_xml"
    model = qwen_edge.load(pkg, threads=1)
    assert model.tool_format.name == "qwen3_xml"
    assert model.chat_template == QWEN35_TEMPLATE
    assert qwen_edge.load(pkg, threads=1, tool_format="hermes").tool_format.name == "hermes"


def test_export_config_and_cli_override_detection(qwen35_templated: Path, tmp_path: Path) -> None:
    pkg = export_model(qwen35_templated, tmp_path / "a",
                       ExportConfig(quant="fp32", max_context=64, tool_format="hermes")).path
    assert _manifest(pkg)["tool_format"] == "hermes"
    out = tmp_path / "b"
    assert main(["export", str(qwen35_templated), "-o", str(out), "--quant", "fp32",
                 "--max-context", "64", "--tool-format", "hermes", "--json"]) == 0
    assert _manifest(out)["tool_format"] == "hermes"
    with pytest.raises(ConfigError, match="hermes, qwen3_xml"):
        ExportConfig(tool_format="yaml")


def test_manifests_from_before_the_field_are_hermes(package: Any, tmp_path: Path) -> None:
    pkg = tmp_path / "old"
    shutil.copytree(package("tiny-qwen3", "int4"), pkg)
    manifest = _manifest(pkg)
    del manifest["tool_format"]
    (pkg / "qwen_edge.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert read_package(pkg).tool_format == "hermes"
    assert qwen_edge.load(pkg, threads=1).tool_format.name == "hermes"

"""Session fixtures: tiny random Qwen checkpoints and the packages exported from them.

Built once per session under tmp_path_factory; nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# Child Pythons started by tests (``python -c``, ``-m``) must import the installed package,
# not the source tree in the working directory (Python >= 3.11; tests also pass cwd).
os.environ.setdefault("PYTHONSAFEPATH", "1")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """checkpoint(shape) -> folder of a float32 random-weight HF checkpoint (cached)."""
    from qwen_edge.export.synth import synth_checkpoint

    cache: dict[str, Path] = {}

    def make(shape: str) -> Path:
        if shape not in cache:
            out = tmp_path_factory.mktemp("ckpt") / shape
            cache[shape] = synth_checkpoint(shape, out, seed=0, dtype="float32")
        return cache[shape]

    return make


@pytest.fixture(scope="session")
def package(
    tmp_path_factory: pytest.TempPathFactory, checkpoint: Callable[[str], Path]
) -> Callable[..., Path]:
    """package(shape, quant="fp32") -> exported model package folder (cached)."""
    from qwen_edge.export import ExportConfig, export_model

    cache: dict[tuple[str, str], Path] = {}

    def make(shape: str, quant: str = "fp32") -> Path:
        key = (shape, quant)
        if key not in cache:
            out = tmp_path_factory.mktemp("pkg") / f"{shape}-{quant}"
            export_model(checkpoint(shape), out, ExportConfig(quant=quant, max_context=2048))
            cache[key] = out
        return cache[key]

    return make

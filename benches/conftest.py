"""Benchmark fixtures: random-weight checkpoints of real shapes, synthesized once and cached.

The cache lives in ``$QWEN_EDGE_BENCH_DIR`` when set (kept between runs), else in pytest's
temporary folder. ``bench_*.py`` files are collected when ``pytest benches`` is given the folder
(the project's ``python_files`` only matches ``test_*.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Module | None:
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):  # explicit paths are collected anyway
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where checkpoints and exported packages go: ``$QWEN_EDGE_BENCH_DIR`` or a temp folder."""
    env = os.environ.get("QWEN_EDGE_BENCH_DIR")
    if not env:
        return tmp_path_factory.mktemp("bench")
    path = Path(env).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def checkpoint(bench_dir: Path) -> Callable[[str], Path]:
    """checkpoint(shape) -> a bf16, seed-0 synth checkpoint folder (reused if already there)."""
    from qwen_edge.export.synth import synth_checkpoint

    def make(shape: str) -> Path:
        out = bench_dir / f"ckpt-{shape}-bf16-seed0"
        if not out.exists():  # synth_checkpoint renames the folder into place when complete
            synth_checkpoint(shape, out, seed=0, dtype="bfloat16")
        return out

    return make

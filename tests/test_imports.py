"""The runtime import path stays light.

Subprocesses run in tmp_path: `python -c` puts its working directory first on sys.path, and
the repository root would shadow the installed package.
"""

from __future__ import annotations

import json
import subprocess
import sys


def test_import_qwen_edge_is_light(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys, json, qwen_edge; "
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'onnx', 'onnx_ir', "
        "'qwen_edge.export', 'safetensors', 'model_signing') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    assert json.loads(out.stdout) == []


def test_cli_help_does_not_import_the_exporter(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys, json, contextlib, io\n"
        "from qwen_edge.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "print(json.dumps('qwen_edge.export' in sys.modules or 'onnx' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    assert json.loads(out.stdout) is False

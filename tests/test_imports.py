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


_CORE_TOOLS = """
import dataclasses, importlib.util, json, sys, types

# The package shell without running qwen_edge/__init__.py (the public facade re-exports the
# agents): what is left loaded is what the tool formats themselves import.
spec = importlib.util.find_spec("qwen_edge")
shell = types.ModuleType("qwen_edge")
shell.__path__ = list(spec.submodule_search_locations)
sys.modules["qwen_edge"] = shell

from qwen_edge.chat import ToolCall
from qwen_edge.tool_formats import get_format

@dataclasses.dataclass(frozen=True)
class Spec:  # a ToolSpec that is not qwen_edge.agents.tools.Tool
    name: str
    parameters: dict
    grounded: frozenset = frozenset()

tools = [Spec("get_weather", {"type": "object", "properties": {"city": {"type": "string"},
          "days": {"type": "integer"}}, "required": ["city"]}, frozenset({"city"}))]
grammars, parsed = {}, {}
for name in ("hermes", "qwen3_xml"):
    fmt = get_format(name)
    grammars[name] = fmt.grammar(tools, "required", ["Weather in Lisbon"])
    text = fmt.render_calls([ToolCall(name="get_weather", arguments={"city": "Lisbon", "days": 2})])
    parsed[name] = [c.arguments for c in fmt.parse(text, tools, True, False)[1]]
print(json.dumps({"agents": sorted(m for m in sys.modules if m.startswith("qwen_edge.agents")),
                  "grammars": grammars, "parsed": parsed}))
"""


def test_tool_formats_do_not_import_the_agents(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The core chat path (tool_formats) reads tools through its ToolSpec protocol: importing it
    and building grammars from a ToolSpec record loads nothing of qwen_edge.agents, and the
    grammars are the ones an agents Tool with the same fields gets."""
    from qwen_edge.agents.tools import Tool
    from qwen_edge.tool_formats import get_format

    out = subprocess.run([sys.executable, "-c", _CORE_TOOLS], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    result = json.loads(out.stdout)
    assert result["agents"] == []
    # the XML format types "2" by the record's schema, as it does for a Tool
    assert result["parsed"] == {f: [{"city": "Lisbon", "days": 2}] for f in ("hermes", "qwen3_xml")}
    tool = Tool(name="get_weather", description="", grounded=frozenset({"city"}),
                parameters={"type": "object", "properties": {"city": {"type": "string"},
                            "days": {"type": "integer"}}, "required": ["city"]})
    for name, grammar in result["grammars"].items():
        assert grammar == get_format(name).grammar([tool], "required", ["Weather in Lisbon"])
        assert '"Lisbon"' in grammar  # the grounded spans reached the grammar

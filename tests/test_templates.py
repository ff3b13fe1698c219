"""The real Qwen3 and Qwen3.5 chat templates: text and token ids identical to transformers.

The reference is transformers' ``apply_chat_template(..., tokenize=True)`` on a tokenizer
written by ``write_tokenizer_files("qwen3")`` with the template under test as its
``chat_template`` (the Qwen3.5 vocabulary cannot be built offline; the template's text and
the way it is tokenized are what is checked). Ours: ``render_chat`` + ``Tokenizer.encode`` of
the whole text, as transformers tokenizes it (``Model.encode_chat``'s per-message encoding is
checked against transformers in the tokenization tests). The conversations cover system
prompts, tools, parallel calls, tool responses, thinking on/off and multi-turn history whose
earlier thinking the templates drop; ``render_calls`` of each format must write calls exactly
as its template does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qwen_edge.chat import ToolCall, builtin_template, render_chat
from qwen_edge.errors import TokenizerError
from qwen_edge.tokenizer import Tokenizer
from qwen_edge.tool_formats import detect_format, get_format

QWEN3, QWEN35 = "Qwen3ForCausalLM", "Qwen3_5ForCausalLM"

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Zürich or 北京"},
        "days": {"type": "integer"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}
TIMER = {"type": "function", "function": {
    "name": "set_timer", "description": "Set a timer.",
    "parameters": {"type": "object", "properties": {
        "minutes": {"type": "integer"}, "options": {"type": "object"}},
        "required": ["minutes"]}}}


def call(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


PARALLEL = [call("get_weather", {"city": "Lisbon", "days": 2}, "call_0"),
            call("set_timer", {"minutes": 5, "options": {"label": "tea", "loud": True}}, "call_1")]

CONVERSATIONS: dict[str, dict[str, Any]] = {
    "user-only": {"messages": [{"role": "user", "content": "Hi there"}]},
    "system": {"messages": [{"role": "system", "content": "You are terse."},
                            {"role": "user", "content": "Hi"}]},
    "tools-no-system": {"messages": [{"role": "user", "content": "Weather in Lisbon?"}],
                        "tools": [WEATHER, TIMER]},
    "tools-and-system": {"messages": [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "Weather in Lisbon?"}],
                         "tools": [WEATHER]},
    "parallel-calls-and-responses": {"messages": [
        {"role": "user", "content": "Weather in Lisbon, and a 5 minute tea timer"},
        {"role": "assistant", "content": "", "tool_calls": PARALLEL},
        {"role": "tool", "tool_call_id": "call_0", "content": '{"temp_c": 21}'},
        {"role": "tool", "tool_call_id": "call_1", "content": "timer set"},
    ], "tools": [WEATHER, TIMER]},
    "content-before-call": {"messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Let me check.",
         "tool_calls": [call("get_weather", {"city": "北京"}, "call_0")]},
        {"role": "tool", "tool_call_id": "call_0", "content": "sunny"},
    ], "tools": [WEATHER]},
    "multi-turn-thinking-history": {"messages": [
        {"role": "system", "content": "Think, then answer."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nSimple sum.\n</think>\n\n4"},
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "reasoning_content": "I need the tool.", "content": "",
         "tool_calls": [call("get_weather", {"city": "Oslo"}, "call_0")]},
        {"role": "tool", "tool_call_id": "call_0", "content": "-3 °C"},
        {"role": "assistant", "content": "<think>\nThe tool says -3.\n</think>\n\nIt is -3 °C."},
        {"role": "user", "content": "Thanks!"},
    ], "tools": [WEATHER]},
    "last-turn-thinking-kept": {"messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "reasoning_content": "Call the tool.", "content": "",
         "tool_calls": [call("get_weather", {"city": "Oslo"}, "call_0")]},
        {"role": "tool", "tool_call_id": "call_0", "content": "-3 °C"},
    ], "tools": [WEATHER]},
}
KWARGS = {"default": {}, "thinking-on": {"enable_thinking": True},
          "thinking-off": {"enable_thinking": False}}


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """{architecture: (transformers tokenizer, our Tokenizer)} with the template installed."""
    transformers = pytest.importorskip("transformers")
    from qwen_edge.export.tokenizer import write_tokenizer_files

    out: dict[str, Any] = {}
    for architecture in (QWEN3, QWEN35):
        folder: Path = tmp_path_factory.mktemp("tok") / architecture
        write_tokenizer_files(folder, "qwen3")
        config_path = folder / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["chat_template"] = builtin_template(architecture)
        config_path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
        out[architecture] = (transformers.AutoTokenizer.from_pretrained(str(folder)),
                             Tokenizer(folder / "tokenizer.json"))
    return out


def _ids(result: Any) -> list[int]:
    ids = result["input_ids"] if hasattr(result, "keys") else result
    return [int(i) for i in ids]


@pytest.mark.parity
@pytest.mark.parametrize("kwargs", KWARGS.values(), ids=KWARGS.keys())
@pytest.mark.parametrize("name", CONVERSATIONS)
@pytest.mark.parametrize("architecture", [QWEN3, QWEN35], ids=["qwen3", "qwen3.5"])
def test_text_and_ids_match_transformers(tokenizers: dict[str, Any], architecture: str,
                                         name: str, kwargs: dict[str, Any]) -> None:
    hf, ours = tokenizers[architecture]
    case = CONVERSATIONS[name]
    expected_text = hf.apply_chat_template(case["messages"], tools=case.get("tools"),
                                           add_generation_prompt=True, tokenize=False, **kwargs)
    expected_ids = _ids(hf.apply_chat_template(case["messages"], tools=case.get("tools"),
                                               add_generation_prompt=True, tokenize=True,
                                               **kwargs))
    text = render_chat(builtin_template(architecture), case["messages"], tools=case.get("tools"),
                       add_generation_prompt=True, **kwargs)
    assert text == expected_text
    assert ours.encode(text).tolist() == expected_ids


def test_qwen35_history_drops_earlier_thinking_and_prompt_opens_a_thought() -> None:
    text = render_chat(builtin_template(QWEN35), CONVERSATIONS["multi-turn-thinking-history"]
                       ["messages"], tools=[WEATHER])
    assert "Simple sum." not in text
    assert "The tool says -3." not in text
    assert text.endswith("<|im_start|>assistant\n<think>\n")  # the output starts inside it
    off = render_chat(builtin_template(QWEN35), [{"role": "user", "content": "Hi"}],
                      enable_thinking=False)
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    kept = render_chat(builtin_template(QWEN35), CONVERSATIONS["last-turn-thinking-kept"]
                       ["messages"], tools=[WEATHER], add_generation_prompt=False)
    assert "<think>\nCall the tool.\n</think>\n\n<tool_call>" in kept


def test_qwen35_without_a_user_query_raises_tokenizer_error() -> None:
    with pytest.raises(TokenizerError, match="No user query found"):
        render_chat(builtin_template(QWEN35), [{"role": "system", "content": "x"}])


@pytest.mark.parametrize(("architecture", "format_name"), [
    ("Qwen2ForCausalLM", "hermes"), (QWEN3, "hermes"), (QWEN35, "qwen3_xml"),
    ("Qwen3_5ForConditionalGeneration", "qwen3_xml")])
def test_each_template_is_detected_as_its_format(architecture: str, format_name: str) -> None:
    assert detect_format(builtin_template(architecture)) == format_name


@pytest.mark.parametrize("architecture", [QWEN3, QWEN35], ids=["qwen3", "qwen3.5"])
def test_render_calls_writes_what_the_template_writes(architecture: str) -> None:
    """The format's render_calls == the assistant turn's call text in the template."""
    fmt = get_format(detect_format(builtin_template(architecture)))
    messages = [{"role": "user", "content": "Go"},
                {"role": "assistant", "content": "", "tool_calls": PARALLEL}]
    text = render_chat(builtin_template(architecture), messages, tools=[WEATHER, TIMER],
                       add_generation_prompt=False, enable_thinking=False)
    turn = text.split("<|im_start|>assistant\n", 1)[1].removesuffix("<|im_end|>\n")
    calls = [ToolCall(c["function"]["name"], c["function"]["arguments"], c["id"])
             for c in PARALLEL]
    assert turn.endswith(fmt.render_calls(calls))
    # and the format parses the template's text back to the same calls
    tail = turn[turn.index(fmt.call_start):]
    content, parsed = fmt.parse(tail, [WEATHER, TIMER], True)
    assert (content, parsed) == ("", calls)

"""Qwen3.5 XML tool calls: parse table from public suites, stream == parse at every chunk size,
malformed input -> our errors, the named family, and the typed grammar (walks and a model).

Case sources (restated as data here, not copied code):

- vLLM ``tests/tool_parsers/test_qwen3coder_tool_parser.py`` (vllm-project/vllm): single,
  with content, multi-line JSON parameter, parallel, typed parameters, type conversion
  ("float" type alias), anyOf / type-list conversion, a missing ``</parameter>``, no tools.
- llama.cpp ``tests/chat-parsers/test-qwen3-coder-xml.cpp`` (ggml-org/llama.cpp, as mirrored
  by ochafik/llama.cpp): spaces around the markers, typed values written with indentation,
  unicode, multi-line code, JSON object / array values, booleans, null, negative and
  scientific numbers, XML/HTML-like text in values, quotes, content before a call, the
  compact one-line form.

Deliberate differences, documented in docs/tool-formats.md: a multi-line string value keeps
its text (only the newline after ``<parameter=KEY>`` and the one before ``</parameter>``, with
that tag's indentation, belong to the format, as in vLLM) where llama.cpp trims it; content
before a call loses its trailing whitespace (Hermes's content rule; llama.cpp keeps it); and a
``<function=...>`` block without ``<tool_call>`` around it is content here (vLLM's "fallback no
tags" parses it).
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
from helpers import allowed_tokens, grammar_matcher, random_walk

import qwen_edge
from qwen_edge.agents.tools import Tool
from qwen_edge.chat import ToolCall
from qwen_edge.errors import ConfigError, IncompatiblePackageError, ToolCallParseError
from qwen_edge.tool_formats import (
    FORMATS,
    TextDelta,
    ToolCallDelta,
    ToolCallError,
    ToolCallEvent,
    XmlStreamParser,
    get_format,
    parse_tool_calls,
    qwen3_xml,
)


def fn(name: str, properties: dict[str, Any], required: list[str] | None = None,
       ) -> dict[str, Any]:
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required is not None:
        parameters["required"] = required
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


# -- vLLM's tools ----------------------------------------------------------------------------
V_WEATHER = fn("get_current_weather", {
    "city": {"type": "string"}, "state": {"type": "string"},
    "unit": {"type": "string", "enum": ["fahrenheit", "celsius"]}}, ["city", "state"])
V_AREA = fn("calculate_area", {"shape": {"type": "string"}, "dimensions": {"type": "object"},
                               "precision": {"type": "integer"}})
V_TYPES = fn("test_types", {"int_param": {"type": "integer"}, "float_param": {"type": "float"},
                            "bool_param": {"type": "boolean"}, "str_param": {"type": "string"},
                            "obj_param": {"type": "object"}})
V_ANYOF = fn("test_anyof", {
    "anyof_int": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 5},
    "anyof_str": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    "anyof_array": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
    "anyof_obj": {"anyOf": [{"type": "object"}, {"type": "null"}]},
    "type_as_array": {"type": ["integer", "null"]},
    "multi_non_null": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}})
V_SEARCH = fn("search_web", {
    "query": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    "count": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 5},
    "verbose": {"anyOf": [{"type": "boolean"}, {"type": "null"}]}})
VLLM_TOOLS = [V_WEATHER, V_AREA, V_TYPES, V_ANYOF, V_SEARCH]

# -- llama.cpp's tools -----------------------------------------------------------------------
L_TOOLS = [
    fn("special_function", {"arg1": {"type": "integer"}}, ["arg1"]),
    fn("complex_function", {"name": {"type": "string"}, "age": {"type": "integer"},
                            "active": {"type": "boolean"}, "score": {"type": "number"}},
       ["name", "age", "active", "score"]),
    fn("unicode_function", {"message": {"type": "string"}}, ["message"]),
    fn("code_function", {"code": {"type": "string"}}, ["code"]),
    fn("json_function", {"config": {"type": "object"}}, ["config"]),
    fn("array_function", {"items": {"type": "array"}}, ["items"]),
    fn("boolean_function", {"enabled": {"type": "boolean"}, "debug": {"type": "boolean"}},
       ["enabled", "debug"]),
    fn("null_function", {"optional_param": {"type": "null"}}, ["optional_param"]),
    fn("math_function", {"negative": {"type": "integer"}, "decimal": {"type": "number"},
                         "scientific": {"type": "number"}, "formula": {"type": "string"}}),
    fn("xml_function", {"xml_content": {"type": "string"}}, ["xml_content"]),
    fn("quote_function", {"message": {"type": "string"}}, ["message"]),
    fn("search_function", {"query": {"type": "string"}}, ["query"]),
    fn("compact_function", {"param": {"type": "string"}}, ["param"]),
    fn("test_function", {"param_1": {"type": "string"}, "param_2_name": {"type": "string"},
                         "param3": {"type": "integer"}}, ["param_1", "param_2_name", "param3"]),
    fn("html_function", {"content": {"type": "string"}}, ["content"]),
]


def xml(name: str, *params: tuple[str, str]) -> str:
    """A call in the template's layout (one newline around each raw value)."""
    body = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in params)
    return f"<tool_call>\n<function={name}>\n{body}</function>\n</tool_call>"


def indented(name: str, *params: tuple[str, str]) -> str:
    """llama.cpp's test layout: markers and values indented."""
    body = "".join(f"    <parameter={k}>\n      {v}\n    </parameter>\n" for k, v in params)
    return f"<tool_call>\n  <function={name}>\n{body}  </function>\n</tool_call>"


DALLAS = xml("get_current_weather", ("city", "Dallas"), ("state", "TX"), ("unit", "fahrenheit"))
DALLAS_ARGS = {"city": "Dallas", "state": "TX", "unit": "fahrenheit"}

# (id, text, tools, content, [(name, arguments)])
CASES: list[tuple[str, str, list[dict[str, Any]] | None, str, list[tuple[str, Any]]]] = [
    ("vllm-no-tools", "This is a test response without any tool calls", VLLM_TOOLS,
     "This is a test response without any tool calls", []),
    ("vllm-single", DALLAS, VLLM_TOOLS, "", [("get_current_weather", DALLAS_ARGS)]),
    ("vllm-with-content", "Sure! Let me check the weather for you." + DALLAS, VLLM_TOOLS,
     "Sure! Let me check the weather for you.", [("get_current_weather", DALLAS_ARGS)]),
    ("vllm-multiline-param", xml("calculate_area", ("shape", "rectangle"),
                                 ("dimensions", '{"width": 10, \n "height": 20}'),
                                 ("precision", "2")), VLLM_TOOLS, "",
     [("calculate_area", {"shape": "rectangle", "dimensions": {"width": 10, "height": 20},
                          "precision": 2})]),
    ("vllm-parallel", DALLAS + "\n" + xml("get_current_weather", ("city", "Orlando"),
                                          ("state", "FL"), ("unit", "celsius")), VLLM_TOOLS, "",
     [("get_current_weather", DALLAS_ARGS),
      ("get_current_weather", {"city": "Orlando", "state": "FL", "unit": "celsius"})]),
    ("vllm-typed", "Let me calculate that area for you." + xml(
        "calculate_area", ("shape", "circle"), ("dimensions", '{"radius": 15.5}'),
        ("precision", "3")), VLLM_TOOLS, "Let me calculate that area for you.",
     [("calculate_area", {"shape": "circle", "dimensions": {"radius": 15.5}, "precision": 3})]),
    ("vllm-type-conversion", xml("test_types", ("int_param", "42"), ("float_param", "3.14"),
                                 ("bool_param", "true"), ("str_param", "hello world"),
                                 ("obj_param", '{"key": "value"}')), VLLM_TOOLS, "",
     [("test_types", {"int_param": 42, "float_param": 3.14, "bool_param": True,
                      "str_param": "hello world", "obj_param": {"key": "value"}})]),
    ("vllm-anyof", xml("test_anyof", ("anyof_int", "5"), ("anyof_str", "hello"),
                       ("anyof_array", '["a", "b", "c"]'), ("anyof_obj", '{"key": "value"}'),
                       ("type_as_array", "42"), ("multi_non_null", "some text")), VLLM_TOOLS, "",
     [("test_anyof", {"anyof_int": 5, "anyof_str": "hello", "anyof_array": ["a", "b", "c"],
                      "anyof_obj": {"key": "value"}, "type_as_array": 42,
                      "multi_non_null": "some text"})]),
    ("vllm-anyof-stream", xml("search_web", ("query", "vllm tool parser"), ("count", "10"),
                              ("verbose", "true")), VLLM_TOOLS, "",
     [("search_web", {"query": "vllm tool parser", "count": 10, "verbose": True})]),
    ("vllm-missing-closing-parameter",
     ("Let me check the weather for you:\n<tool_call>\n<function=get_current_weather>\n"
     "<parameter=city>\nDallas\n<parameter=state>\nTX\n</parameter>\n<parameter=unit>\n"
     "fahrenheit\n</parameter>\n</function>\n</tool_call>"), VLLM_TOOLS,
     "Let me check the weather for you:", [("get_current_weather", DALLAS_ARGS)]),
    ("vllm-untyped-without-tools", xml("calculate_area", ("shape", "circle"),
                                       ("precision", "3")), None, "",
     [("calculate_area", {"shape": "circle", "precision": "3"})]),
    ("llama-spaces-around-markers", (" <tool_call>\n<function=special_function> "
     "<parameter=arg1>1\n</parameter>\n</function> </tool_call>\n\n\n"), L_TOOLS, "",
     [("special_function", {"arg1": 1})]),
    ("llama-indented-integer", indented("special_function", ("arg1", "1")), L_TOOLS, "",
     [("special_function", {"arg1": 1})]),
    ("llama-multi-typed", indented("complex_function", ("name", "John Doe"), ("age", "30"),
                                   ("active", "true"), ("score", "95.5")), L_TOOLS, "",
     [("complex_function", {"name": "John Doe", "age": 30, "active": True, "score": 95.5})]),
    ("llama-unicode", indented("unicode_function", ("message", "Hello 世界! 🌍 Special chars: @#$%^&*()")),
     L_TOOLS, "", [("unicode_function", {"message": "Hello 世界! 🌍 Special chars: @#$%^&*()"})]),
    ("llama-multiline-code", ("<tool_call>\n  <function=code_function>\n    <parameter=code>\n"
     'def hello():\n    print("Hello, World!")\n    return True\n    </parameter>\n  </function>\n'
     "</tool_call>"), L_TOOLS, "",
     [("code_function", {"code": 'def hello():\n    print("Hello, World!")\n    return True'})]),
    ("llama-json-object", indented("json_function",
                                   ("config", '{"host": "localhost", "port": 8080, "ssl": false}')),
     L_TOOLS, "", [("json_function", {"config": {"host": "localhost", "port": 8080,
                                                 "ssl": False}})]),
    ("llama-array", indented("array_function", ("items", '["apple", "banana", "cherry"]')),
     L_TOOLS, "", [("array_function", {"items": ["apple", "banana", "cherry"]})]),
    ("llama-empty-string", ("<tool_call>\n  <function=compact_function>\n    <parameter=param>\n"
     "    </parameter>\n  </function>\n</tool_call>"), L_TOOLS, "",
     [("compact_function", {"param": ""})]),
    ("llama-whitespace-only", ("<tool_call>\n<function=compact_function>\n<parameter=param>\n"
     "      \n    </parameter>\n</function>\n</tool_call>"), L_TOOLS, "",
     [("compact_function", {"param": ""})]),
    ("llama-tabs-and-lines", ("<tool_call>\n  <function=code_function>\n    <parameter=code>\n"
     "line1\n\tindented line\n    spaces\n    </parameter>\n  </function>\n</tool_call>"), L_TOOLS,
     "", [("code_function", {"code": "line1\n\tindented line\n    spaces"})]),
    ("template-file-with-trailing-newline", xml("code_function", ("code", "print(1)\n")),
     L_TOOLS, "", [("code_function", {"code": "print(1)\n"})]),
    ("llama-booleans", indented("boolean_function", ("enabled", "true"), ("debug", "false")),
     L_TOOLS, "", [("boolean_function", {"enabled": True, "debug": False})]),
    ("llama-null", indented("null_function", ("optional_param", "null")), L_TOOLS, "",
     [("null_function", {"optional_param": None})]),
    ("llama-numbers", indented("math_function", ("negative", "-42"), ("decimal", "-3.14"),
                               ("scientific", "1.23e-4")), L_TOOLS, "",
     [("math_function", {"negative": -42, "decimal": -3.14, "scientific": 1.23e-4})]),
    ("llama-xml-in-value", indented("xml_function", ("xml_content", "<root><item>value</item></root>")),
     L_TOOLS, "", [("xml_function", {"xml_content": "<root><item>value</item></root>"})]),
    ("llama-quotes", indented("quote_function", ("message", 'She said "Hello!" and left.')), L_TOOLS,
     "", [("quote_function", {"message": 'She said "Hello!" and left.'})]),
    ("llama-mixed-content", "I'll help you search for products. " + indented(
        "search_function", ("query", "laptops")), L_TOOLS, "I'll help you search for products.",
     [("search_function", {"query": "laptops"})]),
    ("llama-compact", ("<tool_call><function=compact_function><parameter=param>value</parameter>"
     "</function></tool_call>"), L_TOOLS, "", [("compact_function", {"param": "value"})]),
    ("llama-param-names", indented("test_function", ("param_1", "value1"), ("param_2_name", "value2"),
                              ("param3", "123")), L_TOOLS, "",
     [("test_function", {"param_1": "value1", "param_2_name": "value2", "param3": 123})]),
    ("llama-html", indented("html_function", ("content", ("<script>alert('xss')</script>"
                                                    "<img src=x onerror=alert(1)>"))), L_TOOLS, "",
     [("html_function", {"content": "<script>alert('xss')</script><img src=x onerror=alert(1)>"})]),
    ("complete-call-cut-before-closing-tag", ("Checking.\n<tool_call>\n<function=search_function>"
     "\n<parameter=query>\nlaptops\n</parameter>\n</function>\n"), L_TOOLS, "Checking.",
     [("search_function", {"query": "laptops"})]),
    # ours: the fallback vLLM has and we do not (the markers are required)
    ("no-markers-is-content", ("<function=get_current_weather>\n<parameter=city>\nDallas\n"
     "</parameter>\n</function>"), VLLM_TOOLS,
     "<function=get_current_weather>\n<parameter=city>\nDallas\n</parameter>\n</function>", []),
]


def expected_calls(calls: list[tuple[str, Any]]) -> list[ToolCall]:
    return [ToolCall(name, args, f"call_{i}") for i, (name, args) in enumerate(calls)]


@pytest.mark.parametrize(("text", "tools", "content", "calls"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_table(text: str, tools: Any, content: str, calls: list[tuple[str, Any]]) -> None:
    expected = expected_calls(calls)
    assert parse_tool_calls(text, format="qwen3_xml", tools=tools) == (content, expected)
    assert parse_tool_calls(text, format="qwen3_xml", tools=tools, strict=False) == (
        content, expected, [])
    # the public entry point and Tool objects work the same (vLLM's "float" is no JSON schema
    # type, so its tools stay dicts)
    typed = [Tool.from_openai(t) for t in tools] if tools is L_TOOLS else tools
    assert qwen_edge.parse_tool_calls(text, format="qwen3_xml", tools=typed) == (content, expected)


def _stream(text: str, tools: Any, size: int) -> list[Any]:
    parser = XmlStreamParser(tools)
    events: list[Any] = []
    for i in range(0, len(text), size):
        events += parser.feed(text[i:i + size])
    return events + parser.finish()


@pytest.mark.parametrize("size", range(1, 9))
@pytest.mark.parametrize(("text", "tools", "content", "calls"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_stream_gives_the_same_calls_at_every_chunk_size(
        text: str, tools: Any, content: str, calls: list[tuple[str, Any]], size: int) -> None:
    events = _stream(text, tools, size)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == content
    assert [e.call for e in events if isinstance(e, ToolCallEvent)] == expected_calls(calls)
    assert not [e for e in events if isinstance(e, ToolCallError)]
    for i, (name, args) in enumerate(calls):
        deltas = [e for e in events if isinstance(e, ToolCallDelta) and e.index == i]
        assert (deltas[0].id, deltas[0].name) == (f"call_{i}", name)  # the name comes first
        assert all(d.name is None and d.id == "" for d in deltas[1:])
        assert "".join(d.arguments for d in deltas) == json.dumps(args, ensure_ascii=False)


def test_name_is_streamed_before_the_call_ends() -> None:
    parser = XmlStreamParser(VLLM_TOOLS)
    assert parser.feed("I'll check.<tool_call>\n<function=get_current_wea") == [
        TextDelta("I'll check.")]
    assert parser.feed("ther>\n<parameter=city>\nDal") == [
        ToolCallDelta(0, "call_0", "get_current_weather", "")]
    assert parser.feed("las\n</parameter>\n") == [ToolCallDelta(0, "", None, '{"city": "Dallas"')]
    events = parser.feed("</function>\n</tool_call>")
    assert events == [ToolCallDelta(0, "", None, "}"),
                      ToolCallEvent(ToolCall("get_current_weather", {"city": "Dallas"}, "call_0"))]


MALFORMED = [
    ("empty-block", "<tool_call>\n\n</tool_call>", "the block is empty"),
    ("json-body", '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>',
     "must start with <function=NAME>"),
    ("no-name", "<tool_call>\n<function=>\n</function>\n</tool_call>", "bad function name"),
    ("unclosed-function-tag", "<tool_call>\n<function=f\n</tool_call>", "NAME> is incomplete"),
    ("stray-text", "<tool_call>\n<function=f>\nhello\n</function>\n</tool_call>",
     "expected <parameter=KEY> or </function>"),
    ("text-after-function", "<tool_call>\n<function=f>\n</function>\nbye\n</tool_call>",
     "text after </function>"),
    ("repeated-parameter", xml("f", ("a", "1"), ("a", "2")), "parameter 'a' is given twice"),
    ("unterminated", "Sure.\n<tool_call>\n<function=f>\n<parameter=a>\n1", "unterminated"),
    ("unterminated-after-parameter", "<tool_call>\n<function=f>\n<parameter=a>\n1\n</parameter>\n",
     "unterminated"),
]


@pytest.mark.parametrize(("text", "problem"), [c[1:] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])
def test_malformed_blocks_raise_our_error_and_stay_content(text: str, problem: str) -> None:
    with pytest.raises(ToolCallParseError, match=problem) as info:
        parse_tool_calls(text, format="qwen3_xml")
    assert "<function=NAME>" in str(info.value)  # the expected format, for the model
    content, calls, errors = parse_tool_calls(text, format="qwen3_xml", strict=False)
    assert calls == []
    assert len(errors) == 1
    assert errors[0].raw in text
    assert content.strip() == text.strip()  # a malformed block is content, as written
    for size in (1, 3, 8):
        events = _stream(text, None, size)
        assert [e.message for e in events if isinstance(e, ToolCallError)] == [errors[0].message]
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == content


def test_unknown_format_is_a_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="hermes, qwen3_xml"):
        get_format("xml")
    with pytest.raises(ConfigError, match="unknown"):
        parse_tool_calls("x", format="json")
    assert sorted(FORMATS) == ["hermes", "qwen3_xml"]


# vLLM tests/tool_parsers/test_hermes_tool_parser.py, restated: (id, text, content, calls)
HERMES_CASES: list[tuple[str, str, str, list[tuple[str, Any]]]] = [
    ("just-forward-text", "This is some prior text that has nothing to do with tool calling.",
     "This is some prior text that has nothing to do with tool calling.", []),
    ("bug-19056", ('<tool_call>\n{"name": "final_answer", "arguments": {"trigger": true}}\n'
     "</tool_call>"), "", [("final_answer", {"trigger": True})]),
    ("line-breaks-in-json", ('<tool_call>{"name": "get_current_temperature",\n"arguments": '
     '{"location":\n"San Francisco, California, United States", "unit": "celsius"}}</tool_call>'),
     "", [("get_current_temperature", {"location": "San Francisco, California, United States",
                                       "unit": "celsius"})]),
    ("content-then-call", ('Sure, let me check the weather.<tool_call>{"name": "get_weather", '
     '"arguments": {"city": "NYC"}}</tool_call>'), "Sure, let me check the weather.",
     [("get_weather", {"city": "NYC"})]),
    ("two-calls", ('<tool_call>{"name": "search", "arguments": {"q": "cats"}}</tool_call>'
     '<tool_call>{"name": "search", "arguments": {"q": "dogs"}}</tool_call>'), "",
     [("search", {"q": "cats"}), ("search", {"q": "dogs"})]),
    ("serialized-arguments", ('<tool_call>\n{"name": "get_db_config", "arguments": '
     '"{\\"param\\": \\"max_connections\\"}"}\n</tool_call>'), "",
     [("get_db_config", {"param": "max_connections"})]),
]


@pytest.mark.parametrize("size", range(1, 9))
@pytest.mark.parametrize(("text", "content", "calls"), [c[1:] for c in HERMES_CASES],
                         ids=[c[0] for c in HERMES_CASES])
def test_hermes_through_the_family(text: str, content: str, calls: list[tuple[str, Any]],
                                   size: int) -> None:
    """Same parse as before, and the format's stream parser adds name-first deltas to the
    unchanged events of ``hermes.ToolCallStreamParser``."""
    from qwen_edge.tool_formats import ToolCallStreamParser

    expected = (content, expected_calls(calls))
    assert parse_tool_calls(text) == expected
    assert parse_tool_calls(text, format="hermes", tools=VLLM_TOOLS) == expected
    hermes = get_format("hermes")
    parser, plain = hermes.stream_parser(None), ToolCallStreamParser()
    events: list[Any] = []
    old: list[Any] = []
    for i in range(0, len(text), size):
        events += parser.feed(text[i:i + size])
        old += plain.feed(text[i:i + size])
    events += parser.finish()
    old += plain.finish()
    assert [e for e in events if not isinstance(e, ToolCallDelta)] == old
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == content
    assert [e.call for e in events if isinstance(e, ToolCallEvent)] == expected[1]
    for i, (name, args) in enumerate(calls):
        deltas = [e for e in events if isinstance(e, ToolCallDelta) and e.index == i]
        assert (deltas[0].id, deltas[0].name) == (f"call_{i}", name)
        assert "".join(d.arguments for d in deltas) == json.dumps(args, ensure_ascii=False)


def test_hermes_name_is_streamed_before_the_call_ends() -> None:
    parser = get_format("hermes").stream_parser(None)
    assert parser.feed('<tool_call>\n{"name": "get_wea') == []
    assert parser.feed('ther", "arguments": {"city": ') == [
        ToolCallDelta(0, "call_0", "get_weather", "")]
    assert parser.feed('"Oslo"}}\n</tool_call>') == [
        ToolCallDelta(0, "", None, '{"city": "Oslo"}'),
        ToolCallEvent(ToolCall("get_weather", {"city": "Oslo"}, "call_0"))]


# -- grammar ----------------------------------------------------------------------------------

IM_END, ENDOFTEXT, VOCAB = 151645, 151643, 151936
WEATHER = Tool.from_openai(fn("get_weather", {
    "city": {"type": "string", "maxLength": 12}, "days": {"type": "integer", "minimum": 1,
                                                          "maximum": 7},
    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    "detailed": {"type": "boolean"}, "ratio": {"type": ["number", "null"], "maximum": 10},
}, ["city"]))
LIGHTS = Tool.from_openai(fn("set_lights", {
    "rooms": {"type": "array", "items": {"type": "string", "enum": ["hall", "kitchen"]},
              "maxItems": 2},
    "on": {"type": "boolean"},
    "scene": {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0,
                                                         "maximum": 9}},
              "required": ["level"], "additionalProperties": False}}, ["rooms", "on"]))
GRAMMAR_TOOLS = [WEATHER, LIGHTS]


@pytest.fixture(scope="module")
def qwen() -> tuple[Any, Any]:
    """(tokenizers.Tokenizer, llguidance.LLTokenizer) of Qwen3, built offline."""
    llguidance = pytest.importorskip("llguidance")
    from qwen_edge.export.tokenizer import build_qwen_tokenizer

    hf = build_qwen_tokenizer("qwen3")
    return hf, llguidance.LLTokenizer(hf.to_str(), n_vocab=VOCAB, eos_token=[IM_END, ENDOFTEXT])


def _accepts(ll: Any, hf: Any, lark: str, text: str) -> bool:
    matcher = grammar_matcher(ll, lark)
    ids = list(hf.encode(text, add_special_tokens=False).ids)
    if matcher.validate_tokens(ids) != len(ids):
        return False
    assert matcher.consume_tokens(ids)
    return IM_END in allowed_tokens(matcher, VOCAB)


def _render(*calls: tuple[str, dict[str, Any]]) -> str:
    return qwen3_xml.render_calls([ToolCall(n, a) for n, a in calls])


GOOD = [
    _render(("get_weather", {"city": "Lisbon"})),
    _render(("get_weather", {"city": "Porto\nNorte", "days": 3, "unit": "celsius",
                             "detailed": True, "ratio": None})),
    _render(("get_weather", {"city": "", "ratio": 2.5})),
    _render(("set_lights", {"rooms": ["hall"], "on": False, "scene": {"level": 3}}),
            ("get_weather", {"city": "Oslo"})),
]
BAD = [
    _render(("get_weather", {"days": 3})),  # the required city is missing
    _render(("get_weather", {"city": "a" * 13})),  # longer than maxLength
    _render(("get_weather", {"city": "Oslo", "days": 8})),  # above maximum
    _render(("get_weather", {"city": "Oslo", "days": "three"})),  # not an integer
    _render(("get_weather", {"city": "Oslo", "unit": "kelvin"})),  # not in the enum
    _render(("get_weather", {"city": "Oslo", "wind": 1})),  # not a parameter
    _render(("get_weather", {"unit": "celsius", "city": "Oslo"})),  # not in schema order
    _render(("get_time", {})),  # not a tool
    _render(("set_lights", {"rooms": ["attic"], "on": True})),  # nested enum
    ("<tool_call>\n<function=get_weather>\n<parameter=city>\nx</parameter>y\n</parameter>\n"
    "</function>\n</tool_call>"),  # a marker inside a string value
    "Sure.\n" + _render(("get_weather", {"city": "Oslo"})),  # forced: the call comes first
]


def test_grammar_accepts_template_calls_and_rejects_invalid_ones(qwen: tuple[Any, Any]) -> None:
    hf, ll = qwen
    forced = get_format("qwen3_xml").grammar(GRAMMAR_TOOLS, "required", None)
    for text in GOOD:
        assert _accepts(ll, hf, forced, text), text
        _content, calls = parse_tool_calls(text, format="qwen3_xml", tools=GRAMMAR_TOOLS)
        for call in calls:
            {t.name: t for t in GRAMMAR_TOOLS}[call.name].validate(call.arguments)
    for text in BAD:
        assert not _accepts(ll, hf, forced, text), text
    lazy = get_format("qwen3_xml").grammar(GRAMMAR_TOOLS, "auto", None)
    assert _accepts(ll, hf, lazy, GOOD[0].removeprefix("<tool_call>"))
    named = get_format("qwen3_xml").grammar(
        GRAMMAR_TOOLS, {"type": "function", "function": {"name": "set_lights"}}, None)
    assert not _accepts(ll, hf, named, GOOD[0])
    one = _render(("set_lights", {"rooms": ["hall"], "on": True}))
    assert _accepts(ll, hf, named, one)
    assert not _accepts(ll, hf, named, one + "\n" + one)  # a named choice is exactly one call
    assert _accepts(ll, hf, forced, one + "\n" + one)


@pytest.mark.parametrize(("choice", "match"), [
    ("sometimes", "tool_choice='sometimes'"),
    ({"type": "function", "function": {"name": "nope"}}, "not offered"),
])
def test_grammar_errors_are_config_errors(choice: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        qwen3_xml.tool_call_grammar(GRAMMAR_TOOLS, tool_choice=choice)
    bad_name = Tool.from_openai(fn("f", {"a>b": {"type": "string"}}))
    with pytest.raises(ConfigError, match="cannot write"):
        qwen3_xml.tool_call_grammar([bad_name])


def test_random_walks_always_give_calls_that_parse_and_validate(qwen: tuple[Any, Any]) -> None:
    """Drive the grammar with random allowed tokens (short ones preferred so values end)."""
    hf, ll = qwen
    tools = {t.name: t for t in GRAMMAR_TOOLS}
    texts = hf.decode_batch([[i] for i in range(VOCAB)], skip_special_tokens=False)
    short = np.array([len(s) <= 2 or i >= ENDOFTEXT for i, s in enumerate(texts)])
    rng = random.Random(0)
    choices: list[Any] = ["auto", "required", {"type": "function", "function": {"name": "set_lights"}}]
    for walk in range(18):
        choice = choices[walk % 3]
        matcher = grammar_matcher(ll, get_format("qwen3_xml").grammar(GRAMMAR_TOOLS, choice, None))
        ids = random_walk(matcher, VOCAB, rng, short, prefer_p=0.95, max_tokens=2000,
                          decode=lambda ids: hf.decode(ids, skip_special_tokens=False))
        text = hf.decode(ids, skip_special_tokens=False).removesuffix("<|im_end|>")
        if choice == "auto":
            text = "<tool_call>" + text
        content, calls = parse_tool_calls(text, format="qwen3_xml", tools=GRAMMAR_TOOLS)
        assert content == ""
        assert calls
        for call in calls:
            if isinstance(choice, dict):
                assert call.name == "set_lights"
            tools[call.name].validate(call.arguments)


# -- on a random-weight model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def model(package: Any) -> Any:
    return qwen_edge.load(package("tiny-qwen3", "int4"), threads=1, tool_format="qwen3_xml")


def test_load_option_overrides_the_manifest(package: Any, model: Any) -> None:
    assert model.tool_format.name == "qwen3_xml"
    assert qwen_edge.load(package("tiny-qwen3", "int4"), threads=1).tool_format.name == "hermes"
    with pytest.raises(ConfigError, match="hermes, qwen3_xml"):
        qwen_edge.load(package("tiny-qwen3", "int4"), threads=1, tool_format="yaml")


def test_unknown_manifest_format_is_incompatible(package: Any, tmp_path: Any) -> None:
    import shutil

    pkg = tmp_path / "pkg"
    shutil.copytree(package("tiny-qwen3", "int4"), pkg)
    manifest = json.loads((pkg / "qwen_edge.json").read_text())
    manifest["tool_format"] = "yaml"
    (pkg / "qwen_edge.json").write_text(json.dumps(manifest))
    with pytest.raises(IncompatiblePackageError, match="tool_format 'yaml'"):
        qwen_edge.load(pkg, threads=1, verify=False)


@pytest.mark.parametrize("choice", ["auto", "required",
                                    {"type": "function", "function": {"name": "get_weather"}}],
                         ids=["auto", "required", "named"])
def test_constrained_calls_on_random_weights_parse_and_validate(model: Any, choice: Any) -> None:
    """A random-weight model writes garbage unless constrained: every call must still be valid."""
    fmt = model.tool_format
    tool_call = model.tokenizer.token_to_id(fmt.call_start)
    tools = {t.name: t for t in GRAMMAR_TOOLS}
    n_calls = 0
    for seed in range(4):
        options = fmt.constraint_options(GRAMMAR_TOOLS, choice, tool_call, None)
        if choice == "auto":  # make the noise "decide" to call; the grammar starts there
            options["logit_bias"] = {tool_call: 100.0}
        completion = model.generate([{"role": "user", "content": "Weather in Lisbon?"}],
                                    seed=seed, temperature=1.0, max_tokens=400, **options)
        assert completion.finish_reason == "stop", completion.text
        content, calls = fmt.parse(completion.text, GRAMMAR_TOOLS, True)
        assert content == "", completion.text
        assert calls, completion.text
        for call in calls:
            if isinstance(choice, dict):
                assert call.name == "get_weather"
            tools[call.name].validate(call.arguments)
        n_calls += len(calls)
    assert n_calls >= 4


CUT_XML = "Checking.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nLis"
DONE_XML = ("<tool_call>\n<function=get_weather>\n<parameter=city>\nLisbon\n</parameter>\n"
            "</function>\n")


@pytest.mark.parametrize(("text", "inside"), [
    (CUT_XML, True),
    (DONE_XML, False),  # complete up to </function>: a call, not a cut
    ("no call at all", False),
    (DONE_XML + "</tool_call>", False),
])
def test_xml_ends_inside_call(text: str, inside: bool) -> None:
    fmt = qwen_edge.tool_formats.get_format("qwen3_xml")
    assert fmt.ends_inside_call(text) is inside


def test_xml_truncated_drops_the_cut_call_and_keeps_content() -> None:
    with pytest.raises(ToolCallParseError):
        qwen_edge.parse_tool_calls(CUT_XML, format="qwen3_xml")  # not cut: malformed
    assert qwen_edge.parse_tool_calls(CUT_XML, format="qwen3_xml", truncated=True) == (
        "Checking.", [])
    content, calls = qwen_edge.parse_tool_calls(DONE_XML, format="qwen3_xml", truncated=True)
    assert (content, [c.arguments for c in calls]) == ("", [{"city": "Lisbon"}])

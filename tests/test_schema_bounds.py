"""Tool grammars in which every value ends: ``bound_schema`` and the forced calls built on it.

References: llama.cpp's json-schema-to-grammar caps a number's integral part at 16 digits
(``[1-9] [0-9]{0,15}``); llguidance compiles ``minimum``/``maximum``, ``multipleOf``,
``maxLength``, ``maxItems`` and ``enum`` itself and rejects a schema with keys it does not
implement (``uniqueItems``, ``contains``, ``not``, ...). Acceptance is checked by walking the
real Qwen tokens of each text through llguidance.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import qwen_edge
from qwen_edge.agents.schema import MAX_INTEGRAL_DIGITS, bound_schema
from qwen_edge.agents.tools import Tool
from qwen_edge.tool_formats import (
    TOOL_CALL_END,
    TOOL_CALL_START,
    constraint_options,
    parse_tool_calls,
    tool_call_grammar,
)

IM_END, ENDOFTEXT, VOCAB = 151645, 151643, 151936
LIMIT = 10**MAX_INTEGRAL_DIGITS - 1

BOUNDS = [
    ({"type": "integer"}, {"type": "integer", "minimum": -LIMIT, "maximum": LIMIT}),
    ({"type": "integer", "minimum": 1}, {"type": "integer", "minimum": 1, "maximum": LIMIT}),
    ({"type": "integer", "exclusiveMaximum": 0},
     {"type": "integer", "exclusiveMaximum": 0, "minimum": -LIMIT}),
    ({"type": "integer", "minimum": -10**20, "maximum": 10**20},  # wider than the cap: clamped
     {"type": "integer", "minimum": -LIMIT, "maximum": LIMIT}),
    ({"type": "integer", "minimum": 10**20},  # entirely beyond the cap: its own bound rules
     {"type": "integer", "minimum": 10**20}),
    ({"type": "number"},
     {"type": "number", "minimum": -LIMIT, "maximum": LIMIT, "multipleOf": 1e-10}),
    ({"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.25},
     {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.25}),
    ({"type": ["integer", "null"]},
     {"type": ["integer", "null"], "minimum": -LIMIT, "maximum": LIMIT}),
    ({"type": "string", "maxLength": 8}, {"type": "string", "maxLength": 8}),
    ({"type": "array", "items": {"type": "integer", "enum": [1, 2]}, "uniqueItems": True},
     {"type": "array", "items": {"type": "integer", "enum": [1, 2], "minimum": -LIMIT,
                                 "maximum": LIMIT}}),
    ({"type": "object", "properties": {"n": {"type": "integer", "default": 3}},
      "not": {"required": ["x"]}, "propertyNames": {"maxLength": 3}},
     {"type": "object", "properties": {"n": {"type": "integer", "default": 3,
                                             "minimum": -LIMIT, "maximum": LIMIT}}}),
    ({"anyOf": [{"type": "integer"}, {"const": {"type": "integer"}}]},  # const is a value
     {"anyOf": [{"type": "integer", "minimum": -LIMIT, "maximum": LIMIT},
                {"const": {"type": "integer"}}]}),
]


@pytest.mark.parametrize(("schema", "bounded"), BOUNDS)
def test_bound_schema(schema: dict[str, Any], bounded: dict[str, Any]) -> None:
    before = json.dumps(schema)
    assert bound_schema(schema) == bounded
    assert json.dumps(schema) == before  # a copy: the tool's schema is untouched


# -- the grammar, walked with Qwen's tokens ------------------------------------------------------


@pytest.fixture(scope="module")
def qwen() -> tuple[Any, Any]:
    llguidance = pytest.importorskip("llguidance")
    from qwen_edge.export.tokenizer import build_qwen_tokenizer

    hf = build_qwen_tokenizer("qwen2.5")
    return hf, llguidance.LLTokenizer(hf.to_str(), n_vocab=VOCAB, eos_token=[IM_END, ENDOFTEXT])


def _tool(name: str, properties: dict[str, Any]) -> Tool:
    return Tool.from_openai({"type": "function", "function": {
        "name": name, "description": name, "parameters": {
            "type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}}})


def _accepts(qwen: tuple[Any, Any], tool: Tool, arguments: str) -> bool:
    """The forced grammar of ``tool`` accepts one call with ``arguments`` (JSON text)."""
    import llguidance
    import llguidance.numpy

    hf, ll = qwen
    lark = tool_call_grammar([tool], tool_choice="required")
    grammar = llguidance.LLMatcher.grammar_from_lark(lark)
    assert llguidance.LLMatcher.validate_grammar_with_warnings(grammar, ll) == (False, [])
    text = (f'{TOOL_CALL_START}\n{{"name": "{tool.name}", "arguments": {arguments}}}\n'
            f"{TOOL_CALL_END}")
    ids = list(hf.encode(text, add_special_tokens=False).ids)
    matcher = llguidance.LLMatcher(ll, grammar)
    if matcher.validate_tokens(ids) != len(ids):
        return False
    assert matcher.consume_tokens(ids)
    mask = llguidance.numpy.allocate_token_bitmask(1, VOCAB)
    llguidance.numpy.fill_next_token_bitmask(matcher, mask, 0)
    allowed = np.unpackbits(mask[0].view(np.uint8), bitorder="little")
    return bool(allowed[IM_END])  # the call is complete: only <|im_end|> may follow


COUNT = _tool("count", {"n": {"type": "integer"}})
MINUTES = _tool("set_timer", {"minutes": {"type": "integer", "minimum": 1, "maximum": 1440}})
RATIO = _tool("ratio", {"x": {"type": "number"}})
TAGS = _tool("tag", {"tags": {"type": "array", "items": {"type": "string", "maxLength": 4},
                              "maxItems": 2, "uniqueItems": True}})

WALKS = [
    (COUNT, '{"n": 1234567890123456}', True),  # 16 digits
    (COUNT, '{"n": -1234567890123456}', True),
    (COUNT, '{"n": 12345678901234567}', False),  # 17: the runaway is cut here
    (COUNT, '{"n": -55555555555555555}', False),
    (MINUTES, '{"minutes": 1440}', True),
    (MINUTES, '{"minutes": 1441}', False),  # the schema's own maximum
    (MINUTES, '{"minutes": 0}', False),
    (RATIO, '{"x": -0.1234567891}', True),
    (RATIO, '{"x": 0.12345678912}', False),  # 11 decimals
    (RATIO, '{"x": 1e5}', False),  # no exponents: every literal is short
    (TAGS, '{"tags": ["a", "b"]}', True),  # uniqueItems dropped: the grammar compiles
    (TAGS, '{"tags": ["a", "b", "c"]}', False),  # maxItems
    (TAGS, '{"tags": ["abcde"]}', False),  # maxLength
]


@pytest.mark.parametrize(("tool", "arguments", "accepted"), WALKS)
def test_forced_grammar_bounds_values(qwen: tuple[Any, Any], tool: Tool, arguments: str,
                                      accepted: bool) -> None:
    assert _accepts(qwen, tool, arguments) is accepted


def test_required_call_fits_in_max_tokens(package) -> None:  # type: ignore[no-untyped-def]
    """The reported runaway: a forced call on random weights wrote ``"minutes": -5555…`` until
    max_tokens. Greedy, the same tiny model writes the longest number the grammar allows."""
    model = qwen_edge.load(package("tiny-qwen2", "int4"), threads=1)
    schemas = [{"type": "function", "function": {
        "name": "set_timer", "description": "Start a countdown timer.",
        "parameters": {"type": "object", "properties": {
            "minutes": {"type": "integer"}, "label": {"type": "string"}},
            "required": ["minutes"], "additionalProperties": False}}}]
    options = constraint_options(schemas, "required",
                                 tool_call_token=model.tokenizer.token_to_id(TOOL_CALL_START))
    prompt = model.encode_chat([{"role": "user", "content": "Set a timer"}], tools=schemas)
    out = model.generate(prompt, max_tokens=40, temperature=0.0, **options)
    assert out.finish_reason == "stop", out.text
    _, calls = parse_tool_calls(out.text)
    assert [c.name for c in calls] == ["set_timer"]
    assert abs(calls[0].arguments["minutes"]) <= LIMIT

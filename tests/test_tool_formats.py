"""Hermes tool calls: parse table, stream parser == parser under any split, fuzz, grammar walks."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import random
from typing import Any, Literal

import numpy as np
import pytest
from helpers import allowed_tokens, grammar_matcher, random_walk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwen_edge.agents.tools import Tool, tool
from qwen_edge.chat import ToolCall, builtin_template, render_chat
from qwen_edge.errors import ConfigError, ToolCallParseError
from qwen_edge.tool_formats import (
    TOOL_CALL_END,
    TOOL_CALL_START,
    TextDelta,
    ToolCallError,
    ToolCallEvent,
    ToolCallStreamParser,
    ends_inside_call,
    parse_tool_calls,
    tool_call_grammar,
)

IM_END, ENDOFTEXT, TOOL_CALL_ID, TOOL_CALL_END_ID = 151645, 151643, 151657, 151658
VOCAB = 151936


def block(name: str, arguments: Any) -> str:
    """A call exactly as the Qwen chat templates render it."""
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{TOOL_CALL_START}\n{body}\n{TOOL_CALL_END}"


W = block("get_weather", {"city": "Paris"})
T = block("set_timer", {"minutes": 5})

PARSE_TABLE: list[tuple[str, str, list[tuple[str, dict[str, Any]]]]] = [
    ("", "", []),
    ("Hello there.", "Hello there.", []),
    ("  keep\nall whitespace\n\n", "  keep\nall whitespace\n\n", []),
    (W, "", [("get_weather", {"city": "Paris"})]),
    (f"Let me check.\n{W}", "Let me check.", [("get_weather", {"city": "Paris"})]),
    (f"{W}\n{T}", "", [("get_weather", {"city": "Paris"}), ("set_timer", {"minutes": 5})]),
    (f"{W}{T}", "", [("get_weather", {"city": "Paris"}), ("set_timer", {"minutes": 5})]),
    (f"A\n{W}\n  B \n{T}\n", "A\nB", [("get_weather", {"city": "Paris"}),
                                      ("set_timer", {"minutes": 5})]),
    (f"{W}\nDone.", "Done.", [("get_weather", {"city": "Paris"})]),
    ('<tool_call>{"name": "f", "arguments": "{\\"x\\": [1, 2]}"}</tool_call>', "",
     [("f", {"x": [1, 2]})]),
    ('<tool_call>{"name": "f", "arguments": ""}</tool_call>', "", [("f", {})]),
    ('<tool_call>{"name": "f"}</tool_call>', "", [("f", {})]),
    ('<tool_call>  {"arguments": {"é": "日本"}, "name": "f", "extra": 1}\n\n</tool_call>', "",
     [("f", {"é": "日本"})]),
    ("a </tool_call> b <tool_ call>", "a </tool_call> b <tool_ call>", []),
    # a last call complete but without its end marker (cut by a stop string or max_tokens)
    (f"Sure.\n{W[:-len(TOOL_CALL_END)]}", "Sure.", [("get_weather", {"city": "Paris"})]),
    (f"{W}\n{T.removesuffix(TOOL_CALL_END)}", "",
     [("get_weather", {"city": "Paris"}), ("set_timer", {"minutes": 5})]),
    ('<tool_call>{"name": "f", "arguments": {}}', "", [("f", {})]),
]


@pytest.mark.parametrize(("text", "content", "calls"), PARSE_TABLE)
def test_parse_table(text: str, content: str, calls: list[tuple[str, dict[str, Any]]]) -> None:
    expected = [ToolCall(name, args, id=f"call_{i}") for i, (name, args) in enumerate(calls)]
    assert parse_tool_calls(text) == (content, expected)
    assert parse_tool_calls(text, strict=False) == (content, expected, [])
    assert stream(text, step=1) == (content, expected, [])


MALFORMED = [
    ('<tool_call>\n{"name": "f", "arguments": {"a": 1}\n</tool_call>',
     "tool call 1: invalid JSON: Expecting ',' delimiter (line 1, column 36)"),
    ("<tool_call>\n\n</tool_call>", "tool call 1: the block is empty"),
    ('<tool_call>["f", {}]</tool_call>', "tool call 1: expected a JSON object, got an array"),
    ('<tool_call>{"arguments": {}}</tool_call>',
     'tool call 1: "name" must be a non-empty string (it is missing)'),
    ('<tool_call>{"name": 3, "arguments": {}}</tool_call>',
     'tool call 1: "name" must be a non-empty string (got a number)'),
    ('<tool_call>{"name": "", "arguments": {}}</tool_call>',
     'tool call 1: "name" must be a non-empty string (got a string)'),
    ('<tool_call>{"name": "f", "arguments": [1]}</tool_call>',
     'tool call 1: "arguments" must be a JSON object, got an array'),
    ('<tool_call>{"name": "f", "arguments": null}</tool_call>',
     'tool call 1: "arguments" must be a JSON object, got null'),
    ('<tool_call>{"name": "f", "arguments": "[1]"}</tool_call>',
     'tool call 1: "arguments" must be a JSON object, got an array'),
    ('<tool_call>{"name": "f", "arguments": "{oops"}</tool_call>',
     'tool call 1: "arguments" is a string that is not a JSON object'),
    ('<tool_call>{"name": "f", "arguments": {"x": NaN}}</tool_call>',
     "tool call 1: invalid JSON: NaN is not valid JSON"),
    ('<tool_call>{"name": "f", "arguments": {}}} </tool_call>',
     "tool call 1: invalid JSON: Extra data"),
    (f'{W}\n<tool_call>\n{{"name": "f", "arguments": {{', "tool call 2: unterminated"),
    ("<tool_call>" + "[" * 100_000 + "</tool_call>", "tool call 1: invalid JSON"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_calls_raise_a_message_for_the_model(text: str, message: str) -> None:
    with pytest.raises(ToolCallParseError) as info:
        parse_tool_calls(text)
    got = str(info.value)
    assert got.startswith(message), got
    # shows what the model wrote and the expected format
    assert "You wrote: <tool_call>" in got
    assert got.endswith('Write each call as:\n<tool_call>\n{"name": <function-name>, '
                        '"arguments": <args-json-object>}\n</tool_call>')


def test_lenient_mode_keeps_bad_blocks_as_content() -> None:
    bad = '<tool_call>{"name": "f", "arguments": [1]}</tool_call>'
    text = f"Sure.\n{bad}\n{W}\n<tool_call>{{unterminated"
    content, calls, errors = parse_tool_calls(text, strict=False)
    assert content == f"Sure.\n{bad}\n<tool_call>{{unterminated"
    assert calls == [ToolCall("get_weather", {"city": "Paris"}, id="call_0")]
    assert [e.raw for e in errors] == [bad, "<tool_call>{unterminated"]
    assert errors[0].message.startswith("tool call 1: \"arguments\" must be a JSON object")
    assert errors[1].message.startswith("tool call 3: unterminated")
    with pytest.raises(ToolCallParseError, match=r"\(1 more malformed tool calls\)"):
        parse_tool_calls(text)


CUT = '<tool_call>\n{"name": "set_timer", "arguments": {"minutes": 555'


@pytest.mark.parametrize(("text", "inside"), [
    (f"Sure.\n{CUT}", True),
    (f"{W}\n{CUT}", True),
    (f"{W}\n{T[:-3]}", True),  # "</tool_ca": not the end marker
    ("<tool_call>", True),
    (W, False),
    (W.removesuffix(TOOL_CALL_END), False),  # complete: parsed as a call
    ("Sure.", False),
    (f"{CUT}}}}}\n{TOOL_CALL_END} and more", False),
])
def test_ends_inside_call(text: str, inside: bool) -> None:
    assert ends_inside_call(text) is inside


def test_output_cut_inside_a_call_leaves_no_markup() -> None:
    text = f"Sure.\n{W}\n{CUT}"
    with pytest.raises(ToolCallParseError, match="tool call 2: unterminated"):
        parse_tool_calls(text)  # not cut by max_tokens: a malformed call
    content, calls = parse_tool_calls(text, truncated=True)
    assert (content, calls) == ("Sure.", [ToolCall("get_weather", {"city": "Paris"}, id="call_0")])
    assert stream(text, step=5, truncated=True) == (content, calls, [])
    assert parse_tool_calls(CUT, truncated=True) == ("", [])


# -- streaming ------------------------------------------------------------------------------------


def stream(text: str, cuts: list[int] | None = None, *, step: int = 0,
           truncated: bool = False) -> tuple[str, list[ToolCall], list[ToolCallError]]:
    """Feed ``text`` split at ``cuts`` (or every ``step`` chars); collect the events."""
    if step:
        cuts = list(range(step, len(text), step))
    bounds = [0, *sorted(set(cuts or [])), len(text)]
    parser = ToolCallStreamParser()
    events = []
    for a, b in itertools.pairwise(bounds):
        events += parser.feed(text[a:b])
    events += parser.finish(truncated=truncated)
    assert all(not (isinstance(e, TextDelta) and not e.text) for e in events)
    return ("".join(e.text for e in events if isinstance(e, TextDelta)),
            [e.call for e in events if isinstance(e, ToolCallEvent)],
            [e for e in events if isinstance(e, ToolCallError)])


def test_stream_holds_back_only_a_possible_marker() -> None:
    parser = ToolCallStreamParser()
    assert parser.feed("Hello") == [TextDelta("Hello")]
    assert parser.feed(" <tool") == []  # " " may precede a call (dropped); "<tool" may open one
    assert parser.feed("box> is") == [TextDelta(" <toolbox> is")]
    assert parser.feed("\n<tool_call>\n{\"name\": \"f\",") == []
    assert parser.feed(' "arguments": {}}\n</tool_') == []
    assert parser.feed("call>\n") == [ToolCallEvent(ToolCall("f", {}, id="call_0"))]
    assert parser.feed("after") == [TextDelta("\nafter")]
    assert parser.finish() == []
    with pytest.raises(ConfigError, match="after finish"):
        parser.feed("more")


def test_stream_reports_errors_and_keeps_their_text() -> None:
    parser = ToolCallStreamParser()
    events = parser.feed("x <tool_call>{bad}</tool_call>")
    assert events[0] == TextDelta("x")
    assert isinstance(events[1], ToolCallError)
    assert events[1].raw == "<tool_call>{bad}</tool_call>"
    assert events[2:] == [TextDelta(" <tool_call>{bad}</tool_call>")]  # held " " included
    events = parser.feed(" <tool_call>{")
    assert events == []
    assert [type(e) for e in parser.finish()] == [ToolCallError, TextDelta]


FRAGMENTS = [TOOL_CALL_START, TOOL_CALL_END, "<tool", "_call>", "</tool", "<", ">", "/", "{",
             "}", "[", "]", '"', ":", ",", "\n", " ", "\t", "\u3000", '"name": "f"',
             '"arguments": {}', '"arguments": "{}"', "é", "日本", "🙂", "\\", "null", "1"]


def _good_block(name: str, arguments: dict[str, Any], lead: str, trail: str) -> str:
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{TOOL_CALL_START}{lead}{body}{trail}{TOOL_CALL_END}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=6)
good_blocks = st.builds(_good_block, st.sampled_from(["f", "get_weather", "日本"]),
                        st.dictionaries(st.text(max_size=4), json_values, max_size=3),
                        st.sampled_from(["", "\n", " \n "]), st.sampled_from(["", "\n"]))
messages = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=6) | good_blocks,
                    max_size=12).map("".join)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(text=messages, data=st.data())
def test_stream_equals_parse_for_any_split(text: str, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=len(text) + 1))
    expected = parse_tool_calls(text, strict=False)
    assert stream(text, cuts) == expected
    assert stream(text, step=1) == expected  # one character at a time
    assert stream(text, cuts, truncated=True) == parse_tool_calls(text, strict=False,
                                                                  truncated=True)
    if expected[2]:
        with pytest.raises(ToolCallParseError):
            parse_tool_calls(text)
    else:
        assert parse_tool_calls(text) == expected[:2]


@FAST
@given(prefix=st.text(st.characters(blacklist_characters="<")),
       calls=st.lists(st.tuples(st.sampled_from(["f", "g_2", "h-3"]),
                                st.dictionaries(st.text(max_size=4), json_values, max_size=3)),
                      min_size=1, max_size=3))
def test_rendered_calls_round_trip(prefix: str, calls: list[tuple[str, dict[str, Any]]]) -> None:
    text = prefix + "\n" + "\n".join(block(name, args) for name, args in calls)
    expected = [ToolCall(name, args, id=f"call_{i}") for i, (name, args) in enumerate(calls)]
    assert parse_tool_calls(text) == (prefix.rstrip(), expected)


@FAST
@given(text=st.text() | messages)
def test_fuzz_raises_nothing_but_parse_errors(text: str) -> None:
    with contextlib.suppress(ToolCallParseError):
        parse_tool_calls(text)
    parse_tool_calls(text, strict=False)
    stream(text, step=3)


# -- grammar --------------------------------------------------------------------------------------


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Current weather of a city."""
    return f"{city}: sunny ({unit})"


@tool
def set_lights(room: str, on: bool, brightness: int | None = None) -> str:
    """Switch the lights of a room."""
    return f"{room} {on} {brightness}"


@tool
def set_timer(minutes: int, label: str = "") -> str:
    """Start a timer."""
    return f"{minutes} {label}"


TOOLS = [get_weather, set_lights, set_timer]


def test_grammar_text() -> None:
    lazy = tool_call_grammar(TOOLS)
    assert lazy.splitlines()[:2] == [
        'start: call ("\\n" <tool_call> call)* <|im_end|>',
        'call: "\\n" (fn_0 | fn_1 | fn_2) "\\n" </tool_call>',
    ]
    fn_0 = json.loads(lazy.splitlines()[2].removeprefix("fn_0: %json "))
    assert fn_0 == {
        "x-guidance": {"whitespace_flexible": False, "item_separator": ", ",
                       "key_separator": ": "},
        "type": "object",
        "properties": {"name": {"const": "get_weather"}, "arguments": get_weather.parameters},
        "required": ["name", "arguments"], "additionalProperties": False}
    forced = tool_call_grammar(TOOLS, tool_choice="required")
    assert forced.startswith('start: <tool_call> call ("\\n" <tool_call> call)* <|im_end|>\n')
    named = tool_call_grammar(TOOLS, tool_choice={"type": "function",
                                                  "function": {"name": "set_timer"}})
    assert named.count("%json") == 1
    assert '"const": "set_timer"' in named
    # OpenAI dicts and plain functions are accepted too
    assert tool_call_grammar([get_weather.to_openai()]) == tool_call_grammar([get_weather])
    assert tool_call_grammar([get_weather.fn]) == tool_call_grammar([get_weather])


@pytest.mark.parametrize(
    ("tools", "choice", "message"),
    [
        ([], "auto", "tool_call_grammar needs at least one tool"),
        ([get_weather, get_weather], "auto", "duplicate tool names: get_weather"),
        (TOOLS, "none", "tool_choice='none': must be 'auto', 'required'"),
        (TOOLS, "any", "tool_choice='any'"),
        (TOOLS, {"type": "function", "function": {"name": "nope"}},
         "tool_choice names 'nope', which is not offered; tools: get_weather, set_lights"),
        (TOOLS, {"type": "function"}, "tool_choice={'type': 'function'}: expected"),
    ],
)
def test_grammar_config_errors(tools: list[Tool], choice: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        tool_call_grammar(tools, tool_choice=choice)
    assert str(info.value).startswith(message), str(info.value)


@pytest.fixture(scope="module")
def qwen() -> tuple[Any, Any]:
    """(tokenizers.Tokenizer, llguidance.LLTokenizer) of Qwen2.5, built offline."""
    llguidance = pytest.importorskip("llguidance")
    from qwen_edge.export.tokenizer import build_qwen_tokenizer

    hf = build_qwen_tokenizer("qwen2.5")
    ll = llguidance.LLTokenizer(hf.to_str(), n_vocab=VOCAB, eos_token=[IM_END, ENDOFTEXT])
    return hf, ll


def _accepts(ll: Any, lark: str, ids: list[int]) -> bool:
    """The grammar accepts exactly ``ids`` (ending with <|im_end|>)."""
    matcher = grammar_matcher(ll, lark)
    # validate_tokens never counts an EOS token, even an allowed one: check it by the mask.
    n = matcher.validate_tokens(ids)
    if n != len(ids) - 1 or ids[-1] != IM_END:
        return False
    assert matcher.consume_tokens(ids[:-1])
    if IM_END not in allowed_tokens(matcher, VOCAB):
        return False
    assert matcher.consume_token(IM_END)
    return bool(matcher.is_stopped())


def _ids(hf: Any, text: str) -> list[int]:
    return list(hf.encode(text, add_special_tokens=False).ids)


FORCED_CASES = [
    (f"{W}<|im_end|>", True),
    (f"{W}\n{block('set_lights', {'room': 'hall', 'on': True, 'brightness': None})}<|im_end|>",
     True),
    (f"{block('get_weather', {'city': 'Oslo', 'unit': 'fahrenheit'})}<|im_end|>", True),
    (f"{block('set_timer', {'minutes': 3, 'label': 'tea'})}\n{T}\n{T}<|im_end|>", True),
    ('<tool_call>\n{"name":"get_weather","arguments":{"city":"Paris"}}\n</tool_call><|im_end|>',
     False),  # not the template's separators
    (('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"} }\n</tool_call>'
      "<|im_end|>"), False),  # free whitespace
    (f"{block('get_time', {})}<|im_end|>", False),  # unknown tool
    (f"{block('get_weather', {'city': 3})}<|im_end|>", False),
    (f"{block('get_weather', {})}<|im_end|>", False),  # missing required argument
    (f"{block('get_weather', {'city': 'x', 'unit': 'kelvin'})}<|im_end|>", False),
    (f"{block('set_timer', {'minutes': 3, 'seconds': 4})}<|im_end|>", False),  # extra key
    (f"Sure.\n{W}<|im_end|>", False),  # forced: the call comes first
    (('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
      "<|im_end|>"), False),  # no newline before </tool_call>
    (f"{W}\n\n{T}<|im_end|>", False),
    (f"{W}\nDone.<|im_end|>", False),
    ("<|im_end|>", False),
]


@pytest.mark.parametrize(("text", "accepted"), FORCED_CASES)
def test_forced_grammar_accepts_exactly_the_template_format(
        qwen: tuple[Any, Any], text: str, accepted: bool) -> None:
    hf, ll = qwen
    assert _accepts(ll, tool_call_grammar(TOOLS, tool_choice="required"), _ids(hf, text)) is accepted


def test_markers_must_be_the_special_tokens(qwen: tuple[Any, Any]) -> None:
    hf, ll = qwen
    forced = grammar_matcher(ll, tool_call_grammar(TOOLS, tool_choice="required"))
    spelled = _ids(hf, "<tool_") + _ids(hf, "call>")  # the same text, as ordinary tokens
    assert TOOL_CALL_ID not in spelled
    assert forced.validate_tokens(spelled) == 0
    assert list(allowed_tokens(forced, VOCAB)) == [TOOL_CALL_ID]


def test_named_and_lazy_grammars(qwen: tuple[Any, Any]) -> None:
    hf, ll = qwen
    named = tool_call_grammar(TOOLS, tool_choice={"type": "function",
                                                  "function": {"name": "set_timer"}})
    assert _accepts(ll, named, _ids(hf, f"{T}<|im_end|>"))
    assert not _accepts(ll, named, _ids(hf, f"{T}\n{T}<|im_end|>"))  # exactly one call
    assert not _accepts(ll, named, _ids(hf, f"{W}<|im_end|>"))
    # lazy: starts after the <tool_call> the model wrote itself
    lazy = tool_call_grammar(TOOLS)
    after_trigger = f"{W}\n{T}<|im_end|>".removeprefix(TOOL_CALL_START)
    assert _accepts(ll, lazy, _ids(hf, after_trigger))
    assert not _accepts(ll, lazy, _ids(hf, f"{W}<|im_end|>"))


@pytest.mark.parametrize("architecture", ["Qwen2ForCausalLM", "Qwen3ForCausalLM"])
def test_grammar_accepts_what_the_chat_template_renders(
        qwen: tuple[Any, Any], architecture: str) -> None:
    hf, ll = qwen
    calls = [{"type": "function", "function": {"name": "get_weather",
                                               "arguments": {"city": "Zürich", "unit": "celsius"}}},
             {"type": "function", "function": {"name": "set_lights",
                                               "arguments": {"room": "a\"b", "on": False}}}]
    rendered = render_chat(builtin_template(architecture),
                           [{"role": "user", "content": "hi"},
                            {"role": "assistant", "content": "", "tool_calls": calls}],
                           tools=[t.to_openai() for t in TOOLS], add_generation_prompt=False)
    turn = rendered.rsplit("<|im_start|>assistant\n", 1)[1].removesuffix("\n")
    after_trigger = turn.split(TOOL_CALL_START, 1)[1]
    assert _accepts(ll, tool_call_grammar(TOOLS), _ids(hf, after_trigger))
    content, parsed = parse_tool_calls(turn.removesuffix("<|im_end|>"))
    assert [(c.name, c.arguments) for c in parsed] == [
        ("get_weather", {"city": "Zürich", "unit": "celsius"}),
        ("set_lights", {"room": "a\"b", "on": False})]
    if architecture == "Qwen2ForCausalLM":
        assert content == ""
        assert _accepts(ll, tool_call_grammar(TOOLS, tool_choice="required"), _ids(hf, turn))
    else:
        assert content == "<think>\n\n</think>"  # Qwen3 renders an empty think block first


def test_grounded_arguments_quote_the_user(qwen: tuple[Any, Any]) -> None:
    hf, ll = qwen
    weather = dataclasses.replace(get_weather, grounded=["city"])
    timer = dataclasses.replace(set_timer, grounded=["label"])
    said = ["weather in São Paulo", "and a tea timer, please"]
    lark = tool_call_grammar([weather, timer], tool_choice="required", grounding=said)

    def accepts(name: str, arguments: dict[str, Any]) -> bool:
        return _accepts(ll, lark, _ids(hf, f"{block(name, arguments)}<|im_end|>"))

    assert accepts("get_weather", {"city": "São Paulo"})
    assert accepts("get_weather", {"city": "Paulo", "unit": "fahrenheit"})
    assert accepts("set_timer", {"minutes": 3, "label": "tea timer"})
    assert accepts("set_timer", {"minutes": 3})  # an optional grounded argument may be left out
    assert not accepts("get_weather", {"city": "Paris"})
    assert not accepts("get_weather", {"city": "sao paulo"})  # quoted as written
    assert not accepts("get_weather", {"city": "Paulo and"})  # across two messages
    assert not accepts("set_timer", {"minutes": 3, "label": "please,"})
    assert not accepts("set_timer", {"minutes": 3, "label": ""})
    # any run of the user's words is allowed (choosing the right one is the model's job)
    assert accepts("get_weather", {"city": "weather"})
    # no grounding texts (or no words in them): the arguments are free
    for free in (tool_call_grammar([weather], tool_choice="required"),
                 tool_call_grammar([weather], tool_choice="required", grounding=["?"])):
        assert _accepts(ll, free, _ids(hf, f"{W}<|im_end|>"))


def test_grammar_rebases_local_refs() -> None:
    lark = tool_call_grammar([RECURSIVE])
    schema = json.loads(lark.splitlines()[2].removeprefix("fn_0: %json "))
    arguments = schema["properties"]["arguments"]
    assert arguments["properties"]["root"] == {"$ref": "#/properties/arguments/$defs/Node"}
    assert arguments["properties"]["default"] == {
        "$ref": "#/properties/arguments/$defs/Node"}  # a property named like a keyword
    assert arguments["$defs"]["Node"]["properties"]["kids"]["items"] == {
        "$ref": "#/properties/arguments/$defs/Node"}


RECURSIVE = Tool.from_openai({"type": "function", "function": {
    "name": "plant", "parameters": {
        "type": "object", "properties": {"root": {"$ref": "#/$defs/Node"},
                                         "default": {"$ref": "#/$defs/Node"}},
        "required": ["root"], "additionalProperties": False,
        "$defs": {"Node": {"type": "object", "properties": {
            "v": {"type": "integer"},
            "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}, "maxItems": 2}},
            "required": ["v"], "additionalProperties": False}}}}})


def test_random_walks_produce_valid_calls(qwen: tuple[Any, Any]) -> None:
    """Drive the grammar with random allowed tokens; every finished text is a valid call list."""
    hf, ll = qwen
    tools = {t.name: t for t in [*TOOLS, RECURSIVE]}
    texts = hf.decode_batch([[i] for i in range(VOCAB)], skip_special_tokens=False)
    # Short structural tokens close strings, objects and calls: prefer them so walks end.
    closing = np.array([(bool(s) and set(s) <= set('"{}[],: \n0123456789')) or i >= ENDOFTEXT
                        for i, s in enumerate(texts)])
    rng = random.Random(0)
    choices: list[Any] = ["auto", "required",
                          {"type": "function", "function": {"name": "set_lights"}}]
    seen: set[str] = set()
    for walk in range(30):
        choice = choices[walk % 3]
        matcher = grammar_matcher(ll, tool_call_grammar(list(tools.values()), tool_choice=choice))
        ids = random_walk(matcher, VOCAB, rng, closing, prefer_p=0.9, max_tokens=1000,
                          decode=lambda ids: hf.decode(ids, skip_special_tokens=False))
        text = hf.decode(ids, skip_special_tokens=False)
        assert ids[-1] == IM_END
        text = text.removesuffix("<|im_end|>")
        if choice == "auto":
            text = TOOL_CALL_START + text  # the trigger the model wrote before the grammar
        content, calls = parse_tool_calls(text)
        assert content == ""
        assert calls
        for call in calls:
            if isinstance(choice, dict):
                assert call.name == "set_lights"
            tools[call.name].validate(call.arguments)
            seen.add(call.name)
        for raw in text.split(TOOL_CALL_START)[1:]:
            body = raw.removesuffix("\n").removesuffix(TOOL_CALL_END)
            obj = json.loads(body)
            if "\\" not in body:  # compact, json.dumps separators, nothing else
                assert body == "\n" + json.dumps(obj, ensure_ascii=False) + "\n"
    assert seen == set(tools)

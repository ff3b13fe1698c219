"""Chat-template rendering: expected strings for the built-in Qwen2.5 / Qwen3 templates,
parity with transformers' ``apply_chat_template``, and errors.

The expected strings are written by hand from Qwen's documented Hermes-style format (Qwen
docs, "Function Calling": https://qwen.readthedocs.io/en/latest/framework/function_call.html,
source ``QwenLM/Qwen2.5: docs/source/framework/function_call.md``, for the message flow) and
the ``chat_template`` of the published ``tokenizer_config.json`` (Qwen/Qwen2.5-*-Instruct,
Qwen/Qwen3-*; mirrored in llama.cpp ``models/templates/``) for the exact text::

    <|im_start|>system
    {system, or Qwen2.5's default}\\n\\n# Tools\\n\\nYou may call one or more functions ...
    <tools>
    {one tool per line, json.dumps(tool, ensure_ascii=False)}
    </tools>\\n\\nFor each function call, return a json object ... </tool_call><|im_end|>
    <|im_start|>assistant
    {content}\\n<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call><|im_end|>
    <|im_start|>user
    <tool_response>\\n{result}\\n</tool_response>   (consecutive results share one user turn)

Qwen2.5 always has a system turn (default "You are Qwen, created by Alibaba Cloud. You are a
helpful assistant."); Qwen3 has none unless given, removes ``<think>`` reasoning from assistant
turns before the last real user query, and ``enable_thinking=False`` pre-fills an empty think block.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qwen_edge.chat import builtin_template, render_chat
from qwen_edge.errors import ConfigError, QwenEdgeError, TokenizerError

QWEN25, QWEN3 = "Qwen2ForCausalLM", "Qwen3ForCausalLM"
ARCHITECTURES = (QWEN25, QWEN3)

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Zürich or 北京"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}
TIMER = {"type": "function", "function": {
    "name": "set_timer", "description": "Set a timer.",
    "parameters": {"type": "object", "properties": {
        "minutes": {"type": "integer"}, "label": {"type": "string"}},
        "required": ["minutes"]}}}

# The same tools as the template must print them: one JSON object per line, non-ASCII kept.
WEATHER_LINE = (
    '{"type": "function", "function": {"name": "get_weather", "description": "Current weather'
    ' for a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string",'
    ' "description": "City name, e.g. Zürich or 北京"}, "unit": {"type": "string", "enum":'
    ' ["celsius", "fahrenheit"]}}, "required": ["city"]}}}'
)
TIMER_LINE = (
    '{"type": "function", "function": {"name": "set_timer", "description": "Set a timer.",'
    ' "parameters": {"type": "object", "properties": {"minutes": {"type": "integer"}, "label":'
    ' {"type": "string"}}, "required": ["minutes"]}}}'
)

QWEN25_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
DEFAULT_SYSTEM_TURN = f"<|im_start|>system\n{QWEN25_DEFAULT_SYSTEM}<|im_end|>\n"


def tools_system_turn(system: str | None, *tool_lines: str) -> str:
    """The system turn of a request with tools: ``system`` (if any), then the # Tools block."""
    return (
        "<|im_start|>system\n"
        + (f"{system}\n\n" if system is not None else "")
        + "# Tools\n\n"
        "You may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        "<tools>\n"
        + "\n".join(tool_lines)
        + "\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n"
        "<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n'
        "</tool_call><|im_end|>\n"
    )


def call(name: str, arguments: Any, call_id: str | None = None) -> dict[str, Any]:
    """An OpenAI tool call (``{"id", "type", "function"}``); without an id, the flat form."""
    if call_id is None:
        return {"name": name, "arguments": arguments}
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One conversation and its expected rendering per template (None: not checked)."""

    id: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    add_generation_prompt: bool = True
    kwargs: dict[str, Any] = field(default_factory=dict)
    qwen25: str | None = None
    qwen3: str | None = None

    def expected(self, architecture: str) -> str | None:
        return self.qwen25 if architecture == QWEN25 else self.qwen3


MULTI_STEP = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "<think>\nI should call get_weather.\n</think>\n\n",
     "tool_calls": [call("get_weather", {"city": "Paris"}, "call_0")]},
    {"role": "tool", "tool_call_id": "call_0", "content": '{"temp_c": 21}'},
    {"role": "assistant",
     "content": "<think>\nThe tool says 21 °C.\n</think>\n\nIt is 21 °C in Paris."},
]

CASES = [
    Case(
        id="user-only",
        messages=[{"role": "user", "content": "Hi"}],
        qwen25=DEFAULT_SYSTEM_TURN + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        qwen3="<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    ),
    Case(
        id="system-and-history",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"},
        ],
        qwen25=(
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\nBye<|im_end|>\n"
            "<|im_start|>assistant\n"
        ),
        qwen3=(
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\nBye<|im_end|>\n"
            "<|im_start|>assistant\n"
        ),
    ),
    Case(
        id="no-generation-prompt",
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
        add_generation_prompt=False,
        qwen25=DEFAULT_SYSTEM_TURN
        + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n",
        # Qwen3: the final assistant turn (after the last query) gets its (empty) think block
        qwen3=(
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\nHello!<|im_end|>\n"
        ),
    ),
    Case(
        id="tools-no-system",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER, TIMER],
        qwen25=tools_system_turn(QWEN25_DEFAULT_SYSTEM, WEATHER_LINE, TIMER_LINE)
        + "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n",
        qwen3=tools_system_turn(None, WEATHER_LINE, TIMER_LINE)
        + "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n",
    ),
    Case(
        id="tools-with-system",
        messages=[
            {"role": "system", "content": "Du bist ein hilfreicher Assistent."},
            {"role": "user", "content": "Wie ist das Wetter in München?"},
        ],
        tools=[WEATHER],
        qwen25=tools_system_turn("Du bist ein hilfreicher Assistent.", WEATHER_LINE)
        + "<|im_start|>user\nWie ist das Wetter in München?<|im_end|>\n<|im_start|>assistant\n",
        qwen3=tools_system_turn("Du bist ein hilfreicher Assistent.", WEATHER_LINE)
        + "<|im_start|>user\nWie ist das Wetter in München?<|im_end|>\n<|im_start|>assistant\n",
    ),
    Case(
        id="text-and-one-call-then-follow-up",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "Let me check.",
             "tool_calls": [call("get_weather", {"city": "Paris"})]},
            {"role": "tool", "content": '{"temp_c": 21}'},
            {"role": "assistant", "content": "It is 21 °C in Paris."},
            {"role": "user", "content": "And tomorrow?"},
        ],
        tools=[WEATHER],
        qwen25=tools_system_turn(QWEN25_DEFAULT_SYSTEM, WEATHER_LINE)
        + "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\nLet me check.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        "<|im_end|>\n"
        '<|im_start|>user\n<tool_response>\n{"temp_c": 21}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\nIt is 21 °C in Paris.<|im_end|>\n"
        "<|im_start|>user\nAnd tomorrow?<|im_end|>\n"
        "<|im_start|>assistant\n",
        qwen3=tools_system_turn(None, WEATHER_LINE)
        + "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\nLet me check.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        "<|im_end|>\n"
        '<|im_start|>user\n<tool_response>\n{"temp_c": 21}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\nIt is 21 °C in Paris.<|im_end|>\n"
        "<|im_start|>user\nAnd tomorrow?<|im_end|>\n"
        "<|im_start|>assistant\n",
    ),
    Case(
        id="two-parallel-calls-and-merged-results",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris and Berlin?"},
            {"role": "assistant", "content": "", "tool_calls": [
                call("get_weather", {"city": "Paris"}, "call_0"),
                call("get_weather", {"city": "Berlin", "unit": "fahrenheit"}, "call_1"),
            ]},
            {"role": "tool", "tool_call_id": "call_0", "content": '{"temp_c": 21}'},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_f": 64}'},
        ],
        tools=[WEATHER],
        qwen25=tools_system_turn("Be brief.", WEATHER_LINE)
        + "<|im_start|>user\nWeather in Paris and Berlin?<|im_end|>\n"
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Berlin", "unit":'
        ' "fahrenheit"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n"
        '<tool_response>\n{"temp_c": 21}\n</tool_response>\n'
        '<tool_response>\n{"temp_f": 64}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\n",
        qwen3=tools_system_turn("Be brief.", WEATHER_LINE)
        + "<|im_start|>user\nWeather in Paris and Berlin?<|im_end|>\n"
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Berlin", "unit":'
        ' "fahrenheit"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n"
        '<tool_response>\n{"temp_c": 21}\n</tool_response>\n'
        '<tool_response>\n{"temp_f": 64}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\n",
    ),
    Case(
        # OpenAI clients send content=None next to tool_calls
        id="tool-result-then-user-turn",
        messages=[
            {"role": "user", "content": "Set a 5 minute timer."},
            {"role": "assistant", "content": None,
             "tool_calls": [call("set_timer", {"minutes": 5}, "call_0")]},
            {"role": "tool", "tool_call_id": "call_0", "content": "ok"},
            {"role": "user", "content": "Thanks! Now one for 10 minutes."},
        ],
        tools=[TIMER],
        qwen25=tools_system_turn(QWEN25_DEFAULT_SYSTEM, TIMER_LINE)
        + "<|im_start|>user\nSet a 5 minute timer.<|im_end|>\n"
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "set_timer", "arguments": {"minutes": 5}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\nok\n</tool_response><|im_end|>\n"
        "<|im_start|>user\nThanks! Now one for 10 minutes.<|im_end|>\n"
        "<|im_start|>assistant\n",
        qwen3=tools_system_turn(None, TIMER_LINE)
        + "<|im_start|>user\nSet a 5 minute timer.<|im_end|>\n"
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "set_timer", "arguments": {"minutes": 5}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\nok\n</tool_response><|im_end|>\n"
        "<|im_start|>user\nThanks! Now one for 10 minutes.<|im_end|>\n"
        "<|im_start|>assistant\n",
    ),
    Case(
        # tojson(ensure_ascii=False), as transformers: no \\uXXXX escapes in arguments or tools
        id="non-ascii-arguments-and-results",
        messages=[
            {"role": "system", "content": "你是一个乐于助人的助手"},
            {"role": "user", "content": "北京的天气怎么样 und ein Tee-Timer für Jörg 🍵"},
            {"role": "assistant", "content": "好的 👍", "tool_calls": [
                call("get_weather", {"city": "北京"}, "call_0"),
                call("set_timer", {"minutes": 3, "label": "Tee für Jörg 🍵"}, "call_1"),
            ]},
            {"role": "tool", "content": '{"city": "北京", "sky": "🌧", "temp_c": 18}'},
            {"role": "tool", "content": "Timer gesetzt: Tee für Jörg 🍵"},
        ],
        tools=[WEATHER, TIMER],
        qwen25=tools_system_turn("你是一个乐于助人的助手", WEATHER_LINE, TIMER_LINE)
        + "<|im_start|>user\n北京的天气怎么样 und ein Tee-Timer für Jörg 🍵<|im_end|>\n"
        "<|im_start|>assistant\n好的 👍\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "set_timer", "arguments": {"minutes": 3, "label":'
        ' "Tee für Jörg 🍵"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n"
        '<tool_response>\n{"city": "北京", "sky": "🌧", "temp_c": 18}\n</tool_response>\n'
        "<tool_response>\nTimer gesetzt: Tee für Jörg 🍵\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n",
        qwen3=tools_system_turn("你是一个乐于助人的助手", WEATHER_LINE, TIMER_LINE)
        + "<|im_start|>user\n北京的天气怎么样 und ein Tee-Timer für Jörg 🍵<|im_end|>\n"
        "<|im_start|>assistant\n好的 👍\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "set_timer", "arguments": {"minutes": 3, "label":'
        ' "Tee für Jörg 🍵"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n"
        '<tool_response>\n{"city": "北京", "sky": "🌧", "temp_c": 18}\n</tool_response>\n'
        "<tool_response>\nTimer gesetzt: Tee für Jörg 🍵\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n",
    ),
    Case(
        id="enable-thinking-false",
        messages=[{"role": "user", "content": "Hi"}],
        kwargs={"enable_thinking": False},
        qwen25=DEFAULT_SYSTEM_TURN + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        qwen3="<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    ),
    Case(
        id="enable-thinking-true",
        messages=[{"role": "user", "content": "Hi"}],
        kwargs={"enable_thinking": True},
        qwen25=DEFAULT_SYSTEM_TURN + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        qwen3="<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    ),
    Case(
        id="reasoning-before-last-query-dropped",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "<think>\nsimple sum\n</think>\n\n4"},
            {"role": "user", "content": "3+3?"},
        ],
        # Qwen2.5 knows no think blocks: the content is kept verbatim
        qwen25=(
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nsimple sum\n</think>\n\n4<|im_end|>\n"
            "<|im_start|>user\n3+3?<|im_end|>\n"
            "<|im_start|>assistant\n"
        ),
        qwen3=(
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n4<|im_end|>\n"
            "<|im_start|>user\n3+3?<|im_end|>\n"
            "<|im_start|>assistant\n"
        ),
    ),
    Case(
        id="reasoning-content-field",
        messages=[
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4", "reasoning_content": "simple sum"},
        ],
        add_generation_prompt=False,
        qwen25=DEFAULT_SYSTEM_TURN
        + "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
        qwen3=(
            "<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nsimple sum\n</think>\n\n4<|im_end|>\n"
        ),
    ),
    Case(
        # multi-step tool use: every turn after the last user query keeps its reasoning
        id="multi-step-keeps-reasoning",
        messages=MULTI_STEP,
        tools=[WEATHER],
        add_generation_prompt=False,
        qwen25=tools_system_turn(QWEN25_DEFAULT_SYSTEM, WEATHER_LINE)
        + "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nI should call get_weather.\n</think>\n\n\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        "<|im_end|>\n"
        '<|im_start|>user\n<tool_response>\n{"temp_c": 21}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\n<think>\nThe tool says 21 °C.\n</think>\n\nIt is 21 °C in Paris."
        "<|im_end|>\n",
        qwen3=tools_system_turn(None, WEATHER_LINE)
        + "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nI should call get_weather.\n</think>\n\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        "<|im_end|>\n"
        '<|im_start|>user\n<tool_response>\n{"temp_c": 21}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\n<think>\nThe tool says 21 °C.\n</think>\n\nIt is 21 °C in Paris."
        "<|im_end|>\n",
    ),
    Case(
        id="new-query-drops-multi-step-reasoning",
        messages=[*MULTI_STEP, {"role": "user", "content": "Thanks!"}],
        tools=[WEATHER],
        qwen3=tools_system_turn(None, WEATHER_LINE)
        + "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        "<|im_end|>\n"
        '<|im_start|>user\n<tool_response>\n{"temp_c": 21}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\nIt is 21 °C in Paris.<|im_end|>\n"
        "<|im_start|>user\nThanks!<|im_end|>\n"
        "<|im_start|>assistant\n",
    ),
    Case(
        # a user turn that is only a <tool_response> block is not a query
        id="tool-response-user-turn-is-not-a-query",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "<think>\nCall the tool.\n</think>\n\n<tool_call>\n"
             '{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'},
            {"role": "user", "content": '<tool_response>\n{"temp_c": 21}\n</tool_response>'},
        ],
        qwen3=(
            "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nCall the tool.\n</think>\n\n"
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
            "<|im_end|>\n"
            '<|im_start|>user\n<tool_response>\n{"temp_c": 21}\n</tool_response><|im_end|>\n'
            "<|im_start|>assistant\n"
        ),
    ),
]


def render(architecture: str, case: Case) -> str:
    return render_chat(builtin_template(architecture), case.messages, tools=case.tools,
                       add_generation_prompt=case.add_generation_prompt, **case.kwargs)


EXPECTED = [
    pytest.param(arch, case, id=f"{'qwen2.5' if arch == QWEN25 else 'qwen3'}-{case.id}")
    for case in CASES for arch in ARCHITECTURES if case.expected(arch) is not None
]
EVERY = [
    pytest.param(arch, case, id=f"{'qwen2.5' if arch == QWEN25 else 'qwen3'}-{case.id}")
    for case in CASES for arch in ARCHITECTURES
]


@pytest.mark.parametrize(("architecture", "case"), EXPECTED)
def test_builtin_template_renders_documented_format(architecture: str, case: Case) -> None:
    before = copy.deepcopy(case.messages)
    assert render(architecture, case) == case.expected(architecture)
    assert case.messages == before  # rendering never edits the caller's messages


# -- tool-call arguments as JSON text (what OpenAI clients send) ---------------------------------

STRING_ARGUMENTS = [
    {"role": "user", "content": "Wetter in Zürich?"},
    {"role": "assistant", "content": "",
     "tool_calls": [call("get_weather", '{"city": "Zürich"}', "call_0")]},
]


def test_qwen3_accepts_arguments_as_json_text() -> None:
    expected = (
        tools_system_turn(None, WEATHER_LINE)
        + "<|im_start|>user\nWetter in Zürich?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich"}}\n</tool_call>'
        "<|im_end|>\n"
    )
    as_dict = [STRING_ARGUMENTS[0], {**STRING_ARGUMENTS[1], "tool_calls": [
        call("get_weather", {"city": "Zürich"}, "call_0")]}]
    template = builtin_template(QWEN3)
    for messages in (STRING_ARGUMENTS, as_dict):
        assert render_chat(template, messages, tools=[WEATHER],
                           add_generation_prompt=False) == expected


def test_qwen25_encodes_arguments_given_as_json_text_again() -> None:
    """Qwen2.5's published template applies ``tojson`` to ``arguments`` whatever their type, so
    JSON text becomes a JSON *string* (transformers does the same): pass arguments as dicts."""
    expected = (
        tools_system_turn(QWEN25_DEFAULT_SYSTEM, WEATHER_LINE)
        + "<|im_start|>user\nWetter in Zürich?<|im_end|>\n"
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Zürich\\"}"}\n'
        "</tool_call><|im_end|>\n"
    )
    assert render_chat(builtin_template(QWEN25), STRING_ARGUMENTS, tools=[WEATHER],
                       add_generation_prompt=False) == expected


# -- parity with transformers' apply_chat_template ------------------------------------------------


@pytest.fixture(scope="module")
def hf(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Tokenizers loaded by transformers from folders written by write_tokenizer_files."""
    transformers = pytest.importorskip("transformers")
    from qwen_edge.export.tokenizer import write_tokenizer_files

    out: dict[str, Any] = {}
    for architecture, variant in ((QWEN25, "qwen2.5"), (QWEN3, "qwen3")):
        folder: Path = tmp_path_factory.mktemp("tokenizer") / variant
        write_tokenizer_files(folder, variant)
        out[architecture] = transformers.AutoTokenizer.from_pretrained(str(folder))
    return out


def hf_render(hf: dict[str, Any], architecture: str, messages: list[dict[str, Any]],
              tools: list[dict[str, Any]] | None = None, add_generation_prompt: bool = True,
              **kwargs: Any) -> str:
    text = hf[architecture].apply_chat_template(
        messages, tools=tools, add_generation_prompt=add_generation_prompt, tokenize=False,
        **kwargs)
    assert isinstance(text, str)
    return text


@pytest.mark.parity
@pytest.mark.parametrize(("architecture", "case"), EVERY)
def test_matches_transformers(hf: dict[str, Any], architecture: str, case: Case) -> None:
    expected = hf_render(hf, architecture, case.messages, case.tools,
                         case.add_generation_prompt, **case.kwargs)
    assert render(architecture, case) == expected


@pytest.mark.parity
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_matches_transformers_with_arguments_as_json_text(
        hf: dict[str, Any], architecture: str) -> None:
    ours = render_chat(builtin_template(architecture), STRING_ARGUMENTS, tools=[WEATHER])
    assert ours == hf_render(hf, architecture, STRING_ARGUMENTS, [WEATHER])


# Inputs where transformers 5.x preprocesses messages: it copies `reasoning` / `thinking` into
# `reasoning_content` (chat_template_utils._alias_reasoning_fields) and drops message keys whose
# value is None. render_chat does the same.
PREPROCESSED = [
    pytest.param(QWEN3, [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "", "reasoning": "ponder",
         "tool_calls": [call("get_weather", {"city": "Paris"}, "call_0")]},
        {"role": "tool", "content": "ok"},
    ], id="qwen3-reasoning-field"),
    pytest.param(QWEN3, [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "thinking": "simple sum"},
    ], id="qwen3-thinking-field"),
    pytest.param(QWEN25, [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "tool_calls": [call("set_timer", {"minutes": 1})]},
        {"role": "tool", "content": None},
    ], id="qwen2.5-tool-content-none"),
]


@pytest.mark.parity
@pytest.mark.parametrize(("architecture", "messages"), PREPROCESSED)
def test_preprocessed_messages_match_transformers(
        hf: dict[str, Any], architecture: str, messages: list[dict[str, Any]]) -> None:
    ours = render_chat(builtin_template(architecture), messages, add_generation_prompt=False)
    assert ours == hf_render(hf, architecture, messages, add_generation_prompt=False)


# -- errors ---------------------------------------------------------------------------------------

TEMPLATE = builtin_template(QWEN3)


@pytest.mark.parametrize(("messages", "match"), [
    pytest.param("Hi", "non-empty list", id="a-string"),
    pytest.param({"role": "user", "content": "Hi"}, "non-empty list", id="a-dict"),
    pytest.param(None, "non-empty list", id="none"),
    pytest.param([], "non-empty list", id="empty"),
    pytest.param(["Hi"], r"messages\[0\] must be a dict with a 'role'", id="item-not-a-dict"),
    pytest.param([{"role": "user", "content": "Hi"}, {"content": "Hello"}],
                 r"messages\[1\] must be a dict with a 'role'", id="missing-role"),
    pytest.param([{"role": "bot", "content": "Hi"}],
                 r"messages\[0\]\['role'\]='bot': must be system, user, assistant or tool",
                 id="unknown-role"),
])
def test_malformed_messages_raise_config_error(messages: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        render_chat(TEMPLATE, messages)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("template", [
    pytest.param("{% if %}", id="empty-if"),
    pytest.param("{{ messages[0].content ", id="unclosed-expression"),
    pytest.param("{% for m in messages %}{{ m.content }}", id="unclosed-for"),
])
def test_template_that_does_not_compile_raises_tokenizer_error(template: str) -> None:
    with pytest.raises(TokenizerError, match="chat template does not compile"):
        render_chat(template, [{"role": "user", "content": "Hi"}])


@pytest.mark.parametrize(("template", "match"), [
    pytest.param("{{ raise_exception('Conversation roles must alternate user/assistant') }}",
                 "Conversation roles must alternate user/assistant", id="raise_exception"),
    pytest.param("{{ ''.__class__.__mro__ }}", "unsafe", id="sandbox"),
    pytest.param("{{ messages[0].missing + 'x' }}", "has no attribute 'missing'", id="undefined"),
])
def test_template_errors_while_rendering_raise_tokenizer_error(template: str, match: str) -> None:
    with pytest.raises(TokenizerError, match=match):
        render_chat(template, [{"role": "user", "content": "Hi"}])


@pytest.mark.parametrize(("template", "messages"), [
    # transformers drops the None key and raises jinja's UndefinedError (a TemplateError)
    pytest.param(builtin_template(QWEN25), [{"role": "user", "content": None}],
                 id="qwen2.5-content-none"),
    pytest.param("{{ messages[0].content + 1 }}", [{"role": "user", "content": "Hi"}],
                 id="str-plus-int"),
])
def test_python_errors_while_rendering_raise_a_qwen_edge_error(
        template: str, messages: list[dict[str, Any]]) -> None:
    with pytest.raises(QwenEdgeError):
        render_chat(template, messages)

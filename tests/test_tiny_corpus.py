"""The qwen-edge-tiny training corpus (train/tiny, issue #6): reproducible, every call accepted by
the real tool with the agent's exact tool messages, held-out templates and entities disjoint
from training, canonical in-scope outputs, the scoring rules, and the hand-written test set."""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from typing import Any

import pytest
from helpers import TINY, load_tiny

from qwen_edge.agents.agent import ToolResult
from qwen_edge.chat import ToolCall
from qwen_edge.errors import ToolError

corpus = load_tiny("corpus")
scoring = load_tiny("scoring")
TOOLS = {t.name: t for t in corpus.home_tools.TOOLS}
N = 2500


@cache
def _examples(split: str, seed: int = 7) -> tuple[Any, ...]:
    return tuple(corpus.generate(N, seed=seed, split=split))


HANDWRITTEN_FILES = ("handwritten.jsonl", "handwritten_typed.jsonl")


@cache
def _handwritten(name: str = "handwritten.jsonl") -> tuple[dict, ...]:
    lines = (TINY / name).read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


def _agent_content(name: str, arguments: dict) -> tuple[str, bool]:
    """What qwen_edge.agents.agent.Agent puts in the tool message for this call (see Agent._execute)."""
    call = ToolCall(name, arguments)
    try:
        output = TOOLS[name].invoke(arguments)
    except ToolError as exc:
        return ToolResult(call, error=str(exc)).content, False
    return ToolResult(call, output=output).content, True


def _dump(messages: list[dict]) -> str:
    return json.dumps(messages, ensure_ascii=False, sort_keys=True)


def _check_conversation(messages: list[dict], kind: str) -> None:
    """Roles, call shapes, signature order, real tool contents; errors only in tool_error."""
    assert messages[0]["role"] == "user"
    assert all(m["role"] != "system" for m in messages)
    i = 0
    while i < len(messages):
        m = messages[i]
        assert set(m) <= {"role", "content", "tool_calls"}
        if m["role"] == "assistant" and m.get("tool_calls"):
            assert m["content"] == ""
            calls = m["tool_calls"]
            assert 1 <= len(calls) <= 3
            tools = messages[i + 1:i + 1 + len(calls)]
            assert [t["role"] for t in tools] == ["tool"] * len(calls)
            for call, tool_message in zip(calls, tools, strict=True):
                assert call["type"] == "function"
                name, args = call["function"]["name"], call["function"]["arguments"]
                assert isinstance(args, dict)
                order = list(corpus.PARAMS[name])
                assert list(args) == [p for p in order if p in args], "signature order"
                assert None not in args.values()
                content, ok = _agent_content(name, args)
                assert tool_message["content"] == content
                assert ok == (kind != "tool_error"), (kind, name, args, content)
            answer = messages[i + 1 + len(calls)]
            assert answer["role"] == "assistant"
            assert "tool_calls" not in answer
            assert answer["content"]
            i += 2 + len(calls)
            continue
        assert isinstance(m["content"], str)
        assert m["content"].strip()
        i += 1
    assert messages[-1]["role"] == "assistant"
    assert "tool_calls" not in messages[-1]


# -- reproducibility ----------------------------------------------------------------------------


def test_same_seed_same_corpus_and_another_seed_another() -> None:
    a = [(_dump(e.messages), e.kind, e.split) for e in corpus.generate(300, seed=3)]
    b = [(_dump(e.messages), e.kind, e.split) for e in corpus.generate(300, seed=3)]
    c = [(_dump(e.messages), e.kind, e.split) for e in corpus.generate(300, seed=4)]
    assert a == b
    assert sum(x != y for x, y in zip(a, c, strict=True)) > 250
    assert a[:100] == [(_dump(e.messages), e.kind, e.split) for e in corpus.generate(100, seed=3)]
    held = corpus.generate(300, seed=3, split="heldout")
    assert {e.split for e in held} == {"heldout"}
    assert not {x[0] for x in a} & {_dump(e.messages) for e in held}
    e1, e2 = corpus.eval_requests(200, seed=1), corpus.eval_requests(200, seed=1)
    assert e1 == e2
    assert e1 != corpus.eval_requests(200, seed=2)
    with pytest.raises(ValueError, match="split"):
        corpus.generate(1, seed=0, split="test")


# -- every call is real -------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_calls_accepted_by_the_real_tools_and_contents_are_real(split: str) -> None:
    for example in _examples(split):
        assert example.kind in corpus.KINDS
        _check_conversation(example.messages, example.kind)


def test_tool_error_calls_raise_and_the_answer_explains() -> None:
    errors = [e for e in _examples("train") if e.kind == "tool_error"]
    assert len(errors) > 50
    seen = set()
    for e in errors:
        call = e.messages[1]["tool_calls"][0]["function"]
        seen.add(call["name"])
        with pytest.raises((ValueError, TypeError)):
            corpus.FUNCTIONS[call["name"]](**call["arguments"])
        error = json.loads(e.messages[2]["content"])["error"]
        assert e.messages[-1]["content"].startswith("Sorry, I couldn't ")
        assert error.split(": ", 1)[1].split(";")[0].rstrip(".") in e.messages[-1]["content"]
    assert seen == {"set_timer", "set_lights", "set_thermostat", "convert_units", "calculate"}


def test_examples_cover_every_tool_and_parallel_calls() -> None:
    names: Counter[str] = Counter()
    parallel = 0
    for e in _examples("train"):
        for m in e.messages:
            calls = m.get("tool_calls") or []
            names.update(c["function"]["name"] for c in calls)
            parallel += len(calls) > 1
    assert set(names) == set(TOOLS)
    assert min(names.values()) > 150
    assert parallel > 200


# -- canonical, deterministic outputs -----------------------------------------------------------


def test_in_scope_outputs_are_a_function_of_the_conversation() -> None:
    """Same conversation -> same next assistant turn, except the out-of-scope hand-off."""
    seen: dict[str, str] = {}
    for e in _examples("train") + _examples("heldout"):
        for j, m in enumerate(e.messages):
            if m["role"] != "assistant":
                continue
            if e.kind == "oos" and j == len(e.messages) - 1:
                continue
            key, value = _dump(e.messages[:j]), _dump([m])
            assert seen.setdefault(key, value) == value, e.messages[:j]


def _keys_of(name: str, out: dict) -> list[str]:
    """The values a final answer must state, derived from the tool output independently."""
    if name == "get_weather":
        return [str(out["temperature"]), out["condition"], out["city"]]
    if name == "set_timer":
        return [str(out["minutes"]), out["label"] or "timer"]
    if name == "set_lights":
        return [out["room"], "on" if out["on"] else "off"] + ([str(out["brightness"])] * out["on"])
    if name == "set_thermostat":
        return [out["room"], str(out["target_temperature"]), str(out["current_temperature"]),
                out["status"]]
    if name == "add_reminder":
        return [out["text"], out["when"]]
    x = out["result"]
    if name == "convert_units":
        return [f"{x:.2f}" if abs(x) >= 0.01 else f"{x:.2g}", str(out["value"])]
    if isinstance(x, float):
        return [f"{x:.4f}".rstrip("0").rstrip(".") if 1e-4 <= abs(x) < 1e15 else f"{x:.6g}"]
    return [str(x)]


def test_final_answers_state_the_key_values_of_the_results() -> None:
    n = 0
    for e in _examples("train"):
        msgs = e.messages
        for j, m in enumerate(msgs):
            if m["role"] != "tool" or msgs[j + 1]["role"] != "assistant":
                continue
            start = max(k for k in range(j) if msgs[k].get("tool_calls"))
            calls = msgs[start]["tool_calls"]
            results = [json.loads(t["content"]) for t in msgs[start + 1:j + 1]]
            final = msgs[j + 1]["content"]
            for call, out in zip(calls, results, strict=True):
                name = call["function"]["name"]
                if "error" in out:
                    continue
                keys = _keys_of(name, out)
                assert scoring.states_key_values(final, keys), (final, keys)
                n += 1
    assert n > 1500


@pytest.mark.parametrize(("name", "output", "expected"), [
    ("get_weather", {"city": "Paris", "temperature": 21, "unit": "celsius", "condition": "sunny",
                     "humidity_percent": 50, "wind_kph": 3}, "It's 21°C and sunny in Paris."),
    ("get_weather", {"city": "Oslo", "temperature": 70, "unit": "fahrenheit", "condition": "fog",
                     "humidity_percent": 50, "wind_kph": 3}, "It's 70°F and fog in Oslo."),
    ("set_timer", {"status": "started", "minutes": 10, "label": "", "duration_s": 600},
     "Timer set for 10 minutes."),
    ("set_timer", {"status": "started", "minutes": 1, "label": "pasta", "duration_s": 60},
     'Timer "pasta" set for 1 minute.'),
    ("set_lights", {"room": "kitchen", "on": True, "brightness": 40},
     "The kitchen lights are on at 40%."),
    ("set_lights", {"room": "kitchen", "on": False, "brightness": 0}, "The kitchen lights are off."),
    ("set_thermostat", {"room": "living room", "target_temperature": 21.0,
                        "current_temperature": 19, "unit": "celsius", "status": "heating"},
     "The living room thermostat is set to 21°C (currently 19°C, heating)."),
    ("set_thermostat", {"room": "den", "target_temperature": 20.5, "current_temperature": 22,
                        "unit": "celsius", "status": "cooling"},
     "The den thermostat is set to 20.5°C (currently 22°C, cooling)."),
    ("add_reminder", {"id": "rem-1", "text": "call the plumber", "when": "tomorrow at 9am",
                      "status": "scheduled"}, "Reminder set: call the plumber, tomorrow at 9am."),
    ("convert_units", {"value": 10.0, "from_unit": "km", "to_unit": "mi", "result": 6.213711922,
                       "quantity": "length"}, "10 km is 6.21 mi."),
    ("convert_units", {"value": 100.0, "from_unit": "fahrenheit", "to_unit": "celsius",
                       "result": 37.77777778, "quantity": "temperature"}, "100°F is 37.78°C."),
    ("convert_units", {"value": 2.0, "from_unit": "cup", "to_unit": "ml", "result": 473.176473,
                       "quantity": "volume"}, "2 cups is 473.18 ml."),
    ("calculate", {"expression": "12 * 7", "result": 84}, "12 * 7 = 84."),
    ("calculate", {"expression": "1 / 3", "result": 0.333333333333}, "1 / 3 = 0.3333."),
    ("calculate", {"expression": "80 * 15 / 100", "result": 12.0}, "80 * 15 / 100 = 12."),
])
def test_answer_templates(name: str, output: dict, expected: str) -> None:
    assert corpus.answer([(name, {})], [(output, None)])[0] == expected


def test_parallel_answer_joins_sentences_and_errors_are_canonical() -> None:
    text, keys = corpus.answer(
        [("set_lights", {}), ("set_timer", {})],
        [({"room": "kitchen", "on": False, "brightness": 0}, None),
         (None, "set_timer raised ValueError: minutes must be from 1 to 1440 (24 hours) (got 2000)")])
    assert text == ("The kitchen lights are off. Sorry, I couldn't set the timer: minutes must be "
                    "from 1 to 1440 (24 hours) (got 2000).")
    assert keys == ["kitchen", "off"]


def test_quoted_answers_copy_the_tool_results_tokens() -> None:
    """``quote_answers`` (``train.py --quote-values``): cities, rooms and reminders in quotes,
    so the answer holds the very tokens of the tool result's JSON; everything else as is."""
    from qwen_edge.export.tokenizer import build_qwen_tokenizer

    tokenizer = build_qwen_tokenizer("qwen2.5")

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False).ids

    text, keys = corpus.answer(
        [("set_lights", {}), ("get_weather", {}), ("add_reminder", {})],
        [({"room": "staircase", "on": False, "brightness": 0}, None),
         ({"city": "Ann Arbor", "temperature": 3, "unit": "celsius", "condition": "fog",
           "humidity_percent": 50, "wind_kph": 3}, None),
         ({"id": "rem-1", "text": "buy sunscreen", "when": "7am", "status": "scheduled"}, None)],
        quote=True)
    assert text == ('The "staircase" lights are off. It\'s 3°C and fog in "Ann Arbor". '
                    'Reminder set: "buy sunscreen", "7am".')
    assert scoring.states_key_values(text, keys)
    for value in ("staircase", "Ann Arbor", "buy sunscreen"):
        in_json = encode(json.dumps({"k": value}))[3:-1]  # between '{"k":' and '"}'
        quoted = encode(f'x "{value}" y')[1:-1]
        plain = encode(f"x {value} y")[1:-1]
        assert quoted[: len(in_json)] == in_json
        assert plain != in_json[1:]  # e.g. " staircase" is one token, "st" "air" "case" in JSON
    changed = 0
    for example in corpus.generate(400, seed=3):
        quoted_ex = corpus.quote_answers(example)
        assert len(quoted_ex.messages) == len(example.messages)
        for old, new in zip(example.messages, quoted_ex.messages, strict=True):
            if old != new:
                changed += 1
                assert old["role"] == "assistant"
                assert new["content"] != old["content"]
                assert new["content"].replace('"', "") == old["content"].replace('"', "")
    assert changed > 100


def test_evaluation_can_quote_the_history_as_a_quoting_model_writes_it() -> None:
    evaluate = load_tiny("evaluate")
    items = [i for i in evaluate.handwritten_items() if i.kind == "followup"]
    berlin = next(i for i in items if i.messages[0]["content"] == "how's the weather in Berlin?")
    new = evaluate.quoted(berlin)
    assert berlin.messages[3]["content"] == "It's 17°C and sunny in Berlin."
    assert new.messages[3]["content"] == 'It\'s 17°C and sunny in "Berlin".'
    assert new.messages[:3] == berlin.messages[:3]
    assert new.messages[4:] == berlin.messages[4:]
    assert (new.kind, new.expected_calls, new.source) == (
        berlin.kind, berlin.expected_calls, berlin.source)


def test_reminder_when_drops_a_leading_at_or_on() -> None:
    assert corpus._when("at 5pm") == "5pm"
    assert corpus._when("on friday at 10") == "friday at 10"
    assert corpus._when("in 2 hours") == "in 2 hours"
    assert corpus._when("tomorrow at 9am") == "tomorrow at 9am"


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_copied_arguments_appear_in_the_request(split: str) -> None:
    """Reminder text and when, labels, rooms and cities are copied from what the user wrote."""
    checked = 0
    for e in _examples(split):
        if e.kind not in ("single", "tool_error"):
            continue
        user = " ".join(e.messages[0]["content"].casefold().split())
        for c in e.messages[1]["tool_calls"]:
            args = c["function"]["arguments"]
            for key in ("text", "when", "label", "room", "city"):
                if key in args:
                    value = args[key].casefold()
                    assert value in user or (key == "city" and corpus._ascii(value) in user), (
                        key, value, user)
                    checked += 1
            if "minutes" in args:
                numbers = "|".join(corpus._ONES + corpus._TENS[2:])
                assert re.search(rf"\d|\b({numbers}|half|quarter|an hour|a day|a minute)", user)
                assert not re.search(r"\ba (8|11\b|18\b|eight|eleven|hour)", user), user
    assert checked > 500
def test_arguments_follow_the_canonical_choices() -> None:
    cities = {c for split in ("train", "heldout") for c in corpus._POOLS["city"][split]}
    cities |= {corpus._ascii(c) for c in cities}
    rooms = set(corpus.P.ROOMS)
    for e in _examples("train"):
        for m in e.messages:
            for c in m.get("tool_calls") or []:
                name, args = c["function"]["name"], c["function"]["arguments"]
                if name == "get_weather":
                    assert args["city"] in cities
                    assert args.get("unit", "celsius") in ("celsius", "fahrenheit")
                if name in ("set_lights", "set_thermostat") and "room" in args:
                    assert args["room"] in rooms
                    assert args["room"] == args["room"].lower()
                if name == "set_timer":
                    assert type(args["minutes"]) is int
                if name == "convert_units" and e.kind != "tool_error":
                    assert args["from_unit"] in corpus.home_tools._NAMES.values()
                    assert args["to_unit"] in corpus.home_tools._NAMES.values()
                    assert args["from_unit"] in corpus._UNIT_WORDS
                if name == "calculate":
                    expr = args["expression"]
                    assert expr == " ".join(expr.split())
                    assert not re.search(r"[\d)][-+*/%]|[-+*/%][\d(]", re.sub(r"(^|\()-", r"\1", expr).replace("**", "^")), expr
                if name == "add_reminder":
                    assert not args["when"].startswith(("at ", "on "))
                    assert not args["text"].startswith("to ")


# -- splits -------------------------------------------------------------------------------------


def _template_tables() -> dict[str, dict[str, list]]:
    tables = {k: v for k, v in vars(corpus.T).items()
              if isinstance(v, dict) and set(v) == {"train", "heldout"}}
    tables |= {f"followup_{k}": v for k, v in corpus._FOLLOWUPS.items()}
    tables |= {f"same_tool_{k}": v for k, v in corpus._SAME_TOOL.items()}
    tables |= {f"clarify_answer_{k}": v for k, v in corpus.T.CLARIFY_ANSWER.items()}
    tables |= {"polite": corpus._POLITE, "suffix": corpus._SUFFIX, "trivia": corpus.O.TRIVIA,
               "open": corpus.O.OPEN, "lookalike": corpus.O.LOOKALIKE}
    tables |= {f"no_tool_{k}": {"train": v[1], "heldout": v[2]} for k, v in corpus.T.NO_TOOL.items()}
    tables |= {f"clarify_{k}": {"train": v[1], "heldout": v[2]} for k, v in corpus.T.CLARIFY.items()}
    return tables


def test_heldout_templates_are_disjoint_from_train_templates() -> None:
    tables = _template_tables()
    assert len(tables) > 30
    all_train = {str(t).lstrip("!?") for v in tables.values() for t in v["train"]}
    for name, table in tables.items():
        held = {str(t).lstrip("!?") for t in table["heldout"]}
        assert held, name
        assert not held & all_train, (name, held & all_train)
    assert not set(corpus.O.LANGUAGES["train"]) & set(corpus.O.LANGUAGES["heldout"])
    assert set(corpus.O.LANGUAGE_TEMPLATES["train"]) == set(corpus.O.LANGUAGES["train"])
    assert set(corpus.O.LANGUAGE_TEMPLATES["heldout"]) == set(corpus.O.LANGUAGES["heldout"])


def test_enough_templates_per_tool() -> None:
    T = corpus.T
    per_tool = {
        "get_weather": [T.WEATHER], "set_timer": [T.TIMER, T.TIMER_LABELED],
        "set_lights": [T.LIGHTS_ON, T.LIGHTS_OFF, T.LIGHTS_LEVEL],
        "set_thermostat": [T.THERMOSTAT, T.THERMOSTAT_ROOM], "add_reminder": [T.REMINDER],
        "convert_units": [T.CONVERT], "calculate": [T.CALC, T.CALC_EXPR],
    }
    for tool, tables in per_tool.items():
        assert sum(len(t["train"]) for t in tables) >= 25, tool
        assert sum(len(t["heldout"]) for t in tables) >= 10, tool
    for intent, (_, train, held) in T.NO_TOOL.items():
        assert len(train) >= 25, intent
        assert len(held) >= 10, intent
    assert len(T.UNSUPPORTED_WRAP["train"]) >= 25
    assert len(T.UNSUPPORTED_WRAP["heldout"]) >= 10


def test_entity_pools_are_large_and_split() -> None:
    pools = corpus._POOLS
    sizes = {k: len(v["train"]) + len(v["heldout"]) for k, v in pools.items()}
    assert sizes["city"] >= 300
    assert sizes["room"] >= 40
    assert sizes["task"] >= 200
    assert sizes["label"] >= 60
    assert sizes["pair"] >= 40
    assert sum(" " in c for c in pools["city"]["train"] + pools["city"]["heldout"]) >= 50
    assert sum(not c.isascii() for c in pools["city"]["train"] + pools["city"]["heldout"]) >= 20
    for name, pool in pools.items():
        assert not set(pool["train"]) & set(pool["heldout"]), name
        assert 0.1 < len(pool["heldout"]) / sizes[name] < 0.35, name


def test_heldout_examples_use_heldout_entities_only() -> None:
    train_cities = set(corpus._POOLS["city"]["train"])
    train_cities |= {corpus._ascii(c) for c in train_cities}
    train_rooms = set(corpus._POOLS["room"]["train"])
    train_tasks = {t.casefold() for t in corpus._POOLS["task"]["train"]}
    checked = 0
    for e in _examples("heldout"):
        for m in e.messages:
            for c in m.get("tool_calls") or []:
                args = c["function"]["arguments"]
                if "city" in args:
                    assert args["city"] not in train_cities
                    checked += 1
                if "room" in args:
                    assert args["room"] not in train_rooms
                if "text" in args:
                    assert args["text"].casefold() not in train_tasks
    assert checked > 100


# -- the mix ------------------------------------------------------------------------------------


def test_kinds_follow_the_intended_mix() -> None:
    counts = Counter(e.kind for e in _examples("train"))
    assert set(counts) == set(corpus.KINDS)
    for kind, share in corpus.MIX.items():
        assert abs(counts[kind] / N - share) < 0.03, (kind, counts[kind] / N)


def test_out_of_scope_replies_are_varied_and_everything_else_is_canonical() -> None:
    replies: Counter[str] = Counter()
    for e in _examples("train"):
        last = e.messages[-1]["content"]
        if e.kind == "oos":
            assert last in corpus.O.HANDOFFS
            replies[last] += 1
        elif e.kind == "unsupported":
            assert last == corpus.T.UNSUPPORTED_REPLY
        elif e.kind == "no_tool":
            assert last in {v[0] for v in corpus.T.NO_TOOL.values()}
    assert len(replies) >= 40
    assert len({r.split()[0] for r in corpus.O.HANDOFFS}) >= 40
    assert len(set(corpus.O.HANDOFFS)) == len(corpus.O.HANDOFFS) >= 40


def test_user_messages_are_varied() -> None:
    users = [m["content"] for e in _examples("train") for m in e.messages if m["role"] == "user"]
    assert len(set(users)) / len(users) > 0.85
    assert sum(u == u.lower() for u in users) / len(users) > 0.25
    assert sum(u[-1:] not in ".?!" for u in users) / len(users) > 0.3
    assert any(re.search(r"\b(twenty|thirty|forty|fifteen|half an hour)\b", u) for u in users)


# -- eval items ---------------------------------------------------------------------------------


def test_eval_requests_are_cut_at_a_point_to_score() -> None:
    items = corpus.eval_requests(600, seed=11)
    kinds = Counter(i.kind for i in items)
    assert {"single", "parallel", "followup", "answer", "no_tool", "unsupported", "oos",
            "tool_error", "clarify"} <= set(kinds)
    for item in items:
        assert item.messages[-1]["role"] in ("user", "tool")
        if item.messages[-1]["role"] == "tool":
            assert item.kind in ("answer", "tool_error")
            assert item.expected_text
            assert not item.expected_calls
            assert scoring.states_key_values(item.expected_text, item.key_values)
        elif item.expected_calls:
            for call in item.expected_calls:
                assert scoring.match_call(call, call) == (True, True)
        elif item.kind == "oos":
            assert item.expected_text is None
        else:
            assert item.expected_text


def test_eval_requests_from_the_training_split_use_its_entities() -> None:
    """``split="train"`` items (evaluate.py --train-templates) draw the training pools, the
    default ones the held-out pools: the cities they ask about never cross over."""
    def cities(items) -> set[str]:
        return {c["arguments"]["city"] for i in items for c in i.expected_calls
                if c["name"] == "get_weather"}

    def pool(split: str) -> set[str]:  # as written, or without accents (corpus._city)
        names = corpus._POOLS["city"][split]
        return set(names) | {corpus._ascii(n) for n in names}

    train = cities(corpus.eval_requests(400, seed=5, split="train"))
    held = cities(corpus.eval_requests(400, seed=5))
    assert len(train) > 20
    assert len(held) > 20
    assert train <= pool("train")
    assert not train & pool("heldout")
    assert held <= pool("heldout")
    assert not held & pool("train")
    with pytest.raises(ValueError, match="split"):
        corpus.eval_requests(1, seed=0, split="dev")


# -- scoring ------------------------------------------------------------------------------------


def _c(name: str, **arguments: Any) -> dict:
    return {"name": name, "arguments": arguments}


@pytest.mark.parametrize(("expected", "got", "result"), [
    # names
    (_c("get_weather", city="Paris"), _c("set_timer", minutes=5), (False, False)),
    (_c("get_weather", city="Paris"), _c("get_weather", city="Paris"), (True, True)),
    # defaults from the signature
    (_c("get_weather", city="Paris"), _c("get_weather", city="Paris", unit="celsius"), (True, True)),
    (_c("get_weather", city="Paris"), _c("get_weather", city="Paris", unit="fahrenheit"),
     (True, False)),
    (_c("set_thermostat", temperature=21), _c("set_thermostat", temperature=21, room="living room"),
     (True, True)),
    (_c("set_lights", room="den", on=True), _c("set_lights", room="den", on=True, brightness=None),
     (True, True)),
    (_c("set_timer", minutes=5), _c("set_timer", minutes=5, label=""), (True, True)),
    (_c("set_timer", minutes=5), _c("set_timer", minutes=5, colour="red"), (True, False)),
    (_c("set_timer", minutes=5), _c("set_timer", label="x"), (True, False)),
    # strings
    (_c("get_weather", city="New York"), _c("get_weather", city="  new   york. "), (True, True)),
    (_c("get_weather", city="São Paulo"), _c("get_weather", city="Sao Paulo"), (True, False)),
    (_c("set_timer", minutes=5, label="pasta"), _c("set_timer", minutes=5, label="Pasta!"),
     (True, True)),
    (_c("set_timer", minutes=5, label="pasta"), _c("set_timer", minutes=5, label="rice"),
     (True, False)),
    # numbers
    (_c("set_thermostat", temperature=21), _c("set_thermostat", temperature=21.0), (True, True)),
    (_c("set_thermostat", temperature=21), _c("set_thermostat", temperature=21.5), (True, False)),
    (_c("set_thermostat", temperature=21), _c("set_thermostat", temperature="21"), (True, False)),
    (_c("set_lights", room="den", on=True), _c("set_lights", room="den", on=1), (True, False)),
    (_c("set_lights", room="den", on=False), _c("set_lights", room="den", on=True), (True, False)),
    # units by alias
    (_c("convert_units", value=10, from_unit="km", to_unit="mi"),
     _c("convert_units", value=10.0, from_unit="kilometres", to_unit="Miles"), (True, True)),
    (_c("convert_units", value=100, from_unit="fahrenheit", to_unit="celsius"),
     _c("convert_units", value=100, from_unit="°F", to_unit="C"), (True, True)),
    (_c("convert_units", value=10, from_unit="km", to_unit="mi"),
     _c("convert_units", value=10, from_unit="km", to_unit="nmi"), (True, False)),
    (_c("convert_units", value=10, from_unit="km", to_unit="mi"),
     _c("convert_units", value=1, from_unit="km", to_unit="mi"), (True, False)),
    # expressions by value
    (_c("calculate", expression="80 * 15 / 100"), _c("calculate", expression="0.15*80"),
     (True, True)),
    (_c("calculate", expression="sqrt(144)"), _c("calculate", expression="12"), (True, True)),
    (_c("calculate", expression="12 * 7"), _c("calculate", expression="12 * 8"), (True, False)),
    (_c("calculate", expression="1 / 0"), _c("calculate", expression="5/0"), (True, True)),
    (_c("calculate", expression="1 / 0"), _c("calculate", expression="1 / 1"), (True, False)),
    (_c("calculate", expression="2 ** 10"), _c("calculate", expression="2^10"), (True, False)),
    # when
    (_c("add_reminder", text="call mom", when="5pm"),
     _c("add_reminder", text="Call mom", when="at 5pm"), (True, True)),
    (_c("add_reminder", text="call mom", when="on friday"),
     _c("add_reminder", text="call mom", when="Friday"), (True, True)),
    (_c("add_reminder", text="call mom", when="in 2 hours"),
     _c("add_reminder", text="call mom", when="2 hours"), (True, False)),
    (_c("add_reminder", text="call mom", when="5pm"),
     _c("add_reminder", text="call dad", when="5pm"), (True, False)),
])
def test_match_call(expected: dict, got: dict, result: tuple[bool, bool]) -> None:
    assert scoring.match_call(expected, got) == result


@pytest.mark.parametrize(("answer", "keys", "result"), [
    ("It's 21°C and sunny in Paris.", ["21", "sunny"], True),
    ("It's 21.0 degrees and Sunny.", ["21", "sunny"], True),
    ("It's 12°C and sunny.", ["21", "sunny"], False),
    ("It's 21°C and cloudy.", ["21", "sunny"], False),
    ("It's -5°C and snow in Oslo.", ["-5", "snow"], True),
    ("It's 5°C and snow in Oslo.", ["-5", "snow"], False),
    ("10 km is 6.2137 mi.", ["6.21"], True),
    ("10 km is 6.2 mi.", ["6.21"], False),
    ("It's 21.4 degrees.", ["21"], False),
    ("1 mile is 1,609.34 m.", ["1609.34"], True),
    ("The kitchen lights are on at 40%.", ["kitchen", "on", "40"], True),
    ("Current conditions in the kitchen.", ["on"], False),
    ("Reminder set: call the plumber, tomorrow at 9am.", ["call the plumber", "tomorrow at 9am"],
     True),
    ("Reminder set: call the plumber.", ["call the plumber", "tomorrow at 9am"], False),
    ("", [], True),
])
def test_states_key_values(answer: str, keys: list[str], result: bool) -> None:
    assert scoring.states_key_values(answer, keys) is result


# -- the hand-written set -----------------------------------------------------------------------


def test_handwritten_set_parses_and_covers_the_minimums() -> None:
    items = _handwritten()
    kinds = Counter(i["kind"] for i in items)
    assert len(items) >= 120
    assert kinds["parallel"] >= 10
    assert kinds["followup"] >= 8
    assert kinds["answer"] >= 15
    assert kinds["no_tool"] >= 6
    assert kinds["unsupported"] >= 6
    assert kinds["oos"] >= 50
    per_tool: Counter[str] = Counter()
    for item in items:
        assert set(item) == {"messages", "kind", "expected_calls", "key_values"}
        assert item["kind"] in {*corpus.KINDS, "answer"}
        names = {c["name"] for c in item["expected_calls"]}
        for m in item["messages"]:
            names |= {c["function"]["name"] for c in m.get("tool_calls") or []}
        per_tool.update(names)
    assert set(per_tool) == set(TOOLS)
    assert min(per_tool.values()) >= 12, per_tool
    languages = sum(not i["messages"][-1]["content"].isascii() for i in items if i["kind"] == "oos")
    assert languages >= 8


@pytest.mark.parametrize("name", HANDWRITTEN_FILES)
def test_handwritten_calls_are_real(name: str) -> None:
    for item in _handwritten(name):
        msgs = item["messages"]
        assert msgs[-1]["role"] in ("user", "tool")
        kind = item["kind"]
        for j, m in enumerate(msgs):
            for k, c in enumerate(m.get("tool_calls") or []):
                content, ok = _agent_content(c["function"]["name"], c["function"]["arguments"])
                assert msgs[j + 1 + k]["content"] == content
                assert ok or kind == "tool_error"
        for call in item["expected_calls"]:
            _, ok = _agent_content(call["name"], call["arguments"])
            assert ok == (kind != "tool_error"), call
        if msgs[-1]["role"] == "tool":
            assert item["key_values"]
            assert not item["expected_calls"]
            start = max(j for j, m in enumerate(msgs) if m.get("tool_calls"))
            calls = [(c["function"]["name"], c["function"]["arguments"])
                     for c in msgs[start]["tool_calls"]]
            results = [corpus.run_tool(n, a)[1:] for n, a in calls]
            canonical, _ = corpus.answer(calls, results)
            assert scoring.states_key_values(canonical, item["key_values"]), (canonical, item)
        elif kind in ("single", "parallel", "followup", "tool_error"):
            assert item["expected_calls"]
        else:
            assert not item["expected_calls"]


# -- the typed hand-written set (issue #27) -----------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _requests(items: tuple[dict, ...]) -> set[str]:
    """Every user message of the items, whitespace- and case-normalised."""
    return {_norm(m["content"]) for item in items for m in item["messages"] if m["role"] == "user"}


def _calls(item: dict) -> list[tuple[str, dict]]:
    """The expected calls and the calls in the history of an item."""
    calls = [(c["name"], c["arguments"]) for c in item["expected_calls"]]
    for m in item["messages"]:
        calls += [(c["function"]["name"], c["function"]["arguments"])
                  for c in m.get("tool_calls") or []]
    return calls


def test_handwritten_typed_set_parses_and_covers_the_mix() -> None:
    items = _handwritten("handwritten_typed.jsonl")
    kinds = Counter(i["kind"] for i in items)
    assert len(items) >= 100
    minimums = {"single": 35, "parallel": 5, "followup": 5, "answer": 8, "tool_error": 4,
                "no_tool": 5, "unsupported": 5, "oos": 20}
    assert all(kinds[k] >= n for k, n in minimums.items()), kinds
    assert set(kinds) == set(minimums)
    per_tool: Counter[str] = Counter()
    for item in items:
        assert set(item) == {"messages", "kind", "expected_calls", "key_values"}
        per_tool.update({name for name, _ in _calls(item)})
    assert set(per_tool) == set(TOOLS)
    assert min(per_tool.values()) >= 8, per_tool
    oos = [i["messages"][-1]["content"] for i in items if i["kind"] == "oos"]
    assert sum(not text.isascii() for text in oos) >= 3  # other languages
    # written anew, not copied from the first set
    assert not _requests(items) & _requests(_handwritten("handwritten.jsonl"))


@pytest.mark.parametrize("name", HANDWRITTEN_FILES)
def test_handwritten_calls_satisfy_the_tool_schemas(name: str) -> None:
    import jsonschema

    for item in _handwritten(name):
        for tool, arguments in _calls(item):
            jsonschema.validate(arguments, TOOLS[tool].parameters)  # raises on a bad call
            order = list(corpus.PARAMS[tool])
            assert list(arguments) == [p for p in order if p in arguments], "signature order"


@pytest.mark.parametrize("name", HANDWRITTEN_FILES)
def test_handwritten_grounded_arguments_can_be_quoted(name: str) -> None:
    """The agent's grammar lets a local model write a grounded argument (city, room, label,
    reminder) only as words of the user's messages; an expected value that is not among them
    (casefolded, as match_call compares) would score a correct grounded model as wrong."""
    from qwen_edge.agents.tools import grounding_texts, quotable_spans

    for item in _handwritten(name):
        spans = {_norm(s) for s in quotable_spans(grounding_texts(item["messages"]))}
        for tool, arguments in _calls(item):
            for param in TOOLS[tool].grounded & set(arguments):
                assert _norm(arguments[param]) in spans, (item["messages"][-1], tool, param)


@pytest.mark.parametrize("name", HANDWRITTEN_FILES)
def test_handwritten_answers_carry_real_tool_outputs_and_their_key_values(name: str) -> None:
    answers = [i for i in _handwritten(name) if i["messages"][-1]["role"] == "tool"]
    assert len(answers) >= 8
    for item in answers:
        msgs = item["messages"]
        start = max(j for j, m in enumerate(msgs) if m.get("tool_calls"))
        calls = [(c["function"]["name"], c["function"]["arguments"])
                 for c in msgs[start]["tool_calls"]]
        contents = [m["content"] for m in msgs[start + 1:]]
        assert contents == [_agent_content(n, a)[0] for n, a in calls]
        # the key values are the ones the canonical answer to these results states
        results = [corpus.run_tool(n, a)[1:] for n, a in calls]
        assert item["key_values"] == corpus.answer(calls, results)[1]


def test_evaluate_loads_either_hand_written_file() -> None:
    evaluate = load_tiny("evaluate")
    first = evaluate.handwritten_items()
    typed = evaluate.handwritten_items(evaluate.HANDWRITTEN_TYPED, "handwritten-typed")
    assert len(first) == len(_handwritten("handwritten.jsonl"))
    assert len(typed) == len(_handwritten("handwritten_typed.jsonl"))
    assert {i.source for i in first} == {"handwritten"}
    assert {i.source for i in typed} == {"handwritten-typed"}
    raw = _handwritten("handwritten_typed.jsonl")
    for item, d in zip(typed, raw, strict=True):
        assert item.messages == d["messages"]
        assert item.expected_calls == d["expected_calls"]
        assert item.kind == ("answer" if d["messages"][-1]["role"] == "tool" else d["kind"])


def test_evaluate_scores_the_typed_set_as_its_own_set(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """``main`` reports "handwritten-typed" beside the other sets, in --json and in text, each
    set's summary computed over that set's items only (the model is replaced by a recorder)."""
    import qwen_edge

    evaluate = load_tiny("evaluate")
    seen: dict[int, set[str]] = {}

    def fake_evaluate(_model: object, items: list, **_: object) -> object:
        report = evaluate.Report(n=len(items))
        seen[len(items)] = {i.source for i in items}
        return report

    monkeypatch.setattr(evaluate, "evaluate", fake_evaluate)
    monkeypatch.setattr(qwen_edge, "load", lambda _path: object())
    assert evaluate.main(["pkg", "--n", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["heldout", "handwritten", "handwritten-typed"]
    assert out["handwritten-typed"]["items"] == len(_handwritten("handwritten_typed.jsonl"))
    assert seen[out["handwritten-typed"]["items"]] == {"handwritten-typed"}
    assert evaluate.main(["pkg", "--n", "5"]) == 0
    assert "== handwritten-typed: " in capsys.readouterr().out


_TIMER = {"name": "set_timer", "arguments": {"minutes": 5}}


def _line(kind: str, calls: list, messages: list | None = None, keys: list | None = None) -> dict:
    return {"messages": messages or [{"role": "user", "content": "set a timer for 5 minutes"}],
            "kind": kind, "expected_calls": calls, "key_values": keys or []}


def _timer_history(content: str) -> list[dict]:
    return [{"role": "user", "content": "timer 5"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "set_timer",
                                                  "arguments": {"minutes": 5}}}]},
            {"role": "tool", "content": content}]


@pytest.mark.parametrize(("line", "problem"), [
    (_line("single", [_TIMER]), None),
    (_line("sngle", [_TIMER]), "unknown kind 'sngle'"),
    (_line("single", [{"name": "set_tmer", "arguments": {"minutes": 5}}]),
     "unknown tool 'set_tmer'"),
    (_line("single", [{"name": "set_timer", "arguments": {"minutes": "5"}}]),
     "'5' is not of type 'integer'"),
    (_line("single", [{"name": "set_timer", "arguments": {"mins": 5}}]),
     "'minutes' is a required property"),
    (_line("single", [{"name": "set_timer", "arguments": {"minutes": 5000}}]), "must succeed"),
    (_line("tool_error", [_TIMER]), "must fail"),
    (_line("single", []), "needs expected_calls"),
    (_line("oos", [_TIMER]), "expects no calls"),
    (_line("answer", [], _timer_history(corpus.run_tool("set_timer", {"minutes": 5})[0]), ["5"]),
     None),
    (_line("answer", [], _timer_history('{"status": "started", "minutes": 5}'), ["5"]),
     "must be the tool message"),
    (_line("answer", [], _timer_history(corpus.run_tool("set_timer", {"minutes": 5})[0])),
     "needs key_values"),
])
def test_evaluate_checks_every_hand_written_line(line: dict, problem: str | None,
                                                 tmp_path: Any) -> None:
    evaluate = load_tiny("evaluate")
    problems = evaluate.check_line(line)
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    if problem is None:
        assert problems == []
        assert len(evaluate.handwritten_items(path)) == 1
    else:
        assert any(problem in p for p in problems), problems
        with pytest.raises(ValueError, match=r"items\.jsonl:1: "):
            evaluate.handwritten_items(path)


# Requests of handwritten.jsonl (written before this check) that the training generator also
# produces (seed 0, the first 40,000 examples): short follow-ups, greetings, unsupported actions
# and trivia that the templates happen to spell the same way. Kept as they are, so that the
# set's numbers stay comparable; the check below keeps the list from growing.
_FIRST_SET_IN_TRAINING = {
    "start a timer for an hour and a half", "17 squared", "and in munich?",
    "make it 20 minutes instead", "now turn them off", "now multiply that by 3",
    "thanks so much", "what can you do?", "who are you", "good night", "how are you today?",
    "lock the front door", "can you vacuum the living room", "turn on the tv",
    "start the dishwasher", "who wrote hamlet", "what's the capital of peru?",
    "what's the meaning of life",
}


@cache
def _training_requests(n: int) -> frozenset[str]:
    """User messages of the fine-tune corpus: train/smollm/finetune.py draws
    ``corpus.generate(--examples, seed=--seed)`` (defaults 40,000 and 0; 10,000 and 0 in the
    issue #27 run), and example i depends on (seed, i) only, so the first n are its first n."""
    return frozenset(_norm(m["content"]) for e in corpus.generate(n, seed=0)
                     for m in e.messages if m["role"] == "user")


def _check_not_trained_on(n: int) -> None:
    trained = _training_requests(n)
    assert len(trained) > n // 2  # the sample really is the corpus's requests
    typed = _handwritten("handwritten_typed.jsonl")
    assert not _requests(typed) & trained  # normalised, so exact matches are caught too
    first = _requests(_handwritten("handwritten.jsonl")) & trained
    assert first <= _FIRST_SET_IN_TRAINING, first - _FIRST_SET_IN_TRAINING
    if n >= 40_000:
        assert first == _FIRST_SET_IN_TRAINING


def test_no_hand_written_request_is_in_the_training_corpus() -> None:
    _check_not_trained_on(10_000)  # the size of the issue #27 run (/work/train_run2)


@pytest.mark.slow
def test_no_hand_written_request_is_in_the_default_training_corpus() -> None:
    _check_not_trained_on(40_000)  # finetune.py's default --examples

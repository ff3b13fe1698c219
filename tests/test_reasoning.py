"""Thinking: the reasoning splitter (finished == streamed at every chunk size) and the thinking
budget, exact on a random-weight tiny package.

Splitter cases are restated from vLLM ``tests/reasoning/test_qwen3_reasoning_parser.py``
(vllm-project/vllm; the parser serves Qwen3 and Qwen3.5). vLLM cannot see the prompt and
assumes thinking is on; here ``started`` says whether the prompt ended inside a thought, so
its "no </think> yet" cases are the ``started=True`` rows, and an output that opens no thought
with ``started=False`` is all answer. vLLM's content None is "" here, and the newlines around a
thought are dropped, as the templates drop them when they render the turn again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import qwen_edge
from qwen_edge.constrain import AllOf
from qwen_edge.errors import ConfigError
from qwen_edge.reasoning import ReasoningSplitter, ThinkingBudget, split_reasoning, thinking_started

TOOL_CALL = ("<tool_call>\n<function=bash>\n<parameter=command>\ncat /etc/hosts\n</parameter>\n"
             "</function>\n</tool_call>")

# (id, output, started, reasoning, content)
CASES: list[tuple[str, str, bool, str | None, str]] = [
    ("vllm-without-start-token", "This is a reasoning section</think>This is the rest", True,
     "This is a reasoning section", "This is the rest"),
    ("vllm-without-start-token-complete", "This is a reasoning section</think>", True,
     "This is a reasoning section", ""),
    ("vllm-with-think", "<think>This is a reasoning section</think>This is the rest", False,
     "This is a reasoning section", "This is the rest"),
    ("vllm-without-think-truncated", "This is the rest", True, "This is the rest", ""),
    ("vllm-complete-reasoning", "<think>This is a reasoning section</think>", False,
     "This is a reasoning section", ""),
    ("vllm-multiline", "<think>This is a reasoning\nsection</think>This is the rest\nThat", False,
     "This is a reasoning\nsection", "This is the rest\nThat"),
    ("vllm-only-open-tag", "<think>This is a reasoning section", False,
     "This is a reasoning section", ""),
    ("vllm-tool-call-ends-the-thought", "I need to read the file.\n\n" + TOOL_CALL, True,
     "I need to read the file.", TOOL_CALL),
    ("vllm-tool-call-after-open-tag", "<think>I need to read the file.\n\n" + TOOL_CALL, False,
     "I need to read the file.", TOOL_CALL),
    ("vllm-thinking-disabled", "I need to read the file.\n\n" + TOOL_CALL, False, None,
     "I need to read the file.\n\n" + TOOL_CALL),
    ("qwen3-template-layout", "<think>\nEasy: 2+2.\n</think>\n\n4", False, "Easy: 2+2.", "4"),
    ("qwen35-template-layout", "\nEasy: 2+2.\n</think>\n\n4\n", True, "Easy: 2+2.", "4\n"),
    ("empty-thought", "<think>\n\n</think>\n\nHi", False, "", "Hi"),
    ("inner-blank-lines-kept", "<think>\nA\n\nB\n</think>\n\nC\n\nD", False, "A\n\nB", "C\n\nD"),
    ("partial-open-tag-is-content", "<thi", False, None, "<thi"),
    ("answer-mentions-think", "Use <think> tags.", False, None, "Use <think> tags."),
    ("nothing", "", True, "", ""),
]


@pytest.mark.parametrize(("text", "started", "reasoning", "content"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_split_reasoning(text: str, started: bool, reasoning: str | None, content: str) -> None:
    assert split_reasoning(text, started=started) == (reasoning, content)


@pytest.mark.parametrize("size", range(1, 9))
@pytest.mark.parametrize(("text", "started", "reasoning", "content"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_streamed_split_equals_finished(text: str, started: bool, reasoning: str | None,
                                        content: str, size: int) -> None:
    splitter = ReasoningSplitter(started=started)
    parts = [splitter.feed(text[i:i + size]) for i in range(0, len(text), size)]
    parts.append(splitter.finish())
    assert "".join(r for r, _ in parts) == (reasoning or "")
    assert "".join(c for _, c in parts) == content
    assert splitter.saw_thought is (reasoning is not None)


def test_reasoning_streams_before_the_thought_ends() -> None:
    splitter = ReasoningSplitter(started=True)
    assert splitter.feed("\nFirst, ") == ("First, ", "")
    assert splitter.feed("check.\n") == ("check.", "")  # the newline may end the thought
    assert splitter.feed("\nThen answer.</thi") == ("\n\nThen answer.", "")
    assert splitter.feed("nk>\n\nDone") == ("", "Done")


def test_thinking_started_reads_the_prompt() -> None:
    think, end = 151667, 151668
    assert thinking_started([1, 2, think, 198], think, end)
    assert not thinking_started([1, think, 198, end, 271], think, end)
    assert not thinking_started([1, 2, 3], think, end)


def test_budget_masks_and_counts() -> None:
    budget = ThinkingBudget(2, think_start=5, think_end=40, vocab_size=70, implicit_ends=(7,))
    assert budget.mask() is None
    for token in (5, 1, 2):  # <think>, then two thinking tokens
        assert budget.mask() is None
        budget.advance(token)
    mask = budget.mask()
    assert mask is not None
    allowed = np.nonzero(np.unpackbits(mask.view(np.uint8), bitorder="little"))[0]
    assert allowed.tolist() == [40]
    budget.advance(40)
    assert budget.mask() is None
    assert budget.thinking_tokens == 2
    early = ThinkingBudget(5, think_start=5, think_end=40, vocab_size=70, started=True,
                           implicit_ends=(7,))
    early.advance(7)  # a tool call ends the thought
    early.advance(3)
    assert (early.mask(), early.thinking_tokens) == (None, 0)
    with pytest.raises(ConfigError, match="thinking_budget=-1"):
        ThinkingBudget(-1, think_start=5, think_end=40, vocab_size=70)
    for bad in (-1, 2.5, True):
        with pytest.raises(ConfigError, match="thinking_budget"):
            qwen_edge.GenerationConfig(thinking_budget=bad)


def test_all_of_intersects_masks_and_ends_when_one_is_done() -> None:
    class Fixed:
        def __init__(self, words: list[int] | None, done: bool = False) -> None:
            self.words = None if words is None else np.array(words, np.uint32)
            self.seen: list[int] = []
            self.done = done

        def mask(self) -> np.ndarray | None:
            return self.words

        def advance(self, token: int) -> None:
            self.seen.append(token)

    a, b, free = Fixed([0b0110, 1]), Fixed([0b0011, 3]), Fixed(None)
    both = AllOf(a, None, b, free)
    mask = both.mask()
    assert mask is not None
    assert mask.tolist() == [0b0010, 1]
    both.advance(1)
    assert a.seen == b.seen == free.seen == [1]
    assert AllOf(free).mask() is None
    assert not both.done
    assert AllOf(a, Fixed(None, done=True)).done


# -- on a random-weight model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(package: Any) -> Any:
    return qwen_edge.load(package("tiny-qwen3", "int4"), threads=1)


def _ids(model: Any, *names: str) -> list[int]:
    return [model.tokenizer.token_to_id(n) for n in names]


@pytest.mark.parametrize("budget", [0, 1, 7, 20])
def test_budget_is_exact_when_the_prompt_opens_the_thought(model: Any, budget: int) -> None:
    end, im_end, eot, call = _ids(model, "</think>", "<|im_end|>", "<|endoftext|>",
                                  "<tool_call>")
    prompt = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n"  # Qwen3.5's
    never = {end: -100.0, im_end: -100.0, eot: -100.0, call: -100.0}  # noise never stops itself
    for seed in range(2):
        out = model.generate(prompt, thinking_budget=budget, max_tokens=budget + 6, seed=seed,
                             temperature=1.0, logit_bias=never)
        assert end not in out.token_ids[:budget]
        assert out.token_ids[budget] == end  # exactly `budget` thinking tokens, then </think>
        assert len(out.token_ids) == budget + 6  # and the model answers after it
        reasoning, content = split_reasoning(out.text, started=True)
        assert reasoning == model.tokenizer.decode(out.token_ids[:budget]).strip("\n")
        assert content == model.tokenizer.decode(out.token_ids[budget + 1:]).lstrip("\n")


def test_budget_counts_from_the_models_own_think_token(model: Any) -> None:
    think, end, im_end, eot = _ids(model, "<think>", "</think>", "<|im_end|>", "<|endoftext|>")
    prompt = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"  # Qwen3's: no <think>
    bias = {think: 100.0, end: -100.0, im_end: -100.0, eot: -100.0}  # the noise opens a thought
    out = model.generate(prompt, thinking_budget=5, max_tokens=12, seed=0, temperature=1.0,
                         logit_bias=bias)
    assert out.token_ids[0] == think
    assert out.token_ids[6] == end
    assert end not in out.token_ids[1:6]
    free = model.generate(prompt, max_tokens=12, seed=0, temperature=1.0, logit_bias=bias)
    assert end not in free.token_ids  # without a budget the thought goes on


def test_budget_on_a_model_without_think_tokens_is_a_config_error(package: Any) -> None:
    qwen25 = qwen_edge.load(package("tiny-qwen2", "int4"), threads=1)
    with pytest.raises(ConfigError, match="no <think>"):
        qwen25.generate("Hi", thinking_budget=3, max_tokens=2)


def test_cli_thinking_budget_and_tool_format_flags(package: Any, capsys: Any) -> None:
    from qwen_edge.cli import main

    pkg = str(package("tiny-qwen3", "int4"))
    prompt = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n"
    argv = ["run", pkg, prompt, "--max-tokens", "6", "--temperature", "0", "--threads", "1"]
    assert main(argv) == 0
    assert "</think>" not in capsys.readouterr().out  # greedy noise does not close the thought
    assert main([*argv, "--thinking-budget", "2"]) == 0
    assert "</think>" in capsys.readouterr().out
    assert main([*argv, "--tool-format", "qwen3_xml"]) == 0
    with pytest.raises(SystemExit):
        main([*argv, "--tool-format", "yaml"])
    assert "invalid choice: 'yaml'" in capsys.readouterr().err

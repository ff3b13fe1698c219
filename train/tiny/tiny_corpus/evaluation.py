"""Evaluation items: generated conversations cut at the point to score.

The SmolLM and tiny evaluations score these items; their seeds and cut rules are pinned by
tests/test_tiny_fingerprints.py, so a model is scored on the items it was scored on before.
"""

from __future__ import annotations

import random

from .answers import answer, run_tool
from .common import EvalItem
from .conversations import _example


def _calls_of(message: dict) -> list[dict]:
    return [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
            for c in message.get("tool_calls", [])]


def eval_requests(n: int, *, seed: int, split: str = "heldout") -> list[EvalItem]:
    """``n`` generated conversations, held-out ones by default, cut at a point to score
    (see ``EvalItem``).

    ``split="train"`` draws them from the training templates and entities instead (with a seed
    training did not use): what the model does on phrasings it was taught, as against new ones.
    """
    if split not in ("train", "heldout"):
        msg = f"split must be 'train' or 'heldout' (got {split!r})"
        raise ValueError(msg)
    items = []
    for i in range(n):
        ex = _example(seed, split, i)
        rng = random.Random(f"qwen-edge-tiny-eval:{seed}:{i}")
        msgs = ex.messages
        # cut points: before an assistant turn
        cuts = [j for j, m in enumerate(msgs) if m["role"] == "assistant"]
        last_user = max(j for j, m in enumerate(msgs) if m["role"] == "user")
        if ex.kind in ("no_tool", "unsupported", "oos"):
            j = cuts[-1]
            text = None if ex.kind == "oos" else msgs[j]["content"]
            items.append(EvalItem(msgs[:j], ex.kind, [], text, []))
            continue
        call_cut = next(j for j in cuts if j > last_user)
        if ex.kind == "clarify" and rng.random() < 0.4:
            items.append(EvalItem(msgs[:1], "clarify", [], msgs[1]["content"], []))
        elif rng.random() < 0.55:
            items.append(EvalItem(msgs[:call_cut], ex.kind, _calls_of(msgs[call_cut]), None, []))
        else:
            j = cuts[-1]
            calls = [(c["name"], c["arguments"]) for c in _calls_of(msgs[call_cut])]
            results = []
            for name, args in calls:
                _, out, error = run_tool(name, args)
                results.append((out, error))
            text, keys = answer(calls, results)
            kind = "tool_error" if ex.kind == "tool_error" else "answer"
            items.append(EvalItem(msgs[:j], kind, [], text, keys))
    return items

"""What thinking costs an agent's prefix reuse: cached vs prefilled prompt tokens per step.

    python benches/thinking_prefix.py [--budget 8] [--seeds 4]

A 3-step tool conversation (call, call, answer) on a tiny random-weight Qwen3 package exported
with Qwen3.5's chat template (the prompt opens ``<think>``; the XML tool format), run by the
real ``Agent`` on its own ``Session`` with a thinking budget, in two ways:

- ``drop``: the assistant turns go back into the history without their thought (what an OpenAI
  client does with ``reasoning_content``, and the agent before it kept it);
- ``keep``: the agent keeps each turn's ``reasoning_content`` (this branch): the template shows
  the thoughts of the turns after the last user message, so the history renders as generated.

Per step it prints prompt tokens, tokens reused from the cache (``usage.cached_tokens``), and
the upper bound: the tokens of the previous prompt plus what the session generated after it.
Random weights write non-canonical token sequences (a re-encoded thought may split into other
tokens), so ``keep`` stops short of the bound where re-tokenization differs; real models write
canonical tokens. Nothing here is timed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import qwen_edge
from qwen_edge.agents.agent import Agent
from qwen_edge.chat import builtin_template


def _package(root: Path) -> Path:
    from qwen_edge.export import ExportConfig, export_model
    from qwen_edge.export.synth import synth_checkpoint

    src = synth_checkpoint("tiny-qwen3", root / "ckpt", seed=0, dtype="float32")
    (src / "chat_template.jinja").write_text(builtin_template("Qwen3_5ForCausalLM"))
    out = root / "pkg"
    export_model(src, out, ExportConfig(quant="int4", max_context=2048))
    return out


def get_weather(city: Literal["Lisbon", "Porto"]) -> str:
    """Today's weather.

    Args:
        city: the city.
    """
    return f"21 C and sunny in {city}"


class _DropThoughts(Agent):
    """The agent as it was: assistant turns go back without their thought."""

    def _messages(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in m.items() if k != "reasoning_content"}
                for m in super()._messages()]


def run(model: qwen_edge.Model, keep: bool, budget: int, seed: int) -> list[tuple[int, ...]]:
    call = model.tokenizer.token_to_id("<tool_call>")
    assert call is not None
    cls = Agent if keep else _DropThoughts
    # A small bias on <tool_call>: the noise thinks a few tokens, then calls (a call ends a
    # Qwen3.5 thought by itself) or the budget closes the thought first.
    agent = cls(model, [get_weather], system="You check the weather.", max_steps=3,
                tool_choice="auto", thinking_budget=budget, max_tokens=160, seed=seed,
                temperature=1.0, logit_bias={call: 0.5})
    session = agent.session
    assert session is not None
    rows = []
    previous = 0
    result = agent.run("Weather in Lisbon, then in Porto?")
    # steps are recorded after the fact: recompute the bound from the step counts
    for i, step in enumerate(result.steps):
        bound = previous if i else 0
        rows.append((i + 1, step.prompt_tokens, step.cached_tokens, bound,
                     len(step.tool_calls)))
        previous = step.prompt_tokens + step.completion_tokens - 1  # the stop token is not fed
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=int, default=8)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--package", default=None, help="reuse a package this script exported")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="thinking-prefix-"))
    try:
        model = qwen_edge.load(args.package or _package(root), threads=1)
        print("mode  seed  step  prompt  cached  bound  calls")
        totals = {"drop": [0, 0], "keep": [0, 0]}
        for seed in range(args.seeds):
            for mode in ("drop", "keep"):
                for step, prompt, cached, bound, calls in run(model, mode == "keep",
                                                              args.budget, seed):
                    print(f"{mode:5} {seed:4} {step:5} {prompt:7} {cached:7} {bound:6} "
                          f"{calls:5}")
                    if step > 1:
                        totals[mode][0] += cached
                        totals[mode][1] += prompt
        for mode, (cached, prompt) in totals.items():
            print(f"{mode}: steps 2-3 reuse {cached} of {prompt} prompt tokens "
                  f"({100 * cached / max(prompt, 1):.0f} %), prefill {prompt - cached}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Conversations as training rows: rendered and tokenized exactly as the runtime does.

A row is the token ids after one of the shared system prefixes (system prompt + tool schemas)
and a loss mask over the assistant's tokens; ``encode_corpus`` checks on its first examples that
prefix + row is what ``encode_chat`` gives for the whole conversation. ``make_batches`` groups
rows of similar length under a token budget. No torch here: the SmolLM fine-tune imports these.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from qwen_edge.agents.tools import as_tool
from qwen_edge.chat import builtin_template, encode_chat, render_chat
from qwen_edge.default_model import DEFAULT_SYSTEM
from qwen_edge.demo import home_tools
from qwen_edge.tokenizer import Tokenizer

# The system prompts the model sees in training: the template's default (no system message),
# the demo's, and two plain ones; each is one shared prefix with the tool schemas.
SYSTEM_PROMPTS: tuple[str | None, ...] = (
    None, DEFAULT_SYSTEM, "You control a smart home. Use the tools.",
    "You are a helpful assistant.")




@dataclass
class Row:
    prefix: int  # index into SYSTEM_PROMPTS
    ids: np.ndarray  # suffix token ids (everything after the system turn)
    loss_mask: np.ndarray  # True where ids[i] is an assistant token to predict


class Encoder:
    """Render + tokenize conversations exactly like ``Model.encode_chat`` does."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tok = tokenizer
        self.template = builtin_template("Qwen2ForCausalLM")
        self.tools = [as_tool(t).to_openai() for t in home_tools.TOOLS]
        ids = [tokenizer.token_to_id(t) for t in ("<|im_start|>", "<|im_end|>")]
        self.im_start, self.im_end = ids
        head = tokenizer.encode("<|im_start|>assistant\n").tolist()
        assert head[0] == self.im_start, head
        self.assistant_head = head[1:]  # "assistant\n": 2 tokens for Qwen, 3 for SmolLM2
        self.prefixes = [self._prefix(s) for s in SYSTEM_PROMPTS]
        # The same system turns without the ~1,000 tokens of tool schemas: a curriculum. With
        # the schemas, attention starts out spread over a thousand positions and the few user
        # tokens barely register; without them the model first learns to read the request,
        # then keeps doing it when the schemas are there (half of the later batches).
        self.short_prefixes = [self._prefix(s, tools=False) for s in SYSTEM_PROMPTS]

    def _system(self, system: str | None) -> list[dict]:
        return [{"role": "system", "content": system}] if system is not None else []

    def _prefix(self, system: str | None, tools: bool = True) -> np.ndarray:
        text = render_chat(self.template, [*self._system(system),
                                           {"role": "user", "content": "x"}],
                           tools=self.tools if tools else None)
        return self.tok.encode(text[: text.index("<|im_start|>user")])

    def full(self, system: str | None, messages: list[dict]) -> np.ndarray:
        """What the runtime would tokenize (for checking ``row``)."""
        msgs = [*self._system(system), *messages]
        return encode_chat(self.tok, self.template, msgs, tools=self.tools,
                           add_generation_prompt=False)

    def row(self, prefix: int, messages: list[dict]) -> Row:
        marker = "<|im_start|>system\nS<|im_end|>\n"
        ids = encode_chat(self.tok, self.template, [{"role": "system", "content": "S"},
                                                    *messages], add_generation_prompt=False)
        head = self.tok.encode(marker)
        assert ids[:len(head)].tolist() == head.tolist()  # ends with <|im_end|>\n: a boundary
        ids = ids[len(head):]
        mask = np.zeros(len(ids), dtype=bool)
        i, n = 0, 1 + len(self.assistant_head)
        while i < len(ids) - n:
            if ids[i] == self.im_start and ids[i + 1:i + n].tolist() == self.assistant_head:
                end = i + n
                while ids[end] != self.im_end:
                    end += 1
                mask[i + n:end + 1] = True  # the content and <|im_end|>
                i = end
            i += 1
        return Row(prefix, ids.astype(np.int64), mask)

def encode_corpus(encoder: Encoder, examples: list, seed: int) -> list[Row]:
    rng = random.Random(seed)
    rows = []
    for n, ex in enumerate(examples):
        prefix = rng.randrange(len(SYSTEM_PROMPTS))
        row = encoder.row(prefix, ex.messages)
        if n < 20:  # the split into prefix + row must be what the runtime tokenizes
            full = encoder.full(SYSTEM_PROMPTS[prefix], ex.messages)
            joined = np.concatenate([encoder.prefixes[prefix], row.ids])
            assert np.array_equal(full, joined), f"tokenization differs for example {n}"
        rows.append(row)
    return rows


def make_batches(rows: list[Row], budget: int, rng: random.Random) -> list[list[Row]]:
    """Rows of similar length, padded size <= budget tokens per batch."""
    batches = []
    mine = list(rows)
    rng.shuffle(mine)
    for start in range(0, len(mine), 2000):
        chunk = sorted(mine[start:start + 2000], key=lambda r: len(r.ids))
        batch: list[Row] = []
        for r in chunk:
            if batch and len(r.ids) * (len(batch) + 1) > budget:
                batches.append(batch)
                batch = []
            batch.append(r)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches

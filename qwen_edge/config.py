"""Frozen configuration objects: how to sample, and how to generate.

Defaults live here, in the dataclasses. A package's ``generation`` defaults (from the
checkpoint's generation_config.json) override them, and explicit arguments override those
(``GenerationConfig.resolve``). Every field is validated in ``__post_init__``: a bad value
raises ``ConfigError`` naming the field and the allowed range.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._validate import check as _check
from ._validate import is_int as _is_int
from ._validate import is_number as _is_number
from .errors import ConfigError

__all__ = ["GenerationConfig", "SamplingConfig", "ToolGrammar"]

# The chat template's own arguments, set by the chat path (never by chat_template_kwargs)
_RENDER_ARGS = ("messages", "tools", "add_generation_prompt")


@dataclass(frozen=True, slots=True, kw_only=True)
class SamplingConfig:
    """How the next token is chosen (the C++ sampler's options, OpenAI / HF names).

    Attributes:
        temperature: 0 means greedy (argmax).
        top_k: keep the k most likely tokens (0 = off).
        top_p: nucleus sampling mass in (0, 1] (1 = off).
        min_p: keep tokens with p >= min_p * p_max (0 = off).
        repetition_penalty: HF semantics over this request's generated tokens (1 = off).
        presence_penalty / frequency_penalty: OpenAI semantics over generated tokens.
        logit_bias: token id -> additive bias (OpenAI: in [-100, 100]).
        seed: the same seed gives the same tokens for the same prompt; None draws one.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: Mapping[int, float] = field(default_factory=dict)
    seed: int | None = None

    def __post_init__(self) -> None:
        _check(_is_number(self.temperature) and self.temperature >= 0, "temperature",
               self.temperature, ">= 0 (0 = greedy)")
        _check(_is_int(self.top_k) and 0 <= self.top_k < 2**63, "top_k", self.top_k,
               "an int in [0, 2**63)")
        _check(_is_number(self.top_p) and 0 < self.top_p <= 1, "top_p", self.top_p, "in (0, 1]")
        _check(_is_number(self.min_p) and 0 <= self.min_p <= 1, "min_p", self.min_p, "in [0, 1]")
        _check(_is_number(self.repetition_penalty) and self.repetition_penalty > 0,
               "repetition_penalty", self.repetition_penalty, "> 0 (1 = off)")
        for name in ("presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            _check(_is_number(value) and -2 <= value <= 2, name, value, "in [-2, 2]")
        _check(isinstance(self.logit_bias, Mapping), "logit_bias", self.logit_bias,
               "a mapping of token id -> bias")
        for token, bias in self.logit_bias.items():
            _check(_is_int(token) and 0 <= token < 2**31, "logit_bias", token,
                   "keyed by token ids in [0, 2**31)")
            _check(_is_number(bias) and -100 <= bias <= 100, f"logit_bias[{token}]", bias,
                   "in [-100, 100]")
        # the native sampler's seed is a uint64: larger ints cannot be passed to it
        _check(self.seed is None or (_is_int(self.seed) and 0 <= self.seed < 2**64), "seed",
               self.seed, "None or an int in [0, 2**64)")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


_CONSTRAINTS = ("json_schema", "regex", "grammar")


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolGrammar:
    """The grammar that holds tool calls to the offered tools (built by the chat path).

    Kept apart from the user's own ``grammar`` so that neither overwrites the other.

    Attributes:
        grammar: a Lark grammar (llguidance's dialect).
        trigger: apply it only from the token after the model writes this token (e.g.
            ``"<tool_call>"``, tool_choice "auto"); None applies it from the first token.
    """

    grammar: str
    trigger: str | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.grammar, str) and bool(self.grammar), "tool_grammar",
               self.grammar, "a non-empty Lark grammar")
        _check(self.trigger is None or (isinstance(self.trigger, str) and bool(self.trigger)),
               "tool_grammar.trigger", self.trigger, "None or a token string")


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationConfig:
    """What to generate: length, stops, constraints, plus a ``SamplingConfig``.

    Attributes:
        max_tokens: most tokens to generate (None = until the context is full).
        stop: strings that end generation (also across token boundaries); not in the text.
        stop_token_ids: token ids that end generation (None = the package's: <|im_end|>,
            <|endoftext|>).
        json_schema / regex / grammar: constrain the output (at most one; grammar is Lark,
            llguidance's dialect).
        grammar_trigger: apply the constraint only from the token after the model emits this
            token (e.g. ``"<tool_call>"``); None applies it from the first token.
        speculative_tokens: propose up to this many n-gram draft tokens per step (prompt
            lookup; 0 = off). Output is token-identical with and without; it pays off when
            the output echoes the context (tool-call arguments, code edits).
        thinking_budget: most tokens a thinking model (Qwen3, Qwen3.5) may write inside
            ``<think>``; then ``</think>`` is forced and the model answers (None = no limit;
            ``qwen_edge.reasoning.ThinkingBudget``).
        enable_thinking: switch a thinking model's reasoning on or off through its chat
            template (Qwen3 / Qwen3.5 ``enable_thinking``; None = the template's default,
            which is on). Chat messages only: raw text and token ids are not rendered.
        chat_template_kwargs: more variables for the chat template (vLLM's request field of
            the same name): names to JSON scalars; ``enable_thinking`` above wins over one
            given here.
        tool_grammar: the tool-call grammar of a chat with tools (set by the chat path, not
            combined with json_schema / regex / grammar).
        sampling: the sampler options.
    """

    max_tokens: int | None = 512
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] | None = None
    json_schema: Mapping[str, Any] | str | None = None
    regex: str | None = None
    grammar: str | None = None
    grammar_trigger: str | None = None
    speculative_tokens: int = 0
    thinking_budget: int | None = None
    enable_thinking: bool | None = None
    chat_template_kwargs: Mapping[str, str | int | float | bool | None] = field(
        default_factory=dict)
    tool_grammar: ToolGrammar | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def __post_init__(self) -> None:
        _check(self.max_tokens is None or (_is_int(self.max_tokens) and self.max_tokens >= 1),
               "max_tokens", self.max_tokens, "None or an int >= 1")
        _check(isinstance(self.stop, tuple) and all(isinstance(s, str) and s for s in self.stop),
               "stop", self.stop, "non-empty strings")
        _check(self.stop_token_ids is None or all(_is_int(t) and t >= 0
                                                  for t in self.stop_token_ids),
               "stop_token_ids", self.stop_token_ids, "token ids >= 0")
        given = [name for name in _CONSTRAINTS if getattr(self, name) is not None]
        _check(len(given) <= 1, "constraints", given, "at most one of json_schema, regex, grammar")
        _check(self.grammar_trigger is None or (isinstance(self.grammar_trigger, str)
                                                and bool(given)),
               "grammar_trigger", self.grammar_trigger, "a token string, with a constraint")
        _check(_is_int(self.speculative_tokens) and 0 <= self.speculative_tokens <= 16,
               "speculative_tokens", self.speculative_tokens, "in [0, 16]")
        _check(self.thinking_budget is None or (_is_int(self.thinking_budget)
                                                and self.thinking_budget >= 0),
               "thinking_budget", self.thinking_budget, "None or an int >= 0")
        _check(self.enable_thinking is None or isinstance(self.enable_thinking, bool),
               "enable_thinking", self.enable_thinking, "None, True or False")
        _check(isinstance(self.chat_template_kwargs, Mapping), "chat_template_kwargs",
               self.chat_template_kwargs, "a mapping of names to JSON scalars")
        for name, value in self.chat_template_kwargs.items():
            _check(isinstance(name, str) and name.isidentifier() and name not in _RENDER_ARGS,
                   "chat_template_kwargs", name,
                   f"template variable names (identifiers other than {', '.join(_RENDER_ARGS)})")
            _check(value is None or isinstance(value, (str, int, float, bool)),
                   f"chat_template_kwargs[{name!r}]", value,
                   "a JSON scalar (string, number, boolean or null)")
        _check(self.tool_grammar is None or (isinstance(self.tool_grammar, ToolGrammar)
                                             and not given), "tool_grammar", self.tool_grammar,
               "a ToolGrammar, without json_schema / regex / grammar (tool_choice='none' "
               "allows those)")
        _check(isinstance(self.sampling, SamplingConfig), "sampling", self.sampling,
               "a SamplingConfig")

    def template_kwargs(self) -> dict[str, Any]:
        """The chat template's extra variables: ``chat_template_kwargs`` + ``enable_thinking``."""
        out = dict(self.chat_template_kwargs)
        if self.enable_thinking is not None:
            out["enable_thinking"] = self.enable_thinking
        return out

    def override(self, **kwargs: Any) -> GenerationConfig:
        """A copy with some options replaced (flat names, as ``resolve`` takes them)."""
        if not kwargs:
            return self
        flat = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "sampling"}
        flat.update({f.name: getattr(self.sampling, f.name)
                     for f in dataclasses.fields(SamplingConfig)})
        return GenerationConfig.resolve(flat, **kwargs)

    @classmethod
    def resolve(cls, defaults: Mapping[str, Any] | None = None, **kwargs: Any) -> GenerationConfig:
        """Build from package defaults overridden by keyword arguments (flat names).

        Sampling names (``temperature``, ``top_p``, ...) and generation names (``max_tokens``,
        ``stop``, ...) may be mixed; an unknown name is a ConfigError listing the known ones.
        """
        sampling_names = {f.name for f in dataclasses.fields(SamplingConfig)}
        gen_names = {f.name for f in dataclasses.fields(cls)} - {"sampling"}
        unknown = set(kwargs) - sampling_names - gen_names
        if unknown:
            msg = (f"unknown generation option(s) {', '.join(sorted(unknown))}; known: "
                   f"{', '.join(sorted(sampling_names | gen_names))}")
            raise ConfigError(msg)
        merged: dict[str, Any] = {}
        for key, value in (defaults or {}).items():
            if key in sampling_names | gen_names:
                merged[key] = value
        if defaults and defaults.get("do_sample") is False:
            merged["temperature"] = 0.0
        merged.update({k: v for k, v in kwargs.items() if v is not None or k == "max_tokens"})
        stop = merged.get("stop", ())
        if isinstance(stop, str):
            stop = (stop,)
        merged["stop"] = tuple(stop) if isinstance(stop, Sequence) else stop
        if merged.get("stop_token_ids") is not None:
            merged["stop_token_ids"] = tuple(merged["stop_token_ids"])
        if merged.get("logit_bias") is not None:
            merged["logit_bias"] = {int(k): v for k, v in dict(merged["logit_bias"]).items()}
        sampling = SamplingConfig(**{k: merged.pop(k) for k in list(merged) if k in sampling_names})
        return cls(sampling=sampling, **merged)

"""load() -> Model, the SDK's facade: generate / stream / apply_chat_template / session.

``Model`` is immutable after ``load`` and shareable across threads (each call gets its own
KV cache). ``Session`` keeps a cache and its token history between calls and prefills only
what a new prompt adds to the longest common prefix.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .cache import DEFAULT_SNAPSHOT_BUDGET, KVCache, match_text_prefix
from .chat import builtin_template, encode_chat, render_chat
from .config import GenerationConfig
from .constrain import AllOf, Constraint, ConstraintFactory, LazyConstraint, TokenProcessor
from .engine import Engine
from .errors import ConfigError, ContextLengthError, IncompatiblePackageError, PackageError
from .generate import GenerationChunk, stream_generate
from .package import ModelPackage, read_package
from .reasoning import THINK_END, THINK_START, ThinkingBudget, thinking_started
from .sampling import make_sampler
from .tokenizer import Tokenizer
from .tool_formats import ToolFormat, get_format
from .types import ChatDelta, ChatResponse, Timings, Usage

if TYPE_CHECKING:
    from .chat_api import ToolChoice, ToolSpec
    from .fleet.trust import TrustedKeys

__all__ = ["Completion", "Model", "Session", "Timings", "Usage", "load"]

Completion = ChatResponse  # the name ``generate`` had before chat and generate shared a type

# Raw text, chat messages, or token ids (list of ints / 1-D integer array).
Prompt = str | Sequence[Mapping[str, Any]] | Sequence[int] | np.ndarray
_SESSION_FORMAT = 1

def load(path: str | os.PathLike[str], *, threads: int | None = None,
         max_context: int | None = None, verify: bool = True,
         trusted_keys: TrustedKeys | None = None, verify_cache: bool = True,
         huge_pages: bool = True, tool_format: str | None = None) -> Model:
    """Open a model package: verify it, then open one tuned onnxruntime session.

    Args:
        path: the package folder (written by ``qwen-edge export``).
        threads: intra-op threads (default: physical cores).
        max_context: tokens of KV cache each session reserves (default min(package, 4096)).
        verify: check every file's sha256 against the manifest first (ignored when
            ``trusted_keys`` is given: the signature check covers every file).
        trusted_keys: require a ``model.sig`` made by one of these public keys (a folder of
            ``*.pub`` files, one file or a list); checked before anything is parsed.
            Needs ``pip install "qwen-edge[trust]"``.
        verify_cache: with ``trusted_keys``, skip re-hashing a folder that verified before
            and whose files' size, mtime, ctime and inode are unchanged (see
            ``qwen_edge.fleet.trust`` for the threat model); False re-hashes every time.
        huge_pages: after loading, move the weights onto transparent huge pages in the
            background (Linux >= 6.1 with THP not "never"; fewer TLB misses, faster decode,
            same memory). False leaves the pages as onnxruntime allocated them.
        tool_format: the tool-call format the model writes (``"hermes"``, ``"qwen3_xml"``;
            ``qwen_edge.tool_formats.FORMATS``), overriding the manifest's (which the exporter
            detected from the chat template; packages without one are Hermes).

    Raises:
        SignatureError: ``trusted_keys`` given and the package is unsigned or not signed by
            a trusted key.
        IntegrityError: ``trusted_keys`` given and a file differs from the signed digests.
        CorruptPackageError: a file differs from the manifest's sha256.

    Example:
        >>> model = qwen_edge.load("pkg/qwen2.5-0.5b-int4")
        >>> model.generate([{"role": "user", "content": "Hi"}], max_tokens=32).text
        >>> signed = qwen_edge.load("pkg/qwen2.5-0.5b-int4", trusted_keys="keys/")
    """
    if trusted_keys is not None:
        from .fleet.trust import verify_package

        verify_package(path, trusted_keys, cache=verify_cache)
        verify = False  # the signature covered every file, the manifest included
    package = read_package(path, verify=verify)
    return Model(package, threads=threads, max_context=max_context, huge_pages=huge_pages,
                 tool_format=tool_format)


class Model:
    """A loaded package. Create with ``qwen_edge.load``."""

    def __init__(self, package: ModelPackage, *, threads: int | None = None,
                 max_context: int | None = None, huge_pages: bool = True,
                 tool_format: str | None = None) -> None:
        self.package = package
        self.tool_format: ToolFormat = _tool_format(package, tool_format)
        self.tokenizer = Tokenizer(package.tokenizer_file)
        self.engine = Engine(package, threads=threads, huge_pages=huge_pages)
        if max_context is not None and not 1 <= max_context <= package.max_context:
            msg = f"max_context={max_context}: must be in [1, {package.max_context}] for this package"
            raise ConfigError(msg)
        self.max_context = max_context
        self.chat_template = package.chat_template or builtin_template(package.architecture)
        self.stop_token_ids = tuple(package.stop_token_ids)
        self._constraints = ConstraintFactory(self.tokenizer.to_str, self.engine.vocab_size,
                                              self.stop_token_ids)

    # -- prompts ----------------------------------------------------------------------------

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[
            Mapping[str, Any]] | None = None, add_generation_prompt: bool = True,
            **template_kwargs: Any) -> str:
        """Render messages like transformers' ``apply_chat_template(..., tokenize=False)``."""
        return render_chat(self.chat_template, messages, tools=tools,
                           add_generation_prompt=add_generation_prompt, **template_kwargs)

    def encode_prompt(self, prompt: Prompt, *,
                      template_kwargs: Mapping[str, Any] | None = None) -> np.ndarray:
        """Token ids of raw text, of chat messages rendered with the template (and its
        ``template_kwargs``, e.g. ``enable_thinking``), or ids as given."""
        if isinstance(prompt, np.ndarray) or (
            isinstance(prompt, Sequence) and prompt and all(
                isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in prompt)
        ):
            ids = np.asarray(prompt, dtype=np.int64).reshape(-1)
            if ids.size and (ids.min() < 0 or ids.max() >= self.engine.vocab_size):
                msg = f"token ids must be in [0, {self.engine.vocab_size})"
                raise ConfigError(msg)
            ids = ids.astype(np.int32)
        elif isinstance(prompt, str):
            ids = self.tokenizer.encode(prompt)
        elif isinstance(prompt, Sequence) and not isinstance(prompt, (bytes, bytearray)):
            ids = self.encode_chat(prompt, template_kwargs=template_kwargs)  # type: ignore[arg-type]
        else:
            msg = (f"prompt must be text, a list of chat messages or token ids, got "
                   f"{type(prompt).__name__}")
            raise ConfigError(msg)
        if ids.size == 0:
            msg = "the prompt is empty"
            raise ConfigError(msg)
        return ids

    def encode_chat(self, messages: Sequence[Mapping[str, Any]],
                    tools: Sequence[Mapping[str, Any]] | None = None, *,
                    allow_special_tokens_in: Collection[str] = (),
                    template_kwargs: Mapping[str, Any] | None = None) -> np.ndarray:
        """Render and tokenize a conversation; message contents and tools are data.

        Special-token strings inside messages (``<|im_end|>``, ``<tool_call>``) are tokenized
        as plain text, so a tool result cannot close its turn or open a call; only the
        template's own markers are control tokens. ``allow_special_tokens_in`` names roles
        whose text is the caller's own (e.g. ``("system",)``): there they are control tokens.
        ``template_kwargs`` are the template's extra variables (``enable_thinking``).
        """
        return encode_chat(self.tokenizer, self.chat_template, messages, tools=tools,
                           allow_special_tokens_in=allow_special_tokens_in,
                           **dict(template_kwargs or {}))

    # -- generation -------------------------------------------------------------------------

    def session(self, *, max_context: int | None = None,
                snapshot_budget_bytes: int = DEFAULT_SNAPSHOT_BUDGET) -> Session:
        """A conversation that keeps its KV cache between calls.

        ``snapshot_budget_bytes`` bounds the recurrent-state snapshots a hybrid (Qwen3.5)
        session keeps for prefix reuse (``session.cache.snapshot_nbytes`` reports them).
        """
        return Session(self, self.engine.new_cache(max_context or self.max_context,
                                                   snapshot_budget_bytes=snapshot_budget_bytes))

    def config(self, config: GenerationConfig | None = None, **overrides: Any,
               ) -> GenerationConfig:
        """Resolve options once: ``config`` (default: the package's defaults) + overrides.

        Raises:
            ConfigError: an unknown option or a value out of range.
        """
        if config is None:
            return GenerationConfig.resolve(self.package.generation, **overrides)
        if not isinstance(config, GenerationConfig):
            msg = f"config={config!r}: must be a GenerationConfig (or None)"
            raise ConfigError(msg)
        return config.override(**overrides)

    def generate(self, prompt: Prompt, config: GenerationConfig | None = None,
                 **overrides: Any) -> ChatResponse:
        """Generate a completion of text, chat messages or token ids.

        Args:
            prompt: raw text, chat messages (rendered with the chat template) or token ids.
            config: the options (default: the package's defaults); ``overrides`` replace
                single fields by their flat names (``max_tokens=64``, ``temperature=0``).
        """
        return self.session().generate(prompt, self.config(config, **overrides))

    def stream(self, prompt: Prompt, config: GenerationConfig | None = None,
               **overrides: Any) -> Iterator[str]:
        """Yield text deltas as they are produced; their concatenation is the completion."""
        yield from self.session().stream(prompt, self.config(config, **overrides))

    def chat(self, messages: Sequence[Mapping[str, Any]], *,
             tools: Sequence[ToolSpec] | None = None, tool_choice: ToolChoice | None = None,
             config: GenerationConfig | None = None, **overrides: Any) -> ChatResponse:
        """Answer a conversation, with tool calls parsed (and held to ``tools``' schemas).

        Example:
            >>> out = model.chat(messages, tools=[get_weather], tool_choice="required")
            >>> out.tool_calls[0].name, out.finish_reason
        """
        return self.session().chat(messages, tools=tools, tool_choice=tool_choice,
                                   config=self.config(config, **overrides))

    def stream_chat(self, messages: Sequence[Mapping[str, Any]], *,
                    tools: Sequence[ToolSpec] | None = None,
                    tool_choice: ToolChoice | None = None,
                    config: GenerationConfig | None = None, **overrides: Any,
                    ) -> Iterator[ChatDelta]:
        """Like ``chat``, as ``ChatDelta``\\ s; the last one has the finish reason and usage."""
        yield from self.session().stream_chat(messages, tools=tools, tool_choice=tool_choice,
                                              config=self.config(config, **overrides))

    def load_session(self, path: str | os.PathLike[str]) -> Session:
        """Restore a session saved with ``Session.save`` (same package only)."""
        try:
            data = np.load(Path(path), allow_pickle=False)
        except (OSError, ValueError) as exc:
            msg = f"{path}: not a saved session ({exc})"
            raise PackageError(msg) from exc
        with data:
            if int(data["format"]) != _SESSION_FORMAT:
                msg = f"{path}: session format {int(data['format'])} is not supported"
                raise IncompatiblePackageError(msg)
            saved_hash = str(data["package_hash"])
            if saved_hash != self.package.package_hash:
                msg = (f"{path}: saved for package {saved_hash[:16]}, this is "
                       f"{self.package.package_hash[:16]}; a session only restores on the "
                       "package that made it")
                raise IncompatiblePackageError(msg)
            tokens = data["tokens"].astype(np.int32)
            session = self.session()
            state = [data[f"kv{i}"] for i in range(session.cache.num_buffers)]
        session.cache.load_state(state)
        session.tokens = [int(t) for t in tokens]
        return session

    def _constraint(self, cfg: GenerationConfig, prompt: Sequence[int] = ()
                    ) -> TokenProcessor | None:
        grammar = self._grammar_constraint(cfg)
        if cfg.thinking_budget is None:
            return grammar
        ids = [self.tokenizer.token_to_id(THINK_START), self.tokenizer.token_to_id(THINK_END)]
        if ids[0] is None or ids[1] is None:
            msg = (f"thinking_budget={cfg.thinking_budget}: this tokenizer has no "
                   f"{THINK_START} / {THINK_END} tokens (not a thinking model)")
            raise ConfigError(msg)
        tool_call = self.tokenizer.token_to_id(self.tool_format.call_start)
        budget = ThinkingBudget(cfg.thinking_budget, think_start=ids[0], think_end=ids[1],
                                vocab_size=self.engine.vocab_size,
                                started=thinking_started(prompt, ids[0], ids[1]),
                                implicit_ends=() if tool_call is None else (tool_call,))
        return budget if grammar is None else AllOf(budget, grammar)

    def _grammar_constraint(self, cfg: GenerationConfig) -> Constraint | LazyConstraint | None:
        if cfg.tool_grammar is not None:
            lark, trigger_text = cfg.tool_grammar.grammar, cfg.tool_grammar.trigger
            grammar = self._constraints.grammar(grammar=lark)
        elif cfg.json_schema is None and cfg.regex is None and cfg.grammar is None:
            return None
        else:
            grammar = self._constraints.grammar(json_schema=cfg.json_schema, regex=cfg.regex,
                                                grammar=cfg.grammar)
            trigger_text = cfg.grammar_trigger
        constraint = self._constraints.make(grammar)
        if trigger_text is None:
            return constraint
        trigger = self.tokenizer.token_to_id(trigger_text)
        if trigger is None:
            msg = f"grammar_trigger={trigger_text!r} is not a token of this tokenizer"
            raise ConfigError(msg)
        return LazyConstraint(constraint, trigger)


def _tool_format(package: ModelPackage, override: str | None) -> ToolFormat:
    if override is not None:
        return get_format(override)  # ConfigError listing the known names
    name = package.tool_format
    try:
        return get_format(name)
    except ConfigError as exc:
        msg = (f"{package.path}: the manifest's tool_format {name!r} is unknown to this "
               f"qwen-edge ({exc}); upgrade qwen-edge or pass load(..., tool_format=...)")
        raise IncompatiblePackageError(msg) from None


class Session:
    """A KV cache plus the tokens in it; reuses the longest common prefix of each new prompt.

    Example:
        >>> chat = model.session()
        >>> chat.generate(messages)             # prefills the whole prompt
        >>> chat.generate(messages + [reply, q])  # prefills only the new turn
    """

    def __init__(self, model: Model, cache: KVCache) -> None:
        self.model = model
        self.cache = cache
        self.tokens: list[int] = []  # tokens whose keys/values are in the cache
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.tokens = []
        self.cache.reset()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Persist the cached prefix (tied to this package's hash)."""
        state = self.cache.state()
        # numpy's stub lets mypy match the unpacked **kv arrays against savez's allow_pickle
        np.savez(Path(path), format=np.int64(_SESSION_FORMAT),
                 package_hash=np.str_(self.model.package.package_hash),
                 tokens=np.asarray(self.tokens[: self.cache.offset], np.int32),
                 **{f"kv{i}": a for i, a in enumerate(state)})  # type: ignore[arg-type]

    def _prepare(self, prompt: Prompt, cfg: GenerationConfig) -> tuple[np.ndarray, int]:
        """Trim the cache to the common prefix; return (tokens to prefill, reused count)."""
        ids = self.model.encode_prompt(prompt, template_kwargs=cfg.template_kwargs())
        if ids.size > self.cache.max_context:
            msg = (f"the prompt has {ids.size} tokens; the context holds "
                   f"{self.cache.max_context} (max_context)")
            raise ContextLengthError(msg)
        cached = self.tokens[: self.cache.offset]
        common = 0
        limit = min(len(cached), ids.size - 1)  # always prefill >= 1 token to get logits
        while common < limit and cached[common] == int(ids[common]):
            common += 1
        if common < len(cached):
            # Past the last equal token the texts may still agree (the model's own tokens of
            # its last answer vs the re-rendered history's): keep the cached tokens for them.
            tokenizer = self.model.tokenizer
            k, j = match_text_prefix(cached[common:], [int(t) for t in ids[common:]],
                                     tokenizer.decode, tokenizer.added_ids)
            if k and ids.size - j + k <= self.cache.max_context:
                ids = np.concatenate([np.asarray(cached[:common + k], np.int32),
                                      ids[common + j:]])
                common = min(common + k, ids.size - 1)
        common = self.cache.rewind(common)  # hybrid: back to the longest snapshot <= common
        self.tokens = cached[:common]
        return ids[common:], common

    def stream_chunks(self, prompt: Prompt, config: GenerationConfig | None = None, *,
                      start_s: float | None = None, **overrides: Any,
                      ) -> Iterator[GenerationChunk]:
        """Like ``stream`` but yields ``GenerationChunk`` (token, logprob, entropy, finish);
        the last chunk carries usage and timings (``start_s``: when the caller's call began).
        """
        cfg = self.model.config(config, **overrides)
        start_s = time.perf_counter() if start_s is None else start_s
        if not self._lock.acquire(blocking=False):
            msg = "this session is already generating; use one session per conversation"
            raise ConfigError(msg)
        try:
            new, _ = self._prepare(prompt, cfg)
            constraint = self.model._constraint(cfg, prompt=[*self.tokens, *new])
            sample = make_sampler(cfg.sampling)
            stop_ids = cfg.stop_token_ids if cfg.stop_token_ids is not None else \
                self.model.stop_token_ids
            context = list(self.tokens)
            self.tokens += [int(t) for t in new]
            for chunk in stream_generate(
                self.model.engine, self.model.tokenizer, self.cache, new, cfg, sample=sample,
                stop_token_ids=stop_ids, context=context, constraint=constraint,
                start_s=start_s,
            ):
                if chunk.token is not None:
                    self.tokens.append(chunk.token)
                yield chunk
        finally:
            # Keep history and cache consistent: the cache holds exactly `self.tokens` (the last
            # sampled token was never fed; accepted draft tokens may not have been consumed).
            self.cache.trim(min(self.cache.offset, len(self.tokens)))
            self.tokens = self.tokens[: self.cache.offset]
            self.cache.snapshot()  # hybrid: the end of this turn is a reuse point
            self._lock.release()

    def stream(self, prompt: Prompt, config: GenerationConfig | None = None,
               **overrides: Any) -> Iterator[str]:
        """Yield text deltas; ``"".join(...)`` equals ``generate(...).text``."""
        for chunk in self.stream_chunks(prompt, self.model.config(config, **overrides)):
            if chunk.text:
                yield chunk.text

    def generate(self, prompt: Prompt, config: GenerationConfig | None = None,
                 **overrides: Any) -> ChatResponse:
        """``Model.generate`` on this session's cache (text, messages or token ids)."""
        from .chat_api import plan_chat, run_chat
        from .types import collect

        start_s = time.perf_counter()
        plan = plan_chat(self.model, prompt, config=self.model.config(config, **overrides))
        return collect(run_chat(self, plan, start_s=start_s))

    def chat(self, messages: Sequence[Mapping[str, Any]], *,
             tools: Sequence[ToolSpec] | None = None, tool_choice: ToolChoice | None = None,
             config: GenerationConfig | None = None, **overrides: Any) -> ChatResponse:
        """``Model.chat`` on this session's cache."""
        from .types import collect

        return collect(self.stream_chat(messages, tools=tools, tool_choice=tool_choice,
                                        config=self.model.config(config, **overrides)))

    def stream_chat(self, messages: Sequence[Mapping[str, Any]], *,
                    tools: Sequence[ToolSpec] | None = None,
                    tool_choice: ToolChoice | None = None,
                    config: GenerationConfig | None = None, **overrides: Any,
                    ) -> Iterator[ChatDelta]:
        """``Model.stream_chat`` on this session's cache."""
        from .chat_api import plan_chat, run_chat

        start_s = time.perf_counter()
        plan = plan_chat(self.model, messages, tools=tools, tool_choice=tool_choice,
                         config=self.model.config(config, **overrides))
        yield from run_chat(self, plan, start_s=start_s)

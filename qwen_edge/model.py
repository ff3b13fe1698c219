"""load() -> Model, the SDK's facade: generate / stream / apply_chat_template / session.

``Model`` is immutable after ``load`` and shareable across threads (each call gets its own
KV cache). ``Session`` keeps a cache and its token history between calls and prefills only
what a new prompt adds to the longest common prefix.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .cache import DEFAULT_SNAPSHOT_BUDGET, KVCache
from .chat import builtin_template, render_chat
from .config import GenerationConfig
from .constrain import Constraint, ConstraintFactory, LazyConstraint
from .engine import Engine
from .errors import ConfigError, ContextLengthError, IncompatiblePackageError, PackageError
from .generate import GenerationChunk, StreamStats, stream_generate
from .package import ModelPackage, read_package
from .sampling import make_sampler
from .tokenizer import Tokenizer

if TYPE_CHECKING:
    from .trust import TrustedKeys

__all__ = ["Completion", "Model", "Session", "Timings", "Usage", "load"]

# Raw text, chat messages, or token ids (list of ints / 1-D integer array).
Prompt = str | Sequence[Mapping[str, Any]] | Sequence[int] | np.ndarray
_SESSION_FORMAT = 1
_DATA_ROLES = ("user", "tool")  # message contents tokenized without special tokens


def tokenize_chat(tokenizer: Tokenizer, text: str,
                  messages: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Token ids of ``text`` (``messages`` rendered by a chat template), contents as data.

    The contents of user and tool messages are tokenized without special tokens, each on its
    own, and the template's text around them with; training code uses this too, so a model
    sees exactly the tokens it was trained on.
    """
    ids: list[np.ndarray] = []
    pos = 0
    for message in messages:
        content = message.get("content")
        if message.get("role") not in _DATA_ROLES or not isinstance(content, str):
            continue
        for candidate in (content, content.strip()):
            start = text.find(candidate, pos) if candidate else -1
            if start >= 0:
                ids.append(tokenizer.encode(text[pos:start]))
                ids.append(tokenizer.encode(candidate, special=False))
                pos = start + len(candidate)
                break
    ids.append(tokenizer.encode(text[pos:]))
    return np.concatenate(ids)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens reused from the session's cache

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Timings:
    ttft_s: float  # from the call to the first token: prompt rendering, setup, prefill, draw
    prefill_tokens_per_s: float  # new (uncached) prompt tokens / the prefill's own time
    decode_tokens_per_s: float  # tokens after the first / their time


@dataclass(frozen=True, slots=True)
class Completion:
    """The result of ``generate`` (OpenAI field names where OpenAI has them)."""

    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" | "length"
    usage: Usage
    timings: Timings
    logprobs: list[float] = field(repr=False, default_factory=list)
    entropies: list[float] = field(repr=False, default_factory=list)

    def to_openai(self) -> dict[str, Any]:
        """The ``choices[0]`` + ``usage`` part of an OpenAI chat completion."""
        return {
            "message": {"role": "assistant", "content": self.text},
            "finish_reason": self.finish_reason,
            "usage": {"prompt_tokens": self.usage.prompt_tokens,
                      "completion_tokens": self.usage.completion_tokens,
                      "total_tokens": self.usage.total_tokens},
        }


def load(path: str | os.PathLike[str], *, threads: int | None = None,
         max_context: int | None = None, verify: bool = True,
         trusted_keys: TrustedKeys | None = None, verify_cache: bool = True,
         huge_pages: bool = True) -> Model:
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
            ``qwen_edge.trust`` for the threat model); False re-hashes every time.
        huge_pages: after loading, move the weights onto transparent huge pages in the
            background (Linux >= 6.1 with THP not "never"; fewer TLB misses, faster decode,
            same memory). False leaves the pages as onnxruntime allocated them.

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
        from .trust import verify_package

        verify_package(path, trusted_keys, cache=verify_cache)
        verify = False  # the signature covered every file, the manifest included
    package = read_package(path, verify=verify)
    return Model(package, threads=threads, max_context=max_context, huge_pages=huge_pages)


class Model:
    """A loaded package. Create with ``qwen_edge.load``."""

    def __init__(self, package: ModelPackage, *, threads: int | None = None,
                 max_context: int | None = None, huge_pages: bool = True) -> None:
        self.package = package
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

    def encode_prompt(self, prompt: Prompt) -> np.ndarray:
        """Token ids of raw text, of chat messages rendered with the template, or ids as given."""
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
            ids = self.encode_chat(prompt)  # type: ignore[arg-type]
        else:
            msg = (f"prompt must be text, a list of chat messages or token ids, got "
                   f"{type(prompt).__name__}")
            raise ConfigError(msg)
        if ids.size == 0:
            msg = "the prompt is empty"
            raise ConfigError(msg)
        return ids

    def encode_chat(self, messages: Sequence[Mapping[str, Any]],
                    tools: Sequence[Mapping[str, Any]] | None = None) -> np.ndarray:
        """Render and tokenize a conversation; user and tool contents are data.

        Special-token strings inside a user or tool message (``<|im_end|>``, ``<tool_call>``)
        are tokenized as plain text, so a tool result cannot close its turn or open a call.
        """
        text = self.apply_chat_template(messages, tools=tools)
        return tokenize_chat(self.tokenizer, text, messages)

    # -- generation -------------------------------------------------------------------------

    def session(self, *, max_context: int | None = None,
                snapshot_budget_bytes: int = DEFAULT_SNAPSHOT_BUDGET) -> Session:
        """A conversation that keeps its KV cache between calls.

        ``snapshot_budget_bytes`` bounds the recurrent-state snapshots a hybrid (Qwen3.5)
        session keeps for prefix reuse (``session.cache.snapshot_nbytes`` reports them).
        """
        return Session(self, self.engine.new_cache(max_context or self.max_context,
                                                   snapshot_budget_bytes=snapshot_budget_bytes))

    def generate(self, prompt: Prompt, **options: Any) -> Completion:
        """Generate a completion (see ``GenerationConfig`` / ``SamplingConfig`` for options)."""
        return self.session().generate(prompt, **options)

    def stream(self, prompt: Prompt, **options: Any) -> Iterator[str]:
        """Yield text deltas as they are produced; their concatenation is the completion."""
        yield from self.session().stream(prompt, **options)

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

    def _config(self, options: Mapping[str, Any]) -> GenerationConfig:
        return GenerationConfig.resolve(self.package.generation, **options)

    def _constraint(self, cfg: GenerationConfig) -> Constraint | LazyConstraint | None:
        if cfg.json_schema is None and cfg.regex is None and cfg.grammar is None:
            return None
        grammar = self._constraints.grammar(json_schema=cfg.json_schema, regex=cfg.regex,
                                            grammar=cfg.grammar)
        constraint = self._constraints.make(grammar)
        if cfg.grammar_trigger is None:
            return constraint
        trigger = self.tokenizer.token_to_id(cfg.grammar_trigger)
        if trigger is None:
            msg = f"grammar_trigger={cfg.grammar_trigger!r} is not a token of this tokenizer"
            raise ConfigError(msg)
        return LazyConstraint(constraint, trigger)


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
        self.last_stats = StreamStats()  # token counts and timings of the latest call
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.tokens = []
        self.cache.reset()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Persist the cached prefix (tied to this package's hash)."""
        state = self.cache.state()
        np.savez(Path(path), format=np.int64(_SESSION_FORMAT),
                 package_hash=np.str_(self.model.package.package_hash),
                 tokens=np.asarray(self.tokens[: self.cache.offset], np.int32),
                 **{f"kv{i}": a for i, a in enumerate(state)})

    def _prepare(self, prompt: Prompt) -> tuple[np.ndarray, int]:
        """Trim the cache to the common prefix; return (tokens to prefill, reused count)."""
        ids = self.model.encode_prompt(prompt)
        if ids.size > self.cache.max_context:
            msg = (f"the prompt has {ids.size} tokens; the context holds "
                   f"{self.cache.max_context} (max_context)")
            raise ContextLengthError(msg)
        cached = self.tokens[: self.cache.offset]
        common = 0
        limit = min(len(cached), ids.size - 1)  # always prefill >= 1 token to get logits
        while common < limit and cached[common] == int(ids[common]):
            common += 1
        common = self.cache.rewind(common)  # hybrid: back to the longest snapshot <= common
        self.tokens = cached[:common]
        return ids[common:], common

    def stream_chunks(self, prompt: Prompt, **options: Any) -> Iterator[GenerationChunk]:
        """Like ``stream`` but yields ``GenerationChunk`` (token, logprob, entropy, finish)."""
        cfg = self.model._config(options)
        yield from self._run(prompt, cfg, StreamStats())

    def _run(self, prompt: Prompt, cfg: GenerationConfig, stats: StreamStats,
             ) -> Iterator[GenerationChunk]:
        if not self._lock.acquire(blocking=False):
            msg = "this session is already generating; use one session per conversation"
            raise ConfigError(msg)
        self.last_stats = stats
        try:
            new, reused = self._prepare(prompt)
            stats.reused_tokens = reused
            constraint = self.model._constraint(cfg)
            sample = make_sampler(cfg.sampling)
            stop_ids = cfg.stop_token_ids if cfg.stop_token_ids is not None else \
                self.model.stop_token_ids
            self.tokens += [int(t) for t in new]
            yield from stream_generate(
                self.model.engine, self.model.tokenizer, self.cache, new, cfg, sample=sample,
                stop_token_ids=stop_ids, context=self.tokens[: len(self.tokens) - len(new)],
                constraint=constraint, stats=stats, on_token=self.tokens.append,
            )
        finally:
            # Keep history and cache consistent: the cache holds exactly `self.tokens` (the last
            # sampled token was never fed; accepted draft tokens may not have been consumed).
            self.cache.trim(min(self.cache.offset, len(self.tokens)))
            self.tokens = self.tokens[: self.cache.offset]
            self.cache.snapshot()  # hybrid: the end of this turn is a reuse point
            self._lock.release()

    def stream(self, prompt: Prompt, **options: Any) -> Iterator[str]:
        """Yield text deltas; ``"".join(...)`` equals ``generate(...).text``."""
        for chunk in self.stream_chunks(prompt, **options):
            if chunk.text:
                yield chunk.text

    def generate(self, prompt: Prompt, **options: Any) -> Completion:
        cfg = self.model._config(options)
        stats = StreamStats()
        start = time.perf_counter()
        text: list[str] = []
        tokens: list[int] = []
        logprobs: list[float] = []
        entropies: list[float] = []
        finish = "length"
        ttft = 0.0
        for chunk in self._run(prompt, cfg, stats):
            text.append(chunk.text)
            if chunk.token is not None:
                if not tokens:  # as the caller sees it: rendering, setup and prefill included
                    ttft = time.perf_counter() - start
                tokens.append(chunk.token)
                logprobs.append(chunk.logprob or 0.0)
                entropies.append(chunk.entropy or 0.0)
            if chunk.finish_reason is not None:
                finish = chunk.finish_reason
        new_prompt = stats.prompt_tokens - stats.reused_tokens
        decode_n = max(len(tokens) - 1, 0)
        decode_s = max(stats.decode_s, 1e-9)  # first token to last, inside the token loop
        stop_ids = set(cfg.stop_token_ids if cfg.stop_token_ids is not None
                       else self.model.stop_token_ids)
        if tokens and tokens[-1] in stop_ids:
            tokens = tokens[:-1]
        return Completion(
            text="".join(text), token_ids=tokens, finish_reason=finish,
            usage=Usage(prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens,
                        cached_tokens=stats.reused_tokens),
            timings=Timings(ttft_s=ttft, prefill_tokens_per_s=(
                new_prompt / stats.prefill_s if stats.prefill_s else 0.0),
                            decode_tokens_per_s=decode_n / decode_s if decode_n else 0.0),
            logprobs=logprobs, entropies=entropies,
        )

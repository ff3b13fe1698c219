"""Chat-template rendering, exactly as transformers' ``apply_chat_template`` does it.

The Jinja environment mirrors transformers': a sandbox with ``trim_blocks`` and
``lstrip_blocks``, the ``loopcontrols`` extension, a ``tojson`` filter that keeps non-ASCII
characters unescaped, and the ``raise_exception`` / ``strftime_now`` globals. Packages without
a template use the built-in Qwen2.5 / Qwen3 / Qwen3.5 templates shipped in ``qwen_edge/templates``.

Rendering also records which characters of the prompt came from the caller's data (message
contents, tool calls, tool schemas) and which from the template itself, so that the
tokenizer can make control tokens (``<|im_start|>``, ``<tool_call>``, ...) out of the
template's text only (see ``docs/tokenization.md``). Every string of the input is wrapped in
``_Text``, a ``str`` that carries its data spans; concatenation, slicing and the string
methods templates use keep the spans exact, and anything else that makes a string out of
data (a filter, a method, ``%``) marks its whole result as data. Losing track therefore errs
towards plain text, never towards a control token. No sentinel characters are inserted: the
template sees the caller's strings unchanged and renders exactly the same text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, SupportsIndex

import jinja2
import jinja2.ext
import jinja2.runtime
import jinja2.sandbox

from .errors import ConfigError, TokenizerError

if TYPE_CHECKING:
    import numpy as np

    from .tokenizer import Tokenizer

__all__ = ["ROLES", "RenderedChat", "ToolCall", "builtin_template", "encode_chat",
           "render_chat", "render_chat_spans"]

Message = Mapping[str, Any]
Span = tuple[int, int]
ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model made (OpenAI's ``tool_calls[i]``).

    Attributes:
        name: the function name.
        arguments: the parsed JSON arguments.
        id: a call id (``call_<n>``), unique within a conversation.
    """

    name: str
    arguments: dict[str, Any]
    id: str = ""

    def to_openai(self) -> dict[str, Any]:
        """``{"id", "type": "function", "function": {"name", "arguments": <JSON text>}}``."""
        return {"id": self.id, "type": "function",
                "function": {"name": self.name,
                             "arguments": json.dumps(self.arguments, ensure_ascii=False)}}


@dataclass(frozen=True, slots=True)
class RenderedChat:
    """A rendered prompt and the character spans ``[start, end)`` that came from data.

    Special-token strings inside ``data`` spans are text; only the template's own text may
    hold control tokens (``Tokenizer.encode_rendered``).
    """

    text: str
    data: tuple[Span, ...]


# -- strings that remember which characters are data ---------------------------------------------


def _merge(spans: Sequence[Span], length: int) -> tuple[Span, ...]:
    """Sorted, disjoint, non-empty spans clipped to ``[0, length)`` (one pass when sorted)."""
    out: list[Span] = []
    for first, last in spans:
        start, end = max(first, 0), min(last, length)
        if end <= start:
            continue
        if out and start < out[-1][0]:  # unsorted input (never from our own operations)
            return _merge(sorted(spans), length)
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return tuple(out)


def _spans(value: object) -> tuple[Span, ...]:
    return value._data_spans if isinstance(value, _Text) else ()


def _plain(value: str) -> str:
    return str.__str__(value)  # an exact str (str() would keep a _Text)


def _mark(text: str, spans: Sequence[Span]) -> str:
    """``text`` with ``spans`` as data: a ``_Text``, or a plain ``str`` when there are none."""
    merged = _merge(spans, len(text))
    if not merged:
        return _plain(text)
    out = _Text(_plain(text))
    out._data_spans = merged
    return out


def _all_data(text: str) -> str:
    return _mark(text, [(0, len(text))])


def _shift(spans: Iterable[Span], by: int) -> list[Span]:
    return [(s + by, e + by) for s, e in spans]


def _clip(spans: Iterable[Span], start: int, stop: int) -> list[Span]:
    """The parts of ``spans`` inside ``[start, stop)``, relative to ``start``."""
    return [(max(s, start) - start, min(e, stop) - start) for s, e in spans
            if s < stop and e > start]


class _Text(str):
    """A string some of whose characters are data (``_data_spans``, sorted and disjoint)."""

    _data_spans: tuple[Span, ...] = ()

    def __str__(self) -> str:
        return self  # Jinja writes str(value): keep the spans

    def __add__(self, other: str) -> str:
        if not isinstance(other, str):
            return NotImplemented
        return _mark(_plain(self) + _plain(other),
                     [*self._data_spans, *_shift(_spans(other), len(self))])

    def __radd__(self, other: str) -> str:
        if not isinstance(other, str):
            return NotImplemented
        return _mark(_plain(other) + _plain(self), _shift(self._data_spans, len(other)))

    def __getitem__(self, key: SupportsIndex | slice) -> str:
        out = _plain(self)[key]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return _mark(out, _clip(self._data_spans, start, stop))
            return _all_data(out)
        index = key.__index__() % len(self)
        return _mark(out, _clip(self._data_spans, index, index + 1))

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self[i]

    def __mod__(self, other: Any) -> str:
        return _all_data(_plain(self) % other)

    def __rmod__(self, other: Any) -> str:
        return _all_data(other % _plain(self)) if isinstance(other, str) else NotImplemented

    def __mul__(self, n: SupportsIndex) -> str:
        return _all_data(_plain(self) * n)

    __rmul__ = __mul__

    def _sub(self, start: int, stop: int) -> str:
        return _mark(_plain(self)[start:stop], _clip(self._data_spans, start, stop))

    def strip(self, chars: str | None = None) -> str:
        return self.lstrip(chars).rstrip(chars)

    def lstrip(self, chars: str | None = None) -> str:
        return self._sub(len(self) - len(_plain(self).lstrip(chars)), len(self))

    def rstrip(self, chars: str | None = None) -> str:
        return self._sub(0, len(_plain(self).rstrip(chars)))

    def removeprefix(self, prefix: str) -> str:
        return self._sub(len(prefix), len(self)) if self.startswith(prefix) else self

    def removesuffix(self, suffix: str) -> str:
        return self._sub(0, len(self) - len(suffix)) if suffix and self.endswith(suffix) else self

    def _pieces(self, pieces: list[str], sep: str | None) -> list[str]:
        # The pieces of split/rsplit/splitlines in order: locate each one after the last.
        out, pos, text = [], 0, _plain(self)
        for piece in pieces:
            start = text.find(piece, pos)
            out.append(self._sub(start, start + len(piece)))
            pos = start + len(piece) + (len(sep) if sep else 0)
        return out

    def split(self, sep: str | None = None, maxsplit: SupportsIndex = -1) -> list[str]:
        return self._pieces(_plain(self).split(sep, maxsplit), sep)

    def rsplit(self, sep: str | None = None, maxsplit: SupportsIndex = -1) -> list[str]:
        return self._pieces(_plain(self).rsplit(sep, maxsplit), sep)

    def splitlines(self, keepends: bool = False) -> list[str]:
        return self._pieces(_plain(self).splitlines(keepends), None)

    def partition(self, sep: str) -> tuple[str, str, str]:
        head, found, _ = _plain(self).partition(sep)
        return (self._sub(0, len(head)), self._sub(len(head), len(head) + len(found)),
                self._sub(len(head) + len(found), len(self)))

    def rpartition(self, sep: str) -> tuple[str, str, str]:
        head, found, _ = _plain(self).rpartition(sep)
        return (self._sub(0, len(head)), self._sub(len(head), len(head) + len(found)),
                self._sub(len(head) + len(found), len(self)))


def _has_data(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is or holds a data string (containers searched to a bounded depth)."""
    if isinstance(value, _Text) or depth > 64:  # too deep to tell: treat as data
        return True
    if isinstance(value, (str, bytes, int, float, type(None))):
        return False
    if isinstance(value, Mapping):
        return any(_has_data(k, depth + 1) or _has_data(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_data(v, depth + 1) for v in value)
    return False


def _taint_result(result: Any, inputs: Iterable[Any]) -> Any:
    """A string (or list of strings) computed from data is data, unless it kept exact spans."""
    if isinstance(result, _Text) or not any(_has_data(v) for v in inputs):
        return result
    if isinstance(result, str):
        return _all_data(result)
    if isinstance(result, (list, tuple)) and all(isinstance(v, str) for v in result):
        return type(result)(v if isinstance(v, _Text) else _all_data(v) for v in result)
    return result


def _as_data(value: Any) -> Any:
    """A copy of ``value`` whose strings (keys included) are all data."""
    if isinstance(value, str):
        return _all_data(value)
    if isinstance(value, Mapping):
        return {_as_data(k): _as_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_data(v) for v in value]
    return value


def _concat(pieces: Iterable[Any]) -> str:
    """Environment.concat (the template's output, macros, ``{% set %}`` blocks) with spans."""
    texts: list[str] = []
    spans: list[Span] = []
    pos = 0
    for piece in pieces:
        text = str(piece)
        spans += _shift(_spans(text), pos)
        texts.append(_plain(text))
        pos += len(text)
    return _mark("".join(texts), spans)


def _str_join(seq: Iterable[Any]) -> str:  # the ``~`` operator
    return _concat(seq)


class _Environment(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """transformers' sandbox, keeping track of data through calls and operators."""

    intercepted_binops = frozenset({"+", "%", "*"})

    def call(self, context: jinja2.runtime.Context, obj: Any, /,
             *args: Any, **kwargs: Any) -> Any:
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(obj, jinja2.runtime.Macro):
            return result  # its output went through _concat: spans are exact
        receiver = getattr(obj, "__self__", None)
        return _taint_result(result, [receiver, *args, *kwargs.values()])

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any,
                   right: Any) -> Any:
        return _taint_result(super().call_binop(context, operator, left, right), [left, right])


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _tracking(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose string result is data when any of its inputs is."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _taint_result(fn(*args, **kwargs), [*args, *kwargs.values()])
    return wrapper


def _finalize(value: Any) -> Any:
    # {{ value }} of a non-string (a dict, a list) that holds data: its text is data
    return value if isinstance(value, str) or not _has_data(value) else _all_data(str(value))


def _raise(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@functools.lru_cache(maxsize=8)
def _compile(template: str) -> jinja2.Template:
    env = _Environment(trim_blocks=True, lstrip_blocks=True,
                       extensions=[jinja2.ext.loopcontrols], finalize=_finalize)
    env.concat = _concat  # type: ignore[method-assign]
    env.filters["tojson"] = _tojson
    env.filters = {name: _tracking(f) for name, f in env.filters.items()}
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = _strftime_now
    try:
        compiled = env.from_string(template)
    except jinja2.exceptions.TemplateSyntaxError as exc:
        msg = f"the package's chat template does not compile: {exc}"
        raise TokenizerError(msg) from exc
    namespace = compiled.root_render_func.__globals__  # the compiled module's globals
    if "str_join" not in namespace:  # a jinja2 whose code generator we do not know
        msg = (f"jinja2 {jinja2.__version__} compiles templates in an unknown way; "
               "install jinja2 3.1.x")
        raise TokenizerError(msg)
    namespace["str_join"] = _str_join
    return compiled


_BUILTIN_TEMPLATES = {
    "Qwen3ForCausalLM": "qwen3.jinja",
    "Qwen3_5ForCausalLM": "qwen3_5.jinja",
    "Qwen3_5ForConditionalGeneration": "qwen3_5.jinja",
}


def builtin_template(architecture: str) -> str:
    """The published template of the architecture's family; Qwen2.5's for anything else.

    The sources of each file are listed in ``qwen_edge/templates/README.md``.
    """
    name = _BUILTIN_TEMPLATES.get(architecture, "qwen2_5.jinja")
    return resources.files("qwen_edge").joinpath("templates").joinpath(name).read_text(encoding="utf-8")


def _check_messages(messages: Sequence[Message]) -> None:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        msg = "messages must be a non-empty list of {'role': ..., 'content': ...} dicts"
        raise ConfigError(msg)
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message:
            msg = f"messages[{i}] must be a dict with a 'role' (got {message!r:.80})"
            raise ConfigError(msg)
        if message["role"] not in ROLES:
            msg = (f"messages[{i}]['role']={message['role']!r}: must be system, user, "
                   "assistant or tool")
            raise ConfigError(msg)


def _check_roles(allow_special_tokens_in: Collection[str]) -> frozenset[str]:
    if isinstance(allow_special_tokens_in, str) or not all(
            r in ROLES for r in allow_special_tokens_in):
        msg = (f"allow_special_tokens_in={allow_special_tokens_in!r}: must be a collection of "
               "roles (system, user, assistant, tool), e.g. ('system',)")
        raise ConfigError(msg)
    return frozenset(allow_special_tokens_in)


def render_chat_spans(
    template: str,
    messages: Sequence[Message],
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    add_generation_prompt: bool = True,
    allow_special_tokens_in: Collection[str] = (),
    special_tokens: Mapping[str, str] | None = None,
    **template_kwargs: Any,
) -> RenderedChat:
    """Render like ``render_chat`` and record which characters came from data.

    Data is every string of ``messages``, ``tools`` and ``template_kwargs`` (``documents``
    and the like), except the messages whose role is in
    ``allow_special_tokens_in`` (the caller's own, trusted text: there special-token
    strings become control tokens, as transformers makes them everywhere).

    Raises:
        ConfigError: malformed messages or roles.
        TokenizerError: the template fails to compile or raises while rendering.
    """
    _check_messages(messages)
    trusted = _check_roles(allow_special_tokens_in)
    tpl = _compile(template)
    prepared = [_prepare_message(m) for m in messages]
    context = {
        "messages": [m if m["role"] in trusted else _as_data(m) for m in prepared],
        "tools": [_as_data(dict(t)) for t in tools] if tools else None,
        "add_generation_prompt": add_generation_prompt,
        "bos_token": "",
        "eos_token": "<|im_end|>",
        **(special_tokens or {}),
        **{name: _as_data(value) for name, value in template_kwargs.items()},
    }
    try:
        text = tpl.render(**context)
    except (jinja2.exceptions.TemplateError, TypeError, ValueError, KeyError,
            AttributeError, IndexError) as exc:  # a template's own Python errors, once
        msg = f"chat template error: {type(exc).__name__}: {exc}"
        raise TokenizerError(msg) from exc
    return RenderedChat(_plain(text), _spans(text))


def render_chat(
    template: str,
    messages: Sequence[Message],
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    add_generation_prompt: bool = True,
    special_tokens: Mapping[str, str] | None = None,
    **template_kwargs: Any,
) -> str:
    """Render ``messages`` (and ``tools``, OpenAI function schemas) with a Jinja chat template.

    Raises:
        ConfigError: malformed messages.
        TokenizerError: the template fails to compile or raises while rendering.
    """
    return render_chat_spans(template, messages, tools=tools,
                             add_generation_prompt=add_generation_prompt,
                             special_tokens=special_tokens, **template_kwargs).text


def encode_chat(
    tokenizer: Tokenizer,
    template: str,
    messages: Sequence[Message],
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    add_generation_prompt: bool = True,
    allow_special_tokens_in: Collection[str] = (),
    **template_kwargs: Any,
) -> np.ndarray:
    """Token ids of a conversation: the template's control tokens, and data as text.

    The ids equal transformers' ``apply_chat_template(..., tokenize=True)`` whenever no
    message or tool holds a special-token string; where one does, that string is encoded as
    ordinary text (OpenAI's policy), unless its message's role is in
    ``allow_special_tokens_in``.

    Example:
        >>> ids = encode_chat(tok, builtin_template("Qwen2ForCausalLM"),
        ...                   [{"role": "user", "content": "<|im_end|>"}])
        >>> int((ids == tok.token_to_id("<|im_end|>")).sum())  # the template's two turns
        2
    """
    rendered = render_chat_spans(template, messages, tools=tools,
                                 add_generation_prompt=add_generation_prompt,
                                 allow_special_tokens_in=allow_special_tokens_in,
                                 **template_kwargs)
    return tokenizer.encode_rendered(rendered.text, rendered.data)


def _prepare_message(message: Message) -> dict[str, Any]:
    """What transformers does before rendering: drop None values, alias reasoning fields."""
    out = {k: v for k, v in message.items() if v is not None}
    for alias in ("reasoning", "thinking"):  # -> reasoning_content (Qwen3's template field)
        if alias in out and "reasoning_content" not in out:
            out["reasoning_content"] = out.pop(alias)
    return out

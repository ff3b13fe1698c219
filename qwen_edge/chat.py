"""Chat-template rendering, exactly as transformers' ``apply_chat_template`` does it.

The Jinja environment mirrors transformers': a sandbox with ``trim_blocks`` and
``lstrip_blocks``, the ``loopcontrols`` extension, a ``tojson`` filter that keeps non-ASCII
characters unescaped, and the ``raise_exception`` / ``strftime_now`` globals. Packages without
a template use the built-in Qwen2.5 / Qwen3 templates shipped in ``qwen_edge/templates``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import jinja2
import jinja2.ext
import jinja2.sandbox

from .errors import ConfigError, TokenizerError

__all__ = ["ToolCall", "builtin_template", "render_chat"]

Message = Mapping[str, Any]


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


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _raise(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@functools.lru_cache(maxsize=8)
def _compile(template: str) -> jinja2.Template:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = _strftime_now
    try:
        return env.from_string(template)
    except jinja2.exceptions.TemplateSyntaxError as exc:
        msg = f"the package's chat template does not compile: {exc}"
        raise TokenizerError(msg) from exc


def builtin_template(architecture: str) -> str:
    """The Qwen3 template for Qwen3 models, the Qwen2.5 template otherwise."""
    qwen3 = architecture.startswith(("Qwen3ForCausalLM", "Qwen3_5"))  # Qwen3.5 synth: Qwen3's
    name = "qwen3.jinja" if qwen3 else "qwen2_5.jinja"
    return resources.files("qwen_edge").joinpath("templates", name).read_text(encoding="utf-8")


def _check_messages(messages: Sequence[Message]) -> None:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        msg = "messages must be a non-empty list of {'role': ..., 'content': ...} dicts"
        raise ConfigError(msg)
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message:
            msg = f"messages[{i}] must be a dict with a 'role' (got {message!r:.80})"
            raise ConfigError(msg)
        if message["role"] not in ("system", "user", "assistant", "tool"):
            msg = (f"messages[{i}]['role']={message['role']!r}: must be system, user, "
                   "assistant or tool")
            raise ConfigError(msg)


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
    _check_messages(messages)
    tpl = _compile(template)
    context = {
        "messages": [_prepare_message(m) for m in messages],
        "tools": [dict(t) for t in tools] if tools else None,
        "add_generation_prompt": add_generation_prompt,
        "bos_token": "",
        "eos_token": "<|im_end|>",
        **(special_tokens or {}),
        **template_kwargs,
    }
    try:
        return str(tpl.render(**context))
    except (jinja2.exceptions.TemplateError, TypeError, ValueError, KeyError,
            AttributeError, IndexError) as exc:  # a template's own Python errors, once
        msg = f"chat template error: {type(exc).__name__}: {exc}"
        raise TokenizerError(msg) from exc


def _prepare_message(message: Message) -> dict[str, Any]:
    """What transformers does before rendering: drop None values, alias reasoning fields."""
    out = {k: v for k, v in message.items() if v is not None}
    for alias in ("reasoning", "thinking"):  # -> reasoning_content (Qwen3's template field)
        if alias in out and "reasoning_content" not in out:
            out["reasoning_content"] = out.pop(alias)
    return out

"""Request translation: an OpenAI chat request -> the chat path's plan.

Every 400 a request can earn is raised here, before the request takes a place in the worker's
queue: bad messages, options the server does not support, a ``max_tokens`` over the server's
limit or the room left in the context. The plan itself (prompt ids, the frozen config with the
tool grammar) is ``chat_api.plan_chat``'s, the same for every surface.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from ..chat_api import ChatPlan, plan_chat
from ..model import Model
from . import schemas
from .worker import _APIError

__all__ = ["_plan"]

_SAMPLING = ("temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty",
             "repetition_penalty", "seed")


def _message(i: int, message: schemas.ChatMessage) -> dict[str, Any]:
    """An OpenAI message as the chat template expects it (arguments as objects)."""
    content = message.content
    if isinstance(content, list):
        texts = []
        for part in content:
            if part.type != "text" or part.text is None:
                msg = f"messages[{i}].content: only text parts are supported (got {part.type!r})"
                raise _APIError(400, msg, param=f"messages[{i}].content")
            texts.append(part.text)
        content = "\n".join(texts)
    out: dict[str, Any] = {"role": "system" if message.role == "developer" else message.role,
                           "content": content or ""}
    if message.name is not None:
        out["name"] = message.name
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.reasoning_content is not None and message.role == "assistant":
        out["reasoning_content"] = message.reasoning_content
    if message.tool_calls:
        calls = []
        for call in message.tool_calls:
            try:
                arguments = json.loads(call.function.arguments or "{}")
            except (ValueError, RecursionError):  # bad JSON, huge ints, deep nesting
                arguments = None
            if not isinstance(arguments, dict):
                msg = (f"messages[{i}].tool_calls: the arguments of {call.function.name!r} are "
                       "not a JSON object")
                raise _APIError(400, msg, param=f"messages[{i}].tool_calls")
            if schemas.json_depth(arguments, schemas.MAX_JSON_DEPTH) > schemas.MAX_JSON_DEPTH:
                msg = (f"messages[{i}].tool_calls: the arguments of {call.function.name!r} nest "
                       f"more than {schemas.MAX_JSON_DEPTH} objects or arrays")
                raise _APIError(400, msg, param=f"messages[{i}].tool_calls")
            calls.append({"id": call.id, "type": "function",
                          "function": {"name": call.function.name, "arguments": arguments}})
        out["tool_calls"] = calls
    return out


def _plan(body: schemas.ChatCompletionRequest, model: Model, *, context_tokens: int,
          max_tokens_limit: int) -> ChatPlan:
    """Translate a request into the chat path's plan (every 400 is raised here)."""
    if body.n not in (None, 1):
        msg = f"n={body.n}: this server returns one choice per request; send n=1 or leave it out"
        raise _APIError(400, msg, param="n")
    if body.logprobs:
        raise _APIError(400, "logprobs are not supported by this server", param="logprobs")
    messages = [_message(i, m) for i, m in enumerate(body.messages)]
    # x-grounded goes to the tool (grounded decoding); the chat template never shows it
    tools = [t.model_dump(exclude_none=True, by_alias=True) for t in body.tools or []]
    choice: Any = body.tool_choice
    if isinstance(choice, schemas.NamedToolChoice):
        choice = choice.model_dump()
    options: dict[str, Any] = {name: getattr(body, name) for name in _SAMPLING
                               if getattr(body, name) is not None}
    if body.stop is not None:
        options["stop"] = [body.stop] if isinstance(body.stop, str) else list(body.stop)
    if body.ignore_eos or body.stop_token_ids:
        eos = [] if body.ignore_eos else list(model.stop_token_ids)
        options["stop_token_ids"] = eos + list(body.stop_token_ids or [])
    if body.thinking_budget is not None:
        options["thinking_budget"] = body.thinking_budget
    if body.chat_template_kwargs:
        options["chat_template_kwargs"] = dict(body.chat_template_kwargs)
    bias = _logit_bias(body.logit_bias, model.engine.vocab_size)
    if bias:
        options["logit_bias"] = bias

    fmt = body.response_format
    if fmt is not None and fmt.type != "text":
        if tools and (choice or "auto") != "none":
            msg = "response_format cannot be combined with tools unless tool_choice is 'none'"
            raise _APIError(400, msg, param="response_format")
        if fmt.type == "json_object":
            options["json_schema"] = {"type": "object"}
        elif fmt.json_schema is None:
            msg = "response_format of type json_schema needs json_schema: {name, schema}"
            raise _APIError(400, msg, param="response_format")
        else:
            options["json_schema"] = fmt.json_schema.schema_

    max_tokens = (body.max_completion_tokens if body.max_completion_tokens is not None
                  else body.max_tokens)
    if max_tokens is not None and max_tokens > max_tokens_limit:
        msg = (f"max_tokens={max_tokens} is too large: this server generates at most "
               f"{max_tokens_limit} tokens per request")
        raise _APIError(400, msg, param="max_tokens", code="invalid_value")
    config = model.config(**options)  # a bad option is a 400 now, not an error in the worker
    plan = plan_chat(model, messages, tools=tools or None, tool_choice=choice, config=config,
                     parallel_tool_calls=body.parallel_tool_calls is not False)
    room = context_tokens - len(plan.prompt)
    if room < 1 or (max_tokens is not None and max_tokens > room):
        wanted = max_tokens if max_tokens is not None else 1
        msg = (f"This model's maximum context length is {context_tokens} tokens. However, you "
               f"requested {len(plan.prompt) + wanted} tokens ({len(plan.prompt)} in the "
               f"messages, {wanted} in the completion). Please reduce the length of the "
               "messages or completion.")
        raise _APIError(400, msg, param="messages", code="context_length_exceeded")
    limit = max_tokens if max_tokens is not None else min(room, max_tokens_limit)
    return dataclasses.replace(plan, config=plan.config.override(max_tokens=limit))


def _logit_bias(bias: Mapping[str, float] | None, vocab_size: int) -> dict[int, float]:
    out: dict[int, float] = {}
    for key, value in (bias or {}).items():
        # isascii: superscript and Arabic-Indic digits pass str.isdigit; int() refuses "²"
        if not (key.isascii() and key.isdigit()) or int(key) >= vocab_size:
            msg = f"logit_bias: {key!r} is not a token id (0 to {vocab_size - 1})"
            raise _APIError(400, msg, param="logit_bias")
        out[int(key)] = value
    return out

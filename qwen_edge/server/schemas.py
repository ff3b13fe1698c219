"""OpenAI chat-completions request and response models (the subset this server implements).

Field names and shapes are OpenAI's, so the official clients work unchanged. A few vLLM
extensions are accepted at the top level of the request (``extra_body`` in the openai client):
``top_k``, ``min_p``, ``repetition_penalty``, ``stop_token_ids``, ``ignore_eos`` and
``chat_template_kwargs``; and qwen-edge's ``thinking_budget``. Unknown
fields are ignored, as vLLM does. The models also document the API: FastAPI turns them into
the OpenAPI document at ``/openapi.json``.

Every request is bounded before any code walks it, so a hostile body is a 400 naming the
field, never a RecursionError or an overflow deep inside: JSON schemas (tool parameters,
``response_format``) nest at most ``MAX_SCHEMA_DEPTH`` containers and serialize to at most
``MAX_SCHEMA_BYTES``; a request offers at most ``MAX_TOOLS`` tools; every integer is a
64-bit one (``seed`` an unsigned one, what the sampler takes); numbers are finite (Python's
JSON reader accepts ``NaN`` and ``Infinity``, which OpenAI's API does not).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "MAX_TOOLS",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessage",
    "Choice",
    "ChunkChoice",
    "ContentPart",
    "Delta",
    "ErrorBody",
    "ErrorResponse",
    "FunctionCall",
    "FunctionDefinition",
    "Health",
    "JSONSchemaFormat",
    "ModelCard",
    "ModelList",
    "NamedFunction",
    "NamedToolChoice",
    "PromptTokensDetails",
    "ResponseFormat",
    "ResponseMessage",
    "StreamOptions",
    "ToolCall",
    "ToolCallDelta",
    "ToolDefinition",
    "Usage",
    "json_depth",
]


# -- limits -------------------------------------------------------------------------------------

MAX_SCHEMA_DEPTH = 32
"""Most nested objects and arrays in one JSON schema (``{"properties": {"a": {}}}`` is 2)."""
MAX_SCHEMA_BYTES = 64 * 1024
"""Largest JSON schema, serialized, in bytes."""
MAX_JSON_DEPTH = 32
"""Most nested objects and arrays in a message's tool-call arguments."""
MAX_TOOLS = 128
"""Most tools one request may offer (OpenAI's limit)."""

_INT64 = 2**63


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value (a scalar is 0), counted without recursion and stopping
    once ``limit`` is passed (so a hostile value costs at most its size)."""
    depth, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = (item.values() if isinstance(item, dict)
                    else item if isinstance(item, list) else None)
        if children is None:
            continue
        depth = max(depth, level)
        if depth > limit:
            return depth
        stack.extend((child, level + 1) for child in children)
    return depth


def _bounded_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    depth = json_depth(schema, MAX_SCHEMA_DEPTH)
    if depth > MAX_SCHEMA_DEPTH:
        msg = (f"the schema nests more than {MAX_SCHEMA_DEPTH} objects or arrays; "
               "flatten it")
        raise ValueError(msg)
    nbytes = len(json.dumps(schema, ensure_ascii=False).encode())
    if nbytes > MAX_SCHEMA_BYTES:
        msg = (f"the schema is {nbytes} bytes, more than the {MAX_SCHEMA_BYTES} this server "
               "accepts; shorten it")
        raise ValueError(msg)
    return schema


_Int64 = Annotated[int, Field(ge=-_INT64, lt=_INT64)]
_Schema = Annotated[dict[str, Any], AfterValidator(_bounded_schema)]


class _Request(BaseModel):
    # NaN and Infinity parse as JSON in Python, but are no sampling option's value
    model_config = ConfigDict(allow_inf_nan=False)


# -- request ------------------------------------------------------------------------------------


class ContentPart(_Request):
    """One part of a message's content; only ``{"type": "text", "text": ...}`` is supported."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    type: str
    text: str | None = None


class FunctionCall(_Request):
    name: str
    arguments: str = Field(description="the arguments as a JSON object, serialized")


class ToolCall(_Request):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Request):
    """A message of the conversation (``developer`` is treated as ``system``)."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = Field(
        default=None, description="an assistant turn's thinking (vLLM / DeepSeek); the chat "
                                  "template decides whether to show it")


class FunctionDefinition(_Request):
    model_config = ConfigDict(populate_by_name=True, allow_inf_nan=False)

    name: str
    description: str | None = None
    parameters: _Schema | None = None
    strict: bool | None = None
    x_grounded: list[str] | None = Field(
        default=None, alias="x-grounded",
        description="qwen-edge extension: string parameters whose values must be quoted from "
                    "the user's messages (grounded decoding)")


class ToolDefinition(_Request):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedFunction(_Request):
    name: str


class NamedToolChoice(_Request):
    type: Literal["function"] = "function"
    function: NamedFunction


class JSONSchemaFormat(_Request):
    model_config = ConfigDict(populate_by_name=True, allow_inf_nan=False)
    name: str
    description: str | None = None
    schema_: _Schema = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Request):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class StreamOptions(_Request):
    include_usage: bool = False


class ChatCompletionRequest(_Request):
    """``POST /v1/chat/completions``. Sampling options left out use the package's defaults."""

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[ToolDefinition] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: _Int64 | None = None
    max_completion_tokens: _Int64 | None = None
    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stop: str | list[str] | None = None
    seed: Annotated[int, Field(ge=0, lt=2**64)] | None = None
    logit_bias: dict[str, float] | None = None
    n: _Int64 | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    user: str | None = None
    # vLLM extensions
    top_k: _Int64 | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    thinking_budget: Annotated[int, Field(ge=0, lt=2**31)] | None = Field(
        default=None, description="qwen-edge extension: most tokens a thinking model writes "
                                  "inside <think> before </think> is forced")
    chat_template_kwargs: dict[str, str | int | float | bool | None] | None = Field(
        default=None, description="variables for the chat template, e.g. "
                                  "{\"enable_thinking\": false} (vLLM's field)")
    stop_token_ids: list[Annotated[int, Field(ge=0, lt=2**31)]] | None = Field(
        default=None, description="token ids that also end generation (besides the EOS tokens)")
    ignore_eos: bool = Field(default=False,
                             description="do not stop at the package's EOS tokens")


# -- responses ----------------------------------------------------------------------------------


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    reasoning_content: str | None = Field(
        default=None, description="a thinking model's thought, without the <think> markers "
                                  "(left out when the answer opened none)")
    tool_calls: list[ToolCall] | None = None


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    logprobs: None = None
    finish_reason: Literal["stop", "length", "tool_calls"]


class PromptTokensDetails(BaseModel):
    cached_tokens: int = Field(description="prompt tokens reused from the server's KV cache")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[Choice]
    usage: Usage


class ToolCallDelta(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCall | None = None


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: Literal["stop", "length", "tool_calls"] | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed completion (``data: {...}``; the last is
    ``data: [DONE]``). With ``stream_options.include_usage`` a chunk with no choices and the
    usage comes before ``[DONE]``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "qwen-edge"
    max_model_len: int = Field(description="tokens of context a request can use")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    generating: int = Field(description="requests generating now (0 or 1)")
    waiting: int = Field(description="requests queued behind it")

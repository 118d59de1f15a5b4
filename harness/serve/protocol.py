"""The OpenAI-compatible request bodies the server accepts and the JSON it answers with.

Request models validate what the server uses and ignore fields it does not (clients such as the official
``openai`` package, vLLM's benchmark and guidellm send many). Fields it cannot honour with a random-weight
model are rejected with a 400 rather than silently misread: ``n`` > 1, ``logprobs``, ``echo``, tools.
Sampling fields (temperature, top_p, seed, ...) are accepted and have no effect: decoding is greedy.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

MAX_TENANT_CHARS = 256
INT32 = (-2**31, 2**31 - 1)  # the telemetry's INTEGER columns: a larger value would fail the writer's flush


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: StrictBool = False
    continuous_usage_stats: StrictBool = False


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    user: Annotated[StrictStr, Field(max_length=MAX_TENANT_CHARS)] | None = None
    # vLLM's extension; lower runs first under policy "priority". Stored in requests.priority (INTEGER).
    priority: Annotated[StrictInt, Field(ge=INT32[0], le=INT32[1])] = 0
    n: Annotated[StrictInt, Field(ge=1, le=1)] = 1
    # Accepted, no effect (greedy decoding), but held to OpenAI's and vLLM's ranges: NaN or -1 is a client bug.
    temperature: Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
    seed: StrictInt | None = None
    stop: StrictStr | list[StrictStr] | None = None   # accepted, never matched (no tokenizer; see docs/serve.md)
    ignore_eos: StrictBool | None = None           # vLLM's extension; the model has no EOS anyway
    logprobs: Literal[False] | None = None         # not supported: only null/false is valid


class CompletionRequest(_Common):
    prompt: StrictStr | Annotated[list[StrictStr], Field(min_length=1, max_length=1)] \
        | Annotated[list[Annotated[StrictInt, Field(ge=0)]], Field(min_length=1)]
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    echo: Literal[False] = False


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: StrictStr


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: StrictStr | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return " ".join(part.text for part in self.content)


class ChatCompletionRequest(_Common):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    tools: None = None                              # not supported: only null is valid

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


# ---- responses ------------------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | int | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def error_responses(*statuses: int) -> dict:
    """The error answers a route documents in the OpenAPI schema."""
    return {status: {"model": ErrorResponse, "description": "OpenAI-style error object"} for status in statuses}


def error_body(message: str, type_: str, param: str | None = None, code: str | int | None = None) -> dict:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def new_id(kind: str) -> str:
    return f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def full_response(kind: str, rid: str, model: str, text: str, finish_reason: str, use: dict) -> dict:
    created = int(time.time())
    if kind == "chat":
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                  "finish_reason": finish_reason}
        return {"id": rid, "object": "chat.completion", "created": created, "model": model,
                "choices": [choice], "usage": use}
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
    return {"id": rid, "object": "text_completion", "created": created, "model": model, "choices": [choice],
            "usage": use}


def chunk(kind: str, rid: str, model: str, created: int, *, text: str | None = None, role: bool = False,
          finish_reason: str | None = None, use: dict | None = None, no_choices: bool = False) -> dict[str, Any]:
    """One server-sent event's JSON, shaped like vLLM's (usage-only chunks have ``choices: []``)."""
    obj = "chat.completion.chunk" if kind == "chat" else "text_completion"
    body: dict[str, Any] = {"id": rid, "object": obj, "created": created, "model": model}
    if no_choices:
        body["choices"] = []
    elif kind == "chat":
        delta: dict[str, Any] = {}
        if role:
            delta["role"] = "assistant"
        if text is not None:
            delta["content"] = text
        body["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    else:
        body["choices"] = [{"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish_reason}]
    if use is not None:
        body["usage"] = use
    return body

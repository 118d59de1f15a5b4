"""The OpenAI-compatible request bodies the server accepts and the JSON it answers with.

Request models validate what the server uses and ignore fields it has never heard of (clients such as the
official ``openai`` package, vLLM's benchmark and guidellm send many, as vLLM ignores them). A field the
server knows but cannot honour with a random-weight model (``n`` > 1, ``logprobs``, ``echo``, tools,
``response_format`` JSON, ``suffix``, beam search, ...) is accepted only with the value that asks for nothing
(``n: 1``, ``logprobs: false``, ``tool_choice: "none"``); any other value is a 400 that names the field, says
why and what to send. Sampling fields (temperature, top_p, seed, penalties) are accepted and have no effect:
decoding is greedy; they must still be JSON numbers in OpenAI's ranges.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationInfo,
                      field_validator)
from pydantic_core import PydanticCustomError

from harness.serve.fields import (NO_LOGPROBS, NO_STRUCTURE, NO_TOOLS, ONE_CHOICE, check_logit_bias, check_stop,
                                  number, unsupported)

MAX_TENANT_CHARS = 256
INT32 = (-2**31, 2**31 - 1)  # the telemetry's INTEGER columns: a larger value would fail the writer's flush


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: StrictBool = False
    continuous_usage_stats: StrictBool = False


# vLLM answers 400 "Stream options can only be defined when `stream=True`."; a 200 hid the client's bug.
STREAM_OPTIONS_WITHOUT_STREAM = ("stream_options is allowed only when stream is true (send \"stream\": true, or "
                                 "leave stream_options out)")


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    user: Annotated[StrictStr, Field(max_length=MAX_TENANT_CHARS)] | None = None
    # vLLM's extension; lower runs first under policy "priority". Stored in requests.priority (INTEGER).
    priority: Annotated[StrictInt, Field(ge=INT32[0], le=INT32[1])] = 0
    # Accepted, no effect (greedy decoding), but held to OpenAI's and vLLM's ranges: NaN or -1 is a client bug.
    temperature: number(ge=0, le=2) = None
    top_p: number(gt=0, le=1) = None
    frequency_penalty: number(ge=-2, le=2) = None
    presence_penalty: number(ge=-2, le=2) = None
    seed: Annotated[StrictInt, Field(ge=-2**63, le=2**63 - 1)] | None = None  # vLLM's bound (a C long)
    # Accepted, never matched (no tokenizer; see docs/serve.md); an empty stop string is a 400, as on vLLM.
    stop: Annotated[StrictStr | list[StrictStr], AfterValidator(check_stop)] | None = None
    stop_token_ids: list[StrictInt] | None = None     # vLLM's; accepted, never matched (the model has no EOS)
    # vLLM's sampling extensions: accepted, no effect, held to vLLM's ranges (it answers 400 outside them).
    top_k: Annotated[StrictInt, Field(ge=-1, le=INT32[1])] | None = None   # 0 or -1: all tokens
    min_p: number(ge=0, le=1) = None
    repetition_penalty: number(gt=0) = None
    ignore_eos: StrictBool | None = None           # vLLM's extension; the model has no EOS anyway
    # vLLM's extension. The model has no EOS, so a request always generates max_tokens: any min_tokens up to
    # it is honoured; a larger one is a 400 (app.py, once max_tokens is known), as on vLLM.
    min_tokens: Annotated[StrictInt, Field(ge=0, le=INT32[1])] | None = None
    logit_bias: Annotated[dict[StrictStr, Any], AfterValidator(check_logit_bias)] | None = None

    n: unsupported(*ONE_CHOICE, 1) = None
    best_of: unsupported(*ONE_CHOICE, 1) = None
    use_beam_search: unsupported("decoding is greedy", "leave it out or send false", False) = None
    prompt_logprobs: unsupported(*NO_LOGPROBS) = None
    response_format: unsupported(*NO_STRUCTURE, {"type": "text"}) = None
    structured_outputs: unsupported(*NO_STRUCTURE) = None   # vLLM's, and its older guided_* fields
    guided_json: unsupported(*NO_STRUCTURE) = None
    guided_regex: unsupported(*NO_STRUCTURE) = None
    guided_choice: unsupported(*NO_STRUCTURE) = None
    guided_grammar: unsupported(*NO_STRUCTURE) = None

    @field_validator("stream_options")
    @classmethod
    def _options_need_a_stream(cls, options: StreamOptions | None, info: ValidationInfo) -> StreamOptions | None:
        if options is not None and info.data.get("stream") is not True:
            raise PydanticCustomError("stream_options", STREAM_OPTIONS_WITHOUT_STREAM)
        return options


def _not_empty(prompt: str | list) -> str | list:
    if prompt in ("", [""]):  # vLLM: "Either prompt or prompt_embeds must be provided and non-empty."
        raise PydanticCustomError("empty_prompt", "the prompt is empty (send at least one word, e.g. \"hello\", "
                                                  "or a list of token ids)")
    return prompt


class CompletionRequest(_Common):
    prompt: Annotated[StrictStr | Annotated[list[StrictStr], Field(min_length=1, max_length=1)]
                      | Annotated[list[Annotated[StrictInt, Field(ge=0)]], Field(min_length=1)],
                      AfterValidator(_not_empty)]
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    logprobs: unsupported(*NO_LOGPROBS, False) = None   # an integer here (0 asks for the chosen token's)
    echo: unsupported("the answer holds only the generated text", "leave it out or send false", False) = None
    suffix: unsupported("the model cannot fill in text before a suffix", "leave it out", "") = None


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
    logprobs: unsupported(*NO_LOGPROBS, False) = None   # true or false here
    top_logprobs: unsupported(*NO_LOGPROBS, 0) = None
    tools: unsupported(*NO_TOOLS) = None
    tool_choice: unsupported(*NO_TOOLS[:1], 'leave it out or send "none"', "none") = None
    functions: unsupported(*NO_TOOLS) = None           # OpenAI's older form of tools
    function_call: unsupported(*NO_TOOLS[:1], 'leave it out or send "none"', "none") = None
    echo: unsupported("the answer holds only the generated message", "leave it out or send false", False) = None
    modalities: unsupported("the model answers in text only", 'leave it out or send ["text"]', ["text"]) = None
    audio: unsupported("the model answers in text only", "leave it out") = None

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
    """OpenAI's error object. A lone surrogate the client sent (``"model": "\\ud800"``, echoed in a 404) is
    written as its escape: UTF-8 cannot encode it, and rendering the answer was a 500."""
    return {"error": {"message": _encodable(message), "type": type_, "param": _encodable(param),
                      "code": _encodable(code)}}


def _encodable(value):
    if not isinstance(value, str):
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


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


def sse(obj: dict) -> bytes:
    """One server-sent event: compact JSON, as vLLM sends it."""
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


class TokenEvent:
    """A stream's token event, pre-encoded: the bytes of :func:`sse` of its :func:`chunk` but for the text.

    The chunk's id, model and creation time are the same in every token event of a stream, so only the text
    is encoded per token, not the whole dict built and dumped (docs/benchmarks.md has what that saves).
    ``template`` is the stream's chunk with ``text=""``.
    """

    _MARK = "\x00text\x00"   # no chunk holds it: json.dumps escapes control characters

    def __init__(self, template: dict, kind: str) -> None:
        choice = template["choices"][0]
        if kind == "chat":
            choice["delta"]["content"] = self._MARK
        else:
            choice["text"] = self._MARK
        head, mark, tail = sse(template).partition(json.dumps(self._MARK).encode())
        if not mark:
            raise ValueError("the chunk template lost its text field")
        self._head, self._tail = head, tail

    def encode(self, text: str) -> bytes:
        return self._head + json.dumps(text).encode() + self._tail

"""What the gateway reads of a request body and of the upstream's SSE events, without the upstream's tokenizer."""

from __future__ import annotations

import json

from harness.serve import body as body_rules
from harness.serve import fields
from harness.serve import protocol
from harness.serve.limits import ApiError

OK_FINISH = ("length", "stop", "tool_calls", "function_call", "content_filter")


def parse_body(raw: bytes) -> dict:
    """The request's JSON object; a 400 for anything else, in :func:`harness.serve.body.read_json`'s words
    (serve reads its bodies with the same function)."""
    if not raw.strip():
        raise ApiError(400, body_rules.empty_message())
    body, problem = body_rules.read_json(raw)
    if problem is not None:
        raise ApiError(400, problem)
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, not a JSON {_json_kind(body)} "
                            f"(send e.g. {body_rules.EXAMPLE})")
    return body


def _json_kind(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "null")


def upstream_body(body: dict) -> bytes:
    """The body to forward. ASCII-escaped JSON, so a lone surrogate (\\ud800) the client sent goes on as the
    escape it came as (UTF-8 cannot encode it) and the upstream decides."""
    try:
        return json.dumps(body, allow_nan=False).encode()
    except RecursionError:
        raise ApiError(400, "the request body nests too deeply (send at most a few hundred levels of lists "
                            "and objects)") from None


def prompt_len(kind: str, body: dict) -> int:
    """Prompt tokens as the gateway can count them without the upstream's tokenizer: token ids, else words."""
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' must be a non-empty list (send e.g. \"messages\": [{\"role\": \"user\", "
                                '"content": "hello"}])', param="messages")
        return sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict)) + 1
    prompt = body.get("prompt")
    if isinstance(prompt, list) and prompt and all(isinstance(x, int) for x in prompt):
        return len(prompt)
    if isinstance(prompt, list) and prompt:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ApiError(400, "'prompt' must be a string, a list of strings or a list of token ids (send e.g. "
                            '"prompt": "hello")', param="prompt")
    return len(prompt.split()) + 1


def check_fields(body: dict) -> None:
    """The fields the gateway forwards unread, held to serve's rules (a 400 before a seat is taken, not the
    upstream's answer): ``stream`` is a boolean (``"false"`` was read as a stream), ``stream_options`` only with a
    stream, ``logit_bias`` token ids to [-100, 100]. Words from :mod:`harness.serve.protocol`."""
    user = body.get("user")
    if isinstance(user, str) and not _encodable(user):
        # The tenant goes into the telemetry: a lone surrogate failed the writer's flush and lost its batch.
        raise ApiError(400, f"user: {json.dumps(user)[:60]} holds a lone surrogate, which is not text (send the "
                            "tenant as UTF-8 text)", param="user")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ApiError(400, f"stream: {json.dumps(stream)[:40]} is not true or false (send true or false, without "
                            "quotes)", param="stream")
    if stream is not True and _well_formed_options(body.get("stream_options")):  # else the upstream names the part
        raise ApiError(400, f"stream_options: {protocol.STREAM_OPTIONS_WITHOUT_STREAM}", param="stream_options")
    bias = body.get("logit_bias")
    if bias is not None:
        problem = (fields.logit_bias_problem(bias) if isinstance(bias, dict)
                   else f"it is a JSON {_json_kind(bias)}, not an object (send e.g. {{\"50256\": -100}})")
        if problem is not None:
            raise ApiError(400, f"logit_bias: {problem}", param="logit_bias")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _well_formed_options(options: object) -> bool:
    if options is None:
        return False
    try:
        protocol.StreamOptions.model_validate(options)
    except ValueError:  # pydantic's ValidationError
        return False
    return True


def int_field(body: dict, *names: str, default: int, low: int = -2**31, high: int = 2**31 - 1) -> int:
    """The first of ``names`` present, an integer in [low, high] (by default the telemetry's INTEGER range:
    a larger priority or max_tokens would fail the writer's flush and lose every row after it)."""
    for name in names:
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                shown = json.dumps(value)[:40] if isinstance(value, (str, float)) else type(value).__name__
                raise ApiError(400, f"'{name}' must be a whole number, not {shown} (send e.g. {max(default, low)}, "
                                    "without quotes)", param=name)
            if not low <= value <= high:
                raise ApiError(400, f"'{name}' must be between {low} and {high}, not {value} (send a number in "
                                    "that range)", param=name)
            return value
    return default


def token_limit(body: dict, max_tokens: int) -> int:
    """The most output tokens an honest upstream can report for this request: max_tokens for each of its n (or
    best_of) choices. A count past it is not recorded: the gateway writes one row per token, so an upstream
    that claimed 10^9 tokens held the server's memory and the database's flush hostage."""
    choices = [v for v in (body.get("n"), body.get("best_of")) if isinstance(v, int) and not isinstance(v, bool)]
    return min(max_tokens * max([1, *[c for c in choices if c <= 1024]]), 2**31 - 1)


def completion_count(usage: object, limit: int) -> int:
    """``usage.completion_tokens`` of a whole answer: 0 when the upstream sends no usage; ValueError when it
    sends one that is not a whole number in 0..limit (a string, a bool, a negative or an impossible count)."""
    if not isinstance(usage, dict) or usage.get("completion_tokens") is None:
        return 0
    count = usage["completion_tokens"]
    if isinstance(count, bool) or not isinstance(count, int):
        raise ValueError(f"usage.completion_tokens is {str(count)[:40]!r}, not a whole number")
    if not 0 <= count <= limit:
        raise ValueError(f"usage.completion_tokens is {count}, outside 0..{limit} (the max_tokens asked)")
    return count


def event_tokens(event: bytes, seen: int, limit: int = 2**31 - 1) -> tuple[int, str | None]:
    """(new output tokens, finish_reason or None) of one SSE event: cumulative usage when the upstream sends
    it (vLLM's continuous_usage_stats), otherwise one per chunk with text (completions) or content (chat).
    Never more than ``limit`` in all (:func:`token_limit`); a usage count that is not a whole number is ignored."""
    count, finish = 0, None
    for line in event.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if not data or data == b"[DONE]":
            continue
        try:
            chunk = json.loads(data)
        except ValueError:
            continue
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk:
            finish = "error"
        usage = chunk.get("usage")
        choices = chunk.get("choices") or []
        reported = usage.get("completion_tokens") if isinstance(usage, dict) else None
        if isinstance(reported, int) and not isinstance(reported, bool):
            count = max(count, reported - seen)
        elif choices and isinstance(choices[0], dict):
            c = choices[0]
            count += 1 if (c.get("text") or (c.get("delta") or {}).get("content")) else 0
        for c in choices:
            if isinstance(c, dict) and c.get("finish_reason"):
                finish = str(c["finish_reason"])
    return max(0, min(count, limit - seen)), finish

"""What the gateway reads of a request body and of the upstream's SSE events, without the upstream's tokenizer."""

from __future__ import annotations

import json

from harness.serve.limits import ApiError

OK_FINISH = ("length", "stop", "tool_calls", "function_call", "content_filter")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_body(raw: bytes) -> dict:
    """The request's JSON object; a 400 for anything else. NaN/Infinity are refused (JSON has no such numbers,
    and the body could not be forwarded), and nesting past the parser's recursion limit is a 400, not a 500."""
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ApiError(400, "the request body nests too deeply") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, NaN, an integer of thousands of digits
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def upstream_body(body: dict) -> bytes:
    """The body to forward. ASCII-escaped JSON, so a lone surrogate (\\ud800) the client sent goes on as the
    escape it came as (UTF-8 cannot encode it) and the upstream decides."""
    try:
        return json.dumps(body).encode()
    except RecursionError:
        raise ApiError(400, "the request body nests too deeply") from None


def prompt_len(kind: str, body: dict) -> int:
    """Prompt tokens as the gateway can count them without the upstream's tokenizer: token ids, else words."""
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' must be a non-empty list", param="messages")
        return sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict)) + 1
    prompt = body.get("prompt")
    if isinstance(prompt, list) and prompt and all(isinstance(x, int) for x in prompt):
        return len(prompt)
    if isinstance(prompt, list) and prompt:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ApiError(400, "'prompt' must be a string, a list of strings or a list of token ids", param="prompt")
    return len(prompt.split()) + 1


def int_field(body: dict, *names: str, default: int, low: int = -2**31, high: int = 2**31 - 1) -> int:
    """The first of ``names`` present, an integer in [low, high] (by default the telemetry's INTEGER range:
    a larger priority or max_tokens would fail the writer's flush and lose every row after it)."""
    for name in names:
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ApiError(400, f"'{name}' must be an integer", param=name)
            if not low <= value <= high:
                raise ApiError(400, f"'{name}' must be between {low} and {high}", param=name)
            return value
    return default


def event_tokens(event: bytes, seen: int) -> tuple[int, str | None]:
    """(new output tokens, finish_reason or None) of one SSE event: cumulative usage when the upstream sends
    it (vLLM's continuous_usage_stats), otherwise one per chunk with text (completions) or content (chat)."""
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
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            count = max(count, usage["completion_tokens"] - seen)
        elif choices and isinstance(choices[0], dict):
            c = choices[0]
            count += 1 if (c.get("text") or (c.get("delta") or {}).get("content")) else 0
        for c in choices:
            if isinstance(c, dict) and c.get("finish_reason"):
                finish = str(c["finish_reason"])
    return count, finish

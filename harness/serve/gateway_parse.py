"""What the gateway reads of a request body and of the upstream's SSE events, without the upstream's tokenizer."""

from __future__ import annotations

import json

from harness.serve.limits import ApiError

OK_FINISH = ("length", "stop", "tool_calls", "function_call", "content_filter")


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


def int_field(body: dict, *names: str, default: int) -> int:
    for name in names:
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ApiError(400, f"'{name}' must be an integer", param=name)
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

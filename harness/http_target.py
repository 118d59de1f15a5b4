"""One request against an OpenAI-compatible server, and the ``/metrics`` scraper, measured client side.

A request streams ``POST /v1/completions`` with the workload's prompt (token ids, or words that a
WordLevel tokenizer maps one to one), ``max_tokens`` = its output length and ``ignore_eos`` (a vLLM
extension other servers ignore), so the server produces exactly the lengths the schedule asks for. Every
timestamp is taken when the client sees it, on the run's clock, and the request is timed from its
scheduled arrival, as the embedded engine's requests are. Tokens are counted from the cumulative
``usage.completion_tokens`` that ``stream_options.continuous_usage_stats`` (vLLM) puts in each chunk, and
otherwise one per chunk with text.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from harness.engine.observer import RequestRecord
from harness.workload import RequestSpec

REJECTED_STATUS = (429, 503)  # the server's queue is full or it is overloaded: rejected, as admission control


@dataclass(frozen=True, slots=True)
class Target:
    """An OpenAI-compatible server: where it is, which model name it serves, how to send prompts."""

    url: str
    model: str
    prompt_format: str = "tokens"        # tokens: a list of ids | text: "w12 w7 ..." (one word per token)
    scrape_interval_s: float = 0.5
    metrics_path: str = "/metrics"

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")


class RunClock:
    """The run's clock in ns since t0 (``perf_counter_ns``), which can stand still while a server restarts."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter_ns()
        self.paused_ns = 0
        self._paused_at: int | None = None

    def now_ns(self) -> int:
        now = self._paused_at if self._paused_at is not None else time.perf_counter_ns()
        return now - self.t0 - self.paused_ns

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.perf_counter_ns()

    def resume(self) -> None:
        if self._paused_at is not None:
            self.paused_ns += time.perf_counter_ns() - self._paused_at
            self._paused_at = None

    @property
    def is_paused(self) -> bool:
        return self._paused_at is not None


def request_body(target: Target, spec: RequestSpec, tokens: list[int], *, send_priority: bool) -> dict[str, Any]:
    prompt: Any = tokens if target.prompt_format == "tokens" else " ".join(f"w{t}" for t in tokens)
    body = {"model": target.model, "prompt": prompt, "max_tokens": spec.output_tokens, "ignore_eos": True,
            "temperature": 0.0, "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True}}
    if spec.tenant is not None:
        body["user"] = spec.tenant
    if send_priority:
        body["priority"] = spec.priority  # vLLM refuses a priority unless it runs the priority policy
    return body


def new_tokens(chunk: dict[str, Any], seen: int) -> int:
    """How many output tokens this stream chunk adds."""
    usage = chunk.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        return max(0, usage["completion_tokens"] - seen)
    choices = chunk.get("choices") or []
    return 1 if choices and choices[0].get("text") else 0


async def stream_request(client: httpx.AsyncClient, target: Target, spec: RequestSpec, tokens: list[int], *,
                         arrival_ns: int, clock: RunClock, observer, timeout_s: float | None,
                         send_priority: bool = False) -> RequestRecord:
    """Send one request, report its events and tokens to ``observer`` as they arrive; returns its record."""
    rid = spec.request_id
    enqueue = clock.now_ns()
    observer.on_event(rid, "queued", enqueue, None)
    first = last = None
    seen = 0
    status, reason = "error", "no response"
    body = request_body(target, spec, tokens, send_priority=send_priority)
    remaining = None if timeout_s is None else max(0.001, timeout_s - (enqueue - arrival_ns) / 1e9)
    try:
        async with asyncio.timeout(remaining):
            async with client.stream("POST", f"{target.base_url}/v1/completions", json=body) as response:
                if response.status_code in REJECTED_STATUS:
                    status, reason = "rejected", "queue_full"
                elif response.status_code != 200:
                    text = (await response.aread()).decode(errors="replace")[:120]
                    status, reason = "error", f"http {response.status_code}: {text}"
                else:
                    reason = "stream ended early"
                    async for line in response.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        chunk = json.loads(data)
                        count = new_tokens(chunk, seen)
                        if count:
                            now = clock.now_ns()
                            if first is None:
                                first = now
                                observer.on_event(rid, "first_token", now, None)
                            for index in range(seen, seen + count):
                                observer.on_token(rid, index, None, now)
                            seen += count
                            last = now
                        for choice in chunk.get("choices") or []:
                            if choice.get("finish_reason"):
                                reason = str(choice["finish_reason"])
                    status = "ok" if reason in ("length", "stop") else "error"
    except TimeoutError:
        status, reason = "timeout", "timeout"
    except asyncio.CancelledError:
        _finish(observer, rid, "aborted", clock.now_ns())
        observer.on_request_done(_record(spec, enqueue, first, last, clock.now_ns(), seen, "aborted", "abort"))
        raise
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        status, reason = "error", f"{type(exc).__name__}: {exc}"[:120]
    finish = clock.now_ns()
    _finish(observer, rid, status, finish)
    record = _record(spec, enqueue, first, last, finish, seen, status, reason)
    observer.on_request_done(record)
    return record


def _finish(observer, rid: int, status: str, ts_ns: int) -> None:
    event = {"ok": "finished", "rejected": "rejected", "timeout": "timeout", "aborted": "aborted"}.get(status,
                                                                                                    "finished")
    observer.on_event(rid, event, ts_ns, None)


def _record(spec: RequestSpec, enqueue, first, last, finish, seen, status, reason) -> RequestRecord:
    # The server does not say when it first scheduled a request: first_scheduled_ns stays NULL (queue_s too).
    return RequestRecord(request_id=spec.request_id, prompt_tokens=spec.prompt_tokens,
                         target_output_tokens=spec.output_tokens, output_tokens=seen, enqueue_ns=enqueue,
                         first_scheduled_ns=None, first_token_ns=first, last_token_ns=last, finish_ns=finish,
                         status=status, finish_reason=reason, num_preemptions=0, tenant=spec.tenant,
                         priority=spec.priority)


async def scrape_loop(client: httpx.AsyncClient, target: Target, clock: RunClock, buffer, stop: asyncio.Event,
                      paused: asyncio.Event) -> None:
    """Scrape ``/metrics`` every ``scrape_interval_s`` into ``buffer``, and once more when ``stop`` is set
    (the run has drained: the final counters)."""
    url = f"{target.base_url}{target.metrics_path}"
    while True:
        final = stop.is_set()
        if not paused.is_set():
            try:
                response = await client.get(url, timeout=5.0)
                ts = clock.now_ns()  # when the scrape came back: the values are at most this old
                if response.status_code == 200:
                    buffer.add_scrape(ts, response.text, url)
                    await asyncio.to_thread(buffer.flush)  # only this task flushes while the run goes on
                else:
                    buffer.num_failed_scrapes += 1
            except (httpx.HTTPError, ValueError):
                buffer.num_failed_scrapes += 1
        if final:
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=target.scrape_interval_s)
        except TimeoutError:
            pass

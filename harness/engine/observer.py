"""What the engine reports while it runs: the interface between the engine and the telemetry writer.

The engine calls an :class:`EngineObserver` synchronously from its loop, with timestamps in integer
nanoseconds from one monotonic clock (``time.perf_counter_ns`` minus the engine's t0). Observers must be
cheap: the harness's writer only appends to in-memory lists and flushes them from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

@dataclass(slots=True)
class StepRecord:
    """One engine iteration (a row of the `steps` table)."""

    step_id: int
    start_ns: int
    end_ns: int
    schedule_ns: int          # duration of scheduling
    forward_ns: int           # duration of the model forward (and sampling)
    num_prefill_seqs: int
    num_prefill_tokens: int
    num_decode_seqs: int
    num_decode_tokens: int
    num_waiting: int          # after scheduling
    num_running: int
    num_kv_blocks_used: int
    num_kv_blocks_total: int
    num_preemptions: int      # in this step


@dataclass(slots=True)
class RequestRecord:
    """A request's final record (a row of the `requests` table), reported once when it leaves the engine."""

    request_id: int
    prompt_tokens: int
    target_output_tokens: int
    output_tokens: int
    enqueue_ns: int
    first_scheduled_ns: int | None
    first_token_ns: int | None
    last_token_ns: int | None
    finish_ns: int
    status: str               # ok | timeout | rejected | aborted | error
    finish_reason: str        # length | stop | queue_full | timeout | abort | error text
    num_preemptions: int
    tenant: str | None = None
    priority: int | None = None


class EngineObserver(Protocol):
    def on_event(self, request_id: int, event_type: str, ts_ns: int, step_id: int | None) -> None: ...

    def on_token(self, request_id: int, token_index: int, step_id: int, ts_ns: int) -> None: ...

    def on_step(self, step: StepRecord) -> None: ...

    def on_request_done(self, record: RequestRecord) -> None: ...


class NullObserver:
    """Discards everything (used to measure the cost of telemetry)."""

    def on_event(self, request_id: int, event_type: str, ts_ns: int, step_id: int | None) -> None:
        pass

    def on_token(self, request_id: int, token_index: int, step_id: int, ts_ns: int) -> None:
        pass

    def on_step(self, step: StepRecord) -> None:
        pass

    def on_request_done(self, record: RequestRecord) -> None:
        pass

"""Live run statistics (for the progress bar and closed-loop clients) and the observer fan-out."""

from __future__ import annotations

from collections import deque
from typing import Callable

from harness.engine.observer import RequestRecord, StepRecord


class TeeObserver:
    """Passes every callback to several observers, in order."""

    def __init__(self, *observers):
        self.observers = [o for o in observers if o is not None]

    def on_event(self, request_id, event_type, ts_ns, step_id):
        for o in self.observers:
            o.on_event(request_id, event_type, ts_ns, step_id)

    def on_token(self, request_id, token_index, step_id, ts_ns):
        for o in self.observers:
            o.on_token(request_id, token_index, step_id, ts_ns)

    def on_step(self, step: StepRecord):
        for o in self.observers:
            o.on_step(step)

    def on_request_done(self, record: RequestRecord):
        for o in self.observers:
            o.on_request_done(record)


class RunStats:
    """Counts what the engine reports; keeps recent TTFTs and token times for the progress bar."""

    def __init__(self, scheduled_arrival: dict[int, int], on_done: Callable[[RequestRecord], None] | None = None):
        self.scheduled_arrival = scheduled_arrival
        self.on_done = on_done
        self.num_tokens = 0
        self.num_steps = 0
        self.num_done = 0
        self.num_ok = 0
        self.num_rejected = 0
        self.num_timeout = 0
        self.in_flight: set[int] = set()
        self.recent_ttft_s: deque[float] = deque(maxlen=100)
        self.recent_token_ns: deque[int] = deque(maxlen=5000)
        self.step_time_ns = 0

    def on_event(self, request_id, event_type, ts_ns, step_id):
        if event_type == "first_token":
            arrival = self.scheduled_arrival.get(request_id)
            if arrival is not None:
                self.recent_ttft_s.append((ts_ns - arrival) / 1e9)

    def on_token(self, request_id, token_index, step_id, ts_ns):
        self.num_tokens += 1
        self.recent_token_ns.append(ts_ns)

    def on_step(self, step):
        self.num_steps += 1
        self.step_time_ns += step.end_ns - step.start_ns

    def on_request_done(self, record):
        self.num_done += 1
        self.in_flight.discard(record.request_id)
        self.scheduled_arrival.pop(record.request_id, None)
        if record.status == "ok":
            self.num_ok += 1
        elif record.status == "rejected":
            self.num_rejected += 1
        elif record.status == "timeout":
            self.num_timeout += 1
        if self.on_done is not None:
            self.on_done(record)

    def tokens_per_s(self, now_ns: int, window_ns: int = 2_000_000_000) -> float:
        recent = sum(1 for t in self.recent_token_ns if t >= now_ns - window_ns)
        return recent / (min(window_ns, max(now_ns, 1)) / 1e9)

    def median_ttft_s(self) -> float | None:
        if not self.recent_ttft_s:
            return None
        values = sorted(self.recent_ttft_s)
        return values[len(values) // 2]

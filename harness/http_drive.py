"""The asyncio loop of an HTTP run: dispatch the schedule, poll faults, restart a managed server, drain.

Split from :mod:`harness.http_run` (which prepares, records the run and owns the server); see that module
for what is recorded and how faults apply.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from harness.contention import CpuContention
from harness.faults import FaultInjector
from harness.http_target import RunClock, scrape_loop, stream_request
from harness.runner import _ClosedLoop, vocab_size
from harness.stats import RunStats, TeeObserver
from harness.workload import prompt_token_ids

IDLE_SLEEP_MAX_S = 0.02


class _Control:
    """What the fault injector sees as 'the engine': the run's clock and a queue of server changes."""

    def __init__(self, clock: RunClock):
        self.clock = clock
        self.pending: dict[str, Any] = {}
        self.requested_ns = 0

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def update_config(self, **knobs: Any) -> None:
        self.pending.update(knobs)
        self.requested_ns = self.clock.now_ns()

    def set_num_threads(self, num_threads: int) -> None:
        self.update_config(num_threads=int(num_threads))

    def set_step_delay(self, delay_s: float) -> None:
        if delay_s:
            raise RuntimeError("step_delay reached an HTTP run; check_http_config should have refused it")


class _Settings:
    """The writer as the fault injector sees it; a server we do not manage has no engine settings to record."""

    def __init__(self, writer, *, managed: bool, server_settings: set[str]):
        self.writer, self.managed, self.server_settings = writer, managed, server_settings

    def record_setting(self, setting: str, start_ns: int, value, value_text=None) -> None:
        if self.managed or setting not in self.server_settings:
            self.writer.record_setting(setting, start_ns, value, value_text)

    def record_fault(self, *args) -> None:
        self.writer.record_fault(*args)


class HttpDrive:
    """One run's requests against ``target`` on ``clock``, recorded through ``writer`` and ``buffer``."""

    def __init__(self, cfg, seed, rate, schedule, target, clock, writer, buffer, managed, progress, *,
                 server_settings: set[str]):
        self.server_settings = server_settings
        self.cfg, self.seed, self.rate, self.schedule, self.target = cfg, seed, rate, schedule, target
        self.clock, self.writer, self.buffer, self.managed, self.progress = clock, writer, buffer, managed, progress
        self.vocab = vocab_size(cfg)
        self.tasks: set[asyncio.Task] = set()
        self.shifts: list[tuple[float, int]] = []  # (schedule time s, ns the schedule moved later there)
        first_id = max((spec.request_id for spec in schedule), default=-1) + 1
        self.closed = _ClosedLoop(cfg, seed, first_id) if cfg.workload.arrival == "closed" \
            and cfg.workload.requests is None else None
        self.stats = RunStats({}, on_done=self.closed.on_done if self.closed else None)
        self.observer = TeeObserver(writer, self.stats)
        self.control = _Control(clock)

    def run(self) -> None:
        from harness.progress import live_progress

        contention = CpuContention()
        try:
            with live_progress(self.cfg.name, self.cfg.duration_s, enabled=self.progress) as update:
                asyncio.run(self._main(contention, update))
        finally:
            contention.stop_all()

    async def _main(self, contention: CpuContention, update) -> None:
        import httpx

        cfg = self.cfg
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0), limits=limits) as client:
            stop, paused = asyncio.Event(), asyncio.Event()
            scraper = asyncio.create_task(scrape_loop(client, self.target, self.clock, self.buffer, stop, paused))
            offset0 = offset = self.clock.now_ns()
            injector = FaultInjector(cfg, self.rate, self.control, _Settings(self.writer, managed=bool(self.managed),
                                                                                 server_settings=self.server_settings),
                                     contention, offset_ns=offset)
            end_ns = offset + int(cfg.duration_s * 1e9)
            next_index = 0
            try:
                injector.start()
                while True:
                    now = self.clock.now_ns()
                    injector.poll(now - offset)
                    if self.control.pending:
                        shift = await self._restart(paused, (now - offset) / 1e9)
                        offset, end_ns = offset + shift, end_ns + shift
                        injector.offset_ns = offset
                        continue
                    while next_index < len(self.schedule) and self.schedule[next_index].arrival_ns + offset <= now:
                        self._dispatch(client, self.schedule[next_index], offset)
                        next_index += 1
                    if self.closed is not None and now < end_ns:
                        for spec in self.closed.due(now, offset):
                            self._dispatch(client, spec, offset)
                    if now >= end_ns or (next_index >= len(self.schedule) and self.closed is None):
                        break
                    if update is not None:
                        update(now - offset, self.stats)
                    await asyncio.sleep(self._wait_s(next_index, offset, injector, end_ns))
                await self._drain(cfg.drain_timeout_s)
            finally:
                await self._drain(0.0)
                stop.set()
                await scraper
            for phase in cfg.phases:
                self.writer.record_phase(phase.name, offset0 + self._shifted(phase.start_s, inclusive=True),
                                         offset0 + self._shifted(phase.end_s, inclusive=False))

    def _shifted(self, t_s: float, *, inclusive: bool) -> int:
        moved = sum(ns for at, ns in self.shifts if (at <= t_s if inclusive else at < t_s))
        return int(t_s * 1e9) + moved

    def _wait_s(self, next_index: int, offset: int, injector: FaultInjector, end_ns: int) -> float:
        candidates = [end_ns]
        if next_index < len(self.schedule):
            candidates.append(self.schedule[next_index].arrival_ns + offset)
        due = injector.next_due_ns()
        if due is not None:
            candidates.append(due + offset)
        return max(0.0, min(IDLE_SLEEP_MAX_S, (min(candidates) - self.clock.now_ns()) / 1e9))

    def _dispatch(self, client, spec, offset: int) -> None:
        arrival = spec.arrival_ns + offset
        self.stats.scheduled_arrival[spec.request_id] = arrival
        self.writer.register_request(spec.request_id, arrival)
        tokens = prompt_token_ids(self.seed, spec.request_id, spec.prompt_tokens, self.vocab)
        task = asyncio.create_task(stream_request(
            client, self.target, spec, tokens, arrival_ns=arrival, clock=self.clock, observer=self.observer,
            timeout_s=self.cfg.engine.request_timeout_s, send_priority=self.cfg.engine.policy == "priority"))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _drain(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for requests in flight, then abort the rest (recorded as aborted)."""
        pending = set(self.tasks)
        if pending and timeout_s > 0:
            _, pending = await asyncio.wait(pending, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _restart(self, paused: asyncio.Event, at_s: float) -> int:
        """Drain, restart the managed server with the pending knobs (clock stopped); returns the drain's ns."""
        knobs, self.control.pending = dict(self.control.pending), {}
        changed_ns = self.control.requested_ns
        drain_start = self.clock.now_ns()
        await self._drain(self.cfg.drain_timeout_s)
        drained = self.clock.now_ns() - drain_start
        paused.set()
        self.clock.pause()
        try:
            # In this thread, blocking the loop: nothing is in flight, and the server's parent-death signal
            # belongs to the thread that started it (an executor thread exits before the run ends).
            self.managed.restart(knobs)
        finally:
            self.clock.resume()
            paused.clear()
        for key, value in knobs.items():
            self.buffer.add_operator_event(changed_ns, key, json.dumps(value))
        self.shifts.append((at_s, drained))
        return drained

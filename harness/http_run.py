"""Run a config against an OpenAI-compatible server instead of the embedded engine.

``run_http(cfg, db, target=Target(url, model))`` drives a server someone else runs; ``engine="vllm"``
starts the peer vLLM itself (:mod:`harness.peers.vllm_server`) and always stops it. The workload is the
schedule the engine would get (same seed, same arrivals, lengths and tenants); requests, per-token times,
events, settings, faults and phases go through the telemetry writer as for an engine run, and ``/metrics``
scrapes go into ``metric_samples``.

Faults: workload faults reshape the schedule and CPU contention starts busy processes, as always. Faults
that change the server (config_push, kv_shrink, fewer_threads) need a server the harness manages: at the
fault's time the harness stops sending, drains the requests in flight (up to ``drain_timeout_s``), restarts
vLLM with the new flags while the run's clock stands still, and resumes the schedule where it stopped; the
change is in ``run_settings`` (from the fault's time) and ``operator_events``. ``step_delay`` has no
counterpart on a server and is refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from causalsre.errors import UserError
from harness.config import EngineSection, RunConfig, load_run_config
from harness.contention import CpuContention
from harness.faults import ENGINE_KNOBS, FaultInjector
from harness.http_target import RunClock, Target, scrape_loop, stream_request
from harness.runner import _ClosedLoop, _runs_row, fit_to_model, prepare, vocab_size
from harness.stats import RunStats, TeeObserver
from harness.workload import prompt_token_ids

SERVER_FAULTS = ("config_push", "kv_shrink", "fewer_threads")  # they change the server itself
# Settings of the server itself: unknown for a server the harness does not run (the client-side timeout stays).
SERVER_SETTINGS = (set(EngineSection.model_fields) | set(ENGINE_KNOBS) | {"step_delay_s"}) - {"request_timeout_s"}
IDLE_SLEEP_MAX_S = 0.02


def check_http_config(cfg: RunConfig, *, managed: bool) -> None:
    """What an HTTP target cannot do, refused before anything starts."""
    for fault in cfg.faults:
        if fault.kind == "step_delay":
            raise UserError("fault 'step_delay' delays the embedded engine's steps; a server has no such hook",
                            "drop the fault, or run on the embedded engine")
        if fault.kind in SERVER_FAULTS and not managed:
            raise UserError(f"fault '{fault.kind}' changes the server: the harness does not manage this server",
                            "use --engine vllm (the harness starts and restarts vLLM), or drop the fault")
    if cfg.workload.load_fraction is not None and cfg.calibrated_capacity_rps is None:
        raise UserError("workload.load_fraction is calibrated on the embedded engine, not on this server",
                        "pass --set calibrated_capacity_rps=N (the server's capacity in requests/s), "
                        "or give workload.rate")


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

    def __init__(self, writer, *, managed: bool):
        self.writer, self.managed = writer, managed

    def record_setting(self, setting: str, start_ns: int, value, value_text=None) -> None:
        if self.managed or setting not in SERVER_SETTINGS:
            self.writer.record_setting(setting, start_ns, value, value_text)

    def record_fault(self, *args) -> None:
        self.writer.record_fault(*args)


class _Managed:
    """The vLLM server the harness runs, restartable on the same port with other engine settings."""

    def __init__(self, engine_section, served_model_name: str):
        from harness.peers.vllm_server import VllmServer

        self.server = VllmServer(engine_section, served_model_name=served_model_name)
        self.engine = engine_section
        self.restarts: list[dict] = []

    def start(self) -> None:
        self.server.start()

    def restart(self, knobs: dict[str, Any]) -> None:
        from harness.peers.vllm_server import VllmServer

        port, name = self.server.port, self.server.served_model_name
        self.server.stop()
        self.engine = self.engine.model_copy(update=knobs)
        self.server = VllmServer(self.engine, served_model_name=name, port=port, log_path=self.server.log_path)
        self.server.start()
        self.restarts.append({"knobs": knobs, "flags": self.server.flags})

    def stop(self) -> None:
        self.server.stop()


def _host_info(target: Target, managed: _Managed | None) -> dict[str, Any]:
    info = {"host": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "writer_pid": os.getpid(), "target": target.url,
            "served_model": target.model, "engine": "vllm" if managed else "external"}
    if managed is not None:
        info.update(vllm_flags=managed.server.flags, vllm_env=managed.server.env)
    return info


def run_http(cfg: RunConfig | str | Path, db_path: str | Path, seed: int | None = None, *,
             target: Target | None = None, engine: str | None = None, progress: bool = False,
             run_id: str | None = None) -> str:
    """Drive ``target`` (or a vLLM started here when ``engine='vllm'``) with ``cfg``; returns the run id."""
    from causalsre.telemetry import connect_writable
    from harness.http_metrics import MetricBuffer
    from harness.writer import TelemetryWriter

    if engine not in (None, "vllm"):
        raise UserError(f"unknown engine {engine!r} for an HTTP run", "use --engine vllm")
    if (target is None) == (engine is None):
        raise UserError("an HTTP run needs either --target URL or --engine vllm", "give exactly one of them")
    if not isinstance(cfg, RunConfig):
        cfg = load_run_config(cfg)
    check_http_config(cfg, managed=engine == "vllm")
    cfg, seed, rate, schedule = prepare(cfg, seed)
    managed = None
    if engine == "vllm":
        from harness.peers.vllm_server import MAX_MODEL_LEN

        schedule = [fit_to_model(spec, MAX_MODEL_LEN) for spec in schedule]
        managed = _Managed(cfg.engine, served_model_name=cfg.engine.model)
    run_id = run_id or f"{cfg.name}-s{seed}-{uuid.uuid4().hex[:8]}"
    try:
        if managed is not None:
            managed.start()
            target = Target(managed.server.url, managed.server.served_model_name)
        con = connect_writable(db_path)
        status = "incomplete"
        try:
            writer = TelemetryWriter(con, run_id)
            buffer = MetricBuffer(con, run_id)
            clock = RunClock()
            row = _runs_row(cfg, seed, rate, datetime.now(timezone.utc).replace(tzinfo=None),
                            _host_info(target, managed))
            if managed is None:  # the config's engine section says nothing about a server we do not run
                row.update({k: None for k in row if k in SERVER_SETTINGS and k != "seed"})  # seed: the run's
            writer.start(row)
            try:
                _HttpRun(cfg, seed, rate, schedule, target, clock, writer, buffer, managed, progress).run()
                status = "complete"
            finally:
                try:
                    buffer.close()
                finally:
                    writer.close(status)
        finally:
            con.close()
    finally:
        if managed is not None:
            managed.stop()
    return run_id


class _HttpRun:
    def __init__(self, cfg, seed, rate, schedule, target, clock, writer, buffer, managed, progress):
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
            injector = FaultInjector(cfg, self.rate, self.control, _Settings(self.writer, managed=bool(self.managed)),
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

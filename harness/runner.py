"""Run one configuration against the engine and record it: ``run(cfg, db_path, seed=...) -> run_id``.

The loop is single-threaded: admit every request whose scheduled arrival has passed, apply due fault
changes, run one engine step (or sleep until the next arrival when idle). All times are the engine's clock,
so the DB's *_ns columns share one t0. Under ``clock.mode = "modelled"`` the same loop runs on the engine's
modelled clock (:mod:`harness.engine.clock`): idle, it jumps to the next arrival instead of sleeping. Latencies are measured from the scheduled arrival, so a loop that
falls behind shows up as queueing rather than hiding it.
"""

from __future__ import annotations

import heapq
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from harness.capacity import calibrate_capacity, probe_speed
from harness.config import RunConfig, load_run_config, parse_run_config
from harness.contention import CpuContention
from harness.faults import FaultInjector
from harness.hardware import hardware_info
from harness.sizing import engine_config, fit_to_model, max_position, vocab_size
from harness.stats import RunStats, TeeObserver
from harness.workload import ClosedLoopLengths, RequestSpec, build_schedule, prompt_token_ids

__all__ = ["RunConfig", "load_run_config", "parse_run_config", "run", "drive", "RunOutcome", "resolve_rate"]

IDLE_SLEEP_MAX_S = 0.02


def resolve_rate(cfg: RunConfig, seed: int) -> tuple[RunConfig, float | None]:
    """The mean arrival rate; ``load_fraction`` calibrates capacity once and stores it in the config."""
    wl = cfg.workload
    if wl.load_fraction is None:
        return cfg, wl.rate
    if cfg.calibrated_capacity_rps is None:
        cfg = cfg.with_overrides({"calibrated_capacity_rps": calibrate_capacity(cfg, seed)})
    return cfg, wl.load_fraction * cfg.calibrated_capacity_rps


@dataclass
class RunOutcome:
    stats: RunStats
    wall_s: float
    aborted: int


class _ClosedLoop:
    """Closed-loop clients: each issues its next request ``think_time_s`` after the previous one ends."""

    def __init__(self, cfg: RunConfig, seed: int, first_id: int):
        self.lengths = ClosedLoopLengths(cfg, seed)
        self.think_ns = int(cfg.workload.think_time_s * 1e9)
        self.next_id = first_id
        self.owner: dict[int, int] = {}
        self.ready: list[tuple[int, int]] = [(0, c) for c in range(cfg.workload.concurrency)]

    def on_done(self, record) -> None:
        client = self.owner.pop(record.request_id, None)
        if client is not None:
            heapq.heappush(self.ready, (record.finish_ns + self.think_ns, client))

    def due(self, now_ns: int, offset_ns: int) -> list[RequestSpec]:
        out = []
        while self.ready and self.ready[0][0] <= now_ns:
            ready_ns, client = heapq.heappop(self.ready)
            prompt, output, tenant, priority = self.lengths.draw((max(ready_ns, offset_ns) - offset_ns) / 1e9)
            spec = RequestSpec(self.next_id, max(ready_ns, offset_ns) - offset_ns, prompt, output, tenant, priority)
            self.owner[self.next_id] = client
            self.next_id += 1
            out.append(spec)
        return out


def drive(cfg: RunConfig, engine, *, seed: int, rate: float | None, writer=None, stats: RunStats,
          closed: _ClosedLoop | None = None, schedule: list[RequestSpec], progress=None) -> RunOutcome:
    """The run loop. ``writer`` may be None (nothing recorded: the overhead baseline)."""
    vocab = vocab_size(cfg)
    contention = CpuContention()
    offset_ns = engine.now_ns()  # t0 of the schedule on the engine's clock (engine set-up happened before)
    injector = FaultInjector(cfg, rate, engine, writer, contention, offset_ns=offset_ns)
    end_ns = offset_ns + int(cfg.duration_s * 1e9)
    drain_end_ns = end_ns + int(cfg.drain_timeout_s * 1e9)
    if writer is not None:
        for phase in cfg.phases:
            writer.record_phase(phase.name, offset_ns + int(phase.start_s * 1e9), offset_ns + int(phase.end_s * 1e9))
    started = time.perf_counter()
    next_index, aborted, next_progress = 0, 0, 0.0
    try:
        injector.start()
        while True:
            if writer is not None and writer.failed:
                break  # the database stopped taking writes (a full disk): stop now; writer.close() says why
            now = engine.now_ns()
            injector.poll(now - offset_ns)
            due: list[RequestSpec] = []
            while next_index < len(schedule) and schedule[next_index].arrival_ns + offset_ns <= now:
                due.append(schedule[next_index])
                next_index += 1
            if closed is not None and now < end_ns:
                due.extend(closed.due(now, offset_ns))
            for spec in due:
                _admit(engine, spec, offset_ns, seed, vocab, writer, stats)
            arrivals_left = now < end_ns and (next_index < len(schedule) or closed is not None)
            if engine.has_unfinished():
                if now >= drain_end_ns:
                    aborted = _abort_all(engine, stats)
                    break
                if engine.step() is None and engine.is_modelled:
                    # Work that cannot start now (deferred, waiting for KV): modelled time must still move
                    # (timeouts, the governor's tick, arrivals), as wall time would while the loop spins.
                    _sleep_until_next(engine, schedule, next_index, offset_ns, injector, closed,
                                      now + int(IDLE_SLEEP_MAX_S * 1e9))
                if writer is not None and engine.governor.actions:
                    record_governor_actions(engine, writer)
            elif not arrivals_left:
                break
            else:
                _sleep_until_next(engine, schedule, next_index, offset_ns, injector, closed, end_ns)
            if progress is not None and time.perf_counter() >= next_progress:
                progress(engine.now_ns() - offset_ns, stats)
                next_progress = time.perf_counter() + 0.25
    finally:
        contention.stop_all()
    if writer is not None and cfg.governor is not None:
        record_governor_actions(engine, writer, final=True)
    return RunOutcome(stats=stats, wall_s=time.perf_counter() - started, aborted=aborted)


def record_governor_actions(engine, writer, *, final: bool = False) -> None:
    """The governor's decisions into control_actions, its knob changes into run_settings; at the end of a
    run, each tier's final online counters (what `slo report` must find on the same requests)."""
    from harness.faults import setting_value

    actions = engine.governor.drain_actions()
    if final:
        now = engine.now_ns()
        actions += [{"ts_ns": now, "action": "final_counters", "tier": row["tier"], "reason": "run_end",
                     "params_after": row} for row in engine.governor.summary()]
        actions.append({"ts_ns": now, "action": "final_counters", "tier": None, "reason": "length_predictor",
                        "params_after": engine.governor.predictor.accuracy()})
    for action in actions:
        writer.record_control_action(action)
        for name, value in (action.get("params_after") or {}).items() if action["action"] == "batching_depth" else ():
            writer.record_setting(name, action["ts_ns"], *setting_value(name, value))


def _admit(engine, spec: RequestSpec, offset_ns: int, seed: int, vocab: int, writer, stats: RunStats) -> None:
    spec = fit_to_model(spec, engine.model_config.max_position)
    arrival = spec.arrival_ns + offset_ns
    stats.scheduled_arrival[spec.request_id] = arrival
    stats.in_flight.add(spec.request_id)
    if writer is not None:
        writer.register_request(spec.request_id, arrival)
    tokens = prompt_token_ids(seed, spec.request_id, spec.prompt_tokens, vocab)
    engine.add_request(spec.request_id, tokens, spec.output_tokens, priority=spec.priority, tenant=spec.tenant,
                       arrival_ns=arrival)


def _abort_all(engine, stats: RunStats) -> int:
    pending = sorted(stats.in_flight)
    for request_id in pending:
        engine.abort(request_id)
    return len(pending)


def _sleep_until_next(engine, schedule, next_index, offset_ns, injector, closed, end_ns) -> None:
    candidates = [end_ns]
    if next_index < len(schedule):
        candidates.append(schedule[next_index].arrival_ns + offset_ns)
    due = injector.next_due_ns()
    if due is not None:
        candidates.append(due + offset_ns)
    if closed is not None and closed.ready:
        candidates.append(closed.ready[0][0])
    if engine.advance_to(min(candidates)):
        return   # the modelled clock: idle time passes at once
    wait_s = (min(candidates) - engine.now_ns()) / 1e9
    if wait_s > 0:
        time.sleep(min(wait_s, IDLE_SLEEP_MAX_S))


def prepare(cfg: RunConfig, seed: int | None):
    """Resolve the seed and rate and build the schedule (everything that can fail before the run starts)."""
    seed = cfg.seed if seed is None else seed
    cfg = cfg.with_overrides({"seed": seed})
    engine_config(cfg)  # the engine's own validation, before any work
    cfg, rate = resolve_rate(cfg, seed)
    limit = max_position(cfg)
    schedule = [fit_to_model(spec, limit) for spec in build_schedule(cfg, seed, rate)]
    if rate is None and cfg.workload.arrival == "trace":
        rate = len(schedule) / cfg.duration_s  # recorded as the offered rate of a trace or a replayed window
    return cfg, seed, rate, schedule


def run(cfg: RunConfig | str | Path, db_path: str | Path, seed: int | None = None, *, progress: bool = False,
        run_id: str | None = None) -> str:
    """Run ``cfg`` and write everything into the DuckDB file at ``db_path``; returns the run id."""
    from harness.engine import Engine
    from harness.writer import TelemetryWriter
    from causalsre.telemetry import connect_writable
    from causalsre.telemetry.schema import remove_database

    if not isinstance(cfg, RunConfig):
        cfg = load_run_config(cfg)
    cfg, seed, rate, schedule = prepare(cfg, seed)
    run_id = run_id or f"{cfg.name}-s{seed}-{uuid.uuid4().hex[:8]}"
    hardware = dict(hardware_info(cfg.engine.device), speed_probe=probe_speed(cfg))
    created = not Path(db_path).exists()
    con = connect_writable(db_path)
    status = "incomplete"
    writer = None
    try:
        first_id = max((spec.request_id for spec in schedule), default=-1) + 1
        closed = _ClosedLoop(cfg, seed, first_id) if cfg.workload.arrival == "closed" \
            and cfg.workload.requests is None else None
        stats = RunStats({}, on_done=closed.on_done if closed else None)
        writer = TelemetryWriter(con, run_id, path=db_path)
        engine = Engine(engine_config(cfg), observer=TeeObserver(writer, stats), governor=cfg.governor_config(),
                        clock=cfg.step_cost_model())
        started_at = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(microseconds=engine.now_ns() / 1e3)
        writer.start(_runs_row(cfg, seed, rate, started_at, hardware))
        with _progress_bar(cfg, enabled=progress) as update:
            try:
                drive(cfg, engine, seed=seed, rate=rate, writer=writer, stats=stats, closed=closed,
                      schedule=schedule, progress=update)
                status = "incomplete" if writer.failed else "complete"
            finally:
                writer.close(status)
    except BaseException:
        _close_quietly(con)
        if created and (writer is None or not writer.started):
            remove_database(db_path)  # nothing of this run was written: leave no new, empty database behind
        raise
    _close_quietly(con)
    return run_id


def _close_quietly(con) -> None:
    """Close a connection a fatal write error may have invalidated; the first error is the one to report."""
    import duckdb

    try:
        con.close()
    except duckdb.Error:
        pass


def _runs_row(cfg: RunConfig, seed: int, rate: float | None, started_at, hardware: dict) -> dict:
    from harness.settings import RUNS_COLUMNS

    row = {column: getattr(cfg.engine, name) for column, name in RUNS_COLUMNS.items()}
    row.update(kind="harness", name=cfg.name, started_at=started_at, seed=seed,
               arrival_process=cfg.workload.arrival, arrival_rate=rate, burstiness=cfg.workload.burstiness,
               hardware_json=hardware, config_json=cfg.to_json_dict())
    return row


def _progress_bar(cfg: RunConfig, *, enabled: bool):
    from harness.progress import live_progress

    return live_progress(cfg.name, cfg.duration_s, enabled=enabled)

"""Replaying a recorded window with an intervention: the same requests, at the same offsets, on a changed engine.

The window's requests (scheduled arrival, lengths, tenant, priority, id) are read from the source run and
become an explicit workload; the run's seed is kept, so prompts (derived from seed and request id) are the
same. The non-workload faults overlapping the window are kept too (config pushes, KV shrinks, hardware
faults), shifted to the window's clock: one already in force at the window's start applies from t0. Then the overrides (the intervention) are applied and the result is run into ``db_out``.
A closed loop is replayed as a closed loop instead (its clients, fresh requests from its seed; see
:func:`window_config`), so its ``workload.concurrency`` can be set like a knob.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from causalsre.errors import UserError
from causalsre.telemetry import connect_readonly
from harness.config import RunConfig, parse_run_config
from harness.faults import FAULT_FACTORS, WORKLOAD
from causalsre.telemetry.schema import first_row

Window = str | tuple[float, float]
WORKLOAD_FAULTS = {kind for kind, (family, _) in FAULT_FACTORS.items() if family == WORKLOAD}


def _window_ns(con, run_id: str, window: Window) -> tuple[int, int, str]:
    if isinstance(window, str):
        row = first_row(con.execute("SELECT start_ns, end_ns FROM phases WHERE run_id = ? AND name = ?",
                          [run_id, window]))
        if row is None:
            names = [r[0] for r in con.execute("SELECT name FROM phases WHERE run_id = ?", [run_id]).fetchall()]
            raise UserError(f"run {run_id} has no phase {window!r}", f"use one of {names} or a (start_s, end_s)")
        return int(row[0]), int(row[1]), window
    start_s, end_s = window
    if not end_s > start_s >= 0:
        raise UserError(f"bad replay window {window!r}", "give (start_s, end_s) with 0 <= start_s < end_s")
    return int(start_s * 1e9), int(end_s * 1e9), f"{start_s:g}-{end_s:g}s"


def window_config(db_path: str | Path, run_id: str, window: Window) -> RunConfig:
    """The config that replays ``window`` of ``run_id`` (before any intervention)."""
    con = connect_readonly(db_path)
    try:
        row = first_row(con.execute("SELECT config_json, seed FROM runs WHERE run_id = ?", [run_id]))
        if row is None:
            raise UserError(f"run {run_id!r} is not in {db_path}", "list runs with `causalsre db info`")
        cfg = parse_run_config(json.loads(row[0]), source=f"run {run_id}")
        start_ns, end_ns, label = _window_ns(con, run_id, window)
        requests = con.execute(
            "SELECT COALESCE(scheduled_arrival_ns, enqueue_ns), prompt_tokens, target_output_tokens, tenant, "
            "COALESCE(priority, 0), request_id FROM requests WHERE run_id = ? "
            "AND COALESCE(scheduled_arrival_ns, enqueue_ns) >= ? AND COALESCE(scheduled_arrival_ns, enqueue_ns) < ? "
            "ORDER BY 1, request_id", [run_id, start_ns, end_ns]).fetchall()
        phase_t0 = first_row(con.execute("SELECT min(start_ns) FROM phases WHERE run_id = ?", [run_id]))[0]
        phases = con.execute("SELECT name, start_ns, end_ns FROM phases WHERE run_id = ? AND end_ns > ? "
                             "AND start_ns < ?", [run_id, start_ns, end_ns]).fetchall()
    finally:
        con.close()
    # The scheduled times are on the engine clock; the config's fault times are from the schedule's t0.
    offset_ns = _schedule_offset(cfg, phase_t0)
    w0, w1 = (start_ns - offset_ns) / 1e9, (end_ns - offset_ns) / 1e9
    if isinstance(window, tuple):
        w0, w1 = window
    duration = w1 - w0
    # A closed loop's arrivals are the server's answers: replayed at their recorded times they would be an open
    # loop that no longer waits for the (changed) engine, and fewer clients could not be replayed at all. So a
    # closed loop is replayed as a closed loop, its clients and seed kept, its workload faults (longer lengths,
    # floods) kept with the others; the clients' requests are drawn afresh, not the recorded ones.
    closed = cfg.workload.arrival == "closed"
    faults = []
    for fault in cfg.faults:
        end = fault.end_s if fault.end_s is not None else float("inf")
        if (fault.kind in WORKLOAD_FAULTS and not closed) or end <= w0 or fault.at_s >= w1:
            continue  # an open loop's workload faults are already in the recorded requests
        shifted = fault.model_dump()
        shifted["at_s"] = max(fault.at_s - w0, 0.0)  # in force at the window's start: from t0 of the replay
        shifted["end_s"] = None if fault.end_s is None or fault.end_s >= w1 else fault.end_s - w0
        faults.append(shifted)
    explicit = [((a - start_ns) / 1e9, p, o, t, pr, rid) for a, p, o, t, pr, rid in requests]
    new_phases = [{"name": n, "start_s": max(s - start_ns, 0) / 1e9, "end_s": min(e - start_ns, end_ns - start_ns) / 1e9}
                  for n, s, e in phases]
    data = cfg.model_dump()
    if not closed:
        data["workload"].update(requests=explicit, arrival="trace", rate=None, load_fraction=None)
    data.update(name=f"replay-{cfg.name}-{label}", duration_s=duration, faults=faults, phases=new_phases,
                description=f"replay of {run_id} window {label}")
    return parse_run_config(data, source=f"replay of {run_id}")


def _schedule_offset(cfg: RunConfig, phase_t0: int | None) -> int:
    """Engine-clock ns of the schedule's t0; phases start at offset + start_s, so derive it from them."""
    if phase_t0 is None or not cfg.phases:
        return 0
    return int(phase_t0 - min(p.start_s for p in cfg.phases) * 1e9)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: the same resolved path (symlinks, ``..``) or a hard link."""
    first, second = Path(a), Path(b)
    if first.resolve() == second.resolve():
        return True
    try:
        return first.exists() and second.exists() and os.path.samefile(first, second)
    except OSError:
        return False


def replay_window(db_path_src: str | Path, run_id: str, window: Window, overrides: dict[str, Any] | None,
                  db_path_out: str | Path, *, progress: bool = False, target: Any = None,
                  engine: str | None = None) -> str:
    """Replay ``window`` (a phase name or (start_s, end_s) from the schedule's t0) with ``overrides``.

    With ``target`` (a :class:`harness.http_target.Target`) or ``engine="vllm"`` the replay drives that
    server instead of the embedded engine (:func:`harness.http_run.run_http`), whatever ran the source.
    """
    from harness.runner import run

    if same_file(db_path_src, db_path_out):
        raise UserError(f"the replay would write into its source database {db_path_src}",
                        "give another --db for the replay (the source is only read)")
    cfg = window_config(db_path_src, run_id, window)
    if overrides:
        cfg = cfg.with_overrides(overrides)
    if target is not None or engine is not None:
        from harness.http_run import run_http

        return run_http(cfg, db_path_out, cfg.seed, target=target, engine=engine, progress=progress)
    return run(cfg, db_path_out, seed=cfg.seed, progress=progress)


__all__ = ["replay_window", "window_config"]

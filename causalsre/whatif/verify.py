"""``whatif --verify``: replay the window's workload through the harness with the intervention applied.

The replay keeps the recorded arrivals, lengths, tenants and seed and the window's hardware faults
(``harness.replay.window_config``). An intervention do(knob = v) holds the knob at v for the whole window,
so a config push or fault that would change that same knob during the window is removed from the replay.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import json
import math

from causalsre.errors import UserError
from harness.settings import ALL_SETTINGS, INTEGER_KNOBS, REPLAY_KNOBS, REPLAY_WORKLOAD
from harness.settings import knob as knob_setting
from causalsre.telemetry import first_row

# Beyond this (recorded step time / replay step time, either way) the replay machine is not the recording's:
# measured and predicted then differ for a reason no model of the recording can see. The probe itself
# varies by 10-13 % (coefficient of variation) between back-to-back probes on the quiet 2-core machine, so a
# ratio of two probes needs about 1.4x before it says more than the probe's own noise.
SPEED_TOLERANCE = 1.4

# Graph knob -> (harness config key, fault kinds that set the same factor), from the settings table.
KNOB_CONFIG = REPLAY_KNOBS
_INTEGER_KNOBS = INTEGER_KNOBS


def check_intervention(knob: str, value: object) -> object:
    """An intervention's value checked as the harness would check it: finite always, and for a knob of the
    settings table within its bounds and integral where it is integral (``--set max_num_seqs=nan`` fails here,
    before any model is fitted). Returns the value (an integral float stays a float for the models)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"--set {knob}={value} is not a finite number", f"give {knob} a finite value")
    if knob in KNOB_CONFIG:
        knob_setting(knob).check(value, coerce=True)
    elif knob in REPLAY_WORKLOAD:
        ALL_SETTINGS[knob].check(value, coerce=True)
    return value


def harness_overrides(interventions: dict) -> dict:
    out = {}
    for knob, value in interventions.items():
        if knob in REPLAY_WORKLOAD:
            clients = ALL_SETTINGS[knob].check(value, coerce=True)
            if clients is None:
                raise UserError(f"--set {knob} needs a number of clients", f"write --set {knob}=N (N >= 1)")
            out[REPLAY_WORKLOAD[knob]] = int(clients)
            continue
        if knob not in KNOB_CONFIG:
            raise UserError(f"the harness cannot set {knob}",
                            f"verify one of {', '.join([*KNOB_CONFIG, *REPLAY_WORKLOAD])}")
        out[KNOB_CONFIG[knob][0]] = knob_setting(knob).check(value, coerce=True)
    return out


def check_closed_loop(cfg, interventions: dict) -> None:
    """A closed loop's clients can be set only on a closed-loop replay: an open loop's replay sends the
    recorded requests at their recorded times, and has no clients to set (a silent no-op otherwise)."""
    for knob in interventions:
        if knob in REPLAY_WORKLOAD and cfg.workload.arrival != "closed":
            raise UserError(f"cannot set {knob}: the window is an open loop ({cfg.workload.arrival} arrivals), "
                            "which has no clients", f"set {knob} only on a closed-loop window "
                            "(workload.arrival: closed), or set the engine's knobs")


def intervened_config(db_path: str | Path, run_id: str, phase: str, interventions: dict, extra: dict | None = None):
    """The replay config of one run's phase with do(interventions) applied for the whole window."""
    from harness.replay import window_config

    return intervened_config_from(window_config(db_path, run_id, phase), interventions, extra)


def intervened_config_from(cfg, interventions: dict, extra: dict | None = None):
    """``cfg`` (a replay config) with do(interventions): pushes and faults of those knobs removed. ``extra``:
    further config overrides applied with them in one validation (``{"governor": {...}}`` for
    ``policy=budget``, which the config refuses without tiers)."""
    check_closed_loop(cfg, interventions)
    data = cfg.model_dump()
    faults = []
    for fault in data["faults"]:
        if fault["kind"] == "config_push":
            knobs = {k: v for k, v in fault["knobs"].items() if k not in interventions}
            if not knobs:
                continue
            fault["knobs"] = knobs
        if any(fault["kind"] in KNOB_CONFIG[k][1] for k in interventions if k in KNOB_CONFIG):
            continue
        faults.append(fault)
    cfg = cfg.with_overrides({"faults": faults}) if faults != data["faults"] else cfg
    return cfg.with_overrides({**(extra or {}), **harness_overrides(interventions)})


def verify(ctx, window_text: str, interventions: dict, *, out_db: str | Path | None = None,
           progress: bool = False, extra: dict | None = None) -> dict:
    """Replay every run of a phase window with the intervention (and ``extra`` config overrides, see
    :func:`intervened_config_from`); measured bad and burn rate over all."""
    from causalsre.causal import build_analysis_table
    from causalsre.telemetry import connect_readonly
    from causalsre.windows import Window
    from harness.runner import run

    window = ctx.window(window_text)
    if window.phase is None:
        raise UserError(f"--verify needs a phase window, not {window_text!r}",
                        "write --window phase:NAME or phase:NAME@RUN_ID")
    runs = sorted(ctx.table(window_text)["run_id"].unique())
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(out_db) if out_db else Path(scratch) / "verify.duckdb"
        run_ids = []
        for rid in runs:
            cfg = intervened_config(ctx.db_path, rid, window.phase, interventions, extra)
            run_ids.append(run(cfg, out, seed=cfg.seed, progress=progress))
        con = connect_readonly(out)
        try:
            tables = [build_analysis_table(con, ctx.slo, window=Window(label=f"replay {r}", run_id=r, phase=window.phase))
                      for r in run_ids]
            replayed_ms = [decode_step_ms(con, r) for r in run_ids]
        finally:
            con.close()
    recorded_ms = [decode_step_ms(ctx.con, r) for r in runs]
    bad = sum(int(t["is_bad"].sum()) for t in tables)
    total = sum(len(t) for t in tables)
    bad_rate = bad / total
    return {"burn_rate": bad_rate / (1.0 - ctx.objective), "bad_rate": bad_rate, "requests": total,
            "replayed_runs": run_ids, "speed_ratio": speed_ratio(recorded_ms, replayed_ms),
            "latency": _latency_quantiles(tables)}


def replay(ctx, window_text: str, change, *, seed_offset: int = 0) -> dict:
    """Replay every run of a phase window with ``change(cfg, run_id) -> cfg`` applied (``eval whatif --data``:
    a reverted fault or workload, which no ``--set`` can express). ``seed_offset`` re-seeds the engine, to
    measure the replay's own run-to-run noise. Returns bad_rate, requests and speed_ratio over all runs."""
    from causalsre.causal import build_analysis_table
    from causalsre.telemetry import connect_readonly
    from causalsre.windows import Window
    from harness.replay import window_config
    from harness.runner import run

    phase = ctx.window(window_text).phase
    runs = sorted(ctx.table(window_text)["run_id"].unique())
    with tempfile.TemporaryDirectory() as scratch:
        out, run_ids = Path(scratch) / "replay.duckdb", []
        for rid in runs:
            cfg = change(window_config(ctx.db_path, rid, phase), rid)
            run_ids.append(run(cfg, out, seed=cfg.seed + seed_offset))
        con = connect_readonly(out)
        try:
            tables = [build_analysis_table(con, ctx.slo, window=Window(label=f"replay {r}", run_id=r, phase=phase))
                      for r in run_ids]
            replayed_ms = [decode_step_ms(con, r) for r in run_ids]
        finally:
            con.close()
    total = sum(len(t) for t in tables)
    return {"bad_rate": sum(int(t["is_bad"].sum()) for t in tables) / total if total else 0.0, "requests": total,
            "speed_ratio": speed_ratio([decode_step_ms(ctx.con, r) for r in runs], replayed_ms)}


def _latency_quantiles(tables: list) -> dict:
    """p50/p90 of each latency metric over the replayed requests that have it (for ``whatif --latency``)."""
    import pandas as pd

    from causalsre.bayes.latency import LATENCY_METRICS, observed_quantiles

    pooled = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return {m: observed_quantiles(pooled, m) for m in LATENCY_METRICS if m in pooled.columns}


def decode_step_ms(con, run_id: str) -> float | None:
    """The run's speed probe (ms per decode step of the harness's fixed mini-workload), None if not recorded."""
    row = first_row(con.execute("SELECT hardware_json->'speed_probe'->>'decode_step_ms' FROM runs WHERE run_id = ?",
                      [run_id]))
    try:
        return float(row[0]) if row and row[0] is not None else None
    except ValueError:
        return None


def speed_ratio(recorded_ms: list, replayed_ms: list) -> float | None:
    """Geometric mean of recorded / replayed decode-step time over the runs: 2 means the replay ran on a machine
    twice as fast (and so saw half the load). None when a run of either side has no probe."""
    pairs = list(zip(recorded_ms, replayed_ms))
    if not pairs or any(a is None or b is None or a <= 0 or b <= 0 for a, b in pairs):
        return None
    return math.exp(sum(math.log(a / b) for a, b in pairs) / len(pairs))


def speed_warning(ratio: float | None) -> str | None:
    if ratio is None:
        return ("the recording has no speed probe, so whether the replay machine is as fast as the recording's "
                "is unknown; re-record with this harness to compare like with like")
    if ratio > SPEED_TOLERANCE or ratio < 1 / SPEED_TOLERANCE:
        faster = f"{ratio:.2f}x faster" if ratio > 1 else f"{1 / ratio:.2f}x slower"
        return (f"the replay machine ran the speed probe {faster} than the recording's: measured and predicted "
                "differ for that reason too; verify on the recording's machine, or re-record here")
    return None

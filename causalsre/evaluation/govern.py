"""``causalsre eval govern``: the budget governor against FCFS, priority, fair-share and deadline policies.

For each workload (gamma bursts; the Azure conversation trace when its file is there), each load (a multiple
of the calibrated capacity) and each seed, every policy runs on the same requests (:mod:`.govern_traffic`)
into its own DuckDB under ``out_dir``. Each tier's events, bad events and budget consumed come from the SLO
package (:func:`causalsre.slo.report.build_report`, the ``slo report`` machinery) with the tier's OpenSLO spec,
written next to the databases, filtered by the tier's tenants. The targets of issue 15 are computed from the
runs (:mod:`.govern_targets`), never assumed.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

from causalsre.errors import UserError
from causalsre.evaluation import govern_traffic as T
from causalsre.evaluation.govern_targets import summarize_targets

POLICIES = ("fcfs", "priority", "vtc", "edf", "budget")
DEFAULT_LOADS = (0.8, 1.0, 1.3, 1.6)
ACTIONS_TABLE = "control_actions"   # the governor's decisions (migration 0004), where the schema has it
SPEC_TEMPLATE = """apiVersion: openslo/v1
kind: SLO
metadata: {{name: {name}}}
spec:
  service: llm-serving
  description: eval govern tier {name} (tenants {tenants}), thresholds calibrated at half load.
  indicator:
    metadata: {{name: ttft-and-tpot}}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: causalsre
            spec:
              conditions:
                - {{metric: ttft_s, op: lte, value: {ttft_s}}}
                - {{metric: tpot_s, op: lte, value: {tpot_s}}}
        total: {{metricSource: {{type: causalsre}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{displayName: good, target: {objective}}}]
"""


def check_options(loads, seeds: int, policies, duration_s: float) -> list[str]:
    """The options as given, checked before any work; returns the policies to run."""
    from harness.engine.settings import POLICIES as ENGINE_POLICIES
    from harness.settings import MAX_LOAD_FRACTION

    for load in loads:
        if not (math.isfinite(load) and 0 < load <= MAX_LOAD_FRACTION):
            raise UserError(f"--load {load} is not a multiple of capacity in (0, {MAX_LOAD_FRACTION:g}]",
                            "write e.g. --load 1.3")
    if seeds < 1:
        raise UserError(f"--seeds {seeds} is below 1", "run at least one seed")
    if not (math.isfinite(duration_s) and 1 <= duration_s <= 3600):
        raise UserError(f"--duration-s {duration_s} is not in [1, 3600]", "write e.g. --duration-s 20")
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise UserError(f"unknown policy {unknown[0]!r}", f"use some of {', '.join(POLICIES)}")
    missing = [p for p in policies if p not in ENGINE_POLICIES]
    if missing:
        raise UserError(f"policy {missing[0]!r} is not in this engine (it has {', '.join(ENGINE_POLICIES)})",
                        "leave it out of --policies")
    return list(dict.fromkeys(policies))


def default_policies() -> list[str]:
    from harness.engine.settings import POLICIES as ENGINE_POLICIES

    return [p for p in POLICIES if p in ENGINE_POLICIES]


def tier_slos(out_dir: Path, workload: str, thresholds: dict[str, float]) -> list[tuple[str, Any, Path]]:
    """(tier, SLOSpec, spec file) per tier: the OpenSLO spec is written to disk so `slo report` can re-check it."""
    from causalsre.slo import load_slos

    out = []
    for name, _, objective, _, _ in T.TIERS:
        path = out_dir / workload / f"slo-{name}.yaml"
        path.write_text(SPEC_TEMPLATE.format(name=name, tenants=name, objective=objective, **{
            k: thresholds[k] for k in ("ttft_s", "tpot_s")}))
        out.append((name, load_slos(path)[0], path))
    return out


def measure_run(db_path: Path, slos: list[tuple[str, Any, Path]]) -> dict[str, Any]:
    """Throughput, goodput, per-tier budgets, rejections, governor actions and the request hash of one run."""
    from causalsre.slo.report import build_report
    from causalsre.slo.sql import request_outcomes
    from causalsre.telemetry import connect_readonly

    con = connect_readonly(db_path)
    try:
        tiers, burndown, good = [], {}, 0
        for name, slo, _ in slos:
            if not con.execute("SELECT count(*) FROM request_metrics WHERE tenant = ?", [name]).fetchone()[0]:
                # no request of this tier in the run (slo report refuses an empty filter): no data, no budget used
                tiers.append({"tier": name, "objective": slo.objective, "events": 0, "bad_events": 0,
                              "budget_consumed": None})
                burndown[name] = {"t_s": [], "remaining": []}
                continue
            report = build_report(con, [slo], where={"tenant": name}, per_run=False)[0]
            tiers.append({"tier": name, "objective": slo.objective, "events": report["events"],
                          "bad_events": report["bad_events"], "budget_consumed": report["budget_consumed"]})
            good += report["events"] - report["bad_events"]
            outcomes = request_outcomes(con, slo, {"tenant": name})
            burndown[name] = _burndown(outcomes, slo.error_budget)
        span_s, tokens = con.execute(
            "SELECT (max(arrival_ns + COALESCE(e2e_s, 0) * 1e9) - min(arrival_ns)) / 1e9, "
            "sum(output_tokens) FILTER (WHERE is_ok) FROM request_metrics").fetchone()
        rejected = con.execute("SELECT count(*) FROM requests WHERE status = 'rejected'").fetchone()[0]
        has_actions = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                  [ACTIONS_TABLE]).fetchone()[0]
        # the run-end row of final counters is bookkeeping, not a decision
        actions = con.execute("SELECT count(*) FROM control_actions WHERE action <> ?",
                              ["final_counters"]).fetchone()[0] if has_actions else 0
        digest = T.recorded_requests_hash(con)
        speed = T.speed_probe_ms(con)
    finally:
        con.close()
    span_s = float(span_s or 0.0)
    return {"throughput_tok_s": round(float(tokens or 0) / span_s, 2) if span_s > 0 else None,
            "goodput_rps": round(good / span_s, 3) if span_s > 0 else None, "tiers": tiers,
            "rejected": int(rejected), "actions": int(actions), "_hash": digest, "_burndown": burndown,
            "_speed_ms": speed}


def _burndown(outcomes, budget: float) -> dict[str, list[float]]:
    """Budget remaining over the run: 1 - bad events so far / (budget x the run's events), ends at 1 - consumed."""
    if outcomes.empty or budget <= 0:
        return {"t_s": [], "remaining": []}
    start = outcomes["arrival_ts"].min()
    seconds = (outcomes["arrival_ts"] - start).dt.total_seconds().round(3).tolist()
    remaining = (1.0 - outcomes["is_bad"].astype(int).cumsum() / (budget * len(outcomes))).round(4).tolist()
    return {"t_s": seconds, "remaining": remaining}


def evaluate_govern(out_dir: str | Path, *, loads=DEFAULT_LOADS, seeds: int = 2, policies=None,
                    duration_s: float = 20.0, workloads=T.WORKLOADS, trace_path: str | Path = T.DEFAULT_TRACE,
                    quick: bool = False, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every (workload, load, seed, policy) and return ``{"runs", "summary", "setup", "burndown"}``."""
    from harness.runner import run

    say = progress or (lambda message: None)
    policies = check_options(loads, seeds, default_policies() if policies is None else policies, duration_s)
    if quick:
        duration_s = min(duration_s, 4.0)
    drain_s = 2.0 if quick else 5.0
    out_dir = Path(out_dir)
    if (out_dir / "govern.json").exists():
        raise UserError(f"{out_dir} already holds an evaluation (govern.json)", "pass a new --out folder")
    os.environ.setdefault("OMP_NUM_THREADS", "1")   # one engine thread per run, as in the shipped scenarios
    setup: dict[str, Any] = {"policies": policies, "loads": list(loads), "seeds": seeds, "duration_s": duration_s,
                             "drain_timeout_s": drain_s, "machine_load_start": _loadavg(), "workloads": {},
                             "skipped": {}, "cases": []}
    runs, burndown, speeds = [], {}, {}
    active = _available_workloads(workloads, trace_path, setup["skipped"], say)
    total = len(active) * len(loads) * seeds * len(policies)
    done, started = 0, time.perf_counter()
    for workload in active:
        (out_dir / workload).mkdir(parents=True, exist_ok=True)
        lengths = T.workload_lengths(workload, trace_path)
        say(f"{workload}: calibrating capacity")
        capacity = T.calibrate(workload, lengths, seed=0, max_seconds=T.probe_seconds(quick))
        thresholds = _calibrate_latency(out_dir / workload, workload, lengths, capacity, duration_s, drain_s,
                                        trace_path, say)
        slos = tier_slos(out_dir, workload, thresholds)
        setup["workloads"][workload] = {"capacity_rps": round(capacity, 3), "thresholds": thresholds,
                                        "slo_specs": {n: str(p) for n, _, p in slos}}
        for load in loads:
            for seed in range(seeds):
                requests = T.schedule(workload, load=load, seed=seed, capacity=capacity, duration_s=duration_s,
                                      lengths=lengths, trace_path=trace_path)
                hashes = {}
                for policy in policies:
                    done += 1
                    say(f"[{done}/{total}] {workload} load {load:g} seed {seed} {policy} "
                        f"({len(requests)} requests, {time.perf_counter() - started:.0f} s so far)")
                    db = out_dir / workload / f"x{load:g}-s{seed}-{policy}.duckdb"
                    if db.exists():
                        raise UserError(f"{db} already exists", "pass a new --out folder")
                    cfg = T.policy_config(workload, policy, requests=requests, load=load, capacity=capacity,
                                          seed=seed, duration_s=duration_s, drain_s=drain_s, thresholds=thresholds)
                    run(_parse(cfg), db, seed=seed, run_id=f"govern-{workload}-x{load:g}-s{seed}-{policy}")
                    measured = measure_run(db, slos)
                    hashes[policy] = measured.pop("_hash")
                    burndown[(workload, load, seed, policy)] = measured.pop("_burndown")
                    speeds.setdefault(workload, []).append(measured.pop("_speed_ms"))
                    runs.append({"load": load, "workload": workload, "seed": seed, "policy": policy, **measured})
                same = len(set(hashes.values())) == 1
                setup["cases"].append({"workload": workload, "load": load, "seed": seed, "requests": len(requests),
                                       "requests_sha256": hashes, "same_requests": same})
                if not same:
                    raise UserError(f"the policies of {workload} load {load:g} seed {seed} recorded different "
                                    "requests", f"this is a bug; the databases are in {out_dir / workload}")
    setup["speed_drift"] = _speed_drift(speeds, setup, say)
    setup["machine_load_end"] = _loadavg()
    setup["seconds"] = round(time.perf_counter() - started, 1)
    result = {"runs": runs, "summary": summarize_targets(runs), "setup": setup}
    (out_dir / "govern.json").write_text(json.dumps(result, indent=2) + "\n")
    result["burndown"] = burndown   # for the HTML report only (tuple keys: not part of the JSON)
    return result


def _speed_drift(speeds: dict[str, list], setup: dict, say) -> dict[str, Any]:
    """Slowest / fastest speed-probe decode step over a workload's calibration and runs: the calibration holds
    only while the machine keeps its speed, so a drift well above 1 says the loads are not the multiples named."""
    drift = {}
    for workload, values in speeds.items():
        values = [v for v in [setup["workloads"][workload]["thresholds"].get("calibration_speed_ms")] + values if v]
        if values:
            drift[workload] = round(max(values) / min(values), 2)
            if drift[workload] > 1.5:
                say(f"warning: {workload}: the machine's speed probe moved {drift[workload]:g}x between the "
                    "calibration and the runs; the loads are not the multiples of capacity they are named")
    return drift


def _available_workloads(workloads, trace_path, skipped: dict, say) -> list[str]:
    unknown = [w for w in workloads if w not in T.WORKLOADS]
    if unknown:
        raise UserError(f"unknown workload {unknown[0]!r}", f"use some of {', '.join(T.WORKLOADS)}")
    active = []
    for workload in dict.fromkeys(workloads):
        if workload == "azure" and not Path(trace_path).is_file():
            skipped[workload] = f"trace file {trace_path} is not there"
            say(f"skipping the azure workload: trace file {trace_path} is not there (pass --trace PATH)")
            continue
        active.append(workload)
    if not active:
        raise UserError("no workload left to run", "add --workload gamma, or pass --trace with the Azure trace")
    return active


def _calibrate_latency(folder: Path, workload, lengths, capacity, duration_s, drain_s, trace_path, say) -> dict:
    """One FCFS run at half load; the thresholds every tier's SLO uses (govern_traffic's rule)."""
    from harness.runner import run

    say(f"{workload}: half-load run for the latency objectives ({capacity:.2f} req/s capacity)")
    db = folder / "calibration.duckdb"
    if db.exists():
        raise UserError(f"{db} already exists", "pass a new --out folder")
    requests = T.schedule(workload, load=T.CALIBRATION_LOAD, seed=0, capacity=capacity, duration_s=duration_s,
                          lengths=lengths, trace_path=trace_path)
    cfg = T.policy_config(workload, "fcfs", requests=requests, load=T.CALIBRATION_LOAD, capacity=capacity, seed=0,
                          duration_s=duration_s, drain_s=drain_s, thresholds=None)
    run(_parse(cfg), db, seed=0, run_id=f"govern-{workload}-calibration")
    thresholds = T.latency_thresholds(db)
    from causalsre.telemetry import connect_readonly

    con = connect_readonly(db)
    try:
        thresholds["calibration_speed_ms"] = T.speed_probe_ms(con)
    finally:
        con.close()
    return dict(thresholds, rule=f"{T.LATENCY_FACTOR:g} x p{100 * T.LATENCY_QUANTILE:g} of ok requests at "
                                 f"{T.CALIBRATION_LOAD:g}x load (FCFS)", calibration_db=str(db))


def _parse(cfg: dict):
    from harness.config import parse_run_config

    return parse_run_config(cfg, source=cfg["name"])


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None

"""``causalsre eval govern``: the budget governor against FCFS, priority, fair-share and deadline policies.

For each workload (gamma bursts; the Azure conversation trace when its file is there), each load (a multiple
of the calibrated capacity) and each seed, every policy runs on the same requests (:mod:`.govern_traffic`)
into its own DuckDB under ``out_dir``. Each tier's events, bad events and budget consumed come from the SLO
package (:func:`causalsre.slo.report.build_report`, the ``slo report`` machinery) with the tier's OpenSLO spec,
written next to the databases, filtered by the tier's tenants. The targets of issue 15 are computed from the
runs (:mod:`.govern_targets`), never assumed. The embedded engine runs on the modelled clock by default
(:mod:`.govern_clock`): the machine's load then moves how long the evaluation takes, not its numbers.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

from causalsre.errors import UserError
from causalsre.evaluation import govern_clock as C
from causalsre.evaluation import govern_calibration as K
from causalsre.evaluation import govern_traffic as T
from causalsre.evaluation.govern_measure import (SPEED_TOLERANCE, close_group,  # noqa: F401
                                                 measure_run, tier_slos, tier_spec_yaml)
from causalsre.evaluation.govern_targets import summarize_targets

POLICIES = ("fcfs", "priority", "vtc", "edf", "budget")
DEFAULT_LOADS = (0.8, 1.0, 1.3, 1.6)
TARGETS = ("engine", "vllm")   # the embedded engine, or the gateway in front of the real vLLM peer


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


def evaluate_govern(out_dir: str | Path, *, loads=DEFAULT_LOADS, seeds: int = 2, policies=None,
                    duration_s: float = 20.0, workloads=T.WORKLOADS, trace_path: str | Path = T.DEFAULT_TRACE,
                    quick: bool = False, target: str = "engine", clock: str | None = None,
                    clock_model: str | Path | None = None, first_seed: int = 0,
                    calibration_from: str | Path | None = None,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every (workload, load, seed, policy) and return ``{"runs", "summary", "setup", "burndown"}``.

    Each (workload, load, seed) is a group: speed probe and capacity re-measured just before it, thresholds
    held in machine time, every policy back to back on the same requests in an order rotated per group, and
    the group flagged when the speed probe moved more than ``SPEED_TOLERANCE`` during it. ``target="vllm"``:
    the same through the gateway in front of the real vLLM peer (:mod:`.govern_vllm`). ``clock``: ``modelled``
    (the engine's default: no group is flagged, the machine's speed does not enter the timings) or ``wall``;
    ``clock_model``: a step-cost model file to reuse instead of fitting one; seeds are ``first_seed`` onwards."""
    say = progress or (lambda message: None)
    if target not in TARGETS:
        raise UserError(f"unknown target {target!r}", f"use one of {', '.join(TARGETS)}")
    if policies is None:
        policies = default_policies()
        if target == "vllm":
            from causalsre.evaluation.govern_vllm import GATEWAY_POLICIES

            policies = [p for p in policies if p in GATEWAY_POLICIES]
    policies = check_options(loads, seeds, policies, duration_s)
    clock = C.check_clock(clock, target, clock_model)
    if calibration_from is not None and (clock != "modelled" or target != "engine"):
        raise UserError("--calibration-from reuses a modelled-clock calibration",
                        "use it with the engine target on the modelled clock, or drop it")
    if isinstance(first_seed, bool) or not isinstance(first_seed, int) or not 0 <= first_seed <= 2**32 - 1 - seeds:
        raise UserError(f"--first-seed {first_seed} is not in [0, 2**32 - 1 - seeds]", "write e.g. --first-seed 0")
    if target == "vllm":
        from causalsre.evaluation import govern_vllm as V

        V.check_policies(policies)
        V.check_available()
    if quick:
        duration_s = min(duration_s, 4.0)
    drain_s = 2.0 if quick else 5.0
    out_dir = Path(out_dir)
    if (out_dir / "govern.json").exists():
        raise UserError(f"{out_dir} already holds an evaluation (govern.json)", "pass a new --out folder")
    os.environ.setdefault("OMP_NUM_THREADS", "1")   # one engine thread per run, as in the shipped scenarios
    setup: dict[str, Any] = {"target": target, "policies": policies, "loads": list(loads), "seeds": seeds,
                             "duration_s": duration_s, "drain_timeout_s": drain_s, "machine_load_start": _loadavg(),
                             "speed_tolerance": SPEED_TOLERANCE, "workloads": {}, "skipped": {}, "cases": [],
                             "first_seed": first_seed}
    runs, burndown, speeds = [], {}, {}
    active = _available_workloads(workloads, trace_path, setup["skipped"], say)
    ctx = {"total": len(active) * len(loads) * seeds * len(policies), "done": 0, "started": time.perf_counter(),
           "say": say, "duration_s": duration_s, "drain_s": drain_s, "trace_path": trace_path, "quick": quick,
           "out_dir": out_dir, "clock": None}
    server = gateway = None
    ctx["clock"], setup["clock"] = C.resolve_clock(clock, clock_model, out_dir, say)
    try:
        if target == "vllm":
            out_dir.mkdir(parents=True, exist_ok=True)
            setup["note"] = V.NOTE
            server, gateway = V.open_vllm(ctx, say)
            setup["vllm"] = {"flags": ctx["vllm_flags"], "log": ctx["vllm_log"], "gateway_concurrency":
                             ctx["concurrency"]}
        for workload in active:
            folder = out_dir / workload
            folder.mkdir(parents=True, exist_ok=True)
            lengths = T.workload_lengths(workload, trace_path)
            say(f"{workload}: calibrating capacity")
            if target == "vllm":
                capacity, thresholds = V.calibrate_workload(ctx, folder, workload, lengths)
            elif calibration_from is not None:
                capacity, thresholds = K.reused_calibration(calibration_from, workload, setup["clock"],
                                                            T.latency_factor(modelled=True))
                say(f"{workload}: capacity and thresholds from {calibration_from}")
                ctx["capacity", workload] = capacity
            else:
                capacity = T.calibrate(workload, lengths, seed=0, max_seconds=T.probe_seconds(quick),
                                       clock=ctx["clock"])
                thresholds = _calibrate_latency(folder, workload, lengths, capacity, duration_s, drain_s,
                                                trace_path, say, clock=ctx["clock"], quick=quick)
                ctx["capacity", workload] = capacity
            slos = tier_slos(folder, thresholds)
            setup["workloads"][workload] = {"capacity_rps": round(capacity, 3), "thresholds": thresholds,
                                            "slo_specs": {n: str(p) for n, _, p in slos}}
            seed_list = range(first_seed, first_seed + seeds)
            for k, (load, seed) in enumerate((load, seed) for load in loads for seed in seed_list):
                one = V.run_vllm_group if target == "vllm" else _run_group
                case, group = one(ctx, folder, workload, load, seed, T.rotated(policies, k), lengths, thresholds)
                setup["cases"].append(case)
                for policy, (row, curves) in group.items():
                    burndown[(workload, load, seed, policy)] = curves
                    speeds.setdefault(workload, []).append(row["speed_probe_ms"])
                    runs.append(row)
    finally:
        if gateway is not None:
            gateway.__exit__(None, None, None)
        if server is not None:
            server.stop()
    setup["speed_drift"] = _speed_drift(speeds, setup, say if ctx["clock"] is None else (lambda message: None))
    setup["flagged_cases"] = [{k: c[k] for k in ("workload", "load", "seed", "speed_moved")}
                              for c in setup["cases"] if c["speed_flagged"]]
    setup["machine_load_end"] = _loadavg()
    setup["seconds"] = round(time.perf_counter() - ctx["started"], 1)
    runs.sort(key=lambda r: (T.WORKLOADS.index(r["workload"]), r["load"], r["seed"], policies.index(r["policy"])))
    result = {"runs": runs, "summary": with_steady(summarize_targets(runs), runs), "setup": setup}
    from causalsre.safeio import write_text

    write_text(out_dir / "govern.json", json.dumps(result, indent=2) + "\n")
    result["burndown"] = burndown   # for the HTML report only (tuple keys: not part of the JSON)
    return result


def with_steady(summary: dict, runs: list[dict]) -> dict:
    """Each target also judged on the groups whose speed held (``steady_status``): flagged groups stay in the
    table and in ``status``; the two side by side say whether a verdict rests on the machine's drift."""
    steady = summarize_targets([r for r in runs if not r.get("speed_flagged")])
    for name, target in summary.items():
        target["steady_status"] = steady[name]["status"]
    return summary


def _run_group(ctx, folder: Path, workload: str, load: float, seed: int, order: list[str], lengths, base):
    """One (load, seed) group: probe, capacity, schedule, then each policy back to back in ``order``."""
    from harness.runner import run

    say, duration_s, drain_s, clock = ctx["say"], ctx["duration_s"], ctx["drain_s"], ctx["clock"]
    if clock is None:   # the wall clock: capacity and thresholds follow the machine's speed now
        speed_before = T.probe_speed_ms(lengths)
        capacity = T.calibrate(workload, lengths, seed=seed, max_seconds=T.probe_seconds(ctx["quick"]))
        thresholds = T.scaled_thresholds(base, speed_before)
    else:               # the modelled clock: the machine's speed does not enter; one capacity per workload
        speed_before, capacity = None, ctx["capacity", workload]
        thresholds = {k: base[k] for k in ("ttft_s", "tpot_s", "tiers") if k in base}
        thresholds["speed_factor"] = 1.0
    prefix = f"x{load:g}-s{seed}-"
    slos = tier_slos(folder, thresholds, prefix=prefix)
    run_s = K.judged_seconds(load, capacity, duration_s, strictest=min(T.TIERS, key=lambda t: 1 - t[2]),
                             modelled=clock is not None, quick=ctx["quick"])
    requests = T.schedule(workload, load=load, seed=seed, capacity=capacity, duration_s=run_s,
                          lengths=lengths, trace_path=ctx["trace_path"])
    hashes, group, probes = {}, {}, [speed_before]
    for policy in order:
        ctx["done"] += 1
        say(f"[{ctx['done']}/{ctx['total']}] {workload} load {load:g} seed {seed} {policy} ({len(requests)} "
            f"requests, {capacity:.2f} req/s capacity, {time.perf_counter() - ctx['started']:.0f} s so far)")
        db = folder / f"{prefix}{policy}.duckdb"
        if db.exists():
            raise UserError(f"{db} already exists", "pass a new --out folder")
        cfg = T.policy_config(workload, policy, requests=requests, load=load, capacity=capacity, seed=seed,
                              duration_s=run_s, drain_s=drain_s, thresholds=thresholds, clock=clock,
                              window_s=duration_s)
        run(_parse(cfg), db, seed=seed, run_id=f"govern-{workload}-x{load:g}-s{seed}-{policy}")
        measured = measure_run(db, slos)
        hashes[policy] = measured.pop("_hash")
        curves = measured.pop("_burndown")
        speed = measured.pop("_speed_ms")              # the harness's probe at the run's start
        after = T.probe_speed_ms(lengths) if clock is None else None   # a slow spell inside a run shows
        probes += [speed, after]
        group[policy] = ({"load": load, "workload": workload, "seed": seed, "policy": policy, **measured,
                          "speed_probe_ms": speed, "speed_probe_after_ms": after}, curves)
    case = close_group(folder, workload, load, seed, order, requests, capacity, thresholds, slos, hashes, group,
                       probes, say, modelled=clock is not None)
    case["run_seconds"] = run_s
    return case, group


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


def _calibrate_latency(folder: Path, workload, lengths, capacity, duration_s, drain_s, trace_path, say, *,
                       clock=None, quick: bool = False) -> dict:
    """One FCFS run at half load; the thresholds every tier's SLO uses (govern_traffic's rule)."""
    from harness.runner import run

    say(f"{workload}: half-load run for the latency objectives ({capacity:.2f} req/s capacity)")
    db = folder / "calibration.duckdb"
    if db.exists():
        raise UserError(f"{db} already exists", "pass a new --out folder")
    # Long enough to expect the requests the strictest tier's bound needs (govern_calibration); the wall
    # clock keeps the run's length (each modelled second costs only CPU, a wall second the machine's noise).
    seconds = duration_s
    if clock is not None and not quick:
        seconds = K.calibration_seconds([t[2] for t in T.TIERS], T.CALIBRATION_LOAD * capacity, duration_s)
    requests = T.schedule(workload, load=T.CALIBRATION_LOAD, seed=0, capacity=capacity, duration_s=seconds,
                          lengths=lengths, trace_path=trace_path)
    cfg = T.policy_config(workload, "fcfs", requests=requests, load=T.CALIBRATION_LOAD, capacity=capacity, seed=0,
                          duration_s=seconds, drain_s=drain_s, thresholds=None, clock=clock)
    run(_parse(cfg), db, seed=0, run_id=f"govern-{workload}-calibration")
    thresholds = T.latency_thresholds(db, T.latency_factor(modelled=clock is not None))
    thresholds["calibration_seconds"] = seconds
    weak = {n: t["confidence"] for n, t in thresholds["tiers"].items() if t["confidence"] < K.CONFIDENCE}
    if weak:
        say(f"warning: {workload}: {thresholds['requests']} half-load requests bound the tier quantiles only "
            f"with confidence {weak} (< {K.CONFIDENCE:g}); premium needs {K.requests_needed(0.995)}")
    from causalsre.telemetry import connect_readonly

    con = connect_readonly(db)
    try:
        thresholds["calibration_speed_ms"] = T.speed_probe_ms(con)
    finally:
        con.close()
    return dict(thresholds, rule=f"per tier {thresholds['factor']:g} x a {100 * K.CONFIDENCE:g} % upper confidence bound "
                                 f"of the tier's objective quantile of ok requests at {T.CALIBRATION_LOAD:g}x load "
                                 f"(FCFS, {seconds:g} s)", calibration_db=str(db))


def _parse(cfg: dict):
    from harness.config import parse_run_config

    return parse_run_config(cfg, source=cfg["name"])


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None

"""The traffic of ``causalsre eval govern``: three tiers as tenants, two workloads, calibrated to this machine.

Every policy of one (workload, load, seed) case runs on the same requests: the schedule is built once, here,
and handed to each run as an explicit request list (``workload.requests``), and the recorded requests are
hashed afterwards (:func:`recorded_requests_hash`) so the evaluation can check that they really were the same.

Calibration, once per workload per evaluation:
- capacity: :func:`harness.capacity.calibrate_capacity` on the workload's lengths (the trace's own lengths,
  as an empirical distribution, for the trace workload); a load of 1.3 offers 1.3 x that many requests/s;
- latency objectives: one FCFS run at 0.5x capacity, long enough for the strictest objective; each tier's
  TTFT (TPOT) threshold is :func:`latency_factor` x a 95 % upper confidence bound of *its own* objective's
  quantile of the TTFT (TPOT) of the requests that finished ok (:mod:`.govern_calibration`), so the engine
  meets every tier's objective at half load, with that confidence.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from causalsre.errors import UserError
from causalsre.telemetry import first_row

# (name, share of traffic, objective, criticality (0 = most critical), protected). Priorities follow
# criticality, so vLLM's priority policy serves premium first.
TIERS = (("premium", 0.10, 0.995, 0, True), ("standard", 0.30, 0.99, 1, True), ("free", 0.60, 0.95, 2, False))
WORKLOADS = ("gamma", "azure")
DEFAULT_TRACE = "../shared/traces/AzureLLMInferenceTrace_conv.csv"
CALIBRATION_LOAD = 0.5
LATENCY_QUANTILE = 0.995   # the strictest tier's objective (each tier now uses its own: govern_calibration)
# Headroom over that bound, by clock. The objectives are "the ones the engine meets at 0.5x load": the
# bound itself states that, so the modelled clock (deterministic per step-cost model) takes it as is. On the
# wall clock (and in front of vLLM) a run a minute later may see the shared machine 2x slower, and a
# threshold the half-load run just met would then be missed at half load: 2x is that noise, not a margin.
LATENCY_FACTORS = {"modelled": 1.0, "wall": 2.0}
GAMMA_BURSTINESS = 0.25    # gamma gap shape: coefficient of variation 2 (Poisson is 1)
# Each seed replays the trace from its own offset: seed x 613 s modulo 2,700 s (the conversation trace spans an
# hour, so at least 15 minutes are left after any offset; a seed drawn at random still lands inside it).
TRACE_SEED_OFFSET_S, TRACE_WRAP_S = 613, 2700
TRACE_LENGTHS = {"length_scale": 0.25, "max_prompt_tokens": 512, "max_output_tokens": 64}
GOVERNOR = {"buffer_share": 0.1, "margin": 0.25}


def engine_section(policy: str) -> dict[str, Any]:
    """The engine every run uses: the tiny model on one thread, sized like the shipped scenarios, with the KV
    cache of the trace config (512 blocks) so the capacity probe of the longer trace requests is not KV-bound."""
    return {"model": "tiny", "device": "cpu", "dtype": "float32", "num_threads": 1, "max_num_seqs": 16,
            "max_num_batched_tokens": 256, "enable_chunked_prefill": True, "chunk_size": 64, "policy": policy,
            "batching_mode": "decode_first", "num_kv_blocks": 512, "block_size": 16, "max_queue_len": 64,
            "request_timeout_s": 20.0}


def tenants() -> list[dict[str, Any]]:
    return [{"name": name, "weight": share, "priority": crit} for name, share, _, crit, _ in TIERS]


def governor_section(thresholds: dict[str, float], duration_s: float) -> dict[str, Any]:
    """The ``[governor]`` run-TOML section: one tier per tenant. Its burn windows are scaled to the run (a
    quarter of it and all of it: the defaults' 30 s / 300 s are longer than a 20 s run), and its batching
    bounds stop at the engine's own settings, so the governor can shrink batches but never serve with more
    sequences or tokens per step than the baselines get."""
    engine = engine_section("budget")
    tiers = [{"name": name, "tenants": [name], "criticality": crit, "objective": objective,
              "ttft_s": tier_thresholds(thresholds, name)[0], "tpot_s": tier_thresholds(thresholds, name)[1],
              "protected": protected, "weight": 1.0} for name, _, objective, crit, protected in TIERS]
    return dict(GOVERNOR, short_window_s=duration_s / 4, long_window_s=duration_s,
                max_max_num_seqs=engine["max_num_seqs"], max_batched_tokens=engine["max_num_batched_tokens"],
                tiers=tiers)


def trace_lengths(trace_path: str | Path) -> tuple[list[int], list[int]]:
    """The trace's prompt and output lengths after the same scaling and truncation as its replay."""
    from harness.traces import read_trace

    frame = read_trace(trace_path)
    scale = TRACE_LENGTHS["length_scale"]
    prompt = np.clip(np.rint(frame["prompt"].to_numpy() * scale), 1, TRACE_LENGTHS["max_prompt_tokens"])
    output = np.clip(np.rint(frame["output"].to_numpy() * scale), 1, TRACE_LENGTHS["max_output_tokens"])
    return prompt.astype(int).tolist(), output.astype(int).tolist()


def _empirical(values: list[int]) -> dict[str, Any]:
    unique, counts = np.unique(np.asarray(values), return_counts=True)
    return {"dist": "empirical", "values": unique.tolist(), "weights": counts.astype(float).tolist(),
            "max": int(unique.max())}


def workload_lengths(workload: str, trace_path: str | Path | None) -> dict[str, Any]:
    """The ``prompt``/``output`` length specs of a workload (what capacity is calibrated on)."""
    if workload == "gamma":
        return {"prompt": {"dist": "lognormal", "mean": 96, "sigma": 0.5, "min": 8, "max": 1536},
                "output": {"dist": "uniform", "low": 16, "high": 48}}
    prompt, output = trace_lengths(trace_path)
    return {"prompt": _empirical(prompt), "output": _empirical(output)}


def base_config(workload: str, *, duration_s: float, drain_s: float, lengths: dict[str, Any], rate: float,
                seed: int, trace_path: str | Path | None = None, policy: str = "fcfs",
                clock: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run config (dict) that generates the workload's requests at ``rate`` requests/s; ``clock``: the
    run config's ``[clock]`` section (None: the wall clock)."""
    wl: dict[str, Any] = {"tenants": tenants(), **lengths}
    if workload == "gamma":
        wl.update(arrival="gamma", rate=rate, burstiness=GAMMA_BURSTINESS)
    else:
        wl.update(arrival="trace", trace={"path": str(trace_path), "rate": rate, **TRACE_LENGTHS,
                                          "start_offset_s": float(seed * TRACE_SEED_OFFSET_S % TRACE_WRAP_S)})
    data = {"name": f"govern-{workload}", "seed": seed, "duration_s": duration_s, "drain_timeout_s": drain_s,
            "engine": engine_section(policy), "workload": wl}
    if clock is not None:
        data["clock"] = dict(clock)
    return data


def probe_seconds(quick: bool) -> float:
    """Time allowed to the saturated burst of the capacity probe: long enough for the trace's longer requests
    to finish on a busy 2-core machine (a probe cut short would report almost no capacity)."""
    return 5.0 if quick else 30.0


def calibrate(workload: str, lengths: dict[str, Any], *, seed: int, max_seconds: float,
              clock: dict[str, Any] | None = None) -> float:
    """Saturated requests/s of the engine on this workload's lengths, on this machine now (under a modelled
    ``clock``: of the step-cost model, whatever the machine's speed)."""
    from harness.capacity import calibrate_capacity
    from harness.config import parse_run_config

    cfg = parse_run_config(base_config("gamma", duration_s=1.0, drain_s=0.0, lengths=lengths, rate=1.0, seed=seed,
                                       clock=clock), source=f"govern {workload} calibration")
    return float(calibrate_capacity(cfg, seed, max_seconds=max_seconds))


def probe_speed_ms(lengths: dict[str, Any]) -> float:
    """The harness's speed probe now (median decode step of a fixed mini-workload, ms; well under a second),
    on the evaluation's engine: the same number every run records at its start."""
    from harness.capacity import probe_speed
    from harness.config import parse_run_config

    cfg = parse_run_config(base_config("gamma", duration_s=1.0, drain_s=0.0, lengths=lengths, rate=1.0, seed=0),
                           source="govern speed probe")
    return float(probe_speed(cfg)["decode_step_ms"])


def scaled_thresholds(base: dict[str, float], speed_ms: float) -> dict[str, float]:
    """The half-load thresholds held in machine time: x (speed probe now / speed probe at their calibration),
    so a machine twice as slow as during the calibration gets thresholds twice as long (and the reverse)."""
    factor = speed_ms / base["calibration_speed_ms"] if base.get("calibration_speed_ms") else 1.0
    out: dict[str, Any] = {"ttft_s": round(base["ttft_s"] * factor, 3), "tpot_s": round(base["tpot_s"] * factor, 4),
                           "speed_factor": round(factor, 3)}
    if "tiers" in base:
        out["tiers"] = {n: dict(t, ttft_s=round(t["ttft_s"] * factor, 3), tpot_s=round(t["tpot_s"] * factor, 4))
                        for n, t in base["tiers"].items()}
    return out


def rotated(policies: list[str], k: int) -> list[str]:
    """The policies in the order of group ``k``: rotated by one place per group, so no policy always runs
    first (or last) in a group, where a drifting machine would favour or penalise it every time."""
    shift = k % len(policies)
    return list(policies[shift:]) + list(policies[:shift])


def schedule(workload: str, *, load: float, seed: int, capacity: float, duration_s: float, lengths: dict[str, Any],
             trace_path: str | Path | None) -> list[tuple]:
    """The case's requests as ``workload.requests`` rows (arrival_s, prompt, output, tenant, priority, id)."""
    from harness.config import parse_run_config
    from harness.runner import prepare

    data = base_config(workload, duration_s=duration_s, drain_s=0.0, lengths=lengths, rate=load * capacity,
                       seed=seed, trace_path=trace_path)
    _, _, _, specs = prepare(parse_run_config(data, source=f"govern {workload}"), seed)
    if not specs:
        raise UserError(f"the {workload} workload at load {load:g} offers no request in {duration_s:g} s",
                        "raise --duration-s or --load")
    return [(s.arrival_ns / 1e9, s.prompt_tokens, s.output_tokens, s.tenant, s.priority, s.request_id)
            for s in specs]


def policy_config(workload: str, policy: str, *, requests: list[tuple], load: float, capacity: float, seed: int,
                  duration_s: float, drain_s: float, thresholds: dict[str, float] | None,
                  clock: dict[str, Any] | None = None, window_s: float | None = None) -> dict[str, Any]:
    """The run config of one policy on the case's requests (the same list for every policy). ``window_s``:
    the run length the governor's burn windows are scaled to (default ``duration_s``): a run lengthened for
    premium's budget (:func:`govern_calibration.run_seconds`) keeps the governor of the other loads."""
    from harness.config import RunConfig

    wl: dict[str, Any] = {"tenants": tenants(), "requests": [list(r) for r in requests]}
    if workload == "gamma":
        wl.update(arrival="gamma", rate=load * capacity, burstiness=GAMMA_BURSTINESS)
    else:
        wl["arrival"] = "trace"   # replayed as explicit requests: the trace file is not needed by the run
    data = {"name": f"govern-{workload}-x{load:g}-{policy}", "seed": seed, "duration_s": duration_s,
            "drain_timeout_s": drain_s, "engine": engine_section(policy), "workload": wl,
            "calibrated_capacity_rps": capacity,
            "description": f"causalsre eval govern: {workload} at {load:g}x capacity, policy {policy}"}
    if clock is not None:
        data["clock"] = dict(clock)
    if thresholds is not None:
        data["slo"] = {"ttft_s": thresholds["ttft_s"], "tpot_s": thresholds["tpot_s"], "objective": 0.95}
        if "governor" in RunConfig.model_fields:   # the tiers, for the policies that read them (budget, edf)
            data["governor"] = governor_section(thresholds, duration_s if window_s is None else window_s)
    return data


def latency_factor(modelled: bool) -> float:
    """The headroom over the half-load bound: 1 on the modelled clock, 2 on the wall clock (``LATENCY_FACTORS``)."""
    return LATENCY_FACTORS["modelled" if modelled else "wall"]


def latency_thresholds(db_path: str | Path, factor: float) -> dict[str, Any]:
    """Each tier's TTFT/TPOT thresholds from the half-load calibration run: ``factor`` (:func:`latency_factor`)
    x a 95 % upper confidence bound of the tier's objective quantile (:mod:`.govern_calibration`). ``ttft_s``
    and ``tpot_s`` at the top are the strictest tier's (the run's default SLO)."""
    from causalsre.evaluation.govern_calibration import tier_threshold
    from causalsre.telemetry import connect_readonly

    con = connect_readonly(db_path)
    try:
        rows = con.execute("SELECT ttft_s, tpot_s FROM request_metrics WHERE is_ok").fetchall()
    finally:
        con.close()
    ttfts = [float(t) for t, _ in rows if t is not None and math.isfinite(t)]
    tpots = [float(t) for _, t in rows if t is not None and math.isfinite(t)]
    if not ttfts or not tpots:
        raise UserError(f"the half-load calibration run {db_path} finished no request with a TPOT",
                        "raise --duration-s (the machine may be very busy)")
    tiers = {}
    for name, _, objective, _, _ in TIERS:
        ttft, tpot = (tier_threshold(v, objective, factor) for v in (ttfts, tpots))
        tiers[name] = {"objective": objective, "ttft_s": round(ttft["value"], 3), "tpot_s": round(tpot["value"], 4),
                       "ttft_bound_s": round(ttft["bound"], 4), "tpot_bound_s": round(tpot["bound"], 5),
                       "ttft_order_stat": [ttft["k"], ttft["n"]], "tpot_order_stat": [tpot["k"], tpot["n"]],
                       "confidence": min(ttft["confidence"], tpot["confidence"])}
    strictest = tiers[min(TIERS, key=lambda t: 1 - t[2])[0]]
    return {"ttft_s": strictest["ttft_s"], "tpot_s": strictest["tpot_s"], "requests": len(rows), "tiers": tiers,
            "factor": factor}


def tier_thresholds(thresholds: dict[str, Any], name: str) -> tuple[float, float]:
    """(ttft_s, tpot_s) of one tier; the top-level pair where the thresholds are not per tier."""
    tier = thresholds.get("tiers", {}).get(name)
    return (tier["ttft_s"], tier["tpot_s"]) if tier else (thresholds["ttft_s"], thresholds["tpot_s"])


def recorded_requests_hash(con) -> str:
    """SHA-256 of the requests a run recorded: id, arrival relative to the first, lengths, tenant, priority."""
    rows = con.execute(
        "SELECT request_id, scheduled_arrival_ns - min(scheduled_arrival_ns) OVER () AS offset_ns, prompt_tokens, "
        "target_output_tokens, tenant, priority FROM requests ORDER BY request_id").fetchall()
    digest = hashlib.sha256()
    for row in rows:
        digest.update(("|".join(str(v) for v in row) + "\n").encode())
    return digest.hexdigest()


def speed_probe_ms(con) -> float | None:
    """The run's speed probe (median decode step of a fixed mini-workload, ms), recorded by the harness."""
    import json

    row = first_row(con.execute("SELECT hardware_json FROM runs LIMIT 1"))
    try:
        return float(json.loads(row[0])["speed_probe"]["decode_step_ms"])
    except (TypeError, KeyError, ValueError):
        return None

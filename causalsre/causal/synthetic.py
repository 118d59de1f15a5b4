"""Telemetry from a known structural causal model, written into the real schema (tests and benchmarks).

One run with two phases, ``baseline`` then ``incident``. Exactly one root factor changes at the phase
boundary (``fault``), so the right answer of an attribution is known. The engine is a simple queueing
caricature: step duration depends on hardware, queue depth on load against capacity, request latencies on
queue depth, step duration, batch size and lengths. Requests over the timeout finish with status ``timeout``
so that "not ok" is a latency bad event even without an SLO spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# fault -> (setting in run_settings or workload parameter, baseline value, incident value, family)
FAULTS = {
    "cpu_contention": ("cpu_contention", 0.0, 3.0, "hardware"),
    "step_delay_s": ("step_delay_s", 0.0, 0.03, "hardware"),
    "max_num_seqs": ("max_num_seqs", 32.0, 6.0, "batching"),
    "arrival_rate": ("arrival_rate", 4.0, 9.0, "workload"),
    "prompt_tokens": ("prompt_scale", 1.0, 5.0, "workload"),  # longer prompts: every request's work grows
    "tenant": ("flood_rate", 0.0, 5.0, "workload"),  # a new tenant "flood" adds this many requests per second
    "none": (None, 0.0, 0.0, None),
}


@dataclass
class SyntheticSpec:
    fault: str = "cpu_contention"
    seed: int = 0
    phase_s: float = 120.0
    base_step_s: float = 0.02
    arrival_rate: float = 4.0
    max_num_seqs: float = 32.0
    timeout_s: float = 1.5
    run_id: str = "synthetic"
    extra_settings: dict = field(default_factory=dict)
    # The incident's own arrivals at this multiple of the baseline's rate whatever the fault: a chance or
    # unrelated fluctuation of the load that an attribution must not mistake for the cause.
    incident_rate_jitter: float = 1.0


def _phase_values(spec: SyntheticSpec, phase: int) -> dict:
    values = {"cpu_contention": 0.0, "step_delay_s": 0.0, "max_num_seqs": spec.max_num_seqs,
              "arrival_rate": spec.arrival_rate, "prompt_scale": 1.0, "flood_rate": 0.0}
    setting, before, after, _ = FAULTS[spec.fault]
    if setting is not None:
        values[setting] = after if phase == 1 else before
    if phase == 1:
        values["arrival_rate"] *= spec.incident_rate_jitter
    return values


def generate(spec: SyntheticSpec) -> dict[str, pd.DataFrame]:
    """The tables runs, requests, steps, run_settings and phases as DataFrames."""
    rng = np.random.default_rng(spec.seed)
    steps, requests = [], []
    step_id = request_id = 0
    for phase in (0, 1):
        v = _phase_values(spec, phase)
        t0 = phase * spec.phase_s
        step_s = spec.base_step_s * (1 + 0.6 * v["cpu_contention"]) + v["step_delay_s"]
        # Requests per second the engine sustains: fewer when every request brings more prompt work.
        capacity = v["max_num_seqs"] / (40 * step_s) / (0.5 + 0.5 * v["prompt_scale"])
        load = min((v["arrival_rate"] + v["flood_rate"]) / capacity, 0.97)
        n_steps = int(spec.phase_s / step_s)
        start = t0 + np.arange(n_steps) * step_s
        waiting = rng.poisson(1 + 30 * load**3, n_steps)
        batch = np.minimum(v["max_num_seqs"], rng.poisson(2 + 10 * load, n_steps) + 1)
        prefill = rng.poisson(20 + 60 * load, n_steps)
        steps.append(pd.DataFrame({
            "step_id": step_id + np.arange(n_steps), "start_ns": (start * 1e9).astype(np.int64),
            "end_ns": ((start + step_s) * 1e9).astype(np.int64), "num_prefill_seqs": (prefill > 0).astype(int),
            "num_prefill_tokens": prefill, "num_decode_seqs": batch, "num_decode_tokens": batch,
            "num_waiting": waiting, "num_running": batch, "num_kv_blocks_used": np.minimum(batch * 8, 512),
            "num_kv_blocks_total": 512, "num_preemptions": 0}))
        step_id += n_steps
        n_own, n_flood = rng.poisson(v["arrival_rate"] * spec.phase_s), rng.poisson(v["flood_rate"] * spec.phase_s)
        n = n_own + n_flood
        arrival = t0 + rng.uniform(0, spec.phase_s, n)
        tenant = np.concatenate([np.where(rng.random(n_own) < 0.5, "a", "b"), np.full(n_flood, "flood")])
        order = np.argsort(arrival, kind="stable")
        arrival, tenant = arrival[order], tenant[order]
        k = np.clip(((arrival - t0) / step_s).astype(int) - 1, 0, n_steps - 1)
        prompt = (rng.integers(16, 512, n) * v["prompt_scale"]).astype(int)
        output = rng.integers(8, 64, n)
        queue = waiting[k] * step_s * 0.8 * rng.lognormal(0, 0.3, n)
        ttft = queue + step_s * (1 + prompt / 256) * rng.lognormal(0, 0.1, n)
        tpot = step_s * (1 + 0.05 * batch[k] + prefill[k] / 400) * rng.lognormal(0, 0.1, n)
        e2e = ttft + tpot * (output - 1)
        timeout = e2e > spec.timeout_s
        finish = np.where(timeout, spec.timeout_s, e2e)
        emitted = np.where(timeout, np.maximum(1, np.minimum(output, ((spec.timeout_s - ttft) / tpot).astype(int) + 1)),
                           output)
        first_token = np.where(ttft < spec.timeout_s, arrival + ttft, np.nan)
        last_token = np.where(ttft < spec.timeout_s, arrival + ttft + tpot * (emitted - 1), np.nan)
        requests.append(pd.DataFrame({
            "request_id": request_id + np.arange(n), "tenant": tenant,
            "priority": 0, "prompt_tokens": prompt, "target_output_tokens": output,
            "output_tokens": np.where(ttft < spec.timeout_s, emitted, 0),
            "scheduled_arrival_ns": (arrival * 1e9).astype(np.int64),
            "enqueue_ns": (arrival * 1e9).astype(np.int64),
            "first_scheduled_ns": ((arrival + np.minimum(queue, spec.timeout_s)) * 1e9).astype(np.int64),
            "first_token_ns": _ns(first_token), "last_token_ns": _ns(last_token),
            "finish_ns": ((arrival + finish) * 1e9).astype(np.int64),
            "status": np.where(timeout, "timeout", "ok"), "finish_reason": np.where(timeout, "timeout", "length"),
            "num_preemptions": 0}))
        request_id += n
    return _assemble(spec, pd.concat(steps), pd.concat(requests))


def _ns(seconds: np.ndarray) -> pd.array:
    return pd.array(np.where(np.isnan(seconds), np.nan, seconds * 1e9).round(), dtype="Int64")


def _assemble(spec: SyntheticSpec, steps: pd.DataFrame, requests: pd.DataFrame) -> dict[str, pd.DataFrame]:
    steps.insert(0, "run_id", spec.run_id)
    steps["schedule_ns"] = 0
    steps["forward_ns"] = steps["end_ns"] - steps["start_ns"]
    requests.insert(0, "run_id", spec.run_id)
    boundary = int(spec.phase_s * 1e9)
    phases = pd.DataFrame({"run_id": spec.run_id, "name": ["baseline", "incident"],
                           "start_ns": [0, boundary], "end_ns": [boundary, 2 * boundary]})
    settings = []
    for phase, start in ((0, 0), (1, boundary)):
        values = _phase_values(spec, phase)
        for name in ("cpu_contention", "step_delay_s", "max_num_seqs"):
            if phase == 0 or values[name] != _phase_values(spec, 0)[name]:
                settings.append((spec.run_id, name, start, values[name], None))
    for name, value in spec.extra_settings.items():
        settings.append((spec.run_id, name, 0, value, None))
    run_settings = pd.DataFrame(settings, columns=["run_id", "setting", "start_ns", "value", "value_text"])
    runs = pd.DataFrame([{
        "run_id": spec.run_id, "kind": "harness", "name": f"synthetic-{spec.fault}",
        "started_at": pd.Timestamp("2026-01-01T00:00:00"), "finished_at": None, "status": "complete",
        "seed": spec.seed, "device": "cpu", "dtype": "float32", "num_threads": 2,
        "max_num_seqs": int(spec.max_num_seqs), "max_num_batched_tokens": 2048, "chunk_size": 256,
        "policy": "fcfs", "num_kv_blocks": 512, "arrival_rate": spec.arrival_rate, "burstiness": 1.0,
        "request_timeout_s": spec.timeout_s, "config_json": "{}"}])
    return {"runs": runs, "requests": requests, "steps": steps, "run_settings": run_settings, "phases": phases}


def write_tables(con, tables: dict[str, pd.DataFrame]) -> None:
    """Insert the frames into a writable telemetry connection, by column name."""
    for name in ("runs", "requests", "steps", "run_settings", "phases"):
        frame = tables[name]
        con.register("_frame", frame)
        columns = ", ".join(frame.columns)  # our own fixed column names, not user text
        con.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM _frame")
        con.unregister("_frame")


def write_synthetic(path, spec: SyntheticSpec) -> dict[str, pd.DataFrame]:
    """Create a DuckDB telemetry file at ``path`` holding one synthetic run."""
    from causalsre.telemetry import connect_writable

    tables = generate(spec)
    con = connect_writable(path)
    try:
        write_tables(con, tables)
    finally:
        con.close()
    return tables

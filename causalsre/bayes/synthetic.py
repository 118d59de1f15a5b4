"""A small serving system with a known structural causal model, for tests, benchmarks and the docs.

It produces exactly the columns of the causal package's analysis table (a subset of them) and its graph,
and it can re-run the same requests under an intervention (same seed, same noise), which is what the
harness's replay does for real. Tests use it to check that effects and what-if predictions are right.

    max_num_seqs (knob) -> queue_depth_at_arrival -> ttft_s -> is_bad
    max_num_seqs (knob) -> mean_batch_size -> tpot_s -> is_bad
    arrival_rate, cpu_contention, prompt_tokens (workload, hardware) -> the mediators and outcomes
    policy (knob, no effect here) -> queue_depth_at_arrival
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

TTFT_LIMIT_S = 0.6
TPOT_LIMIT_S = 0.06
KNOB_LEVELS = (4, 8, 16, 32)

EDGES = [
    ("max_num_seqs", "queue_depth_at_arrival"), ("arrival_rate", "queue_depth_at_arrival"),
    ("cpu_contention", "queue_depth_at_arrival"), ("policy", "queue_depth_at_arrival"),
    ("max_num_seqs", "mean_batch_size"), ("arrival_rate", "mean_batch_size"),
    ("queue_depth_at_arrival", "ttft_s"), ("prompt_tokens", "ttft_s"), ("cpu_contention", "ttft_s"),
    ("mean_batch_size", "tpot_s"), ("cpu_contention", "tpot_s"),
    ("ttft_s", "is_bad"), ("tpot_s", "is_bad"),
]
ROLES = {
    "max_num_seqs": ("knob", True), "policy": ("knob", True), "arrival_rate": ("workload", False),
    "prompt_tokens": ("workload", False), "cpu_contention": ("hardware", False),
    "queue_depth_at_arrival": ("mediator", False), "mean_batch_size": ("mediator", False),
    "ttft_s": ("outcome", False), "tpot_s": ("outcome", False), "is_bad": ("outcome", False),
}


def serving_graph() -> nx.DiGraph:
    graph = nx.DiGraph(EDGES)
    for name, (role, actionable) in ROLES.items():
        graph.nodes[name]["role"] = role
        graph.nodes[name]["actionable"] = actionable
    return graph


def simulate(n: int = 20_000, *, seed: int = 0, runs: int = 4, do: dict | None = None) -> pd.DataFrame:
    """``n`` requests over ``runs`` runs, each with a baseline and an incident phase (CPU contention and a
    rate surge). Each run steps max_num_seqs through the knob levels, so its effect is identifiable within
    runs. ``do`` sets knobs for every request (same seed: same arrivals and noise, like a replay)."""
    rng = np.random.default_rng(seed)
    run_index = np.sort(rng.integers(0, runs, n))
    position = np.concatenate([np.arange((run_index == r).sum()) / max((run_index == r).sum(), 1)
                               for r in range(runs)])
    phase = np.where(position >= 0.6, "incident", "baseline")
    incident = phase == "incident"
    tenant = np.where(rng.random(n) < 0.7, "chat", "batch")
    run_rate = rng.uniform(3.0, 6.0, runs)[run_index]
    arrival_rate = run_rate * np.where(incident, 1.4, 1.0) * rng.lognormal(0, 0.1, n)
    cpu_contention = np.where(incident & (run_index % 2 == 0), 0.6, 0.0)
    prompt_tokens = np.round(rng.lognormal(5.0, 0.6, n)).astype(int)
    segment = np.floor(position * 10).astype(int) % len(KNOB_LEVELS)
    max_num_seqs = np.array(KNOB_LEVELS)[(segment + run_index) % len(KNOB_LEVELS)].astype(float)
    policy = np.where((segment + run_index) % 3 == 0, "sjf", "fcfs")
    noise_q, noise_b, noise_t, noise_p = (rng.standard_normal(n) for _ in range(4))
    if do:
        if "max_num_seqs" in do:
            max_num_seqs = np.full(n, float(do["max_num_seqs"]))
        if "policy" in do:
            policy = np.full(n, str(do["policy"]))
    load = arrival_rate * (1 + cpu_contention)
    queue_depth = np.maximum(0.0, 2.5 * load / max_num_seqs * np.exp(0.3 * noise_q) - 0.3)
    mean_batch = np.minimum(max_num_seqs, load * 1.5) * np.exp(0.1 * noise_b)
    ttft = (0.12 * queue_depth + 0.0006 * prompt_tokens) * (1 + cpu_contention) * np.exp(0.35 * noise_t)
    tpot = 0.02 * (1 + mean_batch / 12) * (1 + cpu_contention) * np.exp(0.25 * noise_p)
    is_bad = (ttft > TTFT_LIMIT_S) | (tpot > TPOT_LIMIT_S)
    return pd.DataFrame({
        "run_id": [f"run-{r}" for r in run_index], "request_id": np.arange(n), "phase": phase,
        "arrival_ts": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n) * 0.2, unit="s"),
        "tenant": tenant, "max_num_seqs": max_num_seqs, "policy": policy, "arrival_rate": arrival_rate,
        "cpu_contention": cpu_contention, "prompt_tokens": prompt_tokens,
        "queue_depth_at_arrival": queue_depth, "mean_batch_size": mean_batch,
        "ttft_s": ttft, "tpot_s": tpot, "is_bad": is_bad,
    })

"""Turn a run config into the requests it offers: when each arrives, how long it is, whose it is.

Open-loop workloads (every arrival process but ``closed``) are generated in full before the run starts, so
the schedule is a pure function of (config, seed): replaying a seed replays the same requests. Workload
faults reshape the schedule: ``rate_surge`` and ``burstier`` change the arrival process inside their window,
``longer_prompts``/``longer_outputs`` scale lengths of requests arriving inside it, ``tenant_flood`` adds an
independent Poisson stream of a new tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causalsre.errors import UserError
from harness.arrivals import RateWindow, base_rate_function, renewal_arrivals
from harness.config import FaultSpec, LengthSpec, RunConfig, WorkloadSection
from harness.lengths import sample_lengths
from harness.traces import trace_requests

# Independent random streams derived from the run seed, so adding a fault does not reshuffle the base stream.
STREAM_ARRIVALS, STREAM_LENGTHS, STREAM_TENANTS, STREAM_FLOOD, STREAM_CLOSED = 1, 2, 3, 4, 5


@dataclass(frozen=True, slots=True)
class RequestSpec:
    request_id: int
    arrival_ns: int
    prompt_tokens: int
    output_tokens: int
    tenant: str | None
    priority: int


def rng_for(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def _window(fault: FaultSpec, duration_s: float) -> tuple[float, float]:
    return fault.at_s, min(fault.end_s if fault.end_s is not None else duration_s, duration_s)


def length_scale_at(cfg: RunConfig, kind: str, arrival_s: np.ndarray) -> np.ndarray:
    """The product of the ``kind`` faults' factors in force at each arrival time."""
    scale = np.ones(len(arrival_s))
    for fault in cfg.faults:
        if fault.kind == kind:
            lo, hi = _window(fault, cfg.duration_s)
            scale[(arrival_s >= lo) & (arrival_s < hi)] *= fault.factor
    return scale


def _scaled_lengths(spec: LengthSpec, rng: np.random.Generator, scales: np.ndarray) -> np.ndarray:
    if len(scales) == 0:
        return np.zeros(0, np.int64)
    out = np.empty(len(scales), np.int64)
    for value in np.unique(scales):  # a handful of distinct factors: sample each group at once
        mask = scales == value
        out[mask] = sample_lengths(spec, rng, int(mask.sum()), float(value))
    return out


def _explicit_schedule(wl: WorkloadSection) -> list[RequestSpec]:
    rows = sorted(wl.requests, key=lambda r: (r[0], r[5]))
    return [RequestSpec(int(r[5]), int(round(r[0] * 1e9)), int(r[1]), int(r[2]), r[3], int(r[4])) for r in rows]


def _base_stream(cfg: RunConfig, rate: float | None, seed: int) -> tuple[np.ndarray, ...]:
    wl = cfg.workload
    if wl.arrival == "trace":
        reqs = trace_requests(wl.trace, cfg.duration_s)
        arrival, prompt, output = reqs.arrival_s, reqs.prompt_tokens, reqs.output_tokens
        scale_p = length_scale_at(cfg, "longer_prompts", arrival)
        scale_o = length_scale_at(cfg, "longer_outputs", arrival)
        prompt = np.maximum(np.rint(prompt * scale_p), 1).astype(np.int64)
        output = np.maximum(np.rint(output * scale_o), 1).astype(np.int64)
    else:
        windows = []
        for fault in cfg.faults:
            lo, hi = _window(fault, cfg.duration_s)
            if fault.kind == "rate_surge":
                windows.append(RateWindow(lo, hi, factor=fault.factor))
            elif fault.kind == "burstier":
                windows.append(RateWindow(lo, hi, shape=fault.burstiness))
        rate_fn = base_rate_function(wl.arrival, rate, cfg.duration_s, end_rate=wl.end_rate,
                                     on_s=wl.on_s, off_s=wl.off_s)
        shape = 1.0 if wl.arrival in ("poisson", "onoff", "ramp") else wl.burstiness
        arrival = renewal_arrivals(rate_fn, rng_for(seed, STREAM_ARRIVALS), shape=shape, windows=windows,
                                   deterministic=wl.arrival == "constant" and not windows)
        lengths_rng = rng_for(seed, STREAM_LENGTHS)
        prompt = _scaled_lengths(wl.prompt, lengths_rng, length_scale_at(cfg, "longer_prompts", arrival))
        output = _scaled_lengths(wl.output, lengths_rng, length_scale_at(cfg, "longer_outputs", arrival))
    tenants, priorities = assign_tenants(wl, rng_for(seed, STREAM_TENANTS), len(arrival))
    return arrival, prompt, output, tenants, priorities


def assign_tenants(wl: WorkloadSection, rng: np.random.Generator, size: int) -> tuple[list, list]:
    weights = np.array([t.weight for t in wl.tenants], float)
    picks = rng.choice(len(wl.tenants), size=size, p=weights / weights.sum())
    return [wl.tenants[i].name for i in picks], [wl.tenants[i].priority for i in picks]


def _flood_streams(cfg: RunConfig, seed: int) -> list[tuple[np.ndarray, ...]]:
    streams = []
    for number, fault in enumerate(f for f in cfg.faults if f.kind == "tenant_flood"):
        rng = np.random.default_rng([seed, STREAM_FLOOD, number])
        lo, hi = _window(fault, cfg.duration_s)
        rate_fn = base_rate_function("poisson", cfg.flood_rate(fault), hi - lo)
        arrival = renewal_arrivals(rate_fn, rng, shape=1.0) + lo
        prompt = sample_lengths(fault.prompt or cfg.workload.prompt, rng, len(arrival))
        output = sample_lengths(fault.output or cfg.workload.output, rng, len(arrival))
        streams.append((arrival, prompt, output, [fault.tenant] * len(arrival), [fault.priority] * len(arrival)))
    return streams


def check_workload_faults(cfg: RunConfig) -> None:
    process_faults = [f.kind for f in cfg.faults if f.kind in ("rate_surge", "burstier")]
    if process_faults and (cfg.workload.arrival in ("closed", "trace") or cfg.workload.requests is not None):
        raise UserError(f"fault '{process_faults[0]}' needs an open-loop arrival process, "
                        f"not '{cfg.workload.arrival}'", "use poisson, gamma, constant, onoff or ramp")


def build_schedule(cfg: RunConfig, seed: int, rate: float | None = None) -> list[RequestSpec]:
    """Every open-loop request of the run, by arrival time; ids are 0..n-1 in arrival order.

    ``rate`` is the resolved mean rate (the configured rate, or load_fraction x calibrated capacity).
    Closed-loop runs return only the tenant floods; the runner issues the clients' requests itself.
    """
    check_workload_faults(cfg)
    if cfg.workload.requests is not None:
        return _explicit_schedule(cfg.workload)
    streams = _flood_streams(cfg, seed)
    if cfg.workload.arrival != "closed":
        streams.insert(0, _base_stream(cfg, rate, seed))
    if not streams:
        return []
    arrival = np.concatenate([s[0] for s in streams])
    prompt = np.concatenate([s[1] for s in streams])
    output = np.concatenate([s[2] for s in streams])
    tenants = [t for s in streams for t in s[3]]
    priorities = [p for s in streams for p in s[4]]
    order = np.argsort(arrival, kind="stable")
    return [RequestSpec(i, int(round(arrival[j] * 1e9)), int(prompt[j]), int(output[j]), tenants[j],
                        int(priorities[j])) for i, j in enumerate(order)]


class ClosedLoopLengths:
    """Lengths and tenants for closed-loop clients, drawn one request at a time from a seeded stream."""

    def __init__(self, cfg: RunConfig, seed: int):
        self.cfg = cfg
        self.rng = rng_for(seed, STREAM_CLOSED)

    def draw(self, now_s: float) -> tuple[int, int, str, int]:
        at = np.array([now_s])
        prompt = sample_lengths(self.cfg.workload.prompt, self.rng, 1,
                                float(length_scale_at(self.cfg, "longer_prompts", at)[0]))[0]
        output = sample_lengths(self.cfg.workload.output, self.rng, 1,
                                float(length_scale_at(self.cfg, "longer_outputs", at)[0]))[0]
        tenants, priorities = assign_tenants(self.cfg.workload, self.rng, 1)
        return int(prompt), int(output), tenants[0], priorities[0]


def prompt_token_ids(seed: int, request_id: int, length: int, vocab_size: int) -> list[int]:
    """Deterministic prompt tokens for a request (content does not matter for timing; reproducibility does)."""
    rng = np.random.default_rng([seed, 99, request_id])
    return rng.integers(1, vocab_size, size=length).tolist()

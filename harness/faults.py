"""Faults as a timeline of settings: what every factor is at time t, and applying the changes.

The state of the run at time t is the base config overlaid by the faults active at t (in file order).
At each breakpoint (a fault's start or end, or a ramp's second) the injector computes that state, applies
what changed to the engine (config push, KV shrink, step delay, threads, contention) and records each changed
factor in ``run_settings``; a fault's start also writes its ground-truth row in ``faults``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from harness.config import FaultSpec, RunConfig
from harness.lengths import mean_length
# From the settings table: FAULT_FACTORS (fault kind -> (family, factor); config_push takes its factors from its
# knobs), ENGINE_KNOBS (applied through Engine.update_config), TEXT_SETTINGS (stored as value_text).
from harness.settings import ALL_SETTINGS, ENGINE_KNOBS, FAULT_FACTORS, RECORDED_ENGINE_SETTINGS, TEXT_SETTINGS

__all__ = ["ENGINE_KNOBS", "FAULT_FACTORS", "TEXT_SETTINGS", "FaultInjector", "breakpoints", "fault_factors",
           "setting_value", "settings_at"]

BATCHING = "batching"
HARDWARE = "hardware"
WORKLOAD = "workload"


def fault_factors(fault: FaultSpec) -> list[tuple[str, str]]:
    """(family, factor) pairs a fault changes: its ground truth."""
    if fault.kind == "config_push":
        return [(ALL_SETTINGS[knob].family, knob) for knob in fault.knobs]
    return [FAULT_FACTORS[fault.kind]]


def _active(fault: FaultSpec, t: float) -> bool:
    return fault.at_s <= t < (fault.end_s if fault.end_s is not None else math.inf)


def settings_at(cfg: RunConfig, t: float, rate: float | None) -> dict[str, Any]:
    """Every factor's value at ``t`` seconds (numbers, or strings for the categorical ones)."""
    eng = cfg.engine
    state: dict[str, Any] = {name: getattr(eng, name) for name in RECORDED_ENGINE_SETTINGS}
    state.update(cpu_contention=0, step_delay_s=0.0)
    wl = cfg.workload
    offered = rate
    if wl.arrival == "ramp" and rate is not None:
        offered = rate + (wl.end_rate - rate) * min(max(t, 0.0), cfg.duration_s) / cfg.duration_s
    prompt_scale = output_scale = 1.0
    burstiness = wl.burstiness if wl.arrival in ("gamma", "constant") else 1.0
    if wl.arrival == "constant":
        burstiness = math.inf
    floods: list[tuple[str, float]] = []
    for fault in cfg.faults:
        if not _active(fault, t):
            continue
        if fault.kind == "config_push":
            state.update(fault.knobs)
        elif fault.kind == "kv_shrink":
            state["num_kv_blocks"] = fault.num_kv_blocks
        elif fault.kind == "step_delay":
            state["step_delay_s"] = fault.delay_s
        elif fault.kind == "fewer_threads":
            state["num_threads"] = fault.num_threads
        elif fault.kind == "cpu_contention":
            state["cpu_contention"] = fault.workers
        elif fault.kind == "rate_surge" and offered is not None:
            offered *= fault.factor
        elif fault.kind == "burstier":
            burstiness = fault.burstiness
        elif fault.kind == "longer_prompts":
            prompt_scale *= fault.factor
        elif fault.kind == "longer_outputs":
            output_scale *= fault.factor
        elif fault.kind == "tenant_flood":
            floods.append((fault.tenant, cfg.flood_rate(fault)))
    base_rate = offered or 0.0
    total = base_rate + sum(r for _, r in floods)
    state["arrival_rate"] = total if offered is not None or floods else None
    # A closed loop's load is its clients (the workload node max_concurrency); an open loop has none, and records
    # no row. No fault changes it within a run, so it is recorded once, at t0, and differs only between runs.
    if wl.arrival == "closed":
        state["max_concurrency"] = wl.concurrency
    state["burstiness"] = None if math.isinf(burstiness) else burstiness
    state["prompt_tokens"] = mean_length(wl.prompt, prompt_scale)
    state["output_tokens"] = mean_length(wl.output, output_scale)
    # tenant: the heaviest tenant (by offered share) and its share; a flood shows up as a new name.
    weights = sum(tn.weight for tn in wl.tenants)
    shares = {tn.name: base_rate * tn.weight / weights for tn in wl.tenants} if total else {}
    for name, flood_rate in floods:
        shares[name] = shares.get(name, 0.0) + flood_rate
    if shares and total:
        top = max(shares, key=shares.get)
        state["tenant"] = (top, shares[top] / total)
    else:
        top = max(wl.tenants, key=lambda tn: tn.weight)
        state["tenant"] = (top.name, top.weight / weights)
    return state


def breakpoints(cfg: RunConfig) -> list[float]:
    """Times (s) at which some factor may change, after t0."""
    points = set()
    for fault in cfg.faults:
        points.add(fault.at_s)
        if fault.end_s is not None and fault.end_s < cfg.duration_s:
            points.add(fault.end_s)
    if cfg.workload.arrival == "ramp":
        points.update(float(s) for s in range(1, int(cfg.duration_s)))
    return sorted(p for p in points if 0 < p < cfg.duration_s)


def setting_value(name: str, value: Any) -> tuple[float | None, str | None]:
    """How a factor's value is stored in run_settings (value, value_text)."""
    if name == "tenant":
        return float(value[1]), str(value[0])
    if name in TEXT_SETTINGS:
        return None, str(value)
    if value is None:
        return None, None
    return float(value), None


@dataclass
class FaultInjector:
    """Applies the settings timeline to a live engine and records it."""

    cfg: RunConfig
    rate: float | None
    engine: Any
    writer: Any                      # TelemetryWriter or None (no recording)
    contention: Any                  # CpuContention
    offset_ns: int = 0               # the schedule's t0 on the engine clock
    current: dict[str, Any] = field(default_factory=dict)
    pending: list[float] = field(default_factory=list)
    started_faults: set[int] = field(default_factory=set)

    def start(self) -> None:
        """Record every factor at t0 and apply faults that start at t0."""
        self.pending = sorted(set(breakpoints(self.cfg)))
        before = settings_at(self.cfg, -1.0, self.rate)  # the base config: no fault is active before t0
        self.current = settings_at(self.cfg, 0.0, self.rate)
        now = self.engine.now_ns()
        self._apply({k: v for k, v in self.current.items() if v != before[k]}, now)
        for name, value in self.current.items():
            self._record(name, 0, value)
        self._start_faults(0.0, now)

    def next_due_ns(self) -> int | None:
        # Rounded up, never truncated: poll() fires a point when pending[0] * 1e9 <= now, and 16.24 * 1e9 is
        # 16239999999.999998, so int() gave a due time one nanosecond early. On the modelled clock an idle engine
        # jumps exactly to this instant, poll() did not fire, and the run loop never advanced (a generated suite
        # hung there, 2026-12-02).
        return math.ceil(self.pending[0] * 1e9) if self.pending else None

    def poll(self, now_ns: int) -> None:
        while self.pending and self.pending[0] * 1e9 <= now_ns:
            t = self.pending.pop(0)
            state = settings_at(self.cfg, t, self.rate)
            changed = {k: v for k, v in state.items() if v != self.current.get(k)}
            self._apply(changed, now_ns)
            at_ns = self.engine.now_ns()
            # Recorded at the scheduled instant, not the apply instant a few ms later: the runner polls the
            # injector before it admits the arrivals that fell due, so every request scheduled at or after t runs
            # under the new value, and "the value in force at a request's arrival" is then exactly right.
            scheduled_ns = self.offset_ns + int(t * 1e9)
            for name, value in changed.items():
                self._record(name, scheduled_ns, value)
            self.current = state
            self._start_faults(t, at_ns)

    def _apply(self, changed: dict[str, Any], now_ns: int) -> None:
        knobs = {k: v for k, v in changed.items() if k in ENGINE_KNOBS}
        if knobs:
            self.engine.update_config(**knobs)
        if "step_delay_s" in changed:
            self.engine.set_step_delay(float(changed["step_delay_s"]))
        if "num_threads" in changed:
            self.engine.set_num_threads(int(changed["num_threads"]))
        if "cpu_contention" in changed:
            self.contention.set_workers(int(changed["cpu_contention"]))

    def _record(self, name: str, at_ns: int, value: Any) -> None:
        if self.writer is not None:
            self.writer.record_setting(name, at_ns, *setting_value(name, value))

    def _start_faults(self, t: float, at_ns: int) -> None:
        if self.writer is None:
            return
        fault_id = 0
        for number, fault in enumerate(self.cfg.faults):
            for family, factor in fault_factors(fault):
                if fault.at_s <= t and number not in self.started_faults:
                    # Workload faults reshape the schedule exactly at at_s; engine faults start when applied.
                    start_ns = self.offset_ns + int(fault.at_s * 1e9) if family == WORKLOAD else at_ns
                    end_ns = self.offset_ns + int(fault.end_s * 1e9) if fault.end_s is not None else None
                    params = fault.model_dump(mode="json", exclude_none=True)
                    self.writer.record_fault(fault_id, fault.kind, family, factor, start_ns, end_ns, params)
                fault_id += 1
            if fault.at_s <= t:
                self.started_faults.add(number)

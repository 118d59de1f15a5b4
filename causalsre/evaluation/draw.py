"""Drawing scenarios: a plan for the whole suite (which scenarios are controls, single causes, two-cause mixes,
and which kinds they get), then each scenario's base workload and faults from the ranges in :mod:`.ranges`.

Randomness is split so that one scenario's re-draws never shift another's: the plan comes from
``default_rng([seed])``, scenario ``i``'s base and magnitudes from ``default_rng([seed, i, fresh])`` where
``fresh`` counts its fresh re-draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from causalsre.errors import UserError
from causalsre.evaluation import ranges as R

CONTROL, SINGLE, MIX = "control", "single", "mix"


@dataclass
class ScenarioDraw:
    """One scenario's drawn parameters: everything needed to build its run config, and to report it."""

    index: int
    shape: str                                   # control | single | mix
    base: dict[str, Any]
    faults: list[R.FaultDraw] = field(default_factory=list)

    @property
    def name(self) -> str:
        kinds = "-".join(f.kind.replace(f"{R.PUSH}:", "push_") for f in self.faults) or "control"
        return f"g{self.index:02d}-{kinds}"

    def raised(self) -> "ScenarioDraw":
        return ScenarioDraw(self.index, self.shape, self.base, [f.raised() for f in self.faults])

    def can_raise(self) -> bool:
        return any(f.has_magnitude() and f.severity < 0.99 for f in self.faults)

    def to_json(self) -> dict[str, Any]:
        return {"shape": self.shape, "base": self.base,
                "faults": [{"kind": f.kind, "severity": round(f.severity, 4), "onset_delay_s": round(f.delay_s, 2)}
                           for f in self.faults]}


def plan_suite(seed: int, count: int, kinds: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """(shape, kinds) per scenario: ceil(count/10) controls, ceil(count/3) two-cause mixes, the rest single.

    Kinds are dealt from a shuffled deck of every kind (refilled when empty), so a suite of at least as many
    causes as kinds covers every kind; a mix never pairs two kinds that change the same factor. ``kinds``: the
    kinds to deal (default every kind; the modelled clock leaves out those that act through the machine's speed).
    """
    every = R.fault_kinds() if kinds is None else list(kinds)
    n_control, n_mix = math.ceil(count / 10), math.ceil(count / 3)
    if count < 3 or n_control + n_mix > count:
        raise UserError(f"--count {count} is too small for the suite's mix", "use --count 3 or more")
    rng = np.random.default_rng([seed])
    shapes = [CONTROL] * n_control + [MIX] * n_mix + [SINGLE] * (count - n_control - n_mix)
    shapes = [shapes[i] for i in rng.permutation(count)]
    deck: list[str] = []

    def deal(taken: list[str]) -> str:
        for _ in range(2):
            if not deck:
                deck.extend(every[i] for i in rng.permutation(len(every)))
            for pos, kind in enumerate(deck):
                if all(R.factor_of(kind) != R.factor_of(t) for t in taken):
                    return deck.pop(pos)
            deck.clear()  # every kind left clashes with the first cause: start a fresh deck
        raise UserError("no fault kind is left to pair", "the harness needs at least two fault kinds")

    plan = []
    for shape in shapes:
        kinds: list[str] = []
        for _ in range({CONTROL: 0, SINGLE: 1, MIX: 2}[shape]):
            kinds.append(deal(kinds))
        plan.append((shape, kinds))
    return plan


def fresh_kinds(shape: str, rng: np.random.Generator, pool: list[str] | None = None) -> list[str]:
    """Kinds for a fresh re-draw: uniform over every kind (of ``pool``), distinct factors."""
    every = R.fault_kinds() if pool is None else list(pool)
    kinds: list[str] = []
    while len(kinds) < {CONTROL: 0, SINGLE: 1, MIX: 2}[shape]:
        kind = every[int(rng.integers(len(every)))]
        if all(R.factor_of(kind) != R.factor_of(k) for k in kinds):
            kinds.append(kind)
    return kinds


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], digits: int = 2) -> float:
    return round(float(rng.uniform(*bounds)), digits)


def draw_scenario(seed: int, index: int, shape: str, kinds: list[str], fresh: int = 0,
                  phase_s: tuple[float, float] = R.PHASE_S, pool: list[str] | None = None) -> ScenarioDraw:
    """Scenario ``index``'s base workload and its causes' magnitudes and onsets."""
    rng = np.random.default_rng([seed, index, fresh])
    if fresh:
        kinds = fresh_kinds(shape, rng, pool)
    n_tenants = int(rng.integers(R.TENANTS[0], R.TENANTS[1] + 1))
    low = int(rng.integers(R.OUTPUT_LOW[0], R.OUTPUT_LOW[1] + 1))
    base = {
        "run_seed": int(rng.integers(0, 2**31 - 1)),
        "baseline_s": _uniform(rng, phase_s, 1), "incident_s": _uniform(rng, phase_s, 1),
        "load_fraction": _uniform(rng, R.LOAD_FRACTION, 3),
        "prompt": {"dist": "lognormal", "mean": _uniform(rng, R.PROMPT_MEAN, 1),
                   "sigma": _uniform(rng, R.PROMPT_SIGMA, 2), "min": 8, "max": 1536},
        "output": {"dist": "uniform", "low": low,
                   "high": low + int(rng.integers(R.OUTPUT_SPAN[0], R.OUTPUT_SPAN[1] + 1))},
        "tenants": [{"name": R.TENANT_NAMES[t], "weight": int(rng.integers(1, 5)), "priority": int(rng.integers(0, 2))}
                    for t in range(n_tenants)],
        # fewer_threads needs a thread to take away; every other scenario runs on one thread.
        "num_threads": 2 if "fewer_threads" in kinds else 1,
    }
    onset_bound = min(R.ONSET_DELAY_S[1], base["incident_s"] / 4)
    faults = [R.FaultDraw(kind, float(rng.uniform()), _uniform(rng, (R.ONSET_DELAY_S[0], onset_bound)),
                          flood_output=int(rng.integers(R.FLOOD_OUTPUT[0], R.FLOOD_OUTPUT[1] + 1)),
                          flood_priority=int(rng.integers(0, 2)))
              for kind in kinds]
    return ScenarioDraw(index, shape, base, faults)


def run_config_dict(draw: ScenarioDraw, base_cfg: dict[str, Any], rng_seed: int) -> dict[str, Any]:
    """The harness run config (as a dict) of a drawn scenario, on top of the shipped scenario base."""
    b = draw.base
    onset = b["baseline_s"]
    duration = round(onset + b["incident_s"], 2)
    engine = dict(base_cfg["engine"], num_threads=b["num_threads"])
    rng = np.random.default_rng([rng_seed, draw.index, 7])  # only the generic push's choice of a category
    faults = [f.spec(onset, engine, rng) for f in draw.faults]
    what = "; ".join(_describe(spec) for spec in faults) or "no fault (a control)"
    description = (f"Generated: {what}; base load {b['load_fraction']:.0%} of capacity, "
                   f"{len(b['tenants'])} tenant(s), incident window from {onset:g} s.")
    workload = dict(base_cfg["workload"], arrival="poisson", rate=None, load_fraction=b["load_fraction"],
                    prompt=b["prompt"], output=b["output"], tenants=b["tenants"])
    return dict(base_cfg, name=draw.name, description=description, seed=b["run_seed"], duration_s=duration,
                drain_timeout_s=R.DRAIN_S, engine=engine, workload=workload, faults=faults,
                phases=[{"name": "baseline", "start_s": 0.0, "end_s": onset},
                        {"name": "incident", "start_s": onset, "end_s": duration}],
                calibrated_capacity_rps=None)


def _describe(spec: dict[str, Any]) -> str:
    params = {k: v for k, v in spec.items() if k not in ("kind", "at_s")}
    return f"{spec['kind']} at {spec['at_s']:g} s {params}"

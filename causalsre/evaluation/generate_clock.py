"""``eval generate --clock modelled``: record a suite on the engine's modelled clock (harness.engine.clock).

On the wall clock a generated incident burns as much as the machine was slow while it recorded: a replay made
later (``eval whatif --data``, ``postmortem --verify``), on a quieter machine or a faster engine, starts from
another footing, and the unchanged replay of a window differed from its recording by a median 19-45 points in
the what-if calibrations (docs/evaluation.md). On the modelled clock every step advances time by a step-cost
model fitted once, on this machine, at the start of the suite (or read from ``--clock-model FILE``); the
coefficients are stored in each run's config, so every replay of the suite runs on the same clock: the machine's
noise leaves both the recording and the replay, and an unchanged replay differs from its recording only by the
engine state at the window's start (a replay starts empty).

Two fault kinds act only through the machine's speed, which the step-cost model does not see: ``cpu_contention``
(busy processes) and ``fewer_threads`` (torch's intra-op threads). On the modelled clock they cannot burn, so
the suite draws from the other kinds and the manifest says which were left out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from causalsre.errors import UserError
from causalsre.safeio import write_text

CLOCKS = ("wall", "modelled")
WALL_ONLY_KINDS = ("cpu_contention", "fewer_threads")   # act through the machine's speed alone


def kinds_for(clock: str) -> list[str]:
    """The fault kinds a suite on ``clock`` draws from."""
    from causalsre.evaluation import ranges as R

    every = R.fault_kinds()
    return every if clock == "wall" else [k for k in every if k not in WALL_ONLY_KINDS]


def check_clock(clock: str, clock_model: str | Path | None) -> None:
    if clock not in CLOCKS:
        raise UserError(f"unknown clock {clock!r}", f"use one of {', '.join(CLOCKS)}")
    if clock_model is not None and clock != "modelled":
        raise UserError("--clock-model is the modelled clock's step-cost model", "add --clock modelled or drop it")
    if clock_model is not None:   # read it before the --out folder is made: a refused file leaves nothing behind
        from causalsre.evaluation.govern_clock import load_clock_model

        load_clock_model(clock_model)


def suite_clock(clock: str, clock_model: str | Path | None, base_cfg: dict[str, Any], out_dir: Path,
                say: Callable[[str], None]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the run configs' ``clock`` section or None for the wall clock, the manifest's ``clock`` record)."""
    import json

    check_clock(clock, clock_model)
    if clock == "wall":
        return None, {"mode": "wall"}
    if clock_model is not None:
        from causalsre.evaluation.govern_clock import load_clock_model

        record = load_clock_model(clock_model)
    else:
        record = fit_on_base(base_cfg, say)
    record = {"mode": "modelled", **record, "left_out_kinds": list(WALL_ONLY_KINDS)}
    write_text(out_dir / "clock_model.json", json.dumps(record, indent=2) + "\n")
    return {"mode": "modelled", **record["coefficients"]}, record


def fit_on_base(base_cfg: dict[str, Any], say: Callable[[str], None]) -> dict[str, Any]:
    """Fit the step-cost model on real steps of the generator's own engine (the shipped scenario base: model,
    threads, batch limits), with the base prompts and prompts four times as long so the prefill and KV terms
    span the drawn lengths (ranges.PROMPT_MEAN) too."""
    from harness.clock_fit import fit_samples, measure_steps
    from harness.config import parse_run_config

    say("modelled clock: fitting the step-cost model on real steps of the scenario engine")
    samples = []
    workload = base_cfg["workload"]
    for k, scale in enumerate((1, 4)):
        prompt = dict(workload["prompt"], mean=scale * workload["prompt"]["mean"])
        cfg = parse_run_config(dict(base_cfg, seed=k, duration_s=1.0, drain_timeout_s=0.0, phases=[],
                                    workload=dict(workload, prompt=prompt, rate=1.0, load_fraction=None)),
                               source="generate step-cost fit")
        samples += measure_steps(cfg, seed=k)
    model, quality = fit_samples(samples)
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    say(f"modelled clock: {model.to_dict()} (R^2 {quality['r2']}, {quality['steps']} steps)")
    return {"coefficients": model.to_dict(), "fit": dict(quality, machine_load=load), "source": "fitted"}

"""Which clock ``eval govern`` runs the embedded engine on, and its step-cost model.

``modelled`` (the default for the embedded engine): the step-cost model is fitted once per evaluation on real
steps of this machine (:func:`harness.clock_fit.fit_step_cost`), or read from ``--clock-model FILE`` (a
``clock_model.json`` or a ``govern.json`` an earlier evaluation wrote), and every run of the evaluation, the
capacity probe and the half-load calibration included, advances time by it. The coefficients and their fit
quality go into ``setup.clock`` and ``clock_model.json``; with the same file two evaluations give the same
timings on a busy and on a quiet machine. ``wall``: the machine's own clock (the older method, where each
(load, seed) group is flagged when the machine's speed moved). The gateway in front of vLLM is always
``wall``: vLLM's steps are not ours to model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from causalsre.errors import UserError
from causalsre.safeio import brief, load_json, regular_file, write_text

CLOCKS = ("wall", "modelled")
MODEL_FILE = "clock_model.json"


def default_clock(target: str) -> str:
    return "wall" if target == "vllm" else "modelled"


def check_clock(clock: str | None, target: str, clock_model: str | Path | None) -> str:
    """The clock to use (None: the target's default), checked before any work."""
    clock = default_clock(target) if clock is None else clock
    if clock not in CLOCKS:
        raise UserError(f"unknown clock {clock!r}", f"use one of {', '.join(CLOCKS)}")
    if target == "vllm" and clock == "modelled":
        raise UserError("--clock modelled is for the embedded engine: vLLM's steps run on its own clock",
                        "drop --clock (the vllm target runs on the wall clock)")
    if clock_model is not None and clock != "modelled":
        raise UserError("--clock-model is the modelled clock's step-cost model", "add --clock modelled or drop it")
    if clock_model is not None:
        regular_file(clock_model, what="--clock-model file",
                     missing_fix=f"give the {MODEL_FILE} (or govern.json) of an earlier evaluation")
    return clock


def load_clock_model(path: str | Path) -> dict[str, Any]:
    """``{"coefficients": {...}, "fit": {...}}`` from a clock_model.json or a govern.json's ``setup.clock``."""
    from harness.engine.clock import StepCostModel

    data = load_json(path, what="clock model file")   # bounded size and depth; a UserError when not JSON
    if isinstance(data, dict) and isinstance(data.get("setup"), dict):
        data = data["setup"].get("clock") or {}
    if not isinstance(data, dict) or not isinstance(data.get("coefficients"), dict):
        raise UserError(f"{path} holds {_holds(data)}, not step-cost coefficients",
                        f"give the {MODEL_FILE} (or govern.json) of a modelled-clock evaluation")
    model = StepCostModel.from_dict(data["coefficients"])
    return {"coefficients": model.to_dict(), "fit": data.get("fit"), "source": str(path)}


def _holds(data: Any) -> str:
    """What a JSON value is, for the message (1e400 parses as inf: say it is not finite)."""
    if isinstance(data, dict):
        coefficients = data.get("coefficients")
        return "an object without \"coefficients\"" if coefficients is None else f"\"coefficients\": {_holds(coefficients)}"
    if isinstance(data, bool) or data is None:
        return f"the JSON value {json.dumps(data)}"
    if isinstance(data, (int, float)):
        finite = isinstance(data, int) or math.isfinite(data)
        return f"the number {brief(data)}" + ("" if finite else " (not finite: a number past 1e308 reads as inf)")
    return "a list" if isinstance(data, list) else f"the text {brief(data)}"


def resolve_clock(clock: str, clock_model: str | Path | None, out_dir: Path,
                  say: Callable[[str], None]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the run config's ``[clock]`` section or None, the ``setup.clock`` record)."""
    if clock == "wall":
        return None, {"mode": "wall"}
    if clock_model is not None:
        record = load_clock_model(clock_model)
        say(f"modelled clock: step-cost model from {clock_model}")
    else:
        record = fit_clock(say)
    record = {"mode": "modelled", **record}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / MODEL_FILE, json.dumps(record, indent=2) + "\n")
    return {"mode": "modelled", **record["coefficients"]}, record


def fit_clock(say: Callable[[str], None]) -> dict[str, Any]:
    """Fit the step-cost model on this machine's real steps of the evaluation's engine (gamma lengths, and
    prompts four times as long so the prefill and KV terms span the trace's requests too)."""
    import os

    from causalsre.evaluation import govern_traffic as T
    from harness.clock_fit import fit_samples, measure_steps
    from harness.config import parse_run_config

    say("modelled clock: fitting the step-cost model on real steps (least squares)")
    lengths = T.workload_lengths("gamma", None)
    long_prompts = dict(lengths, prompt=dict(lengths["prompt"], mean=4 * lengths["prompt"]["mean"]))
    samples = []
    for k, spec in enumerate((lengths, long_prompts)):
        cfg = parse_run_config(T.base_config("gamma", duration_s=1.0, drain_s=0.0, lengths=spec, rate=1.0, seed=k),
                               source="govern step-cost fit")
        samples += measure_steps(cfg, seed=k, progress=say)
    model, quality = fit_samples(samples)
    load = None
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    say(f"modelled clock: {model.to_dict()} (R^2 {quality['r2']}, {quality['steps']} steps)")
    return {"coefficients": model.to_dict(), "fit": dict(quality, machine_load=load), "source": "fitted"}

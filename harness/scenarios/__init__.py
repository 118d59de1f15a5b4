"""Fault scenarios with known causes: a baseline phase, then an incident phase caused by one or two factors.

Each ``*.toml`` here is a run config (see :mod:`harness.config`) that may start with ``extends = "_base"``
to inherit a shared base (deep-merged, the scenario's keys win). The ground truth of a scenario (which
factors caused the incident, from which families) follows from its faults: :func:`scenario_truth`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causalsre.errors import UserError
from causalsre.safeio import regular_file
from harness.config import RunConfig, parse_run_config, read_config_table
from harness.faults import fault_factors

SCENARIO_DIR = Path(__file__).resolve().parent


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios (files starting with '_' are shared bases, not scenarios)."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml") if not p.stem.startswith("_"))


def load_scenario(name_or_path: str | Path) -> RunConfig:
    """A scenario by name (one of :func:`list_scenarios`) or by the path of a scenario TOML."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.toml"
        if str(name_or_path).startswith("_") or not path.is_file():
            raise UserError(f"unknown scenario {str(name_or_path)!r}",
                            f"use one of: {', '.join(list_scenarios())}")
    else:
        regular_file(path, what="scenario file")  # a folder or FIFO says what it is, not "does not exist"
    data = read_config_table(path, what="scenario file")
    data.setdefault("name", path.stem)
    return parse_run_config(data, source=str(path))


def scenario_truth(cfg: RunConfig) -> dict[str, Any]:
    """The root causes of a scenario's incident: factors, families and the faults that set them."""
    faults = []
    for fault in cfg.faults:
        for family, factor in fault_factors(fault):
            faults.append({"kind": fault.kind, "family": family, "factor": factor, "start_s": fault.at_s,
                           "end_s": fault.end_s})
    return {
        "scenario": cfg.name,
        "description": cfg.description,
        "root_cause_factors": sorted({f["factor"] for f in faults}),
        "families": sorted({f["family"] for f in faults}),
        "faults": faults,
        "phases": [p.model_dump() for p in cfg.phases],
        "slo": cfg.slo.model_dump(),
    }


def run_scenario(name: str, db_path: str | Path, seed: int = 0, *, progress: bool = False,
                 overrides: dict[str, Any] | None = None) -> str:
    """Run a scenario into ``db_path``; returns the run id."""
    from harness.runner import run

    cfg = load_scenario(name)
    if overrides:
        cfg = cfg.with_overrides(overrides)
    return run(cfg, db_path, seed=seed, progress=progress)

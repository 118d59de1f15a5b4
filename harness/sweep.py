"""Sweeps: a randomized design over factor levels, run locally or on a Ray cluster.

A sweep TOML names a base run config, the factors to vary (causal-graph factor names or dotted config
keys) with their levels, a design and a number of runs::

    base = "../configs/smoke.toml"   # relative to the sweep file, or a scenario name
    design = "lhs"                   # lhs (Latin hypercube over level indices) | random
    runs = 8
    seed = 0
    [overrides]                      # applied to every run first (e.g. a shorter duration)
    duration_s = 6
    [factors]
    max_num_seqs = [2, 4, 8, 16]
    arrival_rate = [2.0, 6.0]

Random assignment of levels to runs (independently per factor, or stratified per factor with a Latin
hypercube) makes the factors independent of each other and of anything else, so their effects are
identifiable from the telemetry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from causalsre.errors import UserError
from causalsre.safeio import load_toml
from harness.config import RunConfig, load_run_config
from harness.settings import MAX_SEED

# causal-graph factor -> dotted config key. cpu_contention and step_delay_s become faults active from t0.
FACTOR_KEYS = {
    "max_num_seqs": "engine.max_num_seqs", "max_num_batched_tokens": "engine.max_num_batched_tokens",
    "chunk_size": "engine.chunk_size", "enable_chunked_prefill": "engine.enable_chunked_prefill",
    "policy": "engine.policy", "batching_mode": "engine.batching_mode", "num_kv_blocks": "engine.num_kv_blocks",
    "num_threads": "engine.num_threads", "dtype": "engine.dtype", "device": "engine.device",
    "arrival_rate": "workload.rate", "burstiness": "workload.burstiness",
}
FAULT_FACTORS = {"cpu_contention": ("cpu_contention", "workers"), "step_delay_s": ("step_delay", "delay_s")}
LENGTH_FACTORS = {"prompt_tokens": "prompt", "output_tokens": "output"}


class SweepSpec(BaseModel):
    # strict: TOML has its own types; lax mode read runs = "8" as 8 and seed = true as 1.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = "sweep"
    base: str
    design: str = Field("lhs", pattern="^(lhs|random)$")
    runs: int = Field(8, ge=1, le=10000)
    seed: int = Field(0, ge=0, le=MAX_SEED)  # run i gets seed + i, checked against MAX_SEED in parse_sweep
    overrides: dict[str, Any] = {}
    factors: dict[str, list[Any]]


def load_sweep(path: str | Path) -> tuple[SweepSpec, RunConfig]:
    path = Path(path)
    data = load_toml(path, what="sweep file")  # bounded size, strict UTF-8, nesting limit
    data.setdefault("name", path.stem)
    return parse_sweep(data, source=str(path), base_dir=path.parent)


def parse_sweep(data: Any, *, source: str, base_dir: Path) -> tuple[SweepSpec, RunConfig]:
    """The validated sweep and its base config (overrides applied) from a parsed TOML document."""
    if not isinstance(data, dict):
        raise UserError(f"sweep {source} must be a TOML table", "see docs/harness.md#sweeps")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"bad sweep {source}: {'.'.join(map(str, err['loc']))}: {err['msg']}",
                        "see docs/harness.md#sweeps") from None
    if spec.seed + spec.runs - 1 > MAX_SEED:
        raise UserError(f"bad sweep {source}: seed {spec.seed} + {spec.runs} runs passes the largest seed {MAX_SEED}",
                        "lower the seed")
    base_path = base_dir / spec.base
    if spec.base and base_path.is_file():
        base = load_run_config(base_path)
    else:
        from harness.scenarios import load_scenario

        base = load_scenario(spec.base)
    if not spec.factors or any(not levels for levels in spec.factors.values()):
        raise UserError(f"sweep {source} needs [factors] with at least one level each", "add levels")
    # Every level of every factor must apply to the base, whether or not the design draws it.
    base = base.with_overrides(spec.overrides) if spec.overrides else base
    for factor, levels in spec.factors.items():
        for level in levels:
            apply_factor(base, factor, level)
    return spec, base


def design_matrix(levels_per_factor: list[int], runs: int, design: str, seed: int) -> np.ndarray:
    """(runs, factors) level indices. ``lhs``: each level of each factor appears runs/k times (+-1)."""
    rng = np.random.default_rng([seed, 2024])
    if design == "random":
        return np.column_stack([rng.integers(0, k, size=runs) for k in levels_per_factor])
    from scipy.stats import qmc

    unit = qmc.LatinHypercube(d=len(levels_per_factor), seed=rng).random(runs)
    return np.column_stack([np.minimum((unit[:, j] * k).astype(int), k - 1)
                            for j, k in enumerate(levels_per_factor)])


def apply_factor(cfg: RunConfig, factor: str, level: Any) -> RunConfig:
    """``cfg`` with one factor set to ``level``."""
    if factor in FAULT_FACTORS:
        kind, field = FAULT_FACTORS[factor]
        if not level:
            return cfg
        faults = [f.model_dump() for f in cfg.faults] + [{"kind": kind, "at_s": 0.0, field: level}]
        return cfg.with_overrides({"faults": faults})
    if factor in LENGTH_FACTORS:
        section = LENGTH_FACTORS[factor]
        spec = getattr(cfg.workload, section)
        key = {"fixed": "value", "lognormal": "mean"}.get(spec.dist)
        if key is None:
            raise UserError(f"factor {factor} needs a fixed or lognormal workload.{section}",
                            "change the base config's length distribution")
        return cfg.with_overrides({f"workload.{section}.{key}": level})
    key = FACTOR_KEYS.get(factor, factor)
    overrides = {key: level}
    if key == "workload.burstiness" and cfg.workload.arrival == "poisson":
        overrides["workload.arrival"] = "gamma"  # burstiness only means something for gamma arrivals
    return cfg.with_overrides(overrides)


def design_configs(spec: SweepSpec, base: RunConfig) -> list[RunConfig]:
    """One config per run of the design, named ``<sweep>-<index>`` (``base`` has the overrides applied)."""
    factors = list(spec.factors)
    matrix = design_matrix([len(spec.factors[f]) for f in factors], spec.runs, spec.design, spec.seed)
    configs = []
    for index, row in enumerate(matrix):
        cfg = base.with_overrides({"name": f"{spec.name}-{index:03d}"})
        for factor, level_index in zip(factors, row):
            cfg = apply_factor(cfg, factor, spec.factors[factor][int(level_index)])
        configs.append(cfg)
    return configs


def run_sweep(path: str | Path, db_path: str | Path, *, backend: str = "local", ray_address: str | None = None,
              progress: bool = False, target: Any = None, engine: str | None = None) -> list[str]:
    """Run every configuration of the sweep into ``db_path``; returns the run ids in design order.

    With ``target`` (a :class:`harness.http_target.Target`) or ``engine="vllm"`` each run drives that server
    instead of the embedded engine (:func:`harness.http_run.run_http`; vLLM is started per run with the run's
    engine settings, so engine factors apply to it).
    """
    spec, base = load_sweep(path)
    configs = design_configs(spec, base)
    seeds = [spec.seed + index for index in range(len(configs))]
    if target is not None or engine is not None:
        if backend != "local":
            raise UserError("a sweep against a server runs locally", "drop --backend ray, or drop --target/--engine")
        from harness.http_run import check_http_config, run_http

        for cfg in configs:  # every run's faults and engine settings, refused before the first run starts
            check_http_config(cfg, managed=engine == "vllm")
            if engine == "vllm":
                from harness.peers.vllm_server import vllm_args

                vllm_args(cfg.engine)
        return [run_http(cfg, db_path, seed, target=target, engine=engine, progress=progress)
                for cfg, seed in zip(configs, seeds)]
    if backend == "local":
        from harness.runner import run

        return [run(cfg, db_path, seed=seed, progress=progress) for cfg, seed in zip(configs, seeds)]
    if backend == "ray":
        from harness.ray_backend import run_on_ray

        return run_on_ray(configs, seeds, db_path, address=ray_address)
    raise UserError(f"unknown sweep backend {backend!r}", "use local or ray")

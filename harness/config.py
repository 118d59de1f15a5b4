"""Run configuration: what a TOML file under ``harness/`` may say, validated before anything runs.

A run is one engine configuration, one workload, optional faults and phases. Every section forbids unknown
keys, so a typo fails with one line instead of silently running the default. The validated config, resolved
(the seed, the calibrated rate), is what the run stores in ``runs.config_json``; loading that JSON back gives
the same run.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from causalsre.errors import UserError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineSection(_Strict):
    """The engine knobs; names and defaults follow ``harness.engine.EngineConfig``."""

    model: str = "tiny"
    device: Literal["cpu", "cuda"] = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    num_threads: int = Field(1, ge=1, le=256)
    seed: int = 0
    max_num_seqs: int = Field(16, ge=1)
    max_num_batched_tokens: int = Field(256, ge=1)
    enable_chunked_prefill: bool = True
    chunk_size: int = Field(64, ge=1)
    policy: Literal["fcfs", "priority", "sjf"] = "fcfs"
    batching_mode: Literal["decode_first", "prefill_first"] = "decode_first"
    num_kv_blocks: int = Field(256, ge=1)
    block_size: int = Field(16, ge=1)
    max_queue_len: int = Field(64, ge=1)
    request_timeout_s: float = Field(30.0, gt=0)


class LengthSpec(_Strict):
    """A token-length distribution, clipped to [min, max]."""

    dist: Literal["fixed", "uniform", "lognormal", "empirical"] = "fixed"
    value: int | None = Field(None, ge=1)          # fixed
    low: int | None = Field(None, ge=1)            # uniform
    high: int | None = Field(None, ge=1)           # uniform
    mean: float | None = Field(None, gt=0)         # lognormal: the distribution's mean
    sigma: float = Field(0.5, ge=0)                # lognormal: sigma of log-length
    values: list[int] | None = None                # empirical
    weights: list[float] | None = None             # empirical (default: equal)
    min: int = Field(1, ge=1)
    max: int = Field(4096, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "LengthSpec":
        needed = {"fixed": ["value"], "uniform": ["low", "high"], "lognormal": ["mean"], "empirical": ["values"]}
        missing = [k for k in needed[self.dist] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"dist '{self.dist}' needs {', '.join(missing)}")
        if self.dist == "uniform" and self.low > self.high:
            raise ValueError("uniform low must be <= high")
        if self.min > self.max:
            raise ValueError("min must be <= max")
        if self.dist == "empirical":
            if not self.values or any(v < 1 for v in self.values):
                raise ValueError("empirical values must be a non-empty list of positive lengths")
            if self.weights is not None and (len(self.weights) != len(self.values) or min(self.weights) < 0
                                             or sum(self.weights) <= 0):
                raise ValueError("empirical weights must be non-negative, one per value, not all zero")
        return self


class TraceSpec(_Strict):
    """Replay of an Azure LLM inference trace (TIMESTAMP, ContextTokens, GeneratedTokens)."""

    path: str
    time_scale: float = Field(1.0, gt=0)           # multiply inter-arrival gaps (2 = half the rate)
    rate: float | None = Field(None, gt=0)         # or: rescale time so the run gets rate x duration_s requests
    start_offset_s: float = Field(0.0, ge=0)       # skip this much of the trace first
    length_scale: float = Field(1.0, gt=0)         # multiply both lengths...
    max_prompt_tokens: int = Field(512, ge=1)      # ...then truncate so they fit a small model
    max_output_tokens: int = Field(128, ge=1)


class TenantSpec(_Strict):
    name: str = Field(min_length=1)
    weight: float = Field(1.0, gt=0)
    priority: int = 0


class WorkloadSection(_Strict):
    arrival: Literal["poisson", "gamma", "constant", "closed", "onoff", "ramp", "trace"] = "poisson"
    rate: float | None = Field(None, gt=0)                # mean requests per second
    load_fraction: float | None = Field(None, gt=0)       # or: fraction of the calibrated capacity
    burstiness: float = Field(1.0, gt=0)                  # gamma shape (1 = Poisson, < 1 burstier)
    end_rate: float | None = Field(None, ge=0)            # ramp: rate at the end of the run
    on_s: float = Field(2.0, gt=0)                        # onoff: length of an on period
    off_s: float = Field(2.0, gt=0)                       # onoff: length of an off period
    concurrency: int = Field(4, ge=1)                     # closed loop: clients
    think_time_s: float = Field(0.0, ge=0)                # closed loop: pause between a reply and the next
    prompt: LengthSpec = LengthSpec(dist="fixed", value=64)
    output: LengthSpec = LengthSpec(dist="fixed", value=32)
    tenants: list[TenantSpec] = [TenantSpec(name="default")]
    trace: TraceSpec | None = None
    # Explicit requests (arrival_s, prompt_tokens, output_tokens, tenant, priority, request_id): a replayed
    # window. They keep their original ids, so their prompt tokens (derived from seed and id) are the same.
    requests: list[tuple[float, int, int, str | None, int, int]] | None = None

    @model_validator(mode="after")
    def _check(self) -> "WorkloadSection":
        if self.arrival == "trace" and self.trace is None and self.requests is None:
            raise ValueError("arrival 'trace' needs a [workload.trace] section")
        open_loop = self.arrival not in ("closed", "trace")
        if open_loop and self.rate is None and self.load_fraction is None:
            raise ValueError(f"arrival '{self.arrival}' needs rate or load_fraction")
        if self.rate is not None and self.load_fraction is not None:
            raise ValueError("give rate or load_fraction, not both")
        if self.arrival == "ramp" and self.end_rate is None:
            raise ValueError("arrival 'ramp' needs end_rate")
        if self.requests is not None and len({r[5] for r in self.requests}) != len(self.requests):
            raise ValueError("explicit request ids must be unique")
        if len({t.name for t in self.tenants}) != len(self.tenants):
            raise ValueError("tenant names must be unique")
        return self


FAULT_KINDS = ("config_push", "kv_shrink", "step_delay", "fewer_threads", "cpu_contention",
               "rate_surge", "longer_prompts", "longer_outputs", "burstier", "tenant_flood")


class FaultSpec(_Strict):
    """One injected cause. ``at_s``/``end_s`` are seconds from t0; no ``end_s``: until the end."""

    kind: Literal[FAULT_KINDS]  # type: ignore[valid-type]
    at_s: float = Field(ge=0)
    end_s: float | None = None
    knobs: dict[str, Any] | None = None          # config_push
    num_kv_blocks: int | None = Field(None, ge=1)  # kv_shrink
    delay_s: float | None = Field(None, ge=0)      # step_delay
    num_threads: int | None = Field(None, ge=1)    # fewer_threads
    workers: int | None = Field(None, ge=1)        # cpu_contention: busy processes
    factor: float | None = Field(None, gt=0)       # rate_surge / longer_prompts / longer_outputs
    burstiness: float | None = Field(None, gt=0)   # burstier: gamma shape during the fault
    tenant: str | None = None                      # tenant_flood
    rate: float | None = Field(None, gt=0)         # tenant_flood: extra requests per second...
    load_fraction: float | None = Field(None, gt=0)  # ...or a fraction of the calibrated capacity
    priority: int = 0                              # tenant_flood
    prompt: LengthSpec | None = None               # tenant_flood lengths (default: the workload's)
    output: LengthSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> "FaultSpec":
        needed = {"config_push": "knobs", "kv_shrink": "num_kv_blocks", "step_delay": "delay_s",
                  "fewer_threads": "num_threads", "cpu_contention": "workers", "rate_surge": "factor",
                  "longer_prompts": "factor", "longer_outputs": "factor", "burstier": "burstiness",
                  "tenant_flood": "rate"}[self.kind]
        if self.kind == "tenant_flood" and self.load_fraction is not None:
            needed = "load_fraction"
            if self.rate is not None:
                raise ValueError("tenant_flood takes rate or load_fraction, not both")
        if getattr(self, needed) is None:
            raise ValueError(f"fault '{self.kind}' needs '{needed}'")
        if self.end_s is not None and self.end_s <= self.at_s:
            raise ValueError(f"fault '{self.kind}': end_s must be after at_s")
        if self.kind == "tenant_flood" and not self.tenant:
            raise ValueError("fault 'tenant_flood' needs 'tenant'")
        if self.kind == "config_push":
            unknown = sorted(set(self.knobs) - PUSHABLE_KNOBS)
            if unknown or not self.knobs:
                raise ValueError(f"config_push knobs must be some of {sorted(PUSHABLE_KNOBS)}; got {unknown}")
            EngineSection(**self.knobs)  # same types and bounds as the engine section
        return self


PUSHABLE_KNOBS = {"max_num_seqs", "max_num_batched_tokens", "chunk_size", "enable_chunked_prefill", "policy",
                  "batching_mode", "max_queue_len", "request_timeout_s", "num_kv_blocks"}


class PhaseSpec(_Strict):
    name: str = Field(min_length=1)
    start_s: float = Field(ge=0)
    end_s: float

    @model_validator(mode="after")
    def _check(self) -> "PhaseSpec":
        if self.end_s <= self.start_s:
            raise ValueError(f"phase '{self.name}': end_s must be after start_s")
        return self


class SloSection(_Strict):
    """Thresholds the scenario is designed around (informational; written into truth.json)."""

    ttft_s: float | None = Field(None, gt=0)
    tpot_s: float | None = Field(None, gt=0)
    objective: float = Field(0.9, gt=0, lt=1)


class RunConfig(_Strict):
    name: str = "run"
    description: str = ""
    seed: int = 0
    duration_s: float = Field(20.0, gt=0)       # arrivals stop after this many seconds
    drain_timeout_s: float = Field(10.0, ge=0)  # then wait this long for in-flight requests, abort the rest
    engine: EngineSection = EngineSection()
    workload: WorkloadSection = WorkloadSection(rate=2.0)
    faults: list[FaultSpec] = []
    phases: list[PhaseSpec] = []
    slo: SloSection = SloSection()
    calibrated_capacity_rps: float | None = None   # filled in when load_fraction was resolved

    @model_validator(mode="after")
    def _check(self) -> "RunConfig":
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError("phase names must be unique")
        for p in self.phases:
            if p.end_s > self.duration_s + 1e-9:
                raise ValueError(f"phase '{p.name}' ends after duration_s")
        tenants = {t.name for t in self.workload.tenants}
        for f in self.faults:
            if f.at_s >= self.duration_s:
                raise ValueError(f"fault '{f.kind}' starts at or after duration_s")
            if f.kind == "tenant_flood" and f.tenant in tenants:
                raise ValueError(f"tenant_flood tenant '{f.tenant}' must be a new tenant name")
            if f.kind == "tenant_flood" and f.load_fraction is not None and self.workload.load_fraction is None:
                raise ValueError("a tenant_flood load_fraction needs workload.load_fraction (a calibrated run)")
        return self

    def with_overrides(self, overrides: dict[str, Any]) -> "RunConfig":
        """A copy with dotted keys replaced, e.g. ``{"engine.max_num_seqs": 8, "workload.rate": 4}``."""
        data = self.model_dump()
        for key, value in overrides.items():
            target = data
            parts = key.split(".")
            for part in parts[:-1]:
                if not isinstance(target.get(part), dict):
                    raise UserError(f"unknown config key '{key}'", "use dotted keys like engine.max_num_seqs")
                target = target[part]
            if parts[-1] not in target:
                raise UserError(f"unknown config key '{key}'", "use dotted keys like engine.max_num_seqs")
            target[parts[-1]] = copy.deepcopy(value)
        return parse_run_config(data, source=f"overrides {sorted(overrides)}")

    def flood_rate(self, fault: FaultSpec) -> float:
        """A tenant flood's requests per second (its load_fraction times the calibrated capacity)."""
        if fault.rate is not None:
            return fault.rate
        if self.calibrated_capacity_rps is None:
            raise UserError("tenant_flood load_fraction needs a calibrated capacity", "run it through harness.run")
        return fault.load_fraction * self.calibrated_capacity_rps

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "config"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{where}: {message}"


def parse_run_config(data: dict[str, Any], *, source: str = "config") -> RunConfig:
    """Validate a config dict (from TOML or a stored config_json); UserError on the first problem."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"bad run config {source}: {_first_error(exc)}",
                        "see docs/harness.md for the keys a run config takes") from None


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate a run config TOML file; trace files it names must exist."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist", "check the path")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"config file {path} is not valid TOML ({exc})", "fix the syntax") from None
    data.setdefault("name", path.stem)
    trace = data.get("workload", {}).get("trace") if isinstance(data.get("workload"), dict) else None
    if isinstance(trace, dict) and isinstance(trace.get("path"), str) and not Path(trace["path"]).is_absolute():
        # Relative trace paths are relative to the config file, so configs can travel with their traces.
        candidate = path.parent / trace["path"]
        if candidate.exists():
            trace["path"] = str(candidate.resolve())
    return parse_run_config(data, source=str(path))

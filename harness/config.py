"""Run configuration: what a TOML file under ``harness/`` may say, validated before anything runs.

A run is one engine configuration, one workload, optional faults and phases. Every section forbids unknown
keys, so a typo fails with one line instead of silently running the default. The validated config, resolved
(the seed, the calibrated rate), is what the run stores in ``runs.config_json``; loading that JSON back gives
the same run.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from harness.engine.config import EngineConfig
from harness.engine.errors import UserError
from causalsre.safeio import load_toml, regular_file
from harness.engine.settings import TIERED_POLICIES
from harness.settings import MAX_DURATION_S, MAX_RATE_RPS, MAX_REQUESTS, MAX_SEED, PUSHABLE_KNOBS
from harness.workload_config import LengthSpec, TenantSpec, TraceSpec, WorkloadSection, _Strict
# The sections below RunConfig live in their own module; re-exported so `from harness.config import X` stays.
from harness.config_sections import (  # noqa: F401
    check_name,
    FAULT_KINDS, ClockSection, EngineSection, FaultSpec, GovernorSection, PhaseSpec, SloSection, TierSection,
)

__all__ = ["ClockSection", "EngineSection", "FaultSpec", "GovernorSection", "TierSection", "LengthSpec", "PhaseSpec", "RunConfig", "SloSection", "TenantSpec",
           "TraceSpec", "WorkloadSection", "load_run_config", "parse_run_config", "PUSHABLE_KNOBS", "FAULT_KINDS"]


class RunConfig(_Strict):
    name: str = Field("run", min_length=1, max_length=200)
    description: str = ""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    duration_s: float = Field(20.0, gt=0, le=MAX_DURATION_S)  # arrivals stop after this many seconds
    drain_timeout_s: float = Field(10.0, ge=0, le=MAX_DURATION_S)  # then wait this long for in-flight requests, abort the rest
    engine: EngineSection = EngineSection()
    workload: WorkloadSection = WorkloadSection(rate=2.0)
    faults: list[FaultSpec] = []
    phases: list[PhaseSpec] = []
    slo: SloSection = SloSection()
    governor: GovernorSection | None = None        # tiers for policy vtc/edf/budget (docs/methods/governor.md)
    calibrated_capacity_rps: float | None = None   # filled in when load_fraction was resolved
    clock: ClockSection = ClockSection()           # wall, or a modelled step-cost clock (policy evaluation)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return check_name(name, "name")

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
        self._check_work()
        self._check_engine_memory()
        self._check_governor()
        return self

    def _check_governor(self) -> None:
        """edf and budget need tiers (deadlines, budgets); so does a push to them."""
        pushed = [f.knobs.get("policy") for f in self.faults if f.kind == "config_push" and f.knobs]
        for policy in [self.engine.policy, *pushed]:
            if policy in TIERED_POLICIES and self.governor is None:
                raise ValueError(f"policy '{policy}' needs a [governor] section with [[governor.tiers]]")

    def governor_config(self):
        """The engine's GovernorConfig, or None without a [governor] section."""
        from harness.engine.governor.config import GovernorConfig

        return None if self.governor is None else GovernorConfig.from_dict(self.governor.model_dump())

    def step_cost_model(self):
        """The engine's modelled clock (a StepCostModel), or None for the wall clock."""
        if self.clock.mode == "wall":
            return None
        from harness.engine.clock import StepCostModel

        return StepCostModel.from_dict(self.clock.model_dump(exclude={"mode"}))

    def _check_engine_memory(self) -> None:
        """The engine's own checks (the KV cache against this machine's memory) for the base config and for
        every push or shrink, so a push that could never be applied fails before the run, not in the middle."""
        base = self.engine.model_dump()
        EngineConfig(**base)
        for f in self.faults:
            if f.kind == "config_push":
                EngineConfig(**{**base, **EngineSection(**f.knobs).model_dump(include=set(f.knobs))})
            elif f.kind == "kv_shrink":
                EngineConfig(**{**base, "num_kv_blocks": f.num_kv_blocks})

    def _check_work(self) -> None:
        """The peak offered rate and the requests it implies stay within the documented limits."""
        wl = self.workload
        peak = max(wl.rate or 0.0, wl.end_rate or 0.0)
        for f in self.faults:
            if f.kind == "rate_surge":
                peak *= f.factor          # surges may overlap: bound the product
        peak += sum(f.rate for f in self.faults if f.kind == "tenant_flood" and f.rate is not None)
        if peak > MAX_RATE_RPS:
            raise ValueError(f"the peak offered rate {peak:,.0f}/s is above the limit of {MAX_RATE_RPS:,.0f}/s; "
                             "lower workload.rate or the surge factors")
        if peak * self.duration_s > MAX_REQUESTS:
            raise ValueError(f"{peak:,.0f}/s for {self.duration_s:,.0f} s is about {peak * self.duration_s:,.0f} "
                             f"requests, above the limit of {MAX_REQUESTS:,}; shorten duration_s or lower the rate")

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
        message = "unknown key" + did_you_mean(RunConfig, err["loc"])
    return f"{where}: {message}"


def did_you_mean(model: type[BaseModel], loc: tuple) -> str:
    """`` (did you mean 'max_num_seqs'?)`` for an unknown key at ``loc`` (a pydantic error's location) when a
    key of the section it is in is close to it, else "". Typos were refused as "unknown key" alone."""
    import difflib
    import typing

    for part in loc[:-1]:  # walk down to the section the key is in; list indexes keep the item's model
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return ""
        inner = [a for a in (typing.get_args(field.annotation) or (field.annotation,)) if a is not type(None)]
        inner = [b for a in inner for b in (typing.get_args(a) or (a,))]  # list[Tier] -> Tier
        models = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if not models:
            return ""
        model = models[0]
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_run_config(data: dict[str, Any], *, source: str = "config") -> RunConfig:
    """Validate a config dict (from TOML or a stored config_json); UserError on the first problem."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"bad run config {source}: {_first_error(exc)}",
                        "see docs/harness.md for the keys a run config takes") from None


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_table(path: Path, what: str = "config file", seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A config TOML as a table, with ``extends = "NAME"`` resolved: NAME.toml in the same folder is read first
    and deep-merged under this file's keys (the file's keys win), so a run config and a scenario share a base."""
    data = load_toml(path, what=what)  # bounded size, UTF-8, nesting: causalsre.safeio
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent or parent in seen or "/" in parent or "\\" in parent:
        raise UserError(f"{what} {path.stem}: bad extends {parent!r}",
                        "name a base file in the same folder, without .toml, and no cycle")
    base_path = path.parent / f"{parent}.toml"
    if not base_path.is_file():
        raise UserError(f"{what} {path.stem} extends {parent!r}, which does not exist",
                        f"put {parent}.toml beside {path.name}")
    return _deep_merge(read_config_table(base_path, what, seen + (parent,)), data)


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate a run config TOML file (``extends`` resolved); trace files it names must exist."""
    path = Path(path)
    regular_file(path, what="config file")  # a folder or FIFO says what it is, not "does not exist"
    data = read_config_table(path)
    data.setdefault("name", path.stem)
    trace = data.get("workload", {}).get("trace") if isinstance(data.get("workload"), dict) else None
    if isinstance(trace, dict) and isinstance(trace.get("path"), str) and not Path(trace["path"]).is_absolute():
        # Relative trace paths are relative to the config file, so configs can travel with their traces.
        candidate = path.parent / trace["path"]
        if candidate.exists():
            trace["path"] = str(candidate.resolve())
    return parse_run_config(data, source=str(path))

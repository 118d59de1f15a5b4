"""The workload part of a run config: arrival process, rate, token lengths, tenants and trace replay.

Split from :mod:`harness.config` (which re-exports every name here) to keep each module short. Every number
is bounded by the run-level limits of :mod:`harness.settings`; ``allow_inf_nan=False`` refuses inf and nan.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from harness.settings import MAX_CONCURRENCY, MAX_DURATION_S, MAX_FACTOR, MAX_LOAD_FRACTION, MAX_RATE_RPS, MAX_TOKENS


def _scalar_kind(annotation: Any) -> str | None:
    """"number" for an int/float field (optional or not), "bool" for a bool field, else None."""
    args = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        else (annotation,)
    kinds = {a for a in args if a is not type(None)}
    if kinds == {bool}:
        return "bool"
    return "number" if kinds and kinds <= {int, float} else None


def _finite_text(text: str) -> bool:
    """Whether lax mode would read ``text`` as a number; "inf" and "abc" are left to pydantic's own words."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


class _Strict(BaseModel):
    # allow_inf_nan=False: inf and nan are refused in every float field (a rate of inf would never finish).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _toml_types(cls, value: Any, info: ValidationInfo) -> Any:
        """TOML and JSON have their own numbers and booleans, so a value of another type is a mistake: pydantic's
        lax mode read ``max_num_seqs = "4"`` as 4, ``= true`` as 1 and ``enable_chunked_prefill = "yes"`` as
        true. Not pydantic's strict mode: it refuses the lists a stored config_json gives for tuples."""
        kind = _scalar_kind(cls.model_fields[info.field_name].annotation)
        if kind == "number" and (isinstance(value, bool) or (isinstance(value, str) and _finite_text(value))):
            shown = "true/false" if isinstance(value, bool) else f"the text {value[:40]!r}"
            raise PydanticCustomError("toml_type", "must be a number, not {shown}; write the number without quotes",
                                      {"shown": shown})
        if kind == "bool" and not isinstance(value, bool):
            raise PydanticCustomError("toml_type", "must be true or false, not {shown}; write true or false without "
                                      "quotes", {"shown": repr(str(value)[:40])})
        return value


class LengthSpec(_Strict):
    """A token-length distribution, clipped to [min, max]."""

    dist: Literal["fixed", "uniform", "lognormal", "empirical"] = "fixed"
    value: int | None = Field(None, ge=1, le=MAX_TOKENS)  # fixed
    low: int | None = Field(None, ge=1, le=MAX_TOKENS)    # uniform
    high: int | None = Field(None, ge=1, le=MAX_TOKENS)   # uniform
    mean: float | None = Field(None, gt=0, le=MAX_TOKENS)  # lognormal: the distribution's mean
    sigma: float = Field(0.5, ge=0, le=10)        # lognormal: sigma of log-length
    values: list[int] | None = None                # empirical
    weights: list[float] | None = None             # empirical (default: equal)
    min: int = Field(1, ge=1, le=MAX_TOKENS)
    max: int = Field(4096, ge=1, le=MAX_TOKENS)

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
    time_scale: float = Field(1.0, gt=0, le=1e6)        # multiply inter-arrival gaps (2 = half the rate)
    rate: float | None = Field(None, gt=0, le=MAX_RATE_RPS)  # or: rescale time so the run gets rate x duration_s requests
    start_offset_s: float = Field(0.0, ge=0, le=1e9)     # skip this much of the trace first
    length_scale: float = Field(1.0, gt=0, le=MAX_FACTOR)      # multiply both lengths...
    max_prompt_tokens: int = Field(512, ge=1, le=MAX_TOKENS)    # ...then truncate so they fit a small model
    max_output_tokens: int = Field(128, ge=1, le=MAX_TOKENS)


class TenantSpec(_Strict):
    name: str = Field(min_length=1)
    weight: float = Field(1.0, gt=0, le=1e9)
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)


class WorkloadSection(_Strict):
    arrival: Literal["poisson", "gamma", "constant", "closed", "onoff", "ramp", "trace"] = "poisson"
    rate: float | None = Field(None, gt=0, le=MAX_RATE_RPS)  # mean requests per second
    load_fraction: float | None = Field(None, gt=0, le=MAX_LOAD_FRACTION)  # or: fraction of the calibrated capacity
    burstiness: float = Field(1.0, gt=0, le=1e6)         # gamma shape (1 = Poisson, < 1 burstier)
    end_rate: float | None = Field(None, ge=0, le=MAX_RATE_RPS)  # ramp: rate at the end of the run
    on_s: float = Field(2.0, gt=0, le=MAX_DURATION_S)     # onoff: length of an on period
    off_s: float = Field(2.0, gt=0, le=MAX_DURATION_S)    # onoff: length of an off period
    concurrency: int = Field(4, ge=1, le=MAX_CONCURRENCY)  # closed loop: clients
    think_time_s: float = Field(0.0, ge=0, le=MAX_DURATION_S)  # closed loop: pause between a reply and the next
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

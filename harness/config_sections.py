"""The sections of a run configuration below ``RunConfig``: engine and governor knobs (generated from
harness.engine.settings), faults, phases, the scenario's SLO thresholds and the clock.

Part of :mod:`harness.config`, which re-exports every name here; import from there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, create_model, field_validator, model_validator

from harness.engine.config import MODEL_PRESETS
from harness.engine.settings import (DEVICE_PATTERN, ENGINE_SETTINGS, GOVERNOR_SETTINGS, SETTINGS,
                                     TIER_SETTINGS, Setting)
from harness.settings import (MAX_CONTENTION_WORKERS, MAX_DURATION_S, MAX_FACTOR, MAX_LOAD_FRACTION,
                              MAX_RATE_RPS, MAX_STEP_DELAY_S, MAX_THREADS, PUSHABLE_KNOBS)
from harness.workload_config import LengthSpec, _Strict


def _engine_field(setting: Setting) -> tuple[Any, Any]:
    """(annotation, Field) of one engine setting, from its declared kind and bounds."""
    if setting.kind in ("int", "float"):
        base: Any = int if setting.integral else float
        low = {"gt": setting.low} if setting.low_open else {"ge": setting.low}
        field_info = Field(setting.default, le=setting.high, **low)
    elif setting.kind == "bool":
        base, field_info = bool, Field(setting.default)
    elif setting.kind == "device":
        base, field_info = str, Field(setting.default, pattern=DEVICE_PATTERN)
    else:
        choices = tuple(MODEL_PRESETS) if setting.kind == "preset" else setting.choices
        base, field_info = Literal[choices], Field(setting.default)  # type: ignore[valid-type]
    return (base | None if setting.nullable else base), field_info


# The engine knobs: one field per harness.engine.settings.ENGINE_SETTINGS entry, same defaults and bounds.
EngineSection = create_model("EngineSection", __base__=_Strict, __module__=__name__,
                             **{s.name: _engine_field(s) for s in ENGINE_SETTINGS})
EngineSection.__doc__ = "The engine knobs; names, defaults and bounds from harness.engine.settings."


# The [governor] section and its [[governor.tiers]]: fields and bounds from harness.engine.settings; the
# cross-field rules (unique names, one tier per tenant, min <= max) are GovernorConfig's own.
TierSection = create_model("TierSection", __base__=_Strict, __module__=__name__,
                           name=(str, Field(min_length=1)), tenants=(list[str], Field(default_factory=list)),
                           **{s.name: _engine_field(s) for s in TIER_SETTINGS})
TierSection.__doc__ = "One tier: tenants, criticality (0 = most critical), SLO thresholds, protected, vtc weight."


class _GovernorChecks(_Strict):
    @model_validator(mode="after")
    def _check(self) -> "_GovernorChecks":
        from harness.engine.governor.config import GovernorConfig

        GovernorConfig.from_dict(self.model_dump())   # UserError (a ValueError) becomes the config's error
        return self


GovernorSection = create_model("GovernorSection", __base__=_GovernorChecks, __module__=__name__,
                               tiers=(list[TierSection], Field(default_factory=list)),
                               **{s.name: _engine_field(s) for s in GOVERNOR_SETTINGS})
GovernorSection.__doc__ = "The budget governor: tiers and its parameters (docs/methods/governor.md)."


FAULT_KINDS = ("config_push", "kv_shrink", "step_delay", "fewer_threads", "cpu_contention",
               "rate_surge", "longer_prompts", "longer_outputs", "burstier", "tenant_flood")


class FaultSpec(_Strict):
    """One injected cause. ``at_s``/``end_s`` are seconds from t0; no ``end_s``: until the end."""

    kind: Literal[FAULT_KINDS]  # type: ignore[valid-type]
    at_s: float = Field(ge=0, le=MAX_DURATION_S)
    end_s: float | None = None
    knobs: dict[str, Any] | None = None          # config_push
    num_kv_blocks: int | None = Field(None, ge=1, le=SETTINGS["num_kv_blocks"].high)  # kv_shrink
    delay_s: float | None = Field(None, ge=0, le=MAX_STEP_DELAY_S)  # step_delay
    num_threads: int | None = Field(None, ge=1, le=MAX_THREADS)  # fewer_threads
    workers: int | None = Field(None, ge=1, le=MAX_CONTENTION_WORKERS)  # cpu_contention: busy processes
    factor: float | None = Field(None, gt=0, le=MAX_FACTOR)  # rate_surge / longer_prompts / longer_outputs
    burstiness: float | None = Field(None, gt=0, le=1e6)  # burstier: gamma shape during the fault
    tenant: str | None = None                      # tenant_flood
    rate: float | None = Field(None, gt=0, le=MAX_RATE_RPS)  # tenant_flood: extra requests per second...
    load_fraction: float | None = Field(None, gt=0, le=MAX_LOAD_FRACTION)  # ...or a fraction of the calibrated capacity
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)  # tenant_flood
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


def check_name(name: str, what: str, *, window_mark: bool = False) -> str:
    """A run's or a phase's name, which the CLI's windows address (``--run ID``, ``phase:NAME@RUN``): a line
    break or tab split `db info`'s listing and could not be typed; a run name starting with '-' gave run ids
    that read as options; a phase name holding '@' (``phase:a@b`` is phase a of run b) could not be addressed;
    blanks around it never matched what one types."""
    from causalsre.errors import UserError
    from causalsre.safeio import printable_name

    try:
        printable_name(name, what)
    except UserError as exc:
        raise ValueError(exc.one_line()) from None
    if name != name.strip():
        raise ValueError(f"{what} {name!r} starts or ends with blanks (write the name without them)")
    if name.startswith("-"):
        raise ValueError(f"{what} {name!r} starts with '-', so its run ids read as options (start it with a "
                         "letter or digit)")
    if window_mark and "@" in name:
        raise ValueError(f"{what} {name!r} holds '@', which windows read as 'of run' (phase:NAME@RUN) (write the "
                         "name without '@', e.g. with '_')")
    return name


class PhaseSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    start_s: float = Field(ge=0, le=MAX_DURATION_S)
    end_s: float

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return check_name(name, "phase name", window_mark=True)

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


class ClockSection(_Strict):
    """Which clock the engine runs on (harness.engine.clock): ``wall`` (perf_counter) or ``modelled`` (each
    step advances time by the fitted step-cost model, so timings do not move with the machine's load).
    The coefficients are seconds; ``modelled`` needs all four (``causalsre eval govern`` fits them)."""

    mode: Literal["wall", "modelled"] = "wall"
    base_s: float | None = Field(None, ge=0, le=10)
    prefill_token_s: float | None = Field(None, ge=0, le=10)
    decode_seq_s: float | None = Field(None, ge=0, le=10)
    kv_token_s: float | None = Field(None, ge=0, le=10)

    @model_validator(mode="after")
    def _check(self) -> "ClockSection":
        given = [v is not None for v in (self.base_s, self.prefill_token_s, self.decode_seq_s, self.kv_token_s)]
        if self.mode == "modelled" and not all(given):
            raise ValueError("clock.mode = 'modelled' needs base_s, prefill_token_s, decode_seq_s and kv_token_s")
        if self.mode == "wall" and any(given):
            raise ValueError("step-cost coefficients are for clock.mode = 'modelled'")
        return self

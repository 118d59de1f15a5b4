"""Tiers and the governor's parameters, validated once when they are made (pure Python).

A tier is a set of tenants with one SLO: a request is good iff it finished ok AND (ttft_s is undefined or
ttft <= ttft_s) AND (tpot is undefined or tpot <= tpot_s), the definition of ``causalsre.slo``'s
``good_event_sql`` over ``request_metrics``. A tenant listed in no tier belongs to the ``default`` tier:
least critical, sheddable, with the loosest thresholds and the lowest objective of the listed tiers (or
the shipped SLO's 1 s / 250 ms / 99 % when no tier is listed). A tier may be named ``default`` to set it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.engine.errors import UserError
from harness.engine.settings import GOVERNOR_SETTINGS, TIER_SETTINGS

DEFAULT_TIER = "default"
_FIX = "see docs/methods/governor.md for the [governor] section"


@dataclass(frozen=True, slots=True)
class TierSpec:
    name: str
    tenants: tuple[str, ...] = ()
    criticality: int = 0
    objective: float = 0.99
    ttft_s: float = 1.0
    tpot_s: float = 0.25
    protected: bool = False
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise UserError(f"a governor tier needs a non-empty name, got {self.name!r}", _FIX)
        if isinstance(self.tenants, (str, bytes)) or not all(isinstance(t, str) for t in self.tenants):
            raise UserError(f"tier {self.name}: tenants must be a list of tenant names", _FIX)
        for setting in TIER_SETTINGS:
            setting.check(getattr(self, setting.name))

    @property
    def budget(self) -> float:
        """The bad share the objective allows (1 - objective)."""
        return 1.0 - self.objective


# Tiers are criticality classes (the Gateway API inference extension has three); every step walks all of them,
# so thousands (one per tenant) would make the governor the bottleneck.
MAX_TIERS = 64


@dataclass(frozen=True, slots=True)
class GovernorConfig:
    tiers: tuple[TierSpec, ...] = ()
    buffer_share: float = 0.1
    margin: float = 0.25
    short_window_s: float = 30.0
    long_window_s: float = 300.0
    page_burn: float = 14.4
    min_short_events: int = 10
    min_max_num_seqs: int = 2
    max_max_num_seqs: int = 32
    min_batched_tokens: int = 64
    max_batched_tokens: int = 512
    _by_tenant: dict = field(default_factory=dict, repr=False, compare=False)
    _default: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for setting in GOVERNOR_SETTINGS:
            setting.check(getattr(self, setting.name))
        if self.short_window_s >= self.long_window_s:
            raise UserError(f"governor short_window_s ({self.short_window_s}) must be below long_window_s "
                            f"({self.long_window_s})", _FIX)
        if self.min_max_num_seqs > self.max_max_num_seqs or self.min_batched_tokens > self.max_batched_tokens:
            raise UserError("governor bounds: min_max_num_seqs <= max_max_num_seqs and "
                            "min_batched_tokens <= max_batched_tokens", _FIX)
        if len(self.tiers) > MAX_TIERS:
            raise UserError(f"governor has {len(self.tiers)} tiers; at most {MAX_TIERS} are supported",
                            "group tenants into a few criticality tiers (premium, standard, free): the governor "
                            "walks every tier on each step")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise UserError(f"governor tier names must be unique, got {names}", _FIX)
        for tier in self.tiers:
            for tenant in tier.tenants:
                if tenant in self._by_tenant:
                    raise UserError(f"tenant {tenant!r} is in tiers {self._by_tenant[tenant].name} and {tier.name}",
                                    "list each tenant in one tier")
                self._by_tenant[tenant] = tier
        default = next((t for t in self.tiers if t.name == DEFAULT_TIER), None)
        if default is None:
            default = _implicit_default(self.tiers)
        elif default.protected:
            raise UserError("the default tier (unlisted tenants) cannot be protected", _FIX)
        object.__setattr__(self, "_default", default)

    @property
    def all_tiers(self) -> tuple[TierSpec, ...]:
        """Every tier, the default one included, most critical first."""
        tiers = list(self.tiers)
        if self._default not in tiers:
            tiers.append(self._default)
        return tuple(sorted(tiers, key=lambda t: (t.criticality, t.name)))

    def tier_of(self, tenant: str | None) -> TierSpec:
        return self._by_tenant.get(tenant, self._default) if tenant is not None else self._default

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GovernorConfig:
        """From the run TOML's ``[governor]`` table (already checked by harness.config) or a plain dict."""
        data = dict(data)
        tiers = tuple(TierSpec(**{**t, "tenants": tuple(t.get("tenants", ()))}) for t in data.pop("tiers", ()) or ())
        known = {s.name for s in GOVERNOR_SETTINGS}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown governor key(s): {', '.join(unknown)}", f"use some of {', '.join(sorted(known))}")
        return cls(tiers=tiers, **data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {s.name: getattr(self, s.name) for s in GOVERNOR_SETTINGS}
        out["tiers"] = [{"name": t.name, "tenants": list(t.tenants), "criticality": t.criticality,
                         "objective": t.objective, "ttft_s": t.ttft_s, "tpot_s": t.tpot_s,
                         "protected": t.protected, "weight": t.weight} for t in self.tiers]
        return out


def _implicit_default(tiers: tuple[TierSpec, ...]) -> TierSpec:
    if not tiers:
        return TierSpec(DEFAULT_TIER, criticality=0, objective=0.99, ttft_s=1.0, tpot_s=0.25)
    return TierSpec(DEFAULT_TIER, criticality=max(t.criticality for t in tiers) + 1,
                    objective=min(t.objective for t in tiers), ttft_s=max(t.ttft_s for t in tiers),
                    tpot_s=max(t.tpot_s for t in tiers), protected=False, weight=min(t.weight for t in tiers))

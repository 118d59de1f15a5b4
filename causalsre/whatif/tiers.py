"""Each governor tier's error budget over a window's requests, counted as `slo report` counts it.

A tier's good event is the SLO package's rule (:func:`causalsre.slo.sql.good_event_sql`: finished ok and
each defined latency within the tier's ``ttft_s`` / ``tpot_s``), over the ``request_metrics`` view, so
``slo report --slo TIER.yaml --where tenant=T`` with the same thresholds finds the same counts. Budget
consumed = bad / (events x (1 - objective)): 1.0 is the whole budget. No harness import: the tiers arrive
as plain :class:`TierRule` values (``causalsre.whatif.governor`` makes them from the governor's config).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from causalsre.slo.spec import Condition


@dataclass(frozen=True, slots=True)
class TierRule:
    name: str
    tenants: tuple[str, ...] | None  # None: every tenant listed in no other tier (the governor's default tier)
    objective: float
    ttft_s: float
    tpot_s: float
    protected: bool = False
    criticality: int = 0

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """What ``good_event_sql`` reads: the tier's latency thresholds as SLO conditions."""
        return (Condition(metric="ttft_s", op="lte", value=self.ttft_s),
                Condition(metric="tpot_s", op="lte", value=self.tpot_s))


def tier_of(rules: list[TierRule], tenant: str | None) -> TierRule:
    listed = [r for r in rules if r.tenants is not None and tenant in r.tenants]
    if listed:
        return listed[0]
    return next(r for r in rules if r.tenants is None)


def tier_budgets(con, window, rules: list[TierRule]) -> list[dict]:
    """``[{tier, protected, objective, events, bad_events, budget_consumed}]`` for the window's requests, most
    critical tier first; a tier with no request in the window has ``budget_consumed`` None (no data)."""
    from causalsre.slo.sql import good_event_sql

    condition, params = window.where()
    out = []
    for rule in sorted(rules, key=lambda r: (r.criticality, r.name)):
        good, good_params = good_event_sql(rule)
        rows = con.execute(f"SELECT tenant, {good} AS is_good FROM request_metrics WHERE {condition}",
                           good_params + params).fetchall()
        mine = [is_good for tenant, is_good in rows if tier_of(rules, tenant) is rule]
        events, bad = len(mine), sum(1 for g in mine if not g)
        budget = float(Decimal(1) - Decimal(repr(rule.objective)))   # as SLOSpec.error_budget: 0.99 -> 0.01
        out.append({"tier": rule.name, "protected": rule.protected, "objective": rule.objective, "events": events,
                    "bad_events": bad, "budget_consumed": bad / (events * budget) if events else None})
    return out


def pooled(per_run: list[list[dict]]) -> list[dict]:
    """Tier budgets of several runs' windows (a phase replayed run by run) summed into one."""
    out = []
    for rows in zip(*per_run):
        events, bad = sum(r["events"] for r in rows), sum(r["bad_events"] for r in rows)
        first = rows[0]
        budget = float(Decimal(1) - Decimal(repr(first["objective"])))
        out.append({**first, "events": events, "bad_events": bad,
                    "budget_consumed": bad / (events * budget) if events else None})
    return out


def worst_protected(tiers: list[dict]) -> tuple[int, float, int]:
    """A ranking key, smaller is better: (protected tiers over budget, the largest protected budget consumed,
    bad events over all tiers)."""
    protected = [t["budget_consumed"] for t in tiers if t["protected"] and t["budget_consumed"] is not None]
    return (sum(1 for c in protected if c > 1.0), max(protected, default=0.0), sum(t["bad_events"] for t in tiers))

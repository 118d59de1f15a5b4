"""A second opinion on a partial revert: what the postmortem's causal model says the other causes burn alone.

Reverting one cause of a two-cause incident leaves the other in place, and the replays split in two: either
the cause left in place burns the budget on its own (a tenant flood past capacity, with or without the pushed
timeout) or it does not (a longer prompt on a cache that is no longer shrunk). The paired burn model
(:mod:`causalsre.bayes.paired`) is additive in the logit: nothing in it can say which, so its kept share of the
window's excess was a prior, and on the round-6 generated suites most of its misses were the first kind,
predicted to fall to ~0 where the replay kept 60-100 % of the burn.

The postmortem already fits a model that can say it: gradient-boosted mechanisms over the whole graph, whose
exact Shapley values evaluate every coalition of the detected changes (``coalition_bad_rates`` of its result).
The share of the excess that reverting ``X`` keeps is ``rho = (v(all - X) - v({})) / (v(all) - v({}))``.
Neither model is right every time (on the round-6 suites each was wrong on cases the other got right), so the
interval of ``bayes_paired_hull`` is the hull of both: the paired model's 90 % interval and the 90 % binomial
band of the replay's window at ``a + rho (u - a)`` (``a`` the run's baseline points, ``u`` the unchanged
replay's). Where they agree the interval stays narrow; where they disagree it spans both answers, which is
what is known. No constant is fitted.
"""

from __future__ import annotations

from scipy.stats import binom

TENANT = "tenant"
TENANT_FACE = 0.5   # a factor whose change came more from the tenant mix than from within: the tenant's face


def postmortem_of(ctx, case, seed: int) -> dict:
    """The postmortem of ``case``'s incident window against its run's baseline phase (a whatif Context)."""
    from causalsre.causal.postmortem import postmortem

    return postmortem(ctx.con, ctx.slo, ctx.window(f"phase:baseline@{case.run_id}"), ctx.window(case.window),
                      ctx.graph, seed=seed)


def reverted_players(result: dict, cause: str) -> set[str]:
    """The postmortem's players a revert of ``cause`` sets back: the cause's own factor, and for a tenant the
    factors whose change was mostly its mix (``tenant_composition_share`` > 1/2: a flood's rate and lengths)."""
    players = {name for row in result.get("coalition_bad_rates") or [] for name in row["changed"]}
    out = {cause} & players
    if cause == TENANT:
        shares = result.get("tenant_composition_share") or {}
        out |= {f for f, share in shares.items() if share > TENANT_FACE and f in players}
    return out


def kept_share(result: dict, cause: str) -> float | None:
    """``rho`` in [0, 1] (module doc), or None where the model cannot say: the cause is no player of its
    attribution, or the changes move its bad rate by (almost) nothing."""
    rows = result.get("coalition_bad_rates") or []
    if not rows:
        return None
    rates = {frozenset(row["changed"]): float(row["bad_rate"]) for row in rows}
    everything = max(rates, key=len)
    dropped = reverted_players(result, cause)
    if not dropped:
        return None
    none, full = rates[frozenset()], rates[everything]
    if abs(full - none) < 1e-3:
        return None
    left = rates[everything - dropped]
    return min(1.0, max(0.0, (left - none) / (full - none)))


def band(rho: float, baseline_points: float, unchanged_points: float, requests: int) -> tuple[float, float]:
    """The 90 % binomial band, in burn points, of a window of ``requests`` at ``a + rho (u - a)``."""
    share = min(1.0, max(0.0, (baseline_points + rho * (unchanged_points - baseline_points)) / 100.0))
    low, high = binom.ppf([0.05, 0.95], max(int(requests), 1), share)
    return 100.0 * float(low) / max(int(requests), 1), 100.0 * float(high) / max(int(requests), 1)


def hull(paired: dict, rho: float | None, baseline_points: float, unchanged_points: float, requests: int) -> dict:
    """``bayes_paired_hull`` from ``bayes_paired``'s prediction (its point; the hull of the two intervals)."""
    out = {"point": paired["point"], "low": paired["low"], "high": paired["high"], "kept_share": rho}
    if rho is None or not paired.get("left_in_place"):
        return out
    low, high = band(rho, baseline_points, unchanged_points, requests)
    out.update(low=min(paired["low"], low), high=max(paired["high"], high), band=[low, high])
    return out

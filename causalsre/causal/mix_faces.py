"""Which length shifts are only the tenant mix's: the faces of one change, not changes of their own.

When one tenant floods, the window's prompt and output lengths move too, because that tenant's requests have
their own lengths: the lengths of each tenant are what they were. Listed as three changes (tenant, prompt
lengths, output lengths), one cause looks like three suspects, and a what-if that reverts the tenant mix would
wrongly count the lengths as a change left in place (a replay with the baseline's mix has the baseline's
lengths). A length shift is the mix's face when it does not hold *within* any tenant: for every tenant with
enough requests in both windows, its own lengths pass the same two-sample KS test the window-level shift uses
(Bonferroni over the tenants). A tenant seen only in the incident has no lengths to compare: it is the mix.
A length shift that holds within some tenant (longer replies for everyone, as well as a flood) stays a change.
"""

from __future__ import annotations

import pandas as pd
from scipy import stats

MIN_REQUESTS = 20   # per tenant and window: fewer cannot show a within-tenant shift, so they do not vote
LENGTHS = ("prompt_tokens", "output_tokens")


def holds_within_tenants(column: str, base: pd.DataFrame, inc: pd.DataFrame, alpha: float, min_effect: float) -> bool | None:
    """Whether ``column``'s shift holds within at least one tenant (True), within none of those that can be
    compared (False), or cannot be told (None: no tenant has ``MIN_REQUESTS`` in both windows)."""
    if "tenant" not in base.columns or "tenant" not in inc.columns:
        return None
    b_groups = {str(k): g[column].dropna().to_numpy(float) for k, g in base.groupby(base["tenant"].astype(str))}
    i_groups = {str(k): g[column].dropna().to_numpy(float) for k, g in inc.groupby(inc["tenant"].astype(str))}
    both = [t for t in sorted(set(b_groups) & set(i_groups))
            if len(b_groups[t]) >= MIN_REQUESTS and len(i_groups[t]) >= MIN_REQUESTS]
    if not both:
        return None
    level = alpha / len(both)
    for tenant in both:
        test = stats.ks_2samp(b_groups[tenant], i_groups[tenant])
        if test.pvalue < level and test.statistic >= min_effect:
            return True
    return False


def mark_mix_faces(shifts: list[dict], base: pd.DataFrame, inc: pd.DataFrame, alpha: float,
                   min_effect: float = 0.15) -> None:
    """In place: a significant length shift that holds within no tenant, beside a significant tenant-mix shift,
    gets ``explained_by: "tenant"`` (it stays listed, with its size and test, but is the mix's face)."""
    tenant = next((s for s in shifts if s.get("name") == "tenant"), None)
    if tenant is None or not tenant.get("significant"):
        return
    for shift in shifts:
        if shift.get("name") in LENGTHS and shift.get("significant"):
            if holds_within_tenants(shift["name"], base, inc, alpha, min_effect) is False:
                shift["explained_by"] = "tenant"


def faces_of(changes: list[dict], names) -> set[str]:
    """Names of the changes that are faces of one of ``names`` (``explained_by``)."""
    names = set(names)
    return {str(c.get("name")) for c in changes if c.get("explained_by") in names}


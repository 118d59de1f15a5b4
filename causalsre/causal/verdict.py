"""Whether a postmortem may name a cause at all: the burn must be more than chance.

Attribution splits the change in the bad-event rate between the windows; when that change is itself within
what chance gives for windows of that many requests (0 of 13 bad, then 2 of 10), every split of it is a split
of noise, however narrow the intervals of the fitted model look. The answer then is "I cannot tell", with the
counts and the test that say why, and no cause is named (``causalsre.evaluation.score.names_a_cause`` reads
``cannot_tell``). Fisher's exact test on the 2 x 2 table (bad or good, baseline or incident) is exact for the
few requests where the question matters and costs nothing for millions.
"""

from __future__ import annotations

from scipy import stats

BURN_ALPHA = 0.05  # two-sided level of the test that the bad-event rate changed at all


def burn_test(burn: dict) -> dict:
    """Fisher's exact test of equal bad-event rates in the two windows (``burn``: the result's ``burn``)."""
    b, i = burn["baseline"], burn["incident"]
    table = [[b["bad_events"], b["requests"] - b["bad_events"]], [i["bad_events"], i["requests"] - i["bad_events"]]]
    p_value = float(stats.fisher_exact(table)[1]) if b["requests"] and i["requests"] else 1.0
    return {"test": "Fisher exact, two-sided", "p_value": p_value, "alpha": BURN_ALPHA,
            "significant": p_value < BURN_ALPHA}


def cannot_tell(burn: dict, test: dict) -> str | None:
    """The sentence a postmortem gives instead of a cause when the change in bad events may be chance."""
    if test["significant"]:
        return None
    b, i = burn["baseline"], burn["incident"]
    return (f"the bad-event rate moved from {b['bad_events']} of {b['requests']} requests to {i['bad_events']} of "
            f"{i['requests']} (Fisher exact p = {test['p_value']:.2g} >= {test['alpha']}): a change chance alone "
            "gives this often, so no cause can be named; the contributions below split noise. Longer windows "
            "(more requests) or `postmortem --verify` can tell")


def burn_fell(burn: dict, test: dict) -> str | None:
    """The sentence a postmortem gives when the incident burned significantly *less* than its baseline: there
    is no burn to blame on any cause (a push that raised a cap the baseline was starved by); the contributions
    then say what lowered the bad-event rate, and no cause of a burn is named."""
    b, i = burn["baseline"], burn["incident"]
    if not test["significant"] or i["bad_rate"] >= b["bad_rate"]:
        return None
    return (f"the bad-event rate fell from {b['bad_events']} of {b['requests']} requests to {i['bad_events']} of "
            f"{i['requests']} (Fisher exact p = {test['p_value']:.2g}): the incident burned less than the baseline, "
            "so no cause of a burn can be named; the contributions below say what lowered the bad-event rate")

"""The error-budget arithmetic of one SLO at one moment, from counts: SLI, budget consumed and remaining, burn
rate per alert tier, and time to exhaustion.

Every ratio is a sum of counts divided by a sum of counts over the same requests: the SLI of a group of
runs is never the average of the runs' SLIs. A window with fewer than ``min_events`` requests is no-data:
its ratios are ``None`` and its alerts do not fire. The counting itself is :mod:`causalsre.slo.analyse`.
"""

from __future__ import annotations

from typing import Any

from causalsre.errors import UserError
from causalsre.slo.durations import Duration
from causalsre.slo.period import Period
from causalsre.slo.windows import AlertWindows, google_windows


def alert_windows_for(slo: Any, override: AlertWindows | None = None) -> AlertWindows:
    """The tiers an SLO is alerted with: an explicit catalog (whose period must match) or the Workbook's."""
    windows = override or slo.alert_windows
    if windows is None:
        return google_windows(slo.window.duration)
    if windows.period.seconds != slo.window.duration.seconds:
        raise UserError(
            f"alert windows from {windows.source} are for a {windows.period} period but SLO {slo.name} "
            f"has a {slo.window.duration} window",
            "use an AlertWindows catalog with the same sloPeriod (as Sloth requires), or none for the default",
        )
    return windows


def time_to_exhaustion_s(budget_remaining: float | None, burn_rate: float | None, period_s: float) -> float | None:
    """Seconds until the remaining budget is spent at a constant burn rate (SRE Workbook: 1x lasts P)."""
    if budget_remaining is None or burn_rate is None:
        return None
    if budget_remaining <= 0:
        return 0.0
    if burn_rate <= 0:
        return None
    return budget_remaining * period_s / burn_rate


def _ratio(bad: int, events: int, min_events: int) -> float | None:
    return bad / events if events >= min_events and events > 0 else None


def summarize(slo, period: Period, windows: AlertWindows, spans, counts, slices, min_events) -> dict[str, Any]:
    counts = counts or {"events": 0, "bad_events": 0}
    budget = slo.error_budget
    events, bad = int(counts["events"]), int(counts["bad_events"])
    error_ratio = _ratio(bad, events, min_events)
    result: dict[str, Any] = {
        "name": slo.name, "objective": slo.objective, "budgeting_method": slo.budgeting_method,
        "at": period.at.isoformat(), "events": events, "bad_events": bad,
    }
    if slo.budgeting_method != "Occurrences":
        slice_count = int(slices["slices"]) if slices else 0
        if slo.budgeting_method == "Timeslices":
            good_slices = int(slices["good_slices"]) if slices else 0
            error_ratio = (slice_count - good_slices) / slice_count if slice_count else None
            result["bad_slices"] = slice_count - good_slices
        else:
            error_ratio = 1.0 - slices["mean_good_share"] if slice_count else None
        result["slices"] = slice_count
        result["slice_window_s"] = slo.time_slice_window.seconds
        result["error_budget_s"] = budget * period.seconds
    burn = error_ratio / budget if error_ratio is not None and budget > 0 else None
    result.update({
        "sli": None if error_ratio is None else 1.0 - error_ratio,
        "error_ratio": error_ratio,
        "error_budget": budget,
        "budget_consumed": burn,
        "budget_remaining": None if burn is None else 1.0 - burn,
        "burn_rate": burn,
    })
    alerts = []
    for tier in windows.tiers:
        threshold = tier.threshold(windows.period)
        long_burn = _window_burn(counts, tier.long_window, budget, min_events)
        short_burn = _window_burn(counts, tier.short_window, budget, min_events)
        alerts.append({
            "severity": tier.severity, "speed": tier.speed, "budget_percent": tier.budget_percent,
            "long_window": str(tier.long_window), "short_window": str(tier.short_window),
            "threshold": threshold, "long_burn_rate": long_burn, "short_burn_rate": short_burn,
            "firing": long_burn is not None and short_burn is not None
            and long_burn > threshold and short_burn > threshold,
            "can_fire": threshold * budget < 1.0,
        })
    result["alerts"] = alerts
    current = _window_burn(counts, min((t.long_window for t in windows.tiers), key=lambda d: d.seconds),
                           budget, min_events) if windows.tiers else None
    result["current_burn_rate"] = current
    result["time_to_exhaustion_s"] = time_to_exhaustion_s(result["budget_remaining"], current, period.seconds)
    return result


def _window_burn(counts: dict[str, int], span: Duration, budget: float, min_events: int) -> float | None:
    ratio = _ratio(int(counts.get(f"bad_{span}", 0)), int(counts.get(f"events_{span}", 0)), min_events)
    return None if ratio is None or budget <= 0 else ratio / budget

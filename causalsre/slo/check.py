"""``slo check``: errors come from loading (UserError); this adds the warnings a valid spec can still deserve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causalsre.slo.evaluate import alert_windows_for
from causalsre.slo.spec import SLOSpec, load_slos
from causalsre.slo.windows import AlertWindows, load_alert_windows


def spec_warnings(slo: SLOSpec, windows: AlertWindows) -> list[str]:
    """Things that are allowed but probably not meant."""
    found = []
    period = slo.window.duration
    budget = slo.error_budget
    for tier in windows.tiers:
        threshold = tier.threshold(windows.period)
        if threshold * budget >= 1.0:
            found.append(
                f"{slo.name}: the {tier.severity}/{tier.speed} tier ({tier.long_window}/{tier.short_window}, "
                f"{threshold:.4g}x) can never fire: {threshold:.4g} x budget {budget:.4g} >= 1, an error ratio "
                "cannot exceed 100 % (raise the objective or use longer windows)"
            )
        if tier.long_window.seconds > period.seconds:
            found.append(f"{slo.name}: alert window {tier.long_window} is longer than the {period} SLO period")
    if period.unit == "m":
        found.append(
            f"{slo.name}: timeWindow {period} is {period.count} minute(s); OpenSLO writes months as M "
            f"(did you mean {period.count}M?)"
        )
    elif period.seconds < 86400:
        found.append(f"{slo.name}: timeWindow {period} is shorter than a day; error budgets are usually weeks")
    slice_window = slo.time_slice_window
    if slice_window is not None:
        if slice_window.unit in ("M", "Q", "Y"):
            found.append(
                f"{slo.name}: timeSliceWindow {slice_window} is {slice_window.count} month(s) or more; "
                f"minutes are written m (did you mean {slice_window.count}m?)"
            )
        if slice_window.seconds >= period.seconds:
            found.append(f"{slo.name}: timeSliceWindow {slice_window} is not shorter than the {period} period")
    if not slo.has_request_conditions:
        found.append(
            f"{slo.name}: the indicator's metric source is not 'causalsre', so only requests that did not "
            "finish ok count as bad (see docs/slo.md to add latency conditions)"
        )
    return found


def check_spec(path: str | Path, alert_windows_path: str | Path | None = None) -> dict[str, Any]:
    """Load a spec (raising UserError on errors) and report its SLOs and warnings."""
    slos = load_slos(path)
    override = load_alert_windows(str(alert_windows_path)) if alert_windows_path else None
    summaries, warnings = [], []
    for slo in slos:
        windows = alert_windows_for(slo, override)
        warnings.extend(spec_warnings(slo, windows))
        summaries.append({
            "name": slo.name,
            "objective": slo.objective,
            "budgeting_method": slo.budgeting_method,
            "window": str(slo.window.duration) + (" rolling" if slo.window.is_rolling else " calendar"),
            "conditions": [f"{c.metric} {c.op} {c.value}" for c in slo.conditions],
            "alert_thresholds": [round(t, 6) for t in windows.thresholds()],
        })
    return {"spec": str(path), "slos": summaries, "warnings": warnings}

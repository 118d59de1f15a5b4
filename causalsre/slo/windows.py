"""Multiwindow, multi-burn-rate alert tiers: Sloth ``AlertWindows`` documents and the SRE Workbook default.

A tier spends ``budget_percent`` of the period's error budget within its long window; its burn-rate
threshold is ``f * P / L`` (SRE Workbook, "Alerting on SLOs", table 5-8). It fires when the error ratio
over both the long and the short window exceeds ``threshold * (1 - objective)``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from causalsre.errors import UserError
from causalsre.safeio import brief
from causalsre.slo.documents import read_documents
from causalsre.slo.durations import Duration, parse_duration


class AlertTier(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    severity: str  # page | ticket
    speed: str  # quick | slow
    budget_percent: float = Field(gt=0, le=100)
    short_window: Duration
    long_window: Duration

    def threshold(self, period: Duration) -> float:
        """Burn-rate threshold BR* = f * P / L for an SLO period P."""
        return self.budget_percent / 100.0 * period.seconds / self.long_window.seconds


class AlertWindows(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    period: Duration
    tiers: tuple[AlertTier, ...]
    source: str = "default: SRE Workbook / Sloth Google table"

    def thresholds(self) -> list[float]:
        return [tier.threshold(self.period) for tier in self.tiers]


# The SRE Workbook's recommended table (Sloth's internal google-30d / google-28d catalogs).
_GOOGLE_TIERS = (
    ("page", "quick", 2.0, "5m", "1h"),
    ("page", "slow", 5.0, "30m", "6h"),
    ("ticket", "quick", 10.0, "2h", "1d"),
    ("ticket", "slow", 10.0, "6h", "3d"),
)


def google_windows(period: Duration | str = "30d") -> AlertWindows:
    """The Workbook's tiers for an SLO period (30d gives 14.4/6/3/1, 28d gives Sloth's 28d catalog)."""
    period = parse_duration(period) if isinstance(period, str) else period
    tiers = tuple(
        AlertTier(
            severity=severity,
            speed=speed,
            budget_percent=percent,
            short_window=parse_duration(short),
            long_window=parse_duration(long),
        )
        for severity, speed, percent, short, long in _GOOGLE_TIERS
    )
    return AlertWindows(period=period, tiers=tiers)


def alert_windows_from_document(doc: dict[str, Any], source: str) -> AlertWindows:
    """Build AlertWindows from one parsed Sloth ``kind: AlertWindows`` document."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise UserError(f"{source}: AlertWindows document has no spec", "see Sloth's AlertWindows format")
    _known_keys(spec, ("sloPeriod", "page", "ticket"), f"{source}: AlertWindows spec")
    period = parse_duration(spec.get("sloPeriod"), what=f"{source}: spec.sloPeriod")
    tiers = []
    for severity in ("page", "ticket"):
        block = spec.get(severity)
        if not isinstance(block, dict):
            raise UserError(f"{source}: AlertWindows spec.{severity} is missing", "give quick and slow tiers")
        _known_keys(block, ("quick", "slow"), f"{source}: spec.{severity}")
        for speed in ("quick", "slow"):
            tier = block.get(speed)
            where = f"{source}: spec.{severity}.{speed}"
            if not isinstance(tier, dict):
                raise UserError(f"{where} is missing", "give errorBudgetPercent, shortWindow and longWindow")
            _known_keys(tier, ("errorBudgetPercent", "shortWindow", "longWindow"), where)
            percent = tier.get("errorBudgetPercent")
            if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent <= 100:
                raise UserError(f"{where}.errorBudgetPercent {brief(percent)} is not in (0, 100]", "write e.g. 2")
            short = parse_duration(tier.get("shortWindow"), what=f"{where}.shortWindow")
            long = parse_duration(tier.get("longWindow"), what=f"{where}.longWindow")
            if short.seconds >= long.seconds:
                raise UserError(f"{where}: shortWindow {short} is not shorter than longWindow {long}",
                                "the short window is usually 1/12 of the long one")
            tiers.append(AlertTier(severity=severity, speed=speed, budget_percent=float(percent),
                                   short_window=short, long_window=long))
    return AlertWindows(period=period, tiers=tuple(tiers), source=source)


def _known_keys(mapping: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """Sloth's keys only: an extra one was ignored (a `pager:` tier beside `page:`, `longwindow: 2h` beside
    `longWindow: 1h`), so the alerts were not the ones written."""
    import difflib

    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserError(f"{where} has an unknown key {brief(key)}", f"{hint}the keys are {', '.join(allowed)}")


def load_alert_windows(path: str) -> AlertWindows:
    """The single AlertWindows document in a YAML file."""
    found = [doc for doc in read_documents(path) if doc.get("kind") == "AlertWindows"]
    if len(found) != 1:
        raise UserError(f"{path} holds {len(found)} AlertWindows documents", "give a file with exactly one")
    return alert_windows_from_document(found[0], str(path))

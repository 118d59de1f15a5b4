"""SLOs and error budgets over the telemetry's ``request_metrics`` view.

Specs are OpenSLO v1 (``load_slos``); alert tiers are Sloth ``AlertWindows`` or the SRE Workbook table.
All counting happens in DuckDB SQL as sums of counts, never averages of ratios.
"""

from causalsre.slo.spec import Condition, SLOSpec, TimeWindow, load_slos
from causalsre.slo.sql import good_event_sql, request_outcomes, where_sql
from causalsre.slo.windows import AlertTier, AlertWindows, google_windows, load_alert_windows

__all__ = [
    "AlertTier",
    "AlertWindows",
    "Condition",
    "SLOSpec",
    "TimeWindow",
    "good_event_sql",
    "google_windows",
    "load_alert_windows",
    "load_slos",
    "request_outcomes",
    "where_sql",
]

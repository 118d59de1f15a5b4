"""OpenSLO v1 ``kind: SLO`` documents -> :class:`SLOSpec`.

The indicator is a ratio of good requests to all requests in ``request_metrics``. Its good-event condition
is structured, in the metric source's free-form ``spec`` (``type: causalsre``)::

    indicator:
      metadata: {name: ttft}
      spec:
        ratioMetric:
          good:  {metricSource: {type: causalsre, spec: {conditions: [{metric: ttft_s, op: lte, value: 0.5}]}}}
          total: {metricSource: {type: causalsre}}

or as a ``thresholdMetric`` whose ``metricSource.spec.metric`` names a column, compared with the objective's
``op`` and ``value``. Every request that did not finish ``ok`` is bad whatever the conditions say. A spec
with another metric source type (e.g. the upstream examples' ``type: Any``) parses with no conditions.
One SLOSpec is made per objective.
"""

from __future__ import annotations

import math
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from causalsre.errors import UserError
from causalsre.safeio import brief, printable_name
from causalsre.slo.conditions import (  # noqa: F401
    OBJECTIVE_KEYS, SPEC_KEYS, dotted_exponent, no_misspelt_keys, parse_condition, validate_condition,
)
from causalsre.slo.documents import read_documents
from causalsre.slo.durations import check_wall_clock, parse_duration, zone
from causalsre.slo.windows import AlertWindows, alert_windows_from_document
from causalsre.times import parse_instant

# The models live in their own module; re-exported so `from causalsre.slo.spec import SLOSpec` stays.
from causalsre.slo.spec_models import (  # noqa: F401
    OPERATORS, BudgetingMethod, Condition, SLOSpec, TimeWindow,
)


def load_slos(path: str | Path) -> list[SLOSpec]:
    """Every SLO objective in an OpenSLO v1 YAML file; a Sloth AlertWindows document there applies to all."""
    docs = read_documents(path)
    source = str(path)
    windows = [alert_windows_from_document(d, source) for d in docs if d.get("kind") == "AlertWindows"]
    if len(windows) > 1:
        raise UserError(f"{source} holds {len(windows)} AlertWindows documents", "keep one per file")
    slis = {_name_of(d, source): d for d in docs if d.get("kind") == "SLI"}
    _check_objective_count(docs, source)
    slos: list[SLOSpec] = []
    for index, doc in enumerate(docs):
        if doc.get("kind") != "SLO":
            continue
        where = f"{source}: document {index + 1}"
        if doc.get("apiVersion") != "openslo/v1":
            raise UserError(f"{where} has apiVersion {brief(doc.get('apiVersion'))}",
                            "write apiVersion: openslo/v1")
        slos.extend(_slos_from_document(doc, slis, windows[0] if windows else None, where))
    if not slos:
        raise UserError(f"{source} holds no kind: SLO document", "add an OpenSLO v1 SLO")
    counts = Counter(slo.name for slo in slos)  # names.count per name was quadratic: 20,000 objectives took 20 s
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    if duplicates:
        raise UserError(f"{source}: SLO names repeat: {', '.join(duplicates)}", "give each SLO its own name")
    return slos


# The smallest error budget a target may leave: nine nines (0.999999999).
MIN_ERROR_BUDGET = 1e-9
# The most objectives (SLOs) one file may hold: each is a query per report and a line per warning, so a
# file of 20,000 was 20,000 queries (a generated or hostile file, not a service's objectives).
MAX_OBJECTIVES = 1000


def _check_objective_count(docs: list[dict[str, Any]], source: str) -> None:
    total = sum(len(d["spec"]["objectives"]) for d in docs if d.get("kind") == "SLO" and isinstance(d.get("spec"), dict)
                and isinstance(d["spec"].get("objectives"), list))
    if total > MAX_OBJECTIVES:
        raise UserError(f"{source} holds {total:,} objectives, more than the limit of {MAX_OBJECTIVES:,}",
                        "split the file, or keep the objectives an alert or a report needs")


def _name_of(doc: dict[str, Any], where: str) -> str:
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        raise UserError(f"{where}: a {brief(doc.get('kind'))} document has no metadata.name", "give it a name")
    return printable_name(name, f"{where}: metadata.name")


def _slos_from_document(
    doc: dict[str, Any], slis: dict[str, dict], windows: AlertWindows | None, where: str
) -> list[SLOSpec]:
    name = _name_of(doc, where)
    where = f"{where} (SLO {name})"
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise UserError(f"{where} has no spec", "see the OpenSLO v1 SLO format")
    no_misspelt_keys(spec, SPEC_KEYS, f"{where}: spec")
    window = _time_window(spec.get("timeWindow"), where)
    method = spec.get("budgetingMethod", "Occurrences")
    if method not in ("Occurrences", "Timeslices", "RatioTimeslices"):
        raise UserError(f"{where}: unknown budgetingMethod {brief(method)}",
                        "use Occurrences, Timeslices or RatioTimeslices")
    indicator = _indicator(spec, slis, where)
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        raise UserError(f"{where} has no objectives", "add objectives: [{target: 0.99}]")
    result = []
    for number, objective in enumerate(objectives, start=1):
        if not isinstance(objective, dict):
            raise UserError(f"{where}: objective {number} is not a mapping", "write e.g. {target: 0.99}")
        label = objective.get("displayName") or f"objective-{number}"
        if not isinstance(label, str):
            raise UserError(f"{where}: objective {number} has displayName {brief(label)}, not text",
                            "write displayName: fast (or leave it out)")
        printable_name(label, f"{where}: objective {number} displayName")
        full_name = name if len(objectives) == 1 else f"{name}/{label}"
        result.append(_objective_spec(full_name, spec, objective, indicator, window, method, windows, where))
    return result


def _objective_spec(name, spec, objective, indicator, window, method, windows, where) -> SLOSpec:
    where = f"{where}, objective {objective.get('displayName') or name}"
    no_misspelt_keys(objective, OBJECTIVE_KEYS, where)
    target = _target(objective, where)
    conditions, has_conditions = _conditions(indicator, objective, where)
    slice_target = slice_window = None
    if method in ("Timeslices", "RatioTimeslices"):
        if objective.get("timeSliceWindow") is None:  # it said "timeSliceWindow None is not a duration"
            raise UserError(f"{where}: budgetingMethod {method} needs a timeSliceWindow in each objective",
                            "add e.g. timeSliceWindow: 5m" + (" and timeSliceTarget: 0.95" if method == "Timeslices"
                                                               else "") + ", or use budgetingMethod: Occurrences")
        slice_window = parse_duration(objective.get("timeSliceWindow"), what=f"{where}: timeSliceWindow")
        if method == "Timeslices":
            slice_target = objective.get("timeSliceTarget")
            if isinstance(slice_target, bool) or not isinstance(slice_target, (int, float)) \
                    or not 0 < slice_target <= 1:
                raise UserError(f"{where}: timeSliceTarget {brief(slice_target)} is not in (0, 1]",
                                "write the share of good events a slice needs, e.g. 0.95")
    try:
        return SLOSpec(
            name=name, objective=target, conditions=conditions, window=window, budgeting_method=method,
            time_slice_target=slice_target, time_slice_window=slice_window,
            display_name=objective.get("displayName"), service=spec.get("service"),
            alert_windows=windows, has_request_conditions=has_conditions, source=where,
        )
    except ValidationError as exc:
        raise UserError(f"{where}: {_first_error(exc)}", "see docs/slo.md for the spec format") from None


def _target(objective: dict[str, Any], where: str) -> float:
    if "target" in objective and "targetPercent" in objective:
        raise UserError(f"{where} gives both target {brief(objective['target'])} and targetPercent "
                        f"{brief(objective['targetPercent'])}", "keep one of them (target: 0.99 or targetPercent: 99)")
    if "target" in objective:
        value, scale, label = objective["target"], 1.0, "target"
    elif "targetPercent" in objective:
        value, scale, label = objective["targetPercent"], 100.0, "targetPercent"
    else:
        raise UserError(f"{where} has no target", "write target: 0.99 (or targetPercent: 99)")
    example = "99.9" if scale == 100.0 else "0.999"
    if not _is_finite_number(value):
        # YAML reads 1e-3 (no dot) and "0.99" as text, yes/true as a boolean: say so rather than "outside".
        dotted = dotted_exponent(value)
        if dotted is not None:
            raise UserError(f"{where}: {label} {brief(value)} was read as text: YAML reads an exponent without a "
                            "dot as a string", f"write {label}: {dotted}")
        raise UserError(f"{where}: {label} {brief(value)} is not a number",
                        f"write a plain number, e.g. {label}: {example}")
    bound = "(0, 100)" if scale == 100.0 else "(0, 1)"
    if not 0 < value / scale < 1:
        # 0 would call every request good enough (no objective at all); 1 leaves no error budget.
        raise UserError(f"{where}: {label} {brief(value)} is outside {bound}",
                        f"a target of 0 promises nothing and 1 leaves no error budget; write e.g. {example}")
    budget = float(1 - Decimal(repr(value)) / Decimal(repr(scale)))  # decimal: 0.999999999 leaves exactly 1e-9
    if budget < MIN_ERROR_BUDGET:
        # Past nine nines the budget is float rounding (0.9999999999999999 left 1.1e-16: burn rates of 1e15).
        raise UserError(f"{where}: {label} {brief(value)} leaves an error budget of {budget:.3g}, below "
                        f"{MIN_ERROR_BUDGET:g} (nine nines)", f"write at most nine nines, e.g. {label}: {example}")
    return float(value) / scale


def _is_finite_number(value: Any) -> bool:
    """An int or float that is finite as a float (a 400-digit integer overflows float division)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _time_window(raw: Any, where: str) -> TimeWindow:
    if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], dict):
        raise UserError(f"{where}: timeWindow must be a list with one entry",
                        "write timeWindow: [{duration: 30d, isRolling: true}]")
    entry = raw[0]
    duration = parse_duration(entry.get("duration"), what=f"{where}: timeWindow duration")
    rolling = entry.get("isRolling", True)
    if not isinstance(rolling, bool):
        raise UserError(f"{where}: isRolling {brief(rolling)} is not true or false", "write isRolling: true")
    if rolling:
        return TimeWindow(duration=duration, is_rolling=True)
    calendar = entry.get("calendar")
    if not isinstance(calendar, dict) or "startTime" not in calendar:
        raise UserError(f"{where}: a calendar window (isRolling: false) needs calendar.startTime",
                        "write calendar: {startTime: 2026-01-01 00:00:00, timeZone: UTC}")
    start = calendar["startTime"]
    tz_name = calendar.get("timeZone", "UTC")
    if not isinstance(tz_name, str) or len(tz_name) > 64:
        raise UserError(f"{where}: calendar.timeZone {brief(tz_name)} is not a time zone name", "write e.g. UTC")
    zone(tz_name)
    # A naive startTime is a wall-clock time in the calendar's zone, so keep it as written (range-checked).
    start = parse_instant(start, what=f"{where}: calendar.startTime", keep_offset=True)
    check_wall_clock(start, tz_name, what=f"{where}: calendar.startTime")
    return TimeWindow(duration=duration, is_rolling=False, calendar_start=start, time_zone=tz_name)


def _indicator(spec: dict[str, Any], slis: dict[str, dict], where: str) -> dict[str, Any]:
    if "indicatorRef" in spec:
        ref = spec["indicatorRef"]
        if not isinstance(ref, str) or ref not in slis:
            raise UserError(f"{where}: indicatorRef {brief(ref)} names no SLI document in the file",
                            "define the SLI in the same file or inline it as indicator")
        sli = slis[ref]
    else:
        sli = spec.get("indicator")
    if not isinstance(sli, dict) or not isinstance(sli.get("spec"), dict):
        raise UserError(f"{where} has no indicator spec", "add indicator.spec.ratioMetric or thresholdMetric")
    return sli["spec"]


def _conditions(indicator: dict[str, Any], objective: dict[str, Any], where: str):
    """(conditions, has_request_conditions) from a causalsre metric source; () for other sources."""
    if isinstance(indicator.get("ratioMetric"), dict):
        good = indicator["ratioMetric"].get("good") or {}
        source = good.get("metricSource") if isinstance(good, dict) else None
        if not _is_ours(source):
            return (), False
        raw = (source.get("spec") or {}).get("conditions", [])
    elif isinstance(indicator.get("thresholdMetric"), dict):
        source = indicator["thresholdMetric"].get("metricSource")
        if not _is_ours(source):
            return (), False
        metric = (source.get("spec") or {}).get("metric")
        if "op" not in objective or "value" not in objective:
            raise UserError(f"{where}: a thresholdMetric objective needs op and value", "write op: lte, value: 0.5")
        raw = [{"metric": metric, "op": objective["op"], "value": objective["value"]}]
    else:
        raise UserError(f"{where}: the indicator has neither ratioMetric nor thresholdMetric",
                        "see docs/slo.md for the causalsre indicator")
    if not isinstance(raw, list):
        raise UserError(f"{where}: conditions must be a list", "write conditions: [{metric: ttft_s, op: lte, value: 0.5}]")
    return tuple(parse_condition(item, where) for item in raw), True


def _is_ours(source: Any) -> bool:
    return isinstance(source, dict) and str(source.get("type", "")).lower() == "causalsre"


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error.get("loc", ()))
    return f"{location}: {error.get('msg')}" if location else str(error.get("msg"))

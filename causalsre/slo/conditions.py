"""An SLO's good-event conditions (``{metric: ttft_s, op: lte, value: 0.5}``), checked against the columns of
``request_metrics``: the metric is an outcome column and the value fits its type, the operator and its range.
Part of :mod:`causalsre.slo.spec`, which re-exports :func:`validate_condition`.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from causalsre.errors import UserError
from causalsre.safeio import brief
from causalsre.slo.columns import NOT_CONDITION_COLUMNS, check_column, kind_of, schema_columns
from causalsre.slo.spec_models import Condition


# OpenSLO v1's keys of an SLO's spec and of one objective.
SPEC_KEYS = ("description", "service", "indicator", "indicatorRef", "timeWindow", "budgetingMethod", "objectives",
             "alertPolicies")
OBJECTIVE_KEYS = ("displayName", "op", "value", "target", "targetPercent", "timeSliceTarget", "timeSliceWindow",
                  "indicator", "indicatorRef", "compositeWeight")


def no_misspelt_keys(mapping: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    """A key close to one of OpenSLO's but not it (``budgetingmethod``, ``timeSliceTaget``) is refused naming the
    key meant: it was ignored, and the default (Occurrences, no slice target) used instead. A key far from all
    of them is left alone, as another tool's extension may be."""
    import difflib

    lowered = {k.lower(): k for k in known}
    for key in mapping:
        if not isinstance(key, str) or key in known:
            continue
        close = lowered.get(key.lower()) or next(iter(difflib.get_close_matches(key, known, n=1, cutoff=0.8)), None)
        if close is not None:
            raise UserError(f"{where} has the key {key!r}, not OpenSLO's {close!r}", f"write {close}")


def dotted_exponent(value: Any) -> str | None:
    """The number a user wrote unquoted that came back as text, with the dot YAML 1.1 (PyYAML) needs before an
    exponent (``1e-3`` is a string, ``1.0e-3`` a number); None when that is not why ``value`` is text."""
    if not isinstance(value, str) or "." in value or not any(c in value for c in "eE"):
        return None
    try:
        float(value)
    except ValueError:
        return None
    mantissa, exponent = value.strip().lower().split("e", 1)
    return f"{mantissa}.0e{exponent}"


def parse_condition(item: Any, where: str) -> Condition:
    """One good-event condition of a spec, validated against the shipped request_metrics columns."""
    try:
        condition = Condition.model_validate(item)
    except ValidationError as exc:
        raise UserError(f"{where}: bad condition {brief(item)}: {_first_error(exc)}",
                        "write {metric: ttft_s, op: lte, value: 0.5}") from None
    validate_condition(condition, schema_columns(), where)
    return condition


def validate_condition(condition: Condition, columns: dict[str, str], where: str) -> None:
    """The metric is a request_metrics outcome column and the value fits its type and the operator."""
    check_column(condition.metric, {c: t for c, t in columns.items() if c not in NOT_CONDITION_COLUMNS},
                 what=f"metric in {where}:")
    kind = kind_of(columns[condition.metric])
    value = condition.value
    if kind == "number" and (isinstance(value, (bool, str))):
        dotted = dotted_exponent(value)
        if dotted is not None:
            raise UserError(f"{where}: {condition.metric} is compared with {brief(value)}, read as text: YAML reads "
                            "an exponent without a dot as a string", f"write value: {dotted}")
        raise UserError(f"{where}: {condition.metric} is a number but the condition compares it with "
                        f"{brief(value)}", "give a numeric value, e.g. 0.5 (seconds for *_s metrics)")
    if kind == "number" and not math.isfinite(value):
        raise UserError(f"{where}: {condition.metric} is compared with {value}, which is not a finite number",
                        "give a finite threshold, e.g. 0.5")
    if kind == "number" and _never_holds(condition):
        raise UserError(f"{where}: {condition.metric} {condition.op} {value:g} never holds ({condition.metric} is never "
                        "negative), so every request would be bad", "write a threshold of 0 or more, e.g. 0.5")
    if kind in ("text", "bool") and condition.op not in ("eq", "ne"):
        raise UserError(f"{where}: {condition.metric} can only be compared with eq or ne", "use op: eq")
    if kind == "bool" and not isinstance(value, bool):
        raise UserError(f"{where}: {condition.metric} is true/false, not {brief(value)}", "write value: true")
    if kind == "text" and not isinstance(value, str):
        raise UserError(f"{where}: {condition.metric} is text, not {brief(value)}", "quote the value, e.g. ok")


# Outcome columns that cannot be negative: durations, token counts, preemptions (priority can be).
_NON_NEGATIVE_SUFFIXES = ("_s", "_tokens")


def _never_holds(condition: Condition) -> bool:
    """``ttft_s lte -1`` (or lt 0, eq -1) on a column that is never negative: no request is ever good."""
    metric, value = condition.metric, condition.value
    if not (metric.endswith(_NON_NEGATIVE_SUFFIXES) or metric.startswith("num_")):
        return False
    return value < 0 and condition.op in ("lt", "lte", "le", "eq") or (value == 0 and condition.op == "lt")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error.get("loc", ()))
    return f"{location}: {error.get('msg')}" if location else str(error.get("msg"))

"""Parsing OpenSLO v1 specs and rejecting bad ones with clear errors."""

from __future__ import annotations

import pytest

from causalsre.errors import UserError
from causalsre.slo import load_slos
from causalsre.slo.durations import calendar_period, parse_duration
from slo_specs import LATENCY_SLO, latency_slo
from datetime import datetime


def write(tmp_path, text, name="slo.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_latency_slo_parses_conditions_window_and_method(tmp_path):
    (slo,) = load_slos(write(tmp_path, LATENCY_SLO))
    assert slo.name == "fast-first-token"
    assert slo.objective == pytest.approx(0.99)
    assert slo.error_budget == pytest.approx(0.01)
    assert [(c.metric, c.op, c.value) for c in slo.conditions] == [("ttft_s", "lte", 0.5), ("tpot_s", "lte", 0.05)]
    assert slo.window.duration.seconds == 30 * 86400 and slo.window.is_rolling
    assert slo.budgeting_method == "Occurrences"


def test_threshold_metric_takes_op_and_value_from_the_objective(tmp_path):
    text = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: e2e}
spec:
  indicator:
    metadata: {name: e2e}
    spec: {thresholdMetric: {metricSource: {type: causalsre, spec: {metric: e2e_s}}}}
  timeWindow: [{duration: 1w, isRolling: true}]
  objectives: [{op: lt, value: 2.5, targetPercent: 99.5}]
"""
    (slo,) = load_slos(write(tmp_path, text))
    assert [(c.metric, c.sql_operator, c.value) for c in slo.conditions] == [("e2e_s", "<", 2.5)]
    assert slo.objective == pytest.approx(0.995)


def test_several_documents_and_objectives_give_one_spec_each(tmp_path):
    two_objectives = latency_slo(extra_objective="}, {displayName: strict, target: 0.999")
    other = LATENCY_SLO.replace("fast-first-token", "second")
    slos = load_slos(write(tmp_path, two_objectives + "\n---\n" + other))
    assert [s.name for s in slos] == ["fast-first-token/fast", "fast-first-token/strict", "second"]
    assert [s.objective for s in slos] == pytest.approx([0.99, 0.999, 0.99])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (latency_slo(target="1.0"), "outside (0, 1)"),
        (latency_slo(target="-0.1"), "outside (0, 1)"),
        (latency_slo(duration="30 days"), "is not a duration"),
        (latency_slo(duration="0d"), "longer than zero"),
        (latency_slo(conditions=["{metric: ttft_ms, op: lte, value: 500}"]), "unknown metric"),
        (latency_slo(conditions=["{metric: run_id, op: eq, value: x}"]), "unknown metric"),
        (latency_slo(conditions=["{metric: ttft_s, op: about, value: 1}"]), "unknown op"),
        (latency_slo(conditions=["{metric: ttft_s, op: lte, value: fast}"]), "is a number"),
        (latency_slo(conditions=["{metric: status, op: lt, value: ok}"]), "eq or ne"),
        (latency_slo(method="Sometimes"), "unknown budgetingMethod"),
        (latency_slo(method="Timeslices"), "timeSliceWindow"),
        ("kind: SLO\napiVersion: openslo/v2\nmetadata: {name: x}\n", "apiVersion"),
        ("a: [1, 2\n", "not valid YAML"),
        ("apiVersion: openslo/v1\nkind: Service\nmetadata: {name: x}\n", "no kind: SLO"),
    ],
)
def test_bad_specs_raise_user_errors_that_say_what_is_wrong(tmp_path, text, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_slos(write(tmp_path, text))


def test_yaml_tags_that_build_objects_are_refused(tmp_path):
    text = LATENCY_SLO + "\nextra: !!python/object/apply:os.system ['echo hi']\n"
    with pytest.raises(UserError, match="not valid YAML"):
        load_slos(write(tmp_path, text))


def test_durations_read_m_as_minutes_and_M_as_months():
    assert parse_duration("1m").seconds == 60
    assert parse_duration("1M").seconds == 30 * 86400
    assert parse_duration("2w").seconds == 14 * 86400


def test_calendar_month_period_follows_real_month_lengths_and_time_zone():
    start = datetime(2022, 1, 1, 0, 0, 0)
    begin, end = calendar_period(parse_duration("1M"), start, "America/New_York", datetime(2022, 2, 10, 12))
    # Midnight in New York is 05:00 UTC in winter; February 2022 has 28 days.
    assert begin == datetime(2022, 2, 1, 5) and end == datetime(2022, 3, 1, 5)
    begin, end = calendar_period(parse_duration("1w"), start, "UTC", datetime(2022, 1, 20))
    assert begin == datetime(2022, 1, 15) and end == datetime(2022, 1, 22)


def test_golden_openslo_examples_parse_with_their_methods_and_windows(golden_dir):
    folder = golden_dir / "openslo"
    (occ,) = load_slos(folder / "examples_budgeting-method_occurences-slo.yaml")
    assert occ.budgeting_method == "Occurrences" and occ.objective == pytest.approx(0.99)
    assert occ.window.duration.seconds == 14 * 86400 and not occ.has_request_conditions
    ratio = load_slos(folder / "examples_budgeting-method_ratio-timeslices.yaml")[0]
    assert ratio.budgeting_method == "RatioTimeslices" and ratio.time_slice_window.seconds == 60
    internal, sla = load_slos(folder / "examples_budgeting-method_timeslices-slo.yaml")
    assert (internal.objective, sla.objective) == pytest.approx((0.995, 0.99))
    assert internal.time_slice_target == pytest.approx(0.99)
    assert internal.window.duration.seconds == 60  # "1m" is one minute, whatever the comment meant
    (low_traffic,) = load_slos(folder / "examples_treat-low-traffic-as-equally-important_timeslices-slo.yaml")
    budget_minutes = low_traffic.error_budget * low_traffic.window.duration.seconds / 60
    assert budget_minutes == pytest.approx(5.04)
    assert low_traffic.window.time_zone == "America/New_York" and not low_traffic.window.is_rolling


def test_indicator_ref_names_an_sli_document_in_the_same_file(tmp_path):
    sli = """apiVersion: openslo/v1
kind: SLI
metadata: {name: fast}
spec:
  ratioMetric:
    good: {metricSource: {type: causalsre, spec: {conditions: [{metric: queue_s, op: lt, value: 2}]}}}
    total: {metricSource: {type: causalsre}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: queued-briefly}
spec:
  indicatorRef: fast
  timeWindow: [{duration: 4w, isRolling: true}]
  objectives: [{target: 0.95}]
"""
    (slo,) = load_slos(write(tmp_path, sli))
    assert [(c.metric, c.op, c.value) for c in slo.conditions] == [("queue_s", "lt", 2.0)]
    with pytest.raises(UserError, match="indicatorRef 'slow' names no SLI"):
        load_slos(write(tmp_path, sli.replace("indicatorRef: fast", "indicatorRef: slow"), "other.yaml"))

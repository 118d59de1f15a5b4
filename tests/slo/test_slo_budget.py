"""Budget arithmetic over real databases with known outcomes: SLI, budget, burn, alerts, groups, slices."""

from __future__ import annotations

from datetime import datetime

import pytest

from causalsre.slo import load_slos
from causalsre.slo.evaluate import evaluate
from causalsre.slo.goodput import attainment_by_run
from causalsre.slo.timeline import burn_rate_timeline
from slo_specs import latency_slo


def slo_from(tmp_path, text, name="slo.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_slos(path)[0]


def test_budget_is_sums_of_counts_across_runs_of_different_sizes(tmp_path, make_db, open_db):
    # run r1: 90 requests, 9 slow (10 %); run r2: 10 requests, 5 failed (50 %). Pooled: 14 / 100.
    rows = [{"run_id": "r1", "request_id": i, "arrival_s": i, "ttft_s": 0.9 if i < 9 else 0.1} for i in range(90)]
    rows += [{"run_id": "r2", "request_id": i, "arrival_s": i, "status": "error" if i < 5 else "ok"}
             for i in range(10)]
    con = open_db(make_db(rows))
    slo = slo_from(tmp_path, latency_slo(target="0.9"))
    report = evaluate(con, slo, group_by=["run"])
    assert (report["events"], report["bad_events"]) == (100, 14)
    assert report["sli"] == pytest.approx(0.86)  # the mean of run SLIs would be 0.7
    assert report["budget_consumed"] == pytest.approx(1.4)
    assert report["budget_remaining"] == pytest.approx(-0.4)  # below zero, not clamped
    groups = {g["group"]["run"]: g for g in report["groups"]}
    assert groups["r1"]["sli"] == pytest.approx(0.9) and groups["r2"]["sli"] == pytest.approx(0.5)
    runs = attainment_by_run(con, slo).set_index("run_id")
    assert runs.loc["r1", "attainment"] == pytest.approx(0.9)
    assert runs.loc["r2", "good_events"] == 5


def test_rolling_window_excludes_requests_older_than_the_period(tmp_path, make_db, open_db):
    day = 86400
    rows = [{"request_id": 0, "arrival_s": 0.0, "status": "error"}]  # falls out of a 1d window
    rows += [{"request_id": i, "arrival_s": 2 * day + i, "status": "ok"} for i in range(1, 11)]
    con = open_db(make_db(rows))
    slo = slo_from(tmp_path, latency_slo(duration="1d"))
    report = evaluate(con, slo)
    assert (report["events"], report["bad_events"]) == (10, 0)
    assert evaluate(con, slo, at=datetime(2026, 1, 1, 12))["bad_events"] == 1


def test_calendar_window_starts_at_the_calendar_boundary(tmp_path, make_db, open_db):
    text = latency_slo(duration="1w").replace(
        "isRolling: true", "isRolling: false, calendar: {startTime: '2025-12-29 00:00:00', timeZone: UTC}")
    slo = slo_from(tmp_path, text)
    # Weeks start on 2025-12-29 and 2026-01-05; T0 is 2026-01-01.
    rows = [{"request_id": 0, "arrival_s": 3 * 86400 + 10, "status": "error"},   # 2026-01-04, previous week
            {"request_id": 1, "arrival_s": 4 * 86400 + 10},                       # 2026-01-05, this week
            {"request_id": 2, "arrival_s": 5 * 86400, "ttft_s": 2.0}]
    report = evaluate(open_db(make_db(rows)), slo)
    assert report["window"]["start"] == "2026-01-05T00:00:00"
    assert (report["events"], report["bad_events"]) == (2, 1)


def test_multiwindow_alert_needs_both_windows_and_no_data_never_fires(tmp_path, make_db, open_db):
    slo = slo_from(tmp_path, latency_slo(target="0.99"))
    # An hour of 1 request / 10 s with 20 % errors, then silence for 10 minutes before `at`.
    rows = [{"request_id": i, "arrival_s": 10.0 * i, "status": "error" if i % 5 == 0 else "ok"} for i in range(360)]
    con = open_db(make_db(rows))
    at = datetime(2026, 1, 1, 1, 10)
    quick = evaluate(con, slo, at=at)["alerts"][0]
    assert (quick["long_window"], quick["short_window"], quick["threshold"]) == ("1h", "5m", pytest.approx(14.4))
    assert quick["long_burn_rate"] == pytest.approx(20.0, rel=0.05)
    assert quick["short_burn_rate"] is None and quick["firing"] is False
    latest = evaluate(con, slo)["alerts"][0]  # at the last request both windows burn at 20x
    assert latest["firing"] is True


def test_min_events_turns_low_traffic_windows_into_no_data(tmp_path, make_db, open_db):
    slo = slo_from(tmp_path, latency_slo())
    rows = [{"request_id": i, "arrival_s": 600.0 * i, "status": "error" if i == 9 else "ok"} for i in range(10)]
    con = open_db(make_db(rows))
    assert evaluate(con, slo)["alerts"][0]["firing"] is True  # one bad request in a 1-request 5m window
    guarded = evaluate(con, slo, min_events=5)
    assert guarded["alerts"][0]["firing"] is False and guarded["alerts"][0]["short_burn_rate"] is None
    assert guarded["bad_events"] == 1 and guarded["sli"] == pytest.approx(0.9)


def test_timeslices_count_good_minutes_and_skip_empty_ones(tmp_path, make_db, open_db):
    text = latency_slo(method="Timeslices").replace(
        "target: 0.99", "target: 0.9, timeSliceTarget: 0.75, timeSliceWindow: 1m")
    slo = slo_from(tmp_path, text)
    # Minute 0: 4 ok. Minute 1: 3 of 4 ok (0.75, good). Minute 2: empty. Minute 3: 2 of 4 ok (bad).
    statuses = {0: "oooo", 1: "ooox", 3: "ooxx"}
    rows = [{"request_id": m * 10 + j, "arrival_s": 60.0 * m + j, "status": "ok" if c == "o" else "error"}
            for m, text_ in statuses.items() for j, c in enumerate(text_)]
    con = open_db(make_db(rows))
    report = evaluate(con, slo)
    assert (report["slices"], report["bad_slices"]) == (3, 1)
    assert report["sli"] == pytest.approx(2 / 3)
    assert report["error_budget_s"] == pytest.approx(0.1 * 30 * 86400)
    ratio = slo.model_copy(update={"budgeting_method": "RatioTimeslices"})
    assert evaluate(con, ratio)["sli"] == pytest.approx((1.0 + 0.75 + 0.5) / 3)
    # Per group, slices are counted within the group: tenant a holds every request here.
    (group,) = evaluate(con, slo, group_by=["tenant"])["groups"]
    assert (group["group"], group["slices"], group["bad_slices"]) == ({"tenant": "a"}, 3, 1)
    # With a minimum of 4 requests per slice every slice still has data; with 5 none has.
    assert evaluate(con, slo, min_events=5)["sli"] is None


def test_timeline_rolls_bucket_counts_and_burns_down_the_budget(tmp_path, make_db, open_db):
    slo = slo_from(tmp_path, latency_slo(target="0.9"))
    rows = [{"request_id": i, "arrival_s": float(i), "status": "error" if 30 <= i < 40 else "ok"} for i in range(60)]
    con = open_db(make_db(rows))
    timeline = burn_rate_timeline(con, slo, resolution="10s")
    assert list(timeline["events"]) == [10] * 6 and timeline["events"].sum() == 60
    assert list(timeline["burn_rate"]) == pytest.approx([0, 0, 0, 10, 0, 0])
    assert timeline["burn_rate_1h"].iloc[-1] == pytest.approx(10 / 60 / 0.1)
    assert timeline["budget_consumed"].iloc[-1] == pytest.approx(evaluate(con, slo)["budget_consumed"])
    assert timeline["budget_remaining"].is_monotonic_decreasing


def test_a_period_without_requests_is_no_data_not_good(tmp_path, make_db, open_db):
    slo = slo_from(tmp_path, latency_slo(duration="1d"))
    con = open_db(make_db([{"request_id": 0, "arrival_s": 5 * 86400.0, "status": "error"}]))
    report = evaluate(con, slo, at=datetime(2026, 1, 2))
    assert report["events"] == 0
    assert report["sli"] is None and report["budget_remaining"] is None and report["burn_rate"] is None
    assert not any(alert["firing"] for alert in report["alerts"])


def test_group_by_model_reads_the_attributes_and_priority_filters_numbers(tmp_path, make_db, open_db):
    slo = slo_from(tmp_path, latency_slo(target="0.9"))
    rows = [{"request_id": i, "arrival_s": float(i), "model": "big" if i < 4 else "small", "priority": i % 2,
             "ttft_s": 0.9 if i in (0, 1, 5) else 0.1} for i in range(10)]
    con = open_db(make_db(rows))
    groups = {g["group"]["model"]: g for g in evaluate(con, slo, group_by=["model"])["groups"]}
    assert (groups["big"]["events"], groups["big"]["bad_events"]) == (4, 2)
    assert (groups["small"]["events"], groups["small"]["bad_events"]) == (6, 1)
    odd = evaluate(con, slo, where={"priority": 1})
    assert (odd["events"], odd["bad_events"]) == (5, 2)

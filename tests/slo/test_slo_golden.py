"""The numbers Sloth, the SRE Workbook and OpenSLO say an SLO tool must produce (../shared/golden)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from causalsre.slo import AlertTier, AlertWindows, load_alert_windows, load_slos
from causalsre.slo.check import check_spec
from causalsre.slo.durations import parse_duration
from causalsre.slo.evaluate import evaluate, time_to_exhaustion_s
from slo_rows import T0
from slo_specs import latency_slo

DAY_S = 86400.0


@pytest.mark.parametrize(
    ("catalog", "expected"),
    [
        ("internal_alert_windows_google-30d.yaml", [14.4, 6, 3, 1]),
        ("internal_alert_windows_google-28d.yaml", [13.44, 5.6, 2.8, 0.9333333]),
        ("examples_windows_7d.yaml", [13.44, 3.5, 1.4, 0.98]),
        ("examples_windows_custom-30d.yaml", [14.4, 4.8, 3, 1]),
    ],
)
def test_sloth_catalogs_give_their_burn_rate_thresholds(golden_dir, catalog, expected):
    windows = load_alert_windows(str(golden_dir / "sloth" / catalog))
    assert windows.thresholds() == pytest.approx(expected, rel=1e-6)


def test_default_tiers_are_the_google_30d_catalog(golden_dir, tmp_path):
    path = tmp_path / "slo.yaml"
    path.write_text(latency_slo())
    catalog = load_alert_windows(str(golden_dir / "sloth" / "internal_alert_windows_google-30d.yaml"))
    result = check_spec(path)
    assert result["slos"][0]["alert_thresholds"] == pytest.approx(catalog.thresholds())


@pytest.mark.parametrize(("burn", "expected_s"), [(1, 30 * DAY_S), (10, 3 * DAY_S), (1000, 43.2 * 60)])
def test_workbook_exhaustion_times(burn, expected_s):
    assert time_to_exhaustion_s(1.0, burn, 30 * DAY_S) == pytest.approx(expected_s)


def test_remaining_budget_follows_the_workbook_formula_and_goes_negative():
    # remaining = ((1 - T) - error_ratio) / (1 - T): T = 0.999 and 0.3 % errors leave -200 %.
    from causalsre.slo.evaluate import summarize  # the one place the formula lives
    from causalsre.slo.period import Period
    from causalsre.slo.windows import google_windows

    class Slo:
        name, objective, budgeting_method, error_budget = "s", 0.999, "Occurrences", 0.001

    period = Period(T0, False, T0 + timedelta(days=30), 30 * DAY_S, True)
    result = summarize(Slo, period, google_windows(), [], {"events": 100_000, "bad_events": 300}, None, 1)
    assert result["budget_remaining"] == pytest.approx(-2.0)


@pytest.fixture(scope="module")
def clean_history_then_outage(tmp_path_factory):
    """30 days of one good request every 2 s, then 100 % errors (the Workbook's detection scenario)."""
    from slo_rows import add_run, add_steady_traffic
    from causalsre.telemetry import connect_readonly, connect_writable

    path = tmp_path_factory.mktemp("outage") / "outage.duckdb"
    con = connect_writable(path)
    add_run(con, "steady")
    add_steady_traffic(con, "steady", every_s=2.0, until_s=30 * DAY_S + 300, bad_from_s=30 * DAY_S)
    con.close()
    con = connect_readonly(path)
    yield con
    con.close()


def _first_firing(con, slo, windows, seconds):
    outage = T0 + timedelta(days=30)
    for t in seconds:
        report = evaluate(con, slo, at=outage + timedelta(seconds=t), alert_windows=windows)
        if report["alerts"][0]["firing"]:
            return t, report
    raise AssertionError("the alert never fired")


def test_outage_detection_times_and_budget_spent_when_the_page_fires(tmp_path, clean_history_then_outage):
    path = tmp_path / "slo.yaml"
    path.write_text(latency_slo(target="0.999"))
    slo = load_slos(path)[0]
    con = clean_history_then_outage
    # 1 h / 5 m at 14.4x: the Workbook says 0.864 min; requests arrive every 2 s, so within 2 s of it.
    detect_s, report = _first_firing(con, slo, None, range(40, 62, 2))
    assert abs(detect_s - 0.864 * 60) <= 2.0
    assert report["alerts"][0]["threshold"] == pytest.approx(14.4)
    assert report["budget_consumed"] == pytest.approx(0.02, rel=0.02)  # the tier's 2 %
    # A single-window 1 h alert at 36x (5 % of the budget in an hour) takes 2.16 min.
    hour = parse_duration("1h")
    single = AlertWindows(period=parse_duration("30d"), tiers=(
        AlertTier(severity="page", speed="quick", budget_percent=5, short_window=hour, long_window=hour),))
    detect_s, report = _first_firing(con, slo, single, range(116, 140, 2))
    assert report["alerts"][0]["threshold"] == pytest.approx(36.0)
    assert abs(detect_s - 2.16 * 60) <= 2.0


def test_exhaustion_in_the_report_uses_the_current_burn(tmp_path, clean_history_then_outage):
    path = tmp_path / "slo.yaml"
    path.write_text(latency_slo(target="0.999"))
    slo = load_slos(path)[0]
    report = evaluate(clean_history_then_outage, slo, at=T0 + timedelta(days=30, seconds=100))
    expected = report["budget_remaining"] * 30 * DAY_S / report["current_burn_rate"]
    assert report["time_to_exhaustion_s"] == pytest.approx(expected)
    assert report["current_burn_rate"] == pytest.approx(51 / 1800 / 0.001)


def test_objective_one_half_warns_that_the_fast_tier_can_never_fire(tmp_path):
    path = tmp_path / "slo.yaml"
    path.write_text(latency_slo(target="0.5"))
    warnings = check_spec(path)["warnings"]
    assert any("14.4x" in w and "can never fire" in w for w in warnings)
    assert not any("(3d/6h, 1x)" in w for w in warnings)


def test_openslo_one_minute_period_parses_as_minutes_and_warns(golden_dir):
    result = check_spec(golden_dir / "openslo" / "examples_budgeting-method_timeslices-slo.yaml")
    assert any("1m is 1 minute" in w and "1M" in w for w in result["warnings"])


def test_openslo_low_traffic_example_budget_is_five_minutes(golden_dir):
    (slo,) = load_slos(golden_dir / "openslo" / "examples_treat-low-traffic-as-equally-important_timeslices-slo.yaml")
    assert slo.error_budget * slo.window.duration.seconds == pytest.approx(5.04 * 60)
    assert slo.time_slice_target == pytest.approx(0.95) and slo.time_slice_window.seconds == 60


def test_openslo_examples_give_their_budgets(golden_dir):
    folder = golden_dir / "openslo"
    (occurrences,) = load_slos(folder / "examples_budgeting-method_occurences-slo.yaml")
    assert occurrences.error_budget == pytest.approx(0.01)  # 1 % of search requests may exceed 500 ms
    (ratio,) = load_slos(folder / "examples_budgeting-method_ratio-timeslices.yaml")
    assert ratio.error_budget * ratio.window.duration.seconds == pytest.approx(0.01 * 14 * DAY_S)  # 3.36 h


def test_low_traffic_example_reports_its_budget_in_time(golden_dir, make_db, open_db):
    (slo,) = load_slos(golden_dir / "openslo" / "examples_treat-low-traffic-as-equally-important_timeslices-slo.yaml")
    # Three requests in three different minutes, one failed: 2 of 3 minute slices are good (target 0.95).
    rows = [{"request_id": i, "arrival_s": 60.0 * i + 1, "status": "error" if i == 1 else "ok"} for i in range(3)]
    report = evaluate(open_db(make_db(rows)), slo)
    assert report["error_budget_s"] == pytest.approx(5.04 * 60)
    assert (report["slices"], report["bad_slices"]) == (3, 1)
    # The calendar week starts at noon New York time (17:00 UTC) on the day of the week of 2022-01-01.
    assert report["window"]["start"].endswith("T17:00:00") and report["window"]["rolling"] is False

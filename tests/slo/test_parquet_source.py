"""The SLO report read straight from Hive-partitioned Parquet equals the report over the same requests in a
telemetry database, number for number; the span read from the Parquet footers is checked against the rows."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import numpy as np
import pytest

from causalsre.slo import load_slos
from causalsre.slo.period import data_span
from causalsre.slo.report import build_report
from causalsre.slo.source import SPAN_TABLE, parquet_source
from causalsre.telemetry import migrate
from slo_rows import T0, add_requests, add_run
from slo_specs import latency_slo


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """3,000 seeded requests of 3 runs and 3 tenants (and no tenant) over 3 days, as a database and as Parquet."""
    rng = np.random.default_rng(7)
    con = duckdb.connect()
    migrate(con)
    for run_id in ("r1", "r2", "r3"):
        add_run(con, run_id)
    n = 3000
    rows = [{"run_id": str(rng.choice(["r1", "r2", "r3"])), "request_id": i,
             "tenant": [None, "a", "b", "c"][int(rng.integers(4))], "arrival_s": float(rng.uniform(0, 3 * 86400)),
             "ttft_s": float(rng.exponential(0.2)), "tpot_s": float(rng.exponential(0.02)),
             "output_tokens": int(rng.integers(1, 50)),
             "status": str(rng.choice(["ok"] * 8 + ["timeout", "rejected"]))} for i in range(n)]
    add_requests(con, rows)
    folder = tmp_path_factory.mktemp("fleet") / "requests"
    con.execute(f"COPY (SELECT *, strftime(arrival_ts, '%Y-%m-%d') AS day FROM request_metrics) TO '{folder}' "
                "(FORMAT parquet, PARTITION_BY (day), ROW_GROUP_SIZE 500)")
    spec = tmp_path_factory.mktemp("spec") / "slo.yaml"
    spec.write_text(latency_slo(target="0.95", duration="1d"))
    yield con, folder, load_slos(spec)[0]
    con.close()


def _report(con, slo, **kwargs):
    timelines: list = []
    reports = build_report(con, [slo], group_by=["tenant", "run"], timelines=timelines, resolution="10m", **kwargs)
    return reports, timelines[0][1]


@pytest.mark.parametrize("at", [None, T0 + timedelta(days=2, hours=5)])
def test_the_report_from_parquet_equals_the_database_report(world, at):
    con, folder, slo = world
    files = parquet_source(folder, threads=2)
    try:
        from_db, db_timeline = _report(con, slo, at=at)
        from_files, file_timeline = _report(files, slo, at=at)
    finally:
        files.close()
    assert from_files == from_db  # every number: totals, alert windows, groups, runs
    assert from_db[0]["events"] > 0 and from_db[0]["bad_events"] > 0 and len(from_db[0]["groups"]) > 6
    assert file_timeline.equals(db_timeline)


def test_the_footer_span_is_used_only_once_the_rows_confirm_it(world):
    con, folder, _ = world
    truth = con.execute("SELECT min(arrival_ts), max(arrival_ts) FROM request_metrics").fetchone()
    files = parquet_source(folder)
    try:
        assert files.execute(f"SELECT first_ts, last_ts FROM {SPAN_TABLE}").fetchone() == truth
        assert data_span(files, "TRUE", []) == truth
        # A footer that claims an earlier first arrival (or a later last one) than the rows hold is not
        # believed: the span falls back to reading the rows.
        files.execute(f"UPDATE {SPAN_TABLE} SET first_ts = first_ts - INTERVAL 1 SECOND, "
                      "last_ts = last_ts + INTERVAL 1 MICROSECOND")
        assert data_span(files, "TRUE", []) == truth
        files.execute(f"UPDATE {SPAN_TABLE} SET first_ts = first_ts + INTERVAL 2 SECOND")  # later than the truth
        assert data_span(files, "TRUE", []) == truth
    finally:
        files.close()


def test_a_period_longer_than_the_data_drops_the_scan_bounds_and_keeps_every_number(world, tmp_path, monkeypatch):
    """When the period holds every request (the report's default moment is the last arrival), the counting
    pass tests only ``arrival_ts IS NOT NULL`` instead of its bounds: the same numbers as with the bounds
    (an explicit ``at`` keeps them), and a request with no arrival is still left out."""
    import shutil

    import causalsre.slo.analyse as analyse_module

    con, folder, _ = world
    copy = tmp_path / "requests"
    shutil.copytree(folder, copy)
    (copy / "day=none").mkdir()
    con.execute(f"COPY (SELECT * REPLACE (NULL::TIMESTAMP AS arrival_ts) FROM request_metrics LIMIT 1) "
                f"TO '{copy / 'day=none' / 'x.parquet'}' (FORMAT parquet)")
    spec = tmp_path / "slo.yaml"
    spec.write_text(latency_slo(target="0.95", duration="30d"))
    slo = load_slos(spec)[0]
    plans = []
    counted = analyse_module.count_cube
    monkeypatch.setattr(analyse_module, "count_cube", lambda c, plan, *a: plans.append(plan) or counted(c, plan, *a))
    files = parquet_source(copy, threads=2)
    try:
        latest = files.execute("SELECT max(arrival_ts) FROM request_metrics").fetchone()[0]
        dropped, dropped_timeline = _report(files, slo)
        kept, kept_timeline = _report(files, slo, at=latest)
        from_db, _ = _report(con, slo, at=latest)
    finally:
        files.close()
    assert plans[0].span is not None and plans[0].span[1] == latest  # the bounds were dropped ...
    assert plans[1].span is None                                      # ... and kept
    assert dropped == kept == from_db and dropped[0]["events"] == 3000  # the NULL arrival is not an event
    assert dropped_timeline.equals(kept_timeline)

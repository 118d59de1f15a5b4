"""SLO report benchmark: the DuckDB report against a straightforward pandas implementation, same data, same run.

The data is generated inside DuckDB (``range()`` and ``hash()``, so it is deterministic for a seed): a 30-day
period of requests over 10 runs and 4 tenants, with an incident (25 % timeouts) in the last three hours. Both sides compute
the same numbers (period counts, the eight alert-window counts, per-tenant counts, per-run attainment and
goodput, and a 10-minute burn-rate timeline); the benchmark checks they agree before it reports times.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from causalsre.slo.durations import parse_duration
from causalsre.slo.spec import Condition, SLOSpec, TimeWindow
from causalsre.slo.windows import google_windows

T0 = datetime(2026, 1, 1)
PERIOD_S = 30 * 86400
NUM_RUNS = 10
TIMELINE_RESOLUTION = "10m"


def benchmark_slo() -> SLOSpec:
    return SLOSpec(
        name="ttft-tpot", objective=0.99,
        conditions=(Condition(metric="ttft_s", op="lte", value=0.5), Condition(metric="tpot_s", op="lte", value=0.05)),
        window=TimeWindow(duration=parse_duration("30d")),
    )


def generate(path: Path, num_requests: int, seed: int) -> None:
    """Write a telemetry database of ``num_requests`` requests spread over 30 days."""
    from causalsre.telemetry import connect_writable

    con = connect_writable(path)
    try:
        for run in range(NUM_RUNS):
            con.execute("INSERT INTO runs (run_id, kind, started_at, status, config_json) "
                        "VALUES (?, 'harness', ?, 'complete', '{}')", [f"run-{run}", T0])
        step_ns = PERIOD_S * 1_000_000_000 // num_requests
        incident_ns = (PERIOD_S - 3 * 3600) * 1_000_000_000
        con.execute(
            """
            INSERT INTO requests (run_id, request_id, tenant, priority, prompt_tokens, target_output_tokens,
                                  output_tokens, scheduled_arrival_ns, enqueue_ns, first_scheduled_ns,
                                  first_token_ns, last_token_ns, finish_ns, status)
            SELECT 'run-' || (i % ?), i, ['a', 'b', 'c', 'd'][1 + (h1 % 4)::INT], (h1 % 3)::INT, 100, o, o,
                   a, a, a, a + ttft, a + ttft + tpot * (o - 1), a + ttft + tpot * (o - 1),
                   CASE WHEN u3 < 0.002 OR (a >= ? AND u3 < 0.25) THEN 'timeout'
                        WHEN u3 < 0.003 THEN 'rejected' ELSE 'ok' END
            FROM (
                SELECT i, a, h1, u3, 1 + (h2 % 200)::INT AS o,
                       CAST((0.05 + 0.5 * pow(u1, 30)) * 1e9 AS BIGINT) AS ttft,
                       CAST((0.01 + 0.041 * pow(u2, 40)) * 1e9 AS BIGINT) AS tpot
                FROM (
                    SELECT i, i * ? AS a, hash(i, ?) AS h1, hash(i, ? + 1) AS h2,
                           (hash(i, ? + 2) % 1000003) / 1000003.0 AS u1,
                           (hash(i, ? + 3) % 1000003) / 1000003.0 AS u2,
                           (hash(i, ? + 4) % 1000003) / 1000003.0 AS u3
                    FROM range(?) t(i)))
            """,
            [NUM_RUNS, incident_ns, step_ns, seed, seed, seed, seed, seed, num_requests],
        )
    finally:
        con.close()


def duckdb_report(con, slo: SLOSpec) -> dict[str, Any]:
    from causalsre.slo.report import build_report

    timelines: list = []
    (report,) = build_report(con, [slo], group_by=["tenant"], timelines=timelines, resolution=TIMELINE_RESOLUTION)
    return {"report": report, "timeline": timelines[0][1]}


def pandas_load(con) -> pd.DataFrame:
    return con.execute(
        "SELECT run_id, tenant, arrival_ts, arrival_ns, ttft_s, tpot_s, e2e_s, is_ok FROM request_metrics"
    ).df()


def pandas_report(frame: pd.DataFrame, slo: SLOSpec) -> dict[str, Any]:
    """The same numbers with plain pandas operations on the loaded requests."""
    good = frame["is_ok"].fillna(False).astype(bool)
    for condition in slo.conditions:  # a NULL metric does not apply (as in the SQL)
        column = frame[condition.metric]
        good &= column.isna() | (column <= condition.value)
    bad = ~good
    at = frame["arrival_ts"].max()
    in_period = (frame["arrival_ts"] > at - pd.Timedelta(seconds=PERIOD_S)) & (frame["arrival_ts"] <= at)
    budget = slo.error_budget
    result: dict[str, Any] = {"events": int(in_period.sum()), "bad_events": int((in_period & bad).sum())}
    result["burn_rate"] = result["bad_events"] / result["events"] / budget
    windows = google_windows("30d")
    spans = {str(s): s for t in windows.tiers for s in (t.long_window, t.short_window)}
    for name, span in spans.items():
        inside = frame["arrival_ts"] > at - pd.Timedelta(seconds=span.seconds)
        result[f"burn_{name}"] = (inside & bad).sum() / inside.sum() / budget
    per_tenant = pd.DataFrame({"tenant": frame["tenant"], "bad": bad})[in_period].groupby("tenant")["bad"]
    result["tenant_burn"] = (per_tenant.mean() / budget).to_dict()
    finish_ns = frame["arrival_ns"] + frame["e2e_s"].fillna(0) * 1e9
    runs = pd.DataFrame({"run_id": frame["run_id"], "good": good, "arrival_ns": frame["arrival_ns"],
                         "finish_ns": finish_ns}).groupby("run_id")
    duration_s = (runs["finish_ns"].max() - runs["arrival_ns"].min()) / 1e9
    result["attainment"] = runs["good"].mean().to_dict()
    result["goodput_rps"] = (runs["good"].sum() / duration_s).to_dict()
    # Timeline: 10-minute buckets, rolling sums over each long window, cumulative budget burn-down.
    res_s = parse_duration(TIMELINE_RESOLUTION).seconds
    bucket = frame["arrival_ts"].dt.floor(f"{int(res_s)}s")
    counts = pd.DataFrame({"bucket": bucket, "bad": bad.astype("int64"), "one": 1})[in_period]
    per_bucket = counts.groupby("bucket")[["one", "bad"]].sum()
    full = pd.date_range(per_bucket.index.min(), per_bucket.index.max(), freq=f"{int(res_s)}s")
    per_bucket = per_bucket.reindex(full, fill_value=0)
    timeline = {}
    for tier in windows.tiers:
        k = max(1, int(np.ceil(tier.long_window.seconds / res_s)))
        rolled = per_bucket.rolling(k, min_periods=1).sum()
        timeline[f"burn_rate_{tier.long_window}"] = (rolled["bad"] / rolled["one"] / budget).to_numpy()
    timeline["budget_consumed"] = (per_bucket["bad"].cumsum() / (budget * per_bucket["one"].sum())).to_numpy()
    result["timeline"] = timeline
    return result


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Differences between the two implementations (empty when they agree)."""
    report, timeline = ours["report"], ours["timeline"]
    problems = []

    def check(label, a, b):
        if not np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-9, equal_nan=True):
            problems.append(label)

    check("events", report["events"], theirs["events"])
    check("bad_events", report["bad_events"], theirs["bad_events"])
    check("burn_rate", report["burn_rate"], theirs["burn_rate"])
    for alert in report["alerts"]:
        check(f"burn {alert['long_window']}", alert["long_burn_rate"], theirs[f"burn_{alert['long_window']}"])
        check(f"burn {alert['short_window']}", alert["short_burn_rate"], theirs[f"burn_{alert['short_window']}"])
    for group in report["groups"]:
        check(f"tenant {group['group']['tenant']}", group["burn_rate"], theirs["tenant_burn"][group["group"]["tenant"]])
    for run in report["runs"]:
        check(f"attainment {run['run_id']}", run["attainment"], theirs["attainment"][run["run_id"]])
        check(f"goodput {run['run_id']}", run["goodput_rps"], theirs["goodput_rps"][run["run_id"]])
    for column, values in theirs["timeline"].items():
        ours_values = timeline[column].to_numpy()
        if len(ours_values) != len(values):
            problems.append(f"timeline length {column}")
        else:
            check(f"timeline {column}", ours_values, values)
    return problems


def run(num_requests: int = 10_000_000, seed: int = 0, threads: int = 2, repeats: int = 3,
                  workdir: str | None = None) -> dict[str, Any]:
    """Generate, time both implementations (best of ``repeats`` for DuckDB), check they agree."""
    from causalsre.telemetry import connect_readonly

    slo = benchmark_slo()
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        path = Path(folder) / "slo-bench.duckdb"
        started = time.perf_counter()
        generate(path, num_requests, seed)
        generate_s = time.perf_counter() - started
        con = connect_readonly(path)
        con.execute(f"SET threads = {int(threads)}")
        try:
            duck_times = []
            for _ in range(repeats):
                started = time.perf_counter()
                ours = duckdb_report(con, slo)
                duck_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            frame = pandas_load(con)
            load_s = time.perf_counter() - started
            started = time.perf_counter()
            theirs = pandas_report(frame, slo)
            compute_s = time.perf_counter() - started
        finally:
            con.close()
    problems = compare(ours, theirs)
    duck_s = min(duck_times)
    return {
        "benchmark": "slo-report",
        "num_requests": num_requests,
        "seed": seed,
        "duckdb_threads": threads,
        "generate_s": round(generate_s, 3),
        "duckdb_report_s": round(duck_s, 3),
        "duckdb_report_s_all": [round(t, 3) for t in duck_times],
        "baseline": "pandas: load request_metrics into a DataFrame, then the same numbers with pandas",
        "pandas_load_s": round(load_s, 3),
        "pandas_compute_s": round(compute_s, 3),
        "pandas_total_s": round(load_s + compute_s, 3),
        "speedup_vs_pandas_total": round((load_s + compute_s) / duck_s, 2),
        "speedup_vs_pandas_compute_only": round(compute_s / duck_s, 2),
        "numbers_agree": not problems,
        "disagreements": problems,
        "report_summary": {k: ours["report"][k] for k in ("events", "bad_events", "sli", "burn_rate")},
        "firing": [f"{a['severity']}/{a['speed']}" for a in ours["report"]["alerts"] if a["firing"]],
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
    }

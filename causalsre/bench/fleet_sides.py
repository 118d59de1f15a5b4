"""The two sides of the fleet benchmark, each run in a process of its own so that its peak memory is its own.

    python -m causalsre.bench.fleet_sides ours|polars FOLDER THREADS [POLARS_ENGINE]   # prints one JSON line

``ours`` is the product's report (:func:`causalsre.slo.report.build_report`) over the Parquet folder through
:func:`causalsre.slo.source.parquet_source`; ``polars`` computes the same numbers with Polars' lazy scan
(``pl.scan_parquet``, Hive partitions): one aggregation over the files to a small (tenant, run, 10-minute
bucket, alert-window class) table, then the period, window, tenant, run and timeline numbers from it, collected
with Polars' streaming engine (``collect(engine="streaming")``: the in-memory engine took 7.2 GiB at 30M
requests) or, when asked, the in-memory one. Both return the same plain shape, compared by :func:`compare`.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
from pathlib import Path

RESOLUTION = "10m"


def slo_spec():
    from causalsre.bench.slo import benchmark_slo

    return benchmark_slo()


def ours(folder: str, threads: int) -> dict:
    from causalsre.slo.report import build_report
    from causalsre.slo.source import parquet_source

    con = parquet_source(folder, threads=threads)
    try:
        timelines: list = []
        (report,) = build_report(con, [slo_spec()], group_by=["tenant"], timelines=timelines, resolution=RESOLUTION)
    finally:
        con.close()
    out = {"events": report["events"], "bad_events": report["bad_events"], "burn_rate": report["burn_rate"]}
    for alert in report["alerts"]:
        out[f"burn_{alert['long_window']}"] = alert["long_burn_rate"]
        out[f"burn_{alert['short_window']}"] = alert["short_burn_rate"]
    out["tenant_burn"] = {g["group"]["tenant"]: g["burn_rate"] for g in report["groups"]}
    out["attainment"] = {r["run_id"]: r["attainment"] for r in report["runs"]}
    out["goodput_rps"] = {r["run_id"]: r["goodput_rps"] for r in report["runs"]}
    timeline = timelines[0][1]
    out["timeline"] = {c: timeline[c].astype(float).tolist() for c in timeline.columns
                       if c.startswith("burn_rate_") or c == "budget_consumed"}
    return out


POLARS_ENGINES = ("streaming", "in-memory")


def polars_side(folder: str, threads: int, engine: str = "streaming") -> dict:
    import polars as pl

    from causalsre.slo.durations import parse_duration
    from causalsre.slo.windows import google_windows

    slo = slo_spec()
    budget = slo.error_budget
    period_s = slo.window.duration.seconds
    windows = google_windows(slo.window.duration)
    spans = sorted({s for t in windows.tiers for s in (t.long_window, t.short_window)}, key=lambda s: s.seconds)
    bucket_us = int(parse_duration(RESOLUTION).seconds * 1_000_000)
    scan = pl.scan_parquet(str(Path(folder) / "**" / "*.parquet"), hive_partitioning=True)
    at = scan.select(pl.col("arrival_ts").max()).collect(engine=engine).item()
    ts = pl.col("arrival_ts")
    good = pl.col("is_ok").fill_null(False)
    compare_ops = {"lt": "__lt__", "lte": "__le__", "gt": "__gt__", "gte": "__ge__", "eq": "__eq__", "ne": "__ne__"}
    for c in slo.conditions:  # a NULL metric does not apply, as in the SQL
        good = good & (pl.col(c.metric).is_null() | getattr(pl.col(c.metric), compare_ops[c.op])(c.value))
    cls = pl.lit(len(spans))
    for index in reversed(range(len(spans))):
        cls = pl.when(ts > at - _delta(spans[index].seconds)).then(pl.lit(index)).otherwise(cls)
    lower = at - _delta(max(period_s, spans[-1].seconds))
    fine = (scan.filter((ts > lower) & (ts <= at))
            .with_columns(is_bad=~good, cls=cls, in_period=ts > at - _delta(period_s),
                          b=ts.dt.epoch("us") // bucket_us,
                          finish_ns=pl.col("arrival_ns") + pl.col("e2e_s").fill_null(0.0) * 1e9)
            .group_by(["tenant", "run_id", "b", "cls", "in_period"])
            .agg(n=pl.len(), bad=pl.col("is_bad").sum(), first_ns=pl.col("arrival_ns").min(),
                 last_ns=pl.col("finish_ns").max())
            .collect(engine=engine))
    inside = fine.filter(pl.col("in_period"))
    events, bad = int(inside["n"].sum()), int(inside["bad"].sum())
    out = {"events": events, "bad_events": bad, "burn_rate": bad / events / budget}
    for index, span in enumerate(spans):
        part = fine.filter(pl.col("cls") <= index)
        out[f"burn_{span}"] = float(part["bad"].sum()) / float(part["n"].sum()) / budget
    tenants = inside.group_by("tenant").agg(pl.col("bad").sum(), pl.col("n").sum())
    out["tenant_burn"] = {r["tenant"]: r["bad"] / r["n"] / budget for r in tenants.iter_rows(named=True)}
    runs = inside.group_by("run_id").agg(pl.col("n").sum(), pl.col("bad").sum(), pl.col("first_ns").min(),
                                         pl.col("last_ns").max())
    out["attainment"] = {r["run_id"]: (r["n"] - r["bad"]) / r["n"] for r in runs.iter_rows(named=True)}
    out["goodput_rps"] = {r["run_id"]: (r["n"] - r["bad"]) / ((r["last_ns"] - r["first_ns"]) / 1e9)
                          for r in runs.iter_rows(named=True)}
    per_bucket = inside.group_by("b").agg(pl.col("n").sum(), pl.col("bad").sum())
    full = pl.DataFrame({"b": pl.int_range(per_bucket["b"].min(), per_bucket["b"].max() + 1, eager=True)})
    per_bucket = full.join(per_bucket, on="b", how="left").fill_null(0).sort("b")
    timeline = {}
    for tier in windows.tiers:
        k = max(1, math.ceil(tier.long_window.seconds * 1_000_000 / bucket_us))
        n = per_bucket["n"].cast(pl.Float64).rolling_sum(k, min_samples=1)
        b = per_bucket["bad"].cast(pl.Float64).rolling_sum(k, min_samples=1)
        timeline[f"burn_rate_{tier.long_window}"] = (b / n / budget).to_list()
    timeline["budget_consumed"] = (per_bucket["bad"].cum_sum() / (budget * per_bucket["n"].sum())).to_list()
    out["timeline"] = timeline
    return out


def _delta(seconds: float):
    from datetime import timedelta

    return timedelta(seconds=seconds)


def compare(a: dict, b: dict) -> tuple[list[str], float]:
    """(labels that differ beyond 1e-9 relative, the largest relative difference) between two sides."""
    problems, worst = [], 0.0

    def check(label, x, y):
        nonlocal worst
        if x is None or y is None or (isinstance(x, float) and math.isnan(x)):
            if not (x is None and y is None):
                problems.append(label)
            return
        diff = abs(float(x) - float(y)) / max(abs(float(x)), abs(float(y)), 1e-300)
        worst = max(worst, diff)
        if diff > 1e-9:
            problems.append(label)

    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if key == "timeline":
            for column in sorted(set(x) | set(y)):
                xs, ys = x.get(column, []), y.get(column, [])
                if len(xs) != len(ys):
                    problems.append(f"timeline length {column}")
                    continue
                for index, (u, v) in enumerate(zip(xs, ys)):
                    check(f"timeline {column}[{index}]", u, v)
        elif isinstance(x, dict) or isinstance(y, dict):
            x, y = x or {}, y or {}
            for name in sorted(set(x) | set(y)):
                check(f"{key} {name}", x.get(name), y.get(name))
        else:
            check(key, x, y)
    return problems, worst


def main(argv: list[str]) -> None:
    side, folder, threads = argv[0], argv[1], int(argv[2])
    started = time.perf_counter()
    numbers = ours(folder, threads) if side == "ours" else polars_side(folder, threads, *argv[3:4])
    seconds = time.perf_counter() - started
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: KiB on Linux, bytes on macOS
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds (user + sys, every thread) beside wall seconds: on a shared machine the wall time mostly
    # measures the other users' load, the CPU time what this side's work costs.
    print(json.dumps({"side": side, "seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                      "peak_rss_bytes": usage.ru_maxrss * scale, "pid": os.getpid(), "numbers": numbers}))


if __name__ == "__main__":
    main(sys.argv[1:])

"""The SLO report at a fleet's scale: ``causalsre bench slo --fleet [--requests N] [--days D] [--dir DIR]``.

Writes N requests as Hive-partitioned Parquet per day (:mod:`causalsre.bench.fleet_data`), then computes the
full report (totals, the eight alert-window burn rates, per-tenant groups, per-run attainment and goodput, the
10-minute burn-rate timeline) twice, each in a process of its own: the product's report over the files
(:mod:`causalsre.slo.source`), and Polars' lazy scan computing the same numbers, the named peer. Reports wall
time and peak RSS of each, their ratio, and whether the numbers agree. The Parquet is deleted afterwards
unless ``keep``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from causalsre.bench.fleet_data import write_fleet
from causalsre.bench.fleet_sides import compare
from causalsre.errors import UserError

RSS_TARGET_GIB = 4.0


def _side(name: str, folder: Path, threads: int) -> dict:
    env = {**os.environ, "POLARS_MAX_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-m", "causalsre.bench.fleet_sides", name, str(folder), str(threads)],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise UserError(f"the {name} side of the fleet benchmark failed: {done.stderr.strip().splitlines()[-1:]}",
                        "rerun with fewer --requests, or see the message above")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(requests: int = 100_000_000, days: int = 30, folder: str | Path | None = None, seed: int = 0,
        threads: int = 2, keep: bool = False, progress=None) -> dict:
    say = progress or (lambda message: None)
    if folder is not None and Path(folder).exists() and any(Path(folder).iterdir()):
        raise UserError(f"folder {folder} is not empty", "give an empty or new folder for the Parquet files")
    made = Path(tempfile.mkdtemp(prefix="fleet-")) if folder is None else Path(folder)
    data = made / "requests"
    try:
        written = write_fleet(data, requests, days, seed, threads=threads, progress=say)
        say(f"wrote {written['bytes'] / 2**30:.2f} GiB in {written['files']} files; our report")
        ours = _side("ours", data, threads)
        say("polars")
        peer = _side("polars", data, threads)
    finally:
        if not keep:
            shutil.rmtree(made if folder is None else data, ignore_errors=True)
    problems, worst = compare(ours["numbers"], peer["numbers"])
    gib = lambda side: round(side["peak_rss_bytes"] / 2**30, 3)  # noqa: E731
    numbers = ours["numbers"]
    return {
        "benchmark": "slo-fleet", "requests": requests, "days": days, "seed": seed, "threads": threads,
        "parquet": {**written, "gib": round(written["bytes"] / 2**30, 3), "kept": str(data) if keep else None,
                    "layout": "Hive partitions day=YYYY-MM-DD, request_metrics columns"},
        "ours": {"name": "causalsre slo report over Parquet (DuckDB view over read_parquet)",
                 "seconds": round(ours["seconds"], 3), "peak_rss_gib": gib(ours)},
        "peer": {"name": "Polars lazy scan_parquet, same numbers", "seconds": round(peer["seconds"], 3),
                 "peak_rss_gib": gib(peer)},
        "ratio_ours_over_polars": round(ours["seconds"] / peer["seconds"], 3),
        "targets": {"no_slower_than_polars": ours["seconds"] <= peer["seconds"],
                    f"peak_rss_le_{RSS_TARGET_GIB:g}_gib": gib(ours) <= RSS_TARGET_GIB},
        "agree": not problems, "max_relative_difference": worst, "disagreements": problems[:20],
        "summary": {k: numbers[k] for k in ("events", "bad_events", "burn_rate", "burn_1h", "burn_5m")},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
    }

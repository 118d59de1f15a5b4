"""The SLO report at a fleet's scale: ``causalsre bench slo --fleet [--requests N] [--days D] [--dir DIR]``.

Writes N requests as Hive-partitioned Parquet per day (:mod:`causalsre.bench.fleet_data`), then computes the
full report (totals, the eight alert-window burn rates, per-tenant groups, per-run attainment and goodput, the
10-minute burn-rate timeline) twice, each in a process of its own: the product's report over the files
(:mod:`causalsre.slo.source`), and Polars' lazy scan computing the same numbers, the named peer. Reports wall
time and peak RSS of each, their ratio, and whether the numbers agree. The Parquet is deleted afterwards
unless ``keep``.

Each side runs under a memory guard, so that a benchmark never takes the memory a shared machine's other
users need: this process reads the side's resident set from ``/proc`` every 0.2 s and kills it past
``min(memory_cap_gib, MemAvailable at its start - 2 GiB)``; a side killed so is reported ``skipped`` with
the reason (and the other side's figures stand alone).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from causalsre.bench.fleet_data import write_fleet
from causalsre.bench.fleet_sides import compare
from causalsre.errors import UserError
from causalsre.telemetry import first_row

RSS_TARGET_GIB = 4.0
MEMORY_CAP_GIB = 12.0
HEADROOM_GIB = 2.0   # left to the machine's other users whatever the cap
POLL_S = 0.2


def _proc_kib(pid: int | str, field: str) -> int | None:
    """A ``VmRSS``-style field of /proc/PID/status (or MemAvailable of /proc/meminfo), in KiB; None off Linux."""
    path = "/proc/meminfo" if pid == "meminfo" else f"/proc/{pid}/status"
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def memory_cap_bytes(cap_gib: float) -> int:
    available = _proc_kib("meminfo", "MemAvailable")
    cap = int(cap_gib * 2**30)
    return cap if available is None else min(cap, available * 1024 - int(HEADROOM_GIB * 2**30))


def _side(name: str, folder: Path, threads: int, polars_engine: str, cap_bytes: int) -> dict:
    env = {**os.environ, "POLARS_MAX_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    if cap_bytes <= 0:
        return {"skipped": f"under {HEADROOM_GIB:g} GiB of memory available: not started"}
    argv = [sys.executable, "-m", "causalsre.bench.fleet_sides", name, str(folder), str(threads), polars_engine]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env)
        watched = 0
        while child.poll() is None:
            rss = _proc_kib(child.pid, "VmRSS")
            watched = max(watched, (rss or 0) * 1024)
            if rss is not None and rss * 1024 > cap_bytes:
                child.kill()
                child.wait()
                return {"skipped": f"its resident set passed the memory guard ({cap_bytes / 2**30:.1f} GiB) and it "
                                   "was stopped", "rss_when_stopped_gib": round(watched / 2**30, 2)}
            time.sleep(POLL_S)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise UserError(f"the {name} side of the fleet benchmark failed: {stderr.strip().splitlines()[-1:]}",
                        "rerun with fewer --requests, or see the message above")
    return json.loads(stdout.strip().splitlines()[-1])


def run(requests: int = 100_000_000, days: int = 30, folder: str | Path | None = None, seed: int = 0,
        threads: int = 2, keep: bool = False, progress=None, polars_engine: str = "streaming",
        memory_cap_gib: float = MEMORY_CAP_GIB, reuse: bool = False) -> dict:
    """Write (or, with ``reuse``, read what ``folder`` holds), run both sides; the JSON-ready report."""
    say = progress or (lambda message: None)
    if reuse:
        if folder is None or not any((Path(folder) / "requests").rglob("*.parquet")):
            raise UserError(f"--reuse needs a --dir holding an earlier run's requests/ folder (got {folder})",
                            "run once with --dir DIR, then again with --dir DIR --reuse")
    elif folder is not None and Path(folder).exists() and any(Path(folder).iterdir()):
        raise UserError(f"folder {folder} is not empty", "give an empty or new folder, or add --reuse")
    made = Path(tempfile.mkdtemp(prefix="fleet-")) if folder is None else Path(folder)
    data = made / "requests"
    try:
        written = _existing(data) if reuse else write_fleet(data, requests, days, seed, threads=threads, progress=say)
        say(f"{written['bytes'] / 2**30:.2f} GiB in {written['files']} files; our report")
        ours = _side("ours", data, threads, polars_engine, memory_cap_bytes(memory_cap_gib))
        say(f"polars ({polars_engine} engine)")
        peer = _side("polars", data, threads, polars_engine, memory_cap_bytes(memory_cap_gib))
    finally:
        if not keep:
            shutil.rmtree(made if folder is None else data, ignore_errors=True)
    if "skipped" in ours:
        raise UserError(f"our side of the fleet benchmark was stopped: {ours['skipped']}",
                        "free memory, or lower --requests")
    gib = lambda side: round(side["peak_rss_bytes"] / 2**30, 3)  # noqa: E731
    numbers = ours["numbers"]
    report = {
        "benchmark": "slo-fleet", "requests": written["rows"], "days": written["days"], "seed": seed,
        "threads": threads,
        "parquet": {**written, "gib": round(written["bytes"] / 2**30, 3), "kept": str(data) if keep else None,
                    "reused": reuse, "layout": "Hive partitions day=YYYY-MM-DD, request_metrics columns"},
        "ours": {"name": "causalsre slo report over Parquet (DuckDB view over read_parquet)",
                 "seconds": round(ours["seconds"], 3), "cpu_seconds": _cpu(ours), "peak_rss_gib": gib(ours)},
        "memory_guard_gib": round(memory_cap_bytes(memory_cap_gib) / 2**30, 2),
        "summary": {k: numbers[k] for k in ("events", "bad_events", "burn_rate", "burn_1h", "burn_5m")},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
    }
    peer_name = f"Polars lazy scan_parquet, collect(engine={polars_engine!r}), same numbers"
    if "skipped" in peer:
        report["peer"] = {"name": peer_name, **peer}
        report.update(ratio_ours_over_polars=None, agree=None, max_relative_difference=None, disagreements=[],
                      targets={f"peak_rss_le_{RSS_TARGET_GIB:g}_gib": gib(ours) <= RSS_TARGET_GIB})
        return report
    problems, worst = compare(numbers, peer["numbers"])
    report["peer"] = {"name": peer_name, "seconds": round(peer["seconds"], 3), "cpu_seconds": _cpu(peer),
                      "peak_rss_gib": gib(peer)}
    report.update(ratio_ours_over_polars=round(ours["seconds"] / peer["seconds"], 3),
                  cpu_ratio_ours_over_polars=round(_cpu(ours) / _cpu(peer), 3) if _cpu(peer) else None,
                  # CPU beside wall: on a shared machine the wall time mostly measures the other users' load
                  targets={"no_slower_than_polars": ours["seconds"] <= peer["seconds"],
                           "no_more_cpu_than_polars": (_cpu(ours) <= _cpu(peer)) if _cpu(peer) else None,
                           f"peak_rss_le_{RSS_TARGET_GIB:g}_gib": gib(ours) <= RSS_TARGET_GIB},
                  agree=not problems, max_relative_difference=worst, disagreements=problems[:20])
    return report


def _cpu(side: dict) -> float | None:
    return round(side["cpu_seconds"], 3) if side.get("cpu_seconds") is not None else None


def _existing(data: Path) -> dict:
    """What an earlier run left in ``data``: rows (from the Parquet footers), days, files, bytes."""
    import duckdb

    files = list(data.rglob("*.parquet"))
    con = duckdb.connect()
    try:
        rows = first_row(con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [[str(f) for f in files]]))
    finally:
        con.close()
    return {"rows": int(rows[0]), "days": len({f.parent.name for f in files}), "files": len(files),
            "bytes": sum(f.stat().st_size for f in files), "seconds": None}

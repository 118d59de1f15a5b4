"""Postmortem speed at scale: ``causalsre bench postmortem [--requests N] [--json]``.

Writes a synthetic two-phase run of about N requests (known cause: cpu_contention) through the schema writer
(numpy frames bulk-inserted by DuckDB, :func:`causalsre.causal.synthetic.write_synthetic`), runs
``postmortem`` as shipped (windows over :data:`causalsre.causal.subsample.CAP` requests are subsampled,
stratified), then, when asked, the same pipeline with every subsampling switched off (the named baseline: every
request used for the table, the change tests and the mechanism fits), and reports both times, their ratio,
whether each found the cause, and the rows the shipped run used.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from causalsre.causal import load_graph
from causalsre.causal import mechanisms, subsample, postmortem as pm
from causalsre.causal.synthetic import SyntheticSpec, write_synthetic
from causalsre.telemetry import connect_readonly
from causalsre.windows import parse_window

PHASE_S = 120.0
BASELINE_AT_MOST = 1_000_000  # without subsampling, larger runs take many minutes on 2 cores


def _timed(path: Path) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of every thread of this process, result) of one postmortem."""
    con = connect_readonly(path)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        result = pm.postmortem(con, None, parse_window("phase:baseline", con), parse_window("phase:incident", con),
                               load_graph(), seed=0)
        return time.perf_counter() - started, time.process_time() - cpu, result
    finally:
        con.close()


def _top(result: dict) -> str | None:
    return next((a["factor"] for a in result["attributions"] if a["factor"] != pm.OTHER), None)


def _check_reusable(path: Path) -> None:
    """A UserError unless ``path`` is a telemetry database whose windows the benchmark can read (one it wrote)."""
    con = connect_readonly(path)  # a folder, a non-DuckDB file or another schema version: one line here
    try:
        for phase in ("baseline", "incident"):
            parse_window(f"phase:{phase}", con)
    finally:
        con.close()


def _generate(path: Path, requests: int, say) -> float:
    say(f"writing {requests:,} requests")
    started = time.perf_counter()
    # ~5 % above the requested count so that the Poisson draw does not fall short of it.
    write_synthetic(path, SyntheticSpec(fault="cpu_contention", phase_s=PHASE_S,
                                        arrival_rate=requests / (2 * PHASE_S) * 1.05))
    return time.perf_counter() - started


def run(requests: int = 100_000, with_baseline: bool | None = None, workdir: str | None = None,
        progress=None, db: str | Path | None = None) -> dict:
    """Generate, time the shipped postmortem (and the baseline, by default up to 1M requests); a JSON-ready dict.

    With ``db``, the incident is written there and kept, and a file already there is reused (generating 10M
    requests takes minutes; the peak RSS is then the postmortem's alone, not the generator's)."""
    say = progress or (lambda message: None)
    with_baseline = requests <= BASELINE_AT_MOST if with_baseline is None else with_baseline
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        path = Path(folder) / "bench.duckdb" if db is None else Path(db)
        reused = path.exists()
        if reused:
            _check_reusable(path)  # a wrong --db fails before any progress line, not after "postmortem (shipped)"
        generate_s = None if reused else _generate(path, requests, say)
        say("postmortem (shipped)")
        ours, ours_cpu, result = _timed(path)
        sample = result.get("subsample")
        report = {"benchmark": "postmortem", "requests": result["n_baseline"] + result["n_incident"],
                  "generate_s": None if generate_s is None else round(generate_s, 2),
                  "db": None if db is None else {"path": str(path), "reused": reused},
                  "seconds": round(ours, 2), "cpu_seconds": round(ours_cpu, 2), "top_factor": _top(result),
                  "expected": "cpu_contention", "found": _top(result) == "cpu_contention",
                  "subsampled": sample is not None,
                  "rows_used": ({w: sample[w]["rows_used"] for w in ("baseline", "incident")} if sample else None),
                  "cap": subsample.CAP, "mechanism_rows_per_window": mechanisms.FIT_ROWS_PER_WINDOW,
                  "analysis_rows_per_window": pm.ANALYSIS_ROWS_PER_WINDOW}
        if with_baseline:
            say("postmortem without subsampling (baseline)")
            saved = subsample.CAP, pm.ANALYSIS_ROWS_PER_WINDOW, mechanisms.FIT_ROWS_PER_WINDOW
            subsample.CAP, pm.ANALYSIS_ROWS_PER_WINDOW, mechanisms.FIT_ROWS_PER_WINDOW = 0, 10**12, 10**12
            try:
                base, base_cpu, base_result = _timed(path)
            finally:
                subsample.CAP, pm.ANALYSIS_ROWS_PER_WINDOW, mechanisms.FIT_ROWS_PER_WINDOW = saved
            report["baseline"] = {"name": "same pipeline without subsampling", "seconds": round(base, 2),
                                  "cpu_seconds": round(base_cpu, 2), "top_factor": _top(base_result)}
            report["speedup_vs_baseline"] = round(base / ours, 2)
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    report["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30, 2)
    report["machine"] = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                         "load_average_1m": round(os.getloadavg()[0], 2)}
    return report

"""Postmortem speed at scale: ``python -m causalsre.causal.benchmark [--requests N] [--json]``.

Writes a synthetic two-phase run of about N requests (known cause: cpu_contention), runs ``postmortem`` as
shipped, then the same pipeline with subsampling switched off (the named baseline: every request used for
change tests and mechanism fitting), and prints both times, their ratio and whether each found the cause.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from causalsre.causal import load_graph
from causalsre.causal import mechanisms, postmortem as pm
from causalsre.causal.synthetic import SyntheticSpec, write_synthetic
from causalsre.telemetry import connect_readonly
from causalsre.windows import parse_window


def _timed(path: Path) -> tuple[float, str]:
    con = connect_readonly(path)
    try:
        started = time.perf_counter()
        result = pm.postmortem(con, None, parse_window("phase:baseline", con), parse_window("phase:incident", con),
                               load_graph(), seed=0)
        top = next(a["factor"] for a in result["attributions"] if a["factor"] != pm.OTHER)
        return time.perf_counter() - started, top
    finally:
        con.close()


def run(requests: int, with_baseline: bool = True) -> dict:
    phase_s = 120.0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        write_synthetic(path, SyntheticSpec(fault="cpu_contention", phase_s=phase_s,
                                            arrival_rate=requests / (2 * phase_s) * 1.05))
        ours, ours_top = _timed(path)
        report = {"benchmark": "postmortem", "requests": requests, "seconds": round(ours, 2),
                  "top_factor": ours_top, "expected": "cpu_contention"}
        if with_baseline:
            saved = pm.ANALYSIS_ROWS_PER_WINDOW, mechanisms.FIT_ROWS_PER_WINDOW
            pm.ANALYSIS_ROWS_PER_WINDOW = mechanisms.FIT_ROWS_PER_WINDOW = 10**9
            try:
                base, base_top = _timed(path)
            finally:
                pm.ANALYSIS_ROWS_PER_WINDOW, mechanisms.FIT_ROWS_PER_WINDOW = saved
            report["baseline"] = {"name": "same pipeline without subsampling", "seconds": round(base, 2),
                                  "top_factor": base_top}
            report["speedup_vs_baseline"] = round(base / ours, 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run(args.requests, with_baseline=not args.no_baseline)
    print(json.dumps(report, indent=None if args.json else 2))


if __name__ == "__main__":
    main()

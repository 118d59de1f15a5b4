"""Telemetry overhead: the same saturated run with the DuckDB writer and with a NullObserver.

``python -m harness.bench_overhead [--seconds 6] [--repeats 3] [--preset tiny]`` prints JSON: engine throughput
(tokens/s), mean step time and process CPU time per token (all threads, the flush thread included; the
figure least disturbed by other processes on a shared machine) with and without writing, their ratios (baseline: NullObserver, measured in
the same process, runs interleaved A/B to spread machine noise), and the cost of one observer callback.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from harness.config import parse_run_config


def _config(preset: str, seconds: float):
    return parse_run_config({
        "name": "overhead", "duration_s": seconds, "drain_timeout_s": 0.0,
        "engine": {"model": preset, "num_threads": 1, "max_num_seqs": 16, "max_num_batched_tokens": 256,
                   "max_queue_len": 64},
        "workload": {"arrival": "closed", "concurrency": 16, "prompt": {"dist": "fixed", "value": 64},
                     "output": {"dist": "fixed", "value": 64}}})


def _one_run(cfg, with_writer: bool, folder: Path, index: int) -> dict:
    from causalsre.telemetry import connect_writable
    from harness.engine import Engine, NullObserver
    from harness.runner import _ClosedLoop, drive, engine_config
    from harness.stats import RunStats, TeeObserver
    from harness.writer import TelemetryWriter

    closed = _ClosedLoop(cfg, 0, 0)
    stats = RunStats({}, on_done=closed.on_done)
    con = writer = None
    if with_writer:
        con = connect_writable(folder / f"run{index}.duckdb")
        writer = TelemetryWriter(con, f"overhead-{index}")
    engine = Engine(engine_config(cfg), observer=TeeObserver(writer or NullObserver(), stats))
    if writer is not None:
        writer.start({"kind": "harness", "name": "overhead", "started_at": "2026-01-01", "config_json": {}})
    started, cpu_started = time.perf_counter(), time.process_time()
    outcome = drive(cfg, engine, seed=0, rate=None, writer=writer, stats=stats, closed=closed, schedule=[])
    if writer is not None:
        writer.close("complete")
        con.close()
    wall = time.perf_counter() - started  # includes the final flush
    cpu = time.process_time() - cpu_started  # all threads of this process: robust to other processes' load
    return {"tokens_per_s": stats.num_tokens / wall, "cpu_ms_per_token": cpu * 1e3 / max(stats.num_tokens, 1), "mean_step_ms": stats.step_time_ns / max(stats.num_steps, 1) / 1e6,
            "tokens": stats.num_tokens, "aborted": outcome.aborted}


def _callback_ns(calls: int = 200_000) -> dict:
    from harness.engine import NullObserver
    from harness.writer import TelemetryWriter

    results = {}
    for name, observer in (("null", NullObserver()), ("writer", TelemetryWriter(None, "x"))):
        started = time.perf_counter_ns()
        for i in range(calls):
            observer.on_token(i, 0, i, i)
        results[name] = (time.perf_counter_ns() - started) / calls
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args(argv)
    cfg = _config(args.preset, args.seconds)
    runs: dict[str, list[dict]] = {"null_observer": [], "duckdb_writer": []}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            runs["null_observer"].append(_one_run(cfg, False, Path(folder), repeat))
            runs["duckdb_writer"].append(_one_run(cfg, True, Path(folder), repeat))
    metrics = ("tokens_per_s", "mean_step_ms", "cpu_ms_per_token")
    med = {k: {m: statistics.median(r[m] for r in v) for m in metrics} for k, v in runs.items()}
    callback = _callback_ns()
    report = {
        "benchmark": "harness_writer_overhead", "preset": args.preset, "seconds_per_run": args.seconds,
        "repeats": args.repeats, "baseline": "null_observer", "median": med,
        "throughput_ratio_writer_vs_null": med["duckdb_writer"]["tokens_per_s"] / med["null_observer"]["tokens_per_s"],
        "step_time_ratio_writer_vs_null": med["duckdb_writer"]["mean_step_ms"] / med["null_observer"]["mean_step_ms"],
        "cpu_per_token_ratio_writer_vs_null": (med["duckdb_writer"]["cpu_ms_per_token"]
                                               / med["null_observer"]["cpu_ms_per_token"]),
        "on_token_ns": callback, "runs": runs,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

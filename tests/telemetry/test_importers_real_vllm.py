"""Files from a real vLLM 0.32 (tests/fixtures/vllm/, recorded by the peer-vLLM work): bench JSON and /metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from causalsre.telemetry.importers.mapping import metric_mediators
from causalsre.windows import parse_window

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "vllm"
BENCH = FOLDER / "bench_serve_detailed.json"
SCRAPE = FOLDER / "metrics_under_load.txt"
pytestmark = pytest.mark.skipif(not (BENCH.exists() and SCRAPE.exists()), reason="real vLLM fixtures absent")


def _import_bench(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "vllm-bench", str(BENCH), "--db", str(db), "--json"]) == 0
    return db, json.loads(capsys.readouterr().out)["runs"][0]["run_id"]


def test_real_bench_latencies_match_the_file(tmp_path, capsys):
    doc = json.loads(BENCH.read_text())
    db, _ = _import_bench(tmp_path, capsys)
    con = connect_readonly(db)
    rows = con.execute("SELECT epoch_us(arrival_ts) / 1e6, ttft_s, e2e_s, prompt_tokens, output_tokens, status "
                       "FROM request_metrics ORDER BY request_id").fetchall()
    arrivals = con.execute("SELECT json_extract_string(config_json, '$.arrivals') FROM runs").fetchone()[0]
    con.close()
    assert arrivals == "start_times" and len(rows) == len(doc["ttfts"])
    start, queue = np.array(doc["start_times"]), np.array(doc["queue_times"])
    arrival = start - queue
    measured = np.array([r[0] for r in rows])
    # Gaps between arrivals are the file's own (perf_counter differences).
    assert np.diff(measured) == pytest.approx(np.diff(arrival), abs=1e-5)
    assert [r[1] for r in rows] == pytest.approx(list(queue + np.array(doc["ttfts"])), abs=1e-6)
    assert [r[2] for r in rows] == pytest.approx(list(queue + np.array(doc["latencies"])), abs=1e-6)
    assert [r[3] for r in rows] == doc["input_lens"] and [r[4] for r in rows] == doc["output_lens"]
    assert {r[5] for r in rows} == {"ok" if not e else "error" for e in doc["errors"]}


def _series_value(name: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{[^}}]*\}} (\S+)$", SCRAPE.read_text(), re.MULTILINE)
    return float(match.group(1))


def test_real_scrape_joins_onto_the_bench_run(tmp_path, capsys):
    db, run_id = _import_bench(tmp_path, capsys)
    con = connect_readonly(db)
    first = con.execute("SELECT min(arrival_ts), max(arrival_ts) FROM request_metrics").fetchone()
    con.close()
    at = first[0].isoformat() + "Z"  # scraped at the first arrival
    assert main(["db", "import", "prometheus", str(SCRAPE), "--at", at, "--run", run_id, "--db", str(db),
                 "--json"]) == 0
    samples = json.loads(capsys.readouterr().out)["runs"][0]["metric_samples"]
    assert samples > 100  # a real vLLM exposes hundreds of series (histogram buckets included)
    con = connect_readonly(db)
    frame = metric_mediators(con, parse_window(f"run:{run_id}", con))
    con.close()
    assert frame["queue_depth_at_arrival"].tolist() == [_series_value("vllm:num_requests_waiting")] * len(frame)
    assert frame["kv_utilization_at_arrival"].iloc[-1] == pytest.approx(_series_value("vllm:kv_cache_usage_perc"))
    assert frame["mean_batch_size"].iloc[-1] == pytest.approx(_series_value("vllm:num_requests_running"))

"""`vllm bench serve` load modes the real recordings lack: a closed loop (`--request-rate inf --max-concurrency
N`), a `--ramp-up-strategy` run, and the latest layout saved without `--save-detailed` (which keeps
`latencies` and `queue_times`). Fixtures: tests/fixtures/vllm_versions/bench/serve_*.json, written by
make_bench_modes.py in the layout of vllm/benchmarks/serve.py (vllm-project/vllm@009e6d4) from a seeded
simulation with known answers:

* closed loop, 4 client slots: the baseline server has 4 seats (nothing waits server-side: TTFT ~0.2 s, no
  request bad), the incident's was restarted with --max-num-seqs 1 (`--metadata`): TTFT ~3.5 s, 79 of 80 bad;
* ramp-up: a constant 2 requests/s baseline, then a linear ramp 2 -> 6 requests/s on the same 4-seat server
  (capacity ~3.5/s): 74 of 120 bad, the cause the arrival rate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from causalsre.causal.changes import describe_change
from causalsre.cli.main import main
from causalsre.evaluation.score import names_a_cause
from tests.conftest import query_rows as _query

BENCH = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_versions" / "bench"
SLO = str(Path(__file__).resolve().parents[2] / "models" / "slos" / "llm-serving.yaml")


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _import(db: Path, files: list[Path], capsys) -> list[dict]:
    code, out, err = _cli(["db", "import", "vllm-bench", *map(str, files), "--db", str(db), "--json"], capsys)
    assert code == 0, err
    return json.loads(out)["runs"]


def _bad(db: Path, run: str, capsys) -> tuple[int, int]:
    code, out, err = _cli(["slo", "report", "--db", str(db), "--slo", SLO, "--run", run, "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)[0]
    return report["events"], report["bad_events"]


def _postmortem(db: Path, base: str, incident: str, capsys) -> dict:
    code, out, err = _cli(["postmortem", "--db", str(db), "--slo", SLO, "--baseline", f"run:{base}",
                           "--incident", f"run:{incident}", "--seed", "0", "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_a_closed_loop_measures_from_sending_and_names_the_server_setting(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    runs = _import(db, [BENCH / "serve_closed_loop_baseline.json", BENCH / "serve_closed_loop_incident.json"], capsys)
    base, incident = (r["run_id"] for r in runs)
    assert all(any("closed-loop benchmark" in n and "--max-concurrency 4" in n for n in r["notes"]) for r in runs)
    # Measured from the instant the client queued all 80 at once, 76 of the healthy baseline's would be "bad".
    assert _bad(db, base, capsys) == (80, 0) and _bad(db, incident, capsys) == (80, 79)
    config, burstiness = _query(db, "SELECT config_json, burstiness FROM runs WHERE run_id = ?", [base])[0]
    assert json.loads(config)["closed_loop"] == {"max_concurrency": 4} and burstiness is None
    waits = [json.loads(a)["client_queue_s"] for (a,) in _query(
        db, "SELECT attributes FROM requests WHERE run_id = ? ORDER BY request_id", [base])]
    doc = json.loads((BENCH / "serve_closed_loop_baseline.json").read_text())
    assert np.allclose(sorted(waits), sorted(doc["queue_times"])) and max(waits) > 10  # kept, not lost
    result = _postmortem(db, base, incident, capsys)
    assert names_a_cause(result) == "max_num_seqs", [(a["factor"], a["contribution"]) for a in result["attributions"]]
    (rate,) = [c for c in result["changes"] if c["name"] == "arrival_rate"]
    assert rate["closed_loop"] and rate["incident"] < rate["baseline"] / 2  # a slower server sent fewer
    assert "closed-loop benchmark: the rate follows the server's speed" in describe_change(rate)


def test_an_open_loop_with_a_concurrency_limit_still_counts_the_clients_wait(tmp_path, capsys):
    # The same requests with a finite --request-rate: arrivals are real, the wait for a slot is part of
    # what a user saw (docs/importers/vllm-bench.md), so the rule follows the mode, not the file.
    doc = json.loads((BENCH / "serve_closed_loop_baseline.json").read_text())
    doc["request_rate"] = 1000.0
    path = tmp_path / "open.json"
    path.write_text(json.dumps(doc))
    db = tmp_path / "t.duckdb"
    (run,) = _import(db, [path], capsys)
    assert not any("closed-loop" in n for n in run.get("notes", []))
    queued = np.array(doc["ttfts"]) + np.array(doc["queue_times"])
    assert _bad(db, run["run_id"], capsys) == (80, int((queued > 1.0).sum())) and (queued > 1.0).sum() > 70


def test_an_older_closed_loop_without_queue_times_reads_the_same(tmp_path, capsys):
    # vllm bench serve of about 0.10 wrote start_times (the send times) but no queue_times or latencies.
    db = tmp_path / "t.duckdb"
    files = []
    for case in ("baseline", "incident"):
        doc = json.loads((BENCH / f"serve_closed_loop_{case}.json").read_text())
        for key in ("queue_times", "latencies", "endpoint_type", "max_output_tokens_per_s", "rtfx"):
            doc.pop(key)
        files.append(tmp_path / f"{case}.json")
        files[-1].write_text(json.dumps(doc))
    base, incident = (r["run_id"] for r in _import(db, files, capsys))
    assert _bad(db, base, capsys) == (80, 0) and _bad(db, incident, capsys) == (80, 79)


def test_a_ramp_up_records_its_mean_offered_rate_and_names_the_arrival_rate(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    base, incident = (r["run_id"] for r in _import(
        db, [BENCH / "serve_constant_rate_baseline.json", BENCH / "serve_ramp_up_incident.json"], capsys))
    assert _bad(db, base, capsys) == (120, 0) and _bad(db, incident, capsys) == (120, 74)
    rates = dict(_query(db, "SELECT run_id, arrival_rate FROM runs"))
    # vLLM's linear ramp gives request i the rate 2 + 4 i / 119; the run offers 120 requests in sum(1 / rate).
    expected = 120 / np.sum(1 / (2 + 4 * np.arange(120) / 119))
    assert rates[base] == 2.0 and rates[incident] == pytest.approx(expected) and 3.5 < expected < 3.8
    config = json.loads(_query(db, "SELECT config_json FROM runs WHERE run_id = ?", [incident])[0][0])
    assert (config["ramp_up_strategy"], config["ramp_up_start_rps"], config["ramp_up_end_rps"]) == ("linear", 2, 6)
    result = _postmortem(db, base, incident, capsys)
    offered = {c["name"]: (c["baseline"], c["incident"]) for c in result["changes"] if c["kind"] == "setting"}
    assert offered["offered_rate"][0] == 2.0 and offered["offered_rate"][1] == pytest.approx(expected, rel=1e-3)
    assert names_a_cause(result) == "arrival_rate"
    assert not any(c.get("closed_loop") for c in result["changes"])  # a ramp paces its arrivals


def test_the_latest_summary_only_layout_is_refused_naming_what_it_lacks(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    doc = json.loads((BENCH / "serve_summary_only_latest.json").read_text())
    assert isinstance(doc["latencies"], list) and "ttfts" not in doc  # what serve.py keeps without --save-detailed
    code, _, err = _cli(["db", "import", "vllm-bench", str(BENCH / "serve_summary_only_latest.json"),
                         "--db", str(db)], capsys)
    assert code == 2 and err.count("\n") == 1 and not db.exists()
    assert "summary-only result" in err and "no first-token times" in err and "--save-detailed" in err
    assert "120 completed" in err and "median TTFT" in err


def test_arrivals_paced_by_a_trace_are_no_closed_loop(tmp_path, capsys):
    # `--dataset-name timed_trace` paces requests by the trace's timestamps with request_rate "inf" (its
    # default) and writes nothing else that says so: its arrivals spread over the run, a closed loop's do not.
    doc = json.loads((BENCH / "serve_constant_rate_baseline.json").read_text())
    doc.update(request_rate="inf", max_concurrency=1)
    start = np.array(doc["start_times"]) - np.array(doc["queue_times"])
    served = np.array(doc["latencies"])
    send = start.copy()
    for i in range(1, len(send)):  # one client slot: a request is sent when the one before it has finished
        send[i] = max(start[i], send[i - 1] + served[i - 1])
    doc.update(start_times=[float(s) for s in send], queue_times=[float(q) for q in send - start])
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(doc))
    db = tmp_path / "t.duckdb"
    (run,) = _import(db, [path], capsys)
    assert not any("closed-loop" in n for n in run.get("notes", []))
    queued = np.array(doc["ttfts"]) + np.array(doc["queue_times"])
    assert _bad(db, run["run_id"], capsys) == (120, int((queued > 1.0).sum())) and (queued > 1.0).sum() > 10


def test_an_old_result_without_send_times_says_its_arrivals_are_spread_evenly(tmp_path, capsys):
    # benchmarks/benchmark_serving.py at vllm@0049e29 wrote no start_times (tests/fixtures/vllm_versions/README.md).
    db = tmp_path / "t.duckdb"
    (run,) = _import(db, [BENCH / "benchmark_serving_0049e29_baseline.json"], capsys)
    (note,) = [n for n in run["notes"] if "send times" in n]
    assert "spread evenly" in note and "--save-detailed" in note
    (current,) = _import(db, [BENCH / "serve_constant_rate_baseline.json"], capsys)
    assert not any("send times" in n for n in current.get("notes", []))

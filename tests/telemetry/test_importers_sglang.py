"""`db import sglang-bench`: `python -m sglang.bench_serving --output-file X.jsonl --output-details` results.

Fixtures tests/fixtures/vllm_versions/sglang/*.jsonl are built, not recorded (sglang cannot run here): written
by make_sglang_bench.py in the layout of sgl-project/sglang's python/sglang/bench_serving.py from the seeded
queue simulation of make_bench_modes.py, so every answer is known:

* bench_serving_max_running.jsonl, two lines (the later layout, with server_info): 100 requests at 2/s on a
  4-seat server (one failed with "Bad Request"), then the server restarted with max_running_requests 1;
* bench_serving_closed_loop.jsonl, two lines (the older layout): --request-rate inf, 4 then 16 clients on a
  4-seat server;
* bench_serving_summary_only.jsonl: saved without --output-details.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from causalsre.cli.main import main
from causalsre.evaluation.score import names_a_cause
from tests.conftest import query_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_versions"
SGLANG = FIXTURES / "sglang"
SLO = str(Path(__file__).resolve().parents[2] / "models" / "slos" / "llm-serving.yaml")


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _import(db: Path, path: Path, capsys, *extra: str) -> list[dict]:
    code, out, err = _cli(["db", "import", "sglang-bench", str(path), "--db", str(db), "--json", *extra], capsys)
    assert code == 0, err
    return json.loads(out)["runs"]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _expected_bad(doc: dict) -> int:
    """The SLO's verdicts (first token within 1 s, at most 250 ms a later token) from the file's own lists."""
    bad = 0
    for ttft, itls, out, error in zip(doc["ttfts"], doc["itls"], doc["output_lens"], doc["errors"]):
        tpot = sum(itls) / (out - 1) if out > 1 else 0.0
        bad += bool(error) or ttft > 1.0 or tpot > 0.25
    return bad


def _postmortem(db: Path, base: str, incident: str, capsys) -> dict:
    code, out, err = _cli(["postmortem", "--db", str(db), "--slo", SLO, "--baseline", f"run:{base}",
                           "--incident", f"run:{incident}", "--seed", "0", "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_each_result_line_is_a_run_with_its_requests_and_the_slo_verdicts_of_the_file(tmp_path, capsys):
    db, path = tmp_path / "t.duckdb", SGLANG / "bench_serving_max_running.jsonl"
    runs = _import(db, path, capsys, "--started-at", "2026-03-02T09:00:00Z")
    docs = _lines(path)
    assert [r["requests"] for r in runs] == [100, 100]
    assert all(any("no send time" in n for n in r["notes"]) for r in runs)
    assert not any("no wall-clock" in n for r in runs for n in r["notes"])  # --started-at given: not guessed
    for run, doc in zip(runs, docs):
        code, out, err = _cli(["slo", "report", "--db", str(db), "--slo", SLO, "--run", run["run_id"], "--json"],
                              capsys)
        assert code == 0, err
        report = json.loads(out)[0]
        assert (report["events"], report["bad_events"]) == (100, _expected_bad(doc))
    first = runs[0]["run_id"]
    rows = query_rows(db, "SELECT status, finish_reason, ttft_s FROM request_metrics WHERE run_id = ? AND "
                          "request_id = 17", [first])
    assert rows == [("error", "Bad Request", None)]  # ttft 0.0 in the file: no first token came
    ttft = query_rows(db, "SELECT ttft_s FROM request_metrics WHERE run_id = ? AND request_id = 3", [first])[0][0]
    assert ttft == pytest.approx(docs[0]["ttfts"][3], abs=1e-6)
    # arrivals spread evenly over n / rate (the paced sends), the first at --started-at
    started, rate = query_rows(db, "SELECT epoch(started_at), arrival_rate FROM runs WHERE run_id = ?", [first])[0]
    assert started == pytest.approx(1772442000.0) and rate == 2.0
    arrivals = [r[0] for r in query_rows(db, "SELECT epoch(arrival_ts) FROM request_metrics WHERE run_id = ? "
                                             "ORDER BY request_id", [first])]
    assert np.allclose(np.diff(arrivals), 0.5, atol=1e-5)
    settings = query_rows(db, "SELECT run_id, setting, value FROM run_settings ORDER BY run_id, setting")
    assert [(s, v) for _, s, v in settings] == [("block_size", 1.0), ("max_num_seqs", 4.0),
                                               ("block_size", 1.0), ("max_num_seqs", 1.0)]
    (config,) = query_rows(db, "SELECT config_json FROM runs WHERE run_id = ?", [first])[0]
    config = json.loads(config)
    assert config["arrivals"] == "approximate" and config["server_config"]["schedule_policy"] == ["fcfs"]


def test_the_server_setting_in_server_info_is_named(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    base, incident = (r["run_id"] for r in _import(db, SGLANG / "bench_serving_max_running.jsonl", capsys))
    result = _postmortem(db, base, incident, capsys)
    assert names_a_cause(result) == "max_num_seqs", [(a["factor"], a["contribution"]) for a in result["attributions"]]
    (gaps,) = [c for c in result["changes"] if c["name"] == "burstiness"]
    assert gaps["not_measured"] and not gaps["significant"]  # evenly spread arrivals: no gaps to test


def test_a_closed_loop_names_the_clients_and_without_started_at_says_the_clock_is_guessed(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    runs = _import(db, SGLANG / "bench_serving_closed_loop.jsonl", capsys)
    assert all(any("closed-loop benchmark" in n and "sglang's own TTFT" in n for n in r["notes"]) for r in runs)
    assert all(any("modification time" in n for n in r["notes"]) for r in runs)
    docs = _lines(SGLANG / "bench_serving_closed_loop.jsonl")
    assert docs[0]["request_rate"] == float("inf")  # json.dumps wrote Infinity
    result = _postmortem(db, runs[0]["run_id"], runs[1]["run_id"], capsys)
    assert result["load_mode"] == "closed_loop"
    assert result["burn"]["incident"]["bad_events"] == _expected_bad(docs[1]) > 60
    assert names_a_cause(result) == "max_concurrency"
    assert "arrival_rate" not in [a["factor"] for a in result["attributions"]]
    # one after the other: the first run ends where the second begins
    (first_end, second_start) = (query_rows(db, "SELECT epoch(started_at) + ? FROM runs WHERE run_id = ?",
                                            [docs[0]["duration"], runs[0]["run_id"]])[0][0],
                                 query_rows(db, "SELECT epoch(started_at) FROM runs WHERE run_id = ?",
                                            [runs[1]["run_id"]])[0][0])
    assert first_end == pytest.approx(second_start, abs=1e-3)


@pytest.mark.parametrize("case, edit, expected", [
    ("summary", None, "summary-only result (saved without --output-details"),
    ("missing", lambda d: d.pop("itls"), "lacks key(s) itls"),
    ("lengths", lambda d: d["ttfts"].pop(), "must be a list of"),
    ("negative", lambda d: d["ttfts"].__setitem__(0, -0.5), "ttfts[0]: -0.5 is below 0"),
    ("tokens", lambda d: d["output_lens"].__setitem__(1, 2.5), "is not a count"),
    ("failed", lambda d: d.update(errors=["Traceback ...\naiohttp.ClientConnectorError: refused"] * len(d["errors"])),
     "all 100 requests failed (the first: 'aiohttp.ClientConnectorError: refused')"),
    ("vllm", None, "is a vLLM benchmark result (it has start_times), not sglang's"),
])
def test_damaged_or_foreign_files_are_refused_in_one_line_and_nothing_is_written(tmp_path, capsys, case, edit,
                                                                                expected):
    if case == "summary":
        path = SGLANG / "bench_serving_summary_only.jsonl"
    elif case == "vllm":
        path = FIXTURES / "bench" / "serve_closed_loop_baseline.json"
    else:
        doc = _lines(SGLANG / "bench_serving_max_running.jsonl")[0]
        edit(doc)
        path = tmp_path / f"{case}.jsonl"
        path.write_text(json.dumps(doc) + "\n")
    db = tmp_path / "t.duckdb"
    code, _, err = _cli(["db", "import", "sglang-bench", str(path), "--db", str(db)], capsys)
    assert code == 2 and err.count("\n") == 1 and expected in err and not db.exists(), err


def test_an_outage_imports_with_keep_failed_and_a_bad_start_time_is_refused(tmp_path, capsys):
    doc = _lines(SGLANG / "bench_serving_max_running.jsonl")[0]
    doc.update(errors=["Service Unavailable"] * 100, ttfts=[0.0] * 100, itls=[[]] * 100, output_lens=[0] * 100)
    path = tmp_path / "outage.jsonl"
    path.write_text(json.dumps(doc) + "\n")
    db = tmp_path / "t.duckdb"
    (run,) = _import(db, path, capsys, "--keep-failed")
    assert query_rows(db, "SELECT count(*) FROM requests WHERE status = 'error'")[0][0] == 100
    code, _, err = _cli(["db", "import", "sglang-bench", str(path), "--db", str(tmp_path / "u.duckdb"),
                         "--started-at", "yesterday"], capsys)
    assert code == 2 and "--started-at: cannot parse 'yesterday'" in err


def test_vllm_bench_points_an_sglang_file_at_its_importer(tmp_path, capsys):
    code, _, err = _cli(["db", "import", "vllm-bench", str(SGLANG / "bench_serving_closed_loop.jsonl"),
                         "--db", str(tmp_path / "t.duckdb")], capsys)
    assert code == 2 and "an sglang.bench_serving result" in err and "db import sglang-bench" in err

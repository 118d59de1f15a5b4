"""`db import guidellm`: a report in guidellm's v2 schema; latencies measured from the targeted start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "guidellm"
REPORT = FOLDER / "benchmarks_small.json"


def test_report_gives_hand_computed_requests(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "guidellm", str(REPORT), "--db", str(db), "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["run_id"].endswith("-1") and run["requests"] == 5
    con = connect_readonly(db)
    rows = con.execute("SELECT arrival_ts, ttft_s, tpot_s, e2e_s, status, finish_reason, prompt_tokens, output_tokens "
                       "FROM request_metrics ORDER BY arrival_ns").fetchall()
    kind, rate, sampled = con.execute("SELECT kind, arrival_rate, json_extract(config_json, '$.sampled') "
                                      "FROM runs").fetchone()
    con.close()
    assert (kind, rate, sampled) == ("import-guidellm", 2.0, "false")
    first, late, single, cancelled, errored = rows
    assert str(first[0]) == "2026-01-01 00:00:00"
    assert first[1:4] == pytest.approx((0.3, (1.2 - 0.3) / 9, 1.25)) and first[6:] == (12, 10)
    # Meant to go at 0.5 s, sent at 0.7 s: the 0.2 s the load generator fell behind counts.
    assert str(late[0]) == "2026-01-01 00:00:00.500000" and late[1] == pytest.approx(0.5)
    assert single[2] is None  # one output token: no TPOT
    assert cancelled[4] == "aborted" and cancelled[3] == pytest.approx(0.5)  # ended at its resolve_end
    assert errored[4] == "error" and errored[5] == "HTTP 429 Too Many Requests" and errored[1] is None


def _mutated(tmp_path, change):
    doc = json.loads(REPORT.read_text())
    change(doc["benchmarks"][0]["requests"]["successful"][0])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("change,expected", [
    (lambda r: r["info"]["timings"].__setitem__("first_token_iteration", 1767225599.0), "precedes its arrival"),
    (lambda r: r["info"]["timings"].__setitem__("request_start", 1767225600000.0), "between 2000 and 2200"),
    (lambda r: r.__setitem__("prompt_tokens", -1), "below 0"),
    (lambda r: r.__setitem__("output_tokens", 2.5), "not a count"),
    (lambda r: r["info"]["timings"].__setitem__("request_end", "later"), "not a number"),
])
def test_bad_requests_change_nothing(tmp_path, capsys, change, expected):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "guidellm", str(REPORT), "--db", str(db)]) == 0
    before = db.read_bytes()
    capsys.readouterr()
    assert main(["db", "import", "guidellm", str(_mutated(tmp_path, change)), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.startswith("error: ") and err.count("\n") == 1
    assert db.read_bytes() == before


@pytest.mark.parametrize("text,expected", [
    ('{"benchmarks": []}', "holds no benchmarks"),
    ('{"results": []}', "no benchmarks list"),
    ('{"benchmarks": [{"requests": {"successful": []}}]}', "holds no requests"),
])
def test_not_a_report(tmp_path, capsys, text, expected):
    bad = tmp_path / "x.json"
    bad.write_text(text)
    assert main(["db", "import", "guidellm", str(bad), "--db", str(tmp_path / "t.duckdb")]) == 2
    assert expected in capsys.readouterr().err


REAL = sorted(FOLDER.glob("real_*.json")) + sorted(FOLDER.glob("serve_*.json"))  # serve_*: from tests/serve


@pytest.mark.skipif(not REAL, reason="no report from a real guidellm run in fixtures")
def test_real_guidellm_reports(tmp_path):
    # real_guidellm-0.8.1_causalsre-serve.json: `guidellm run --profile kind=constant,rate=2 --constraint
    # kind=max_requests,count=8 --data kind=synthetic_text,...` against `causalsre serve` (tiny preset);
    # serve_constant5.json: the serve tests' own guidellm run (docs/serve.md says how it was made).
    assert len(REAL) >= 1
    for report in REAL:
        db = tmp_path / f"{report.stem}.duckdb"
        assert main(["db", "import", "guidellm", str(report), "--db", str(db)]) == 0
        doc = json.loads(report.read_text())
        requests = [(r, status) for b in doc["benchmarks"] for group, status in
                    (("successful", "ok"), ("incomplete", "aborted"), ("errored", "error"))
                    for r in b["requests"].get(group) or []]
        requests.sort(key=lambda pair: pair[0]["info"]["timings"]["targeted_start"])
        con = connect_readonly(db)
        rows = con.execute("SELECT ttft_s, e2e_s, prompt_tokens, output_tokens, status FROM request_metrics "
                           "ORDER BY arrival_ns").fetchall()
        rates = [r[0] for r in con.execute("SELECT arrival_rate FROM runs ORDER BY run_id").fetchall()]
        con.close()
        assert len(rows) == len(requests)
        assert rates == [b["config"]["strategy"].get("rate") for b in doc["benchmarks"]]
        for row, (request, status) in zip(rows, requests):
            timings = request["info"]["timings"]
            assert row[4] == status
            if request.get("time_to_first_token_ms") is None:
                assert row[0] is None
                continue
            late = timings["request_start"] - timings["targeted_start"]  # guidellm measures from request_start
            assert row[0] == pytest.approx(late + request["time_to_first_token_ms"] / 1000, abs=1e-5)
            if status == "ok":
                assert row[1] == pytest.approx(timings["request_end"] - timings["targeted_start"], abs=1e-5)
                assert row[2:4] == (request["prompt_tokens"], request["output_tokens"])

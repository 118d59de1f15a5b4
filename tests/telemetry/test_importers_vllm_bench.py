"""`db import vllm-bench`: real arrival and queue times from a --save-detailed result; bad files change nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vllm" / "bench_detailed_small.json"


def _rows(db):
    con = connect_readonly(db)
    rows = con.execute("SELECT request_id, arrival_ts, ttft_s, tpot_s, e2e_s, status, finish_reason, attributes "
                       "FROM request_metrics ORDER BY request_id").fetchall()
    run = con.execute("SELECT kind, arrival_rate, json_extract_string(config_json, '$.arrivals') FROM runs").fetchone()
    con.close()
    return rows, run


def test_detailed_result_gives_hand_computed_latencies(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "vllm-bench", str(FIXTURE), "--db", str(db), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["runs"][0]["run_id"].startswith("import-vllm-bench-") and report["runs"][0]["requests"] == 5
    rows, run = _rows(db)
    assert run == ("import-vllm-bench", 0.5, "start_times")
    # date 00:00:10 minus duration 10 s is the first arrival; arrivals are start - queue.
    assert [str(r[1]) for r in rows] == ["2026-01-01 00:00:00", "2026-01-01 00:00:02", "2026-01-01 00:00:03.500000",
                                         "2026-01-01 00:00:06", "2026-01-01 00:00:08"]
    first, _, queued, failed, last = rows
    assert first[2] == pytest.approx(0.1) and first[3] == pytest.approx(0.05) and first[4] == pytest.approx(0.2)
    # 0.5 s waiting for a --max-concurrency slot counts: TTFT and E2E are measured from the arrival.
    assert queued[2] == pytest.approx(0.8) and queued[4] == pytest.approx(0.8)
    assert json.loads(queued[7]) == {"client_queue_s": 0.5}
    assert failed[5] == "error" and failed[6] == "Server disconnected" and failed[2] is None
    assert last[3] == pytest.approx(0.02) and last[4] == pytest.approx(0.21)


def test_old_result_without_times_is_marked_approximate(tmp_path):
    doc = json.loads(FIXTURE.read_text())
    for key in ("start_times", "queue_times", "latencies"):
        del doc[key]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "vllm-bench", str(path), "--db", str(db)]) == 0
    rows, run = _rows(db)
    assert run[2] == "approximate"
    assert [str(r[1]) for r in rows][:2] == ["2026-01-01 00:00:00", "2026-01-01 00:00:02"]  # 10 s / 5 requests


def _mutated(tmp_path, change) -> Path:
    doc = json.loads(FIXTURE.read_text())
    change(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("change,expected", [
    (lambda d: d["ttfts"].__setitem__(0, -0.1), "below 0"),
    (lambda d: d["ttfts"].__setitem__(0, "fast"), "not a number"),
    (lambda d: d["itls"].__setitem__(1, 0.1), "not a list"),
    (lambda d: d["output_lens"].__setitem__(0, 1.5), "not a count"),
    (lambda d: d["queue_times"].pop(), "list of 5"),
    (lambda d: d.__setitem__("date", "22500101-000000"), "between 2000 and 2200"),
    (lambda d: d.__setitem__("date", "yesterday"), "YYYYMMDD-HHMMSS"),
    (lambda d: d.pop("date"), "no date"),
    (lambda d: d["ttfts"].__setitem__(0, 1e12), "above"),
])
def test_bad_values_are_refused_and_change_nothing(tmp_path, capsys, change, expected):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "vllm-bench", str(FIXTURE), "--db", str(db)]) == 0
    before = db.read_bytes()
    capsys.readouterr()
    assert main(["db", "import", "vllm-bench", str(_mutated(tmp_path, change)), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.startswith("error: ") and err.count("\n") == 1
    assert db.read_bytes() == before


def test_nan_is_refused_where_a_value_counts_and_read_in_summary_fields(tmp_path, capsys):
    # vLLM's json.dump writes NaN in summary fields (np.mean of an empty list); a per-request NaN is refused.
    bad = tmp_path / "nan.json"
    bad.write_text(FIXTURE.read_text().replace('"ttfts": [0.1,', '"ttfts": [NaN,'))
    assert main(["db", "import", "vllm-bench", str(bad), "--db", str(tmp_path / "t.duckdb")]) == 2
    assert "ttfts[0]: nan is not a finite number" in capsys.readouterr().err
    assert not (tmp_path / "t.duckdb").exists()
    summary = _mutated(tmp_path, lambda d: d.update(mean_tpot_ms=float("nan"), std_tpot_ms=float("inf")))
    assert "NaN" in summary.read_text()
    assert main(["db", "import", "vllm-bench", str(summary), "--db", str(tmp_path / "t.duckdb")]) == 0


def test_several_files_are_one_transaction(tmp_path, capsys):
    good = tmp_path / "good.json"
    shutil.copy(FIXTURE, good)
    bad = _mutated(tmp_path, lambda d: d["ttfts"].__setitem__(2, -1))
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "vllm-bench", str(good), str(bad), "--db", str(db)]) == 2
    assert not db.exists()  # the good file was not written either
    other = _mutated(tmp_path, lambda d: d.__setitem__("date", "20260102-000010"))
    assert main(["db", "import", "vllm-bench", str(good), str(other), "--db", str(db), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 2
    assert main(["db", "import", "vllm-bench", str(good), "--db", str(db)]) == 2
    assert "already imported" in capsys.readouterr().err


def test_utc_offset_moves_the_local_date(tmp_path, capsys):
    # vLLM writes `date` on the client's local clock: 00:00:10 at +02:00 is 22:00:10 UTC the day before.
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "vllm-bench", str(FIXTURE), "--utc-offset", "+02:00", "--db", str(db)]) == 0
    rows, _ = _rows(db)
    assert str(rows[0][1]) == "2025-12-31 22:00:00"
    assert main(["db", "import", "vllm-bench", str(FIXTURE), "--utc-offset", "+25:00", "--db",
                 str(tmp_path / "u.duckdb")]) == 2
    assert "not an offset" in capsys.readouterr().err

"""Importers: fixtures in both formats give hand-computed derived views; bad input changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly


def _metrics(db):
    con = connect_readonly(db)
    rows = con.execute("SELECT request_id, ttft_s, tpot_s, e2e_s, status, tenant, attributes, arrival_ts "
                       "FROM request_metrics ORDER BY request_id").fetchall()
    con.close()
    return rows


def test_import_csv_gives_hand_computed_metrics(tmp_path, fixtures_dir, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "requests", str(fixtures_dir / "requests_small.csv"), "--db", str(db)]) == 0
    assert "imported 4 requests" in capsys.readouterr().out
    rows = _metrics(db)
    assert len(rows) == 4
    # Row 0: ttft 0.2, e2e 1.2, 11 tokens -> TPOT (1.2 - 0.2) / 10 = 0.1 (vLLM definition).
    assert rows[0][1] == pytest.approx(0.2) and rows[0][2] == pytest.approx(0.1) and rows[0][3] == pytest.approx(1.2)
    # Row 1: one output token -> TPOT is NULL.
    assert rows[1][2] is None and rows[1][3] == pytest.approx(0.5)
    # Row 2: rejected, stays in the view as a failed request.
    assert rows[2][4] == "rejected" and rows[2][1] is None
    # Row 3: explicit tpot_s 0.05 wins over (e2e - ttft) / (n - 1) = 0.1.
    assert rows[3][2] == pytest.approx(0.05)
    assert rows[3][5] == "beta" and json.loads(rows[3][6]) == {"gpu_type": "h100"}
    assert str(rows[1][7]) == "2026-01-01 00:00:01.500000"


def test_import_parquet_with_epoch_seconds(tmp_path, fixtures_dir):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "requests", str(fixtures_dir / "requests_small.parquet"), "--db", str(db)]) == 0
    rows = _metrics(db)
    assert [r[4] for r in rows] == ["ok", "ok", "timeout"]
    assert rows[0][2] == pytest.approx((0.5 - 0.1) / 4)
    assert str(rows[1][7]) == "2026-01-01 00:00:02"
    assert json.loads(rows[2][6]) == {"model": "m1"}


def test_import_vllm_bench(tmp_path, fixtures_dir):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "vllm-bench", str(fixtures_dir / "vllm_bench_small.json"), "--db", str(db)]) == 0
    rows = _metrics(db)
    assert rows[0][1] == pytest.approx(0.1) and rows[0][3] == pytest.approx(0.22)
    assert rows[0][2] == pytest.approx(0.06)  # (0.05 + 0.07) / 2
    assert rows[2][4] == "error"
    con = connect_readonly(db)
    run = con.execute("SELECT kind, arrival_rate, json_extract_string(config_json, '$.arrivals') FROM runs").fetchone()
    con.close()
    assert run == ("import-vllm-bench", 2.0, "request_submit_times")


def test_same_file_twice_is_refused_without_duplicates(tmp_path, fixtures_dir, capsys):
    db = tmp_path / "t.duckdb"
    csv = str(fixtures_dir / "requests_small.csv")
    assert main(["db", "import", "requests", csv, "--db", str(db)]) == 0
    assert main(["db", "import", "requests", csv, "--db", str(db)]) == 2
    assert "already imported" in capsys.readouterr().err
    assert len(_metrics(db)) == 4


BAD_CSVS = {
    "missing_column": ("arrival_time,ttft_s,e2e_s,prompt_tokens,status\n2026-01-01T00:00:00Z,0.1,0.2,5,ok\n",
                       "lacks required column(s) output_tokens"),
    "bad_time": ("arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\nyesterday,0.1,0.2,5,2,ok\n",
                 "cannot parse 'yesterday'"),
    "wrong_type": ("arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\n"
                   "2026-01-01T00:00:00Z,fast,0.2,5,2,ok\n", "ttft_s row 1"),
    "e2e_before_ttft": ("arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\n"
                        "2026-01-01T00:00:00Z,0.5,0.2,5,2,ok\n", "smaller than ttft_s"),
    "negative": ("arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\n"
                 "2026-01-01T00:00:00Z,0.1,0.2,-5,2,ok\n", "negative"),
    "empty": ("arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\n", "no rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_bad_imports_exit_2_and_leave_the_database_unchanged(case, tmp_path, fixtures_dir, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "requests", str(fixtures_dir / "requests_small.csv"), "--db", str(db)]) == 0
    before = db.read_bytes()
    bad = tmp_path / f"{case}.csv"
    text, expected = BAD_CSVS[case]
    bad.write_text(text)
    capsys.readouterr()
    assert main(["db", "import", "requests", str(bad), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert len(_metrics(db)) == 4
    assert db.read_bytes() == before


@pytest.mark.parametrize("content,expected", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"ttfts": [0.1]}', "lacks key(s)"),
    ('{"ttfts": [0.1], "itls": [[]], "input_lens": [1], "output_lens": [1, 2], "errors": [""]}', "list of 1"),
])
def test_bad_vllm_files(content, expected, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "vllm-bench", str(bad), "--db", str(db)]) == 2
    assert expected in capsys.readouterr().err
    assert not db.exists()  # a failed import into a new path leaves nothing behind


def test_unknown_file_and_unknown_type(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "requests", str(tmp_path / "nope.csv"), "--db", str(db)]) == 2
    assert "does not exist" in capsys.readouterr().err
    other = tmp_path / "x.xlsx"
    other.write_text("x")
    assert main(["db", "import", "requests", str(other), "--db", str(db)]) == 2
    assert "unsupported file type" in capsys.readouterr().err


def test_info_check_and_export(tmp_path, fixtures_dir, capsys):
    db = tmp_path / "t.duckdb"
    main(["db", "import", "requests", str(fixtures_dir / "requests_small.csv"), "--db", str(db)])
    main(["db", "import", "vllm-bench", str(fixtures_dir / "vllm_bench_small.json"), "--db", str(db)])
    capsys.readouterr()
    assert main(["db", "info", str(db), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["runs"] == 2 and info["requests"] == 7 and info["schema_version"] == 4
    assert main(["db", "check", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    out = tmp_path / "parquet"
    assert main(["db", "export", str(db), "--parquet", str(out)]) == 0
    assert len(list((out / "requests").glob("run_id=*"))) == 2
    con = duckdb.connect()
    count = con.execute("SELECT count(*), count(DISTINCT run_id) FROM read_parquet(?, hive_partitioning = true)",
                        [str(out / "request_metrics" / "*" / "*.parquet")]).fetchone()
    assert count == (7, 2)
    capsys.readouterr()
    assert main(["db", "export", str(db), "--parquet", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_check_finds_broken_invariants(tmp_path, fixtures_dir, capsys):
    db = tmp_path / "t.duckdb"
    main(["db", "import", "requests", str(fixtures_dir / "requests_small.csv"), "--db", str(db)])
    con = duckdb.connect(str(db))
    con.execute("UPDATE requests SET first_token_ns = -5 WHERE request_id = 0")
    con.close()
    capsys.readouterr()
    assert main(["db", "check", str(db)]) == 1
    assert "first token precedes their arrival" in capsys.readouterr().out


def test_bad_database_files(tmp_path, capsys):
    junk = tmp_path / "junk.duckdb"
    junk.write_text("this is not a database")
    assert main(["db", "info", str(junk)]) == 2
    assert "cannot open" in capsys.readouterr().err
    assert main(["db", "info", str(tmp_path)]) == 2
    plain = tmp_path / "plain.duckdb"
    duckdb.connect(str(plain)).close()
    assert main(["db", "info", str(plain)]) == 2
    assert "not a causalsre telemetry database" in capsys.readouterr().err


def test_locked_database_is_a_clear_error(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    holder = duckdb.connect(str(db))  # a writer in this process holds the file
    try:
        proc = subprocess.run([sys.executable, "-m", "causalsre", "db", "info", str(db)], capture_output=True,
                              text=True, timeout=120)
    finally:
        holder.close()
    assert proc.returncode == 2
    assert "locked" in proc.stderr and "Traceback" not in proc.stderr


def test_info_reports_a_run_left_running_as_incomplete(tmp_path, fixtures_dir, capsys):
    db = tmp_path / "t.duckdb"
    main(["db", "import", "requests", str(fixtures_dir / "requests_small.csv"), "--db", str(db)])
    con = duckdb.connect(str(db))
    con.execute("UPDATE runs SET status = 'running'")  # as a killed harness run leaves it
    con.close()
    capsys.readouterr()
    assert main(["db", "info", str(db), "--json"]) == 0
    assert [r["status"] for r in json.loads(capsys.readouterr().out)["run_list"]] == ["incomplete"]

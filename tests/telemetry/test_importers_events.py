"""`db import events`: operator events CSV -> operator_events, config rows -> run_settings; bad rows change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EVENTS = FIXTURES / "events" / "changes.csv"
BENCH = FIXTURES / "vllm" / "bench_detailed_small.json"  # first arrival 2026-01-01T00:00:00Z


def _bench_db(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "vllm-bench", str(BENCH), "--db", str(db), "--json"]) == 0
    return db, json.loads(capsys.readouterr().out)["runs"][0]["run_id"]


def test_events_attach_to_a_run_on_its_clock(tmp_path, capsys):
    db, run_id = _bench_db(tmp_path, capsys)
    assert main(["db", "import", "events", str(EVENTS), "--run", run_id, "--db", str(db), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["runs"][0]
    assert report == {"run_id": run_id, "kind": "import-events", "attached": True, "requests": 0,
                      "metric_samples": 0, "operator_events": 5, "run_settings": 2}
    con = connect_readonly(db)
    events = con.execute("SELECT ts_ns, key, value, kind FROM operator_events ORDER BY ts_ns").fetchall()
    settings = con.execute("SELECT setting, start_ns, value, value_text FROM settings_timeline "
                           "ORDER BY start_ns").fetchall()
    runs = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    con.close()
    assert events == [(4_000_000_000, "max_num_seqs", "4", "config"), (5_000_000_000, "deploy", "v2.1, canary", "deploy"),
                      (6_000_000_000, "replicas", "3", "scale"), (7_000_000_000, "policy", "priority", "config"),
                      (9_000_000_000, "note", "paged on-call", "other")]
    assert settings == [("max_num_seqs", 4_000_000_000, 4.0, None), ("policy", 7_000_000_000, None, "priority")]
    assert runs == 1
    # The same changes again collide with the recorded settings: refused, nothing added.
    before = db.read_bytes()
    assert main(["db", "import", "events", str(EVENTS), "--run", run_id, "--db", str(db)]) == 2
    assert "already has 5 of these operator events" in capsys.readouterr().err
    assert db.read_bytes() == before


def test_events_without_a_run_make_one(tmp_path):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "events", str(EVENTS), "--db", str(db)]) == 0
    con = connect_readonly(db)
    run = con.execute("SELECT kind, started_at FROM runs").fetchone()
    first = con.execute("SELECT min(ts_ns) FROM operator_events").fetchone()[0]
    con.close()
    assert run[0] == "import-events" and str(run[1]) == "2026-01-01 00:00:04" and first == 0


@pytest.mark.parametrize("text,expected", [
    ("when,key,value\n2026-01-01T00:00:00Z,a,1\n", "lacks column(s) time"),
    ("time,key,value\nyesterday,a,1\n", "cannot parse 'yesterday'"),
    ("time,key,value\n2250-01-01T00:00:00Z,a,1\n", "between 2000 and 2200"),
    ("time,key,value\n1767225601000,a,1\n", "between 2000 and 2200"),
    ("time,key,value,kind\n2026-01-01T00:00:00Z,a,1,reboot\n", "kind 'reboot'"),
    ("time,key,value,kind\n2026-01-01T00:00:00Z,max_num_seqs,-4,config\n", "non-negative"),
    ("time,key,value,kind\n2026-01-01T00:00:00Z,max_num_seqs,nan,config\n", "non-negative"),
    ("time,key,value,kind\n2026-01-01T00:00:00Z,max_num_seqs,,config\n", "needs a value"),
    ("time,key,value,kind\n2026-01-01T00:00:00Z,a,1,config\n2026-01-01T00:00:00Z,a,2,config\n", "twice"),
    ("time,key,value\n2026-01-01T00:00:00Z,,1\n", "key ''"),
    ("time,key,value\n2026-01-01T00:00:00Z,a\n", "2 fields for 3 columns"),
    ("time,key,value\n", "hold no events"),
])
def test_bad_rows_are_refused(tmp_path, capsys, text, expected):
    db, run_id = _bench_db(tmp_path, capsys)
    before = db.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    assert main(["db", "import", "events", str(bad), "--run", run_id, "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.startswith("error: ") and err.count("\n") == 1
    assert db.read_bytes() == before


def test_unknown_run_is_refused(tmp_path, capsys):
    db, _ = _bench_db(tmp_path, capsys)
    assert main(["db", "import", "events", str(EVENTS), "--run", "import-vllm-bench-nope", "--db", str(db)]) == 2
    assert "not in the database" in capsys.readouterr().err

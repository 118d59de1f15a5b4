"""bench postmortem: a synthetic incident through the schema writer, the cause found, the subsample stated."""

from __future__ import annotations

import json

import pytest

from causalsre.causal import subsample
from causalsre.cli.main import main


@pytest.mark.slow
def test_bench_postmortem_finds_the_cause_on_a_subsample(capsys, monkeypatch):
    monkeypatch.setattr(subsample, "CAP", 4000)  # ~30k requests: both windows sampled
    code = main(["bench", "postmortem", "--requests", "30000", "--no-baseline", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["found"] is True and report["top_factor"] == "cpu_contention"
    assert report["subsampled"] is True and report["cap"] == 4000
    assert max(report["rows_used"].values()) <= 4000 + 6 and report["requests"] > 28_000
    assert "baseline" not in report and report["seconds"] > 0


@pytest.mark.slow
def test_bench_postmortem_keeps_and_reuses_its_db(capsys, tmp_path):
    db = tmp_path / "incident.duckdb"
    assert main(["bench", "postmortem", "--requests", "4000", "--no-baseline", "--db", str(db), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert db.exists() and first["db"] == {"path": str(db), "reused": False} and first["generate_s"] > 0
    assert 0 < first["cpu_seconds"] and first["seconds"] > 0  # CPU beside wall: the load says little about it
    # a second run times the same incident without writing it again (its own count, not --requests)
    assert main(["bench", "postmortem", "--requests", "999999", "--no-baseline", "--db", str(db), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["db"]["reused"] is True and again["generate_s"] is None
    assert again["requests"] == first["requests"] and again["top_factor"] == first["top_factor"]

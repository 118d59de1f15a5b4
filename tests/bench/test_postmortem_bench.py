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

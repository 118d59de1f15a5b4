"""`eval whatif --json`: the report is the only thing on stdout; the replay progress goes to stderr, even where
rich would draw it (stderr a terminal) and even with --json."""

from __future__ import annotations

import json

import pytest

from causalsre.cli.main import main
from causalsre.resources import DEMO_SUITE, SLO_SPEC


@pytest.mark.slow  # a prior-only fit, then one case replayed twice (intervention and no-change control)
def test_eval_whatif_json_alone_on_stdout_progress_on_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws its bars as in a terminal
    fit_path = tmp_path / "fit.nc"
    base = ["--db", str(DEMO_SUITE), "--slo", str(SLO_SPEC)]
    assert main(["fit", *base, "--sampler", "prior", "--draws", "40", "--chains", "2", "--out", str(fit_path)]) == 0
    capsys.readouterr()
    code = main(["eval", "whatif", *base, "--fit", str(fit_path), "--limit", "1", "--latency", "none", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)  # the whole of stdout is the document
    assert len(report["cases"]) == 1 and "\x1b" not in out and "replaying" not in out
    assert "replaying interventions" in err

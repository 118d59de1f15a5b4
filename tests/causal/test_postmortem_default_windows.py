"""`causalsre postmortem` with no window flags on a just-recorded database: the baseline and incident phases of
its one run, said on stderr; refused in one line where that is ambiguous or half given."""

from __future__ import annotations

import json

import duckdb
import pytest

from causalsre.cli.main import main

SLO = ["--slo", "models/slos/llm-serving.yaml"]


@pytest.mark.slow  # two postmortems: ~35 s on the loaded 2-core machine
def test_no_window_flags_take_the_one_runs_phases(make_db, capsys):
    db = make_db(fault="cpu_contention", phase_s=20.0)
    assert main(["postmortem", "--db", str(db), *SLO, "--pairs", "300"]) == 0
    out, err = capsys.readouterr()
    assert "windows: phase:baseline@synthetic -> phase:incident@synthetic" in err
    assert out.startswith("postmortem of SLO") and "cpu_contention" in out
    # --json keeps stdout pure JSON and gets the same windows.
    assert main(["postmortem", "--db", str(db), *SLO, "--pairs", "300", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["baseline"] == "phase:baseline@synthetic" and result["attributions"][0]["factor"] == "cpu_contention"


def test_two_runs_or_half_given_windows_are_one_line_errors(make_db, capsys):
    db = make_db(fault="cpu_contention", phase_s=20.0)
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO phases SELECT 'other-run', name, start_ns, end_ns FROM phases")
    con.close()
    assert main(["postmortem", "--db", str(db), *SLO]) == 2
    err = capsys.readouterr().err
    assert "2 runs have phases named baseline and incident (other-run, synthetic)" in err and "--run" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["postmortem", "--db", str(db), *SLO, "--baseline", "phase:baseline"]) == 2
    assert "--incident is missing" in capsys.readouterr().err
    # --run picks one of them.
    assert main(["postmortem", "--db", str(db), *SLO, "--run", "synthetic", "--pairs", "300", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_incident"] > 0

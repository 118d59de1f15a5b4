"""`--run ID` on the analysis commands: it restricts to that run's requests (two known runs in one database),
the JSON equals the notebook API's, and an unknown id is one line listing the known ones (exit 2)."""

from __future__ import annotations

import json

import duckdb
import pytest

from causalsre.resources import SLO_SPEC
from tests.cli.conftest import one_error_line


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Runs `a` (2 x 20 s, max_num_seqs pushed) and `b` (2 x 30 s, CPU contention) in one database."""
    from causalsre.causal.synthetic import SyntheticSpec, write_synthetic

    path = tmp_path_factory.mktemp("runs") / "two.duckdb"
    write_synthetic(path, SyntheticSpec(fault="max_num_seqs", phase_s=20.0, seed=1, run_id="a"))
    write_synthetic(path, SyntheticSpec(fault="cpu_contention", phase_s=30.0, seed=2, run_id="b"))
    return path


def _count(db, run_id=None, phase=None) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM request_metrics WHERE (? IS NULL OR run_id = ?) AND "
                           "(? IS NULL OR phase = ?)", [run_id, run_id, phase, phase]).fetchone()[0]
    finally:
        con.close()


def test_slo_report_run_keeps_one_runs_requests_and_matches_the_api(two_runs, cli):
    import causalsre as cs

    code, out, err = cli("slo", "report", "--db", two_runs, "--slo", SLO_SPEC, "--run", "a", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report[0]["events"] == _count(two_runs, "a") < _count(two_runs)
    assert out.rstrip("\n") == cs.slo_report(two_runs, SLO_SPEC, run="a", timeline=False).to_json()
    code, out, err = cli("slo", "report", "--db", two_runs, "--slo", SLO_SPEC, "--run", "a", "--where", "run_id=b")
    assert code == 2 and "disagree" in one_error_line(err)


def test_postmortem_run_scopes_both_windows(two_runs, cli):
    args = ["postmortem", "--db", two_runs, "--slo", SLO_SPEC, "--baseline", "phase:baseline", "--incident",
            "+20:+40", "--run", "a", "--pairs", "100", "--json"]
    code, out, err = cli(*args)
    assert code == 0, err
    burn = json.loads(out)["burn"]
    assert burn["baseline"]["requests"] == _count(two_runs, "a", "baseline")
    assert burn["incident"]["requests"] == _count(two_runs, "a", "incident")
    # the same windows spelled with the run in them give the same document
    code, named, err = cli("postmortem", "--db", two_runs, "--slo", SLO_SPEC, "--baseline", "phase:baseline@a",
                           "--incident", "run:a+20:+40", "--pairs", "100", "--json")
    assert code == 0, err
    strip = lambda doc: {k: v for k, v in json.loads(doc).items() if k not in ("baseline", "incident")}  # noqa: E731
    assert strip(named) == strip(out)


def test_graph_check_run_alone_is_the_whole_run(two_runs, cli):
    code, out, err = cli("graph", "check", "--db", two_runs, "--run", "b", "--json")
    assert code in (0, 1), err  # 1: this synthetic data contradicts an implied independence
    assert json.loads(out)["rows"] == _count(two_runs, "b")


@pytest.mark.parametrize("command", [
    ["slo", "report", "--slo", SLO_SPEC],
    ["postmortem", "--slo", SLO_SPEC, "--baseline", "phase:baseline", "--incident", "phase:incident"],
    ["graph", "check"],
    ["graph", "learn"],
])
def test_an_unknown_run_is_one_line_listing_the_known_ones(two_runs, cli, command):
    code, out, err = cli(*command, "--db", two_runs, "--run", "nope", "--json")
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert "'nope' is not in the database" in line and "known runs: a, b" in line


def test_the_api_refuses_an_unknown_run_too(two_runs):
    import causalsre as cs
    from causalsre.errors import UserError

    with pytest.raises(UserError, match="known runs: a, b"):
        cs.whatif(two_runs, SLO_SPEC, window="phase:incident", set={"max_num_seqs": 32}, run="nope")
    with pytest.raises(UserError, match="known runs: a, b"):
        cs.slo_report(two_runs, SLO_SPEC, run="nope")

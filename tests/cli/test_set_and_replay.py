"""--set KNOB=VALUE by the settings table's names everywhere, and `harness replay` on the one window grammar
(its old spelling kept): what each form hands the replay, and one real replay of a short window."""

from __future__ import annotations

import json
import shutil

import pytest

from causalsre.cli.options import parse_knobs, parse_overrides
from causalsre.errors import UserError
from tests.cli.conftest import one_error_line


def test_knobs_by_name_with_the_engine_prefix_as_an_alias():
    assert parse_knobs(["max_num_seqs=8", "engine.policy=sjf"]) == ["max_num_seqs=8", "policy=sjf"]
    with pytest.raises(UserError, match="is not an actionable knob") as info:
        parse_knobs(["max_num_seq=8"])
    assert "max_num_seqs" in info.value.fix  # the fix lists the real names
    with pytest.raises(UserError, match="is not KNOB=VALUE"):
        parse_knobs(["max_num_seqs"])


def test_harness_overrides_map_a_setting_name_onto_its_config_key():
    assert parse_overrides(["max_num_seqs=8", "engine.chunk_size=16", "workload.rate=4", "seed=3",
                            "policy=sjf", "request_timeout_s=null"]) == {
        "engine.max_num_seqs": 8, "engine.chunk_size": 16, "workload.rate": 4, "seed": 3,  # seed: the run's
        "engine.policy": "sjf", "engine.request_timeout_s": None}


def test_whatif_refuses_an_unknown_knob_before_any_work(synthetic_db, cli, tmp_path):
    slo = tmp_path / "missing-is-fine.yaml"  # refused before the spec is even read
    code, out, err = cli("whatif", "--db", synthetic_db, "--slo", slo, "--window", "phase:incident",
                         "--set", "engine.max_num_seq=8")
    assert code == 2 and out == "" and "is not an actionable knob" in one_error_line(err)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """A copy of the shipped scenario suite at the current schema (run burstier-s0: phases 0.1..12.1..24.1 s)."""
    from causalsre.cli.main import main
    from causalsre.resources import DEMO_SUITE

    if not DEMO_SUITE.is_file():
        pytest.skip("the shipped suite is absent")
    path = tmp_path_factory.mktemp("replay") / "suite.duckdb"
    shutil.copy(DEMO_SUITE, path)
    assert main(["db", "migrate", "--db", str(path)]) == 0
    return path


@pytest.fixture
def handed(monkeypatch):
    """Record what the CLI hands harness.replay.replay_window instead of running the engine."""
    import causalsre.cli.harness as cli_harness
    import harness.replay

    calls = []
    monkeypatch.setattr(harness.replay, "replay_window",
                        lambda src, run, window, overrides, out, progress: calls.append((run, window, overrides)) or "x")
    monkeypatch.setattr(cli_harness, "_echo_runs", lambda *args: None)
    return calls


@pytest.mark.parametrize("argv,expected", [
    (["--from", "{src}", "--window", "phase:incident@burstier-s0", "--set", "max_num_seqs=8"],
     ("burstier-s0", "incident", {"engine.max_num_seqs": 8})),
    (["--from", "{src}", "--run", "burstier-s0", "--window", "phase:incident"], ("burstier-s0", "incident", {})),
    (["--from", "{src}", "--window", "+2:+5@burstier-s0"], ("burstier-s0", (2.0, 5.0), {})),
    (["--from", "{src}", "--window", "2026-11-28T10:16:00.764954Z/2026-11-28T10:16:03.764954Z", "--run",
      "burstier-s0"], ("burstier-s0", (pytest.approx(2.0), pytest.approx(5.0)), {})),
    # the old spelling: positional SOURCE_DB RUN_ID, a bare phase name, START_S:END_S, engine.KNOB
    (["{src}", "burstier-s0", "--window", "incident", "--set", "engine.max_num_seqs=8"],
     ("burstier-s0", "incident", {"engine.max_num_seqs": 8})),
    (["{src}", "burstier-s0", "--window", "2:5"], ("burstier-s0", (2.0, 5.0), {})),
])
def test_every_window_form_reaches_the_replay(suite, handed, cli, tmp_path, argv, expected):
    argv = [str(suite) if a == "{src}" else a for a in argv]
    code, out, err = cli("harness", "replay", *argv, "--db", tmp_path / "out.duckdb")
    assert code == 0, err
    assert handed == [expected]


@pytest.mark.parametrize("argv,fragment", [
    (["--window", "phase:incident@burstier-s0"], "no source database"),
    (["--from", "{src}", "--window", "phase:incident"], "spans"),  # every run has an incident: name one
    (["--from", "{src}", "--window", "+2:+5"], "names no run"),
    (["--from", "{src}", "--window", "phase:incident@burstier-s0", "--run", "rate_surge-s0"], "but --run is"),
    (["{src}", "burstier-s0", "--window", "1:x"], "window"),
    (["{src}", "burstier-s0", "--window", "lunch"], "lunch"),
    (["--from", "{src}", "--window", "phase:incident@burstier-s0", "--set", "max_num_seqs"], "KEY=VALUE"),
])
def test_bad_replays_are_one_line(suite, handed, cli, tmp_path, argv, fragment):
    argv = [str(suite) if a == "{src}" else a for a in argv]
    code, out, err = cli("harness", "replay", *argv, "--db", tmp_path / "out.duckdb")
    assert code == 2 and fragment in one_error_line(err) and handed == []


@pytest.mark.slow  # about 25 s: the engine replays two seconds of requests after its startup probe
def test_a_real_replay_of_a_relative_window(suite, cli, tmp_path):
    out_db = tmp_path / "replay.duckdb"
    code, out, err = cli("harness", "replay", "--from", suite, "--window", "+13:+15@burstier-s0",
                         "--set", "max_num_seqs=2", "--db", out_db, "--json")
    assert code == 0, err
    summary = json.loads(out)
    from causalsre.telemetry import connect_readonly

    con = connect_readonly(out_db)
    try:
        (seqs,) = con.execute("SELECT max_num_seqs FROM runs WHERE run_id = ?", [summary["run_id"]]).fetchone()
        src = connect_readonly(suite)
        try:  # the recorded requests of seconds 13..15 after t0, no more, no fewer
            (recorded,) = src.execute(
                "SELECT count(*) FROM requests WHERE run_id = 'burstier-s0' AND "
                "COALESCE(scheduled_arrival_ns, enqueue_ns) >= 13e9 AND COALESCE(scheduled_arrival_ns, enqueue_ns) < 15e9"
            ).fetchone()
        finally:
            src.close()
    finally:
        con.close()
    assert seqs == 2 and summary["requests"] == recorded > 0

"""The budget governor in what-if analysis, on small recorded runs (tiny engine, real replays):
``whatif --set policy=budget`` (tiers from the recorded run or ``--governor``; not predicted when never
observed; ``--verify`` replays under the governor and measures each tier's budget as ``slo report`` does),
``recommend --governor-grid`` (each candidate replayed) and the ``governor_shed`` node in the postmortem."""

from __future__ import annotations

import json

import duckdb
import pytest

from causalsre.cli.main import main
from causalsre.evaluation.govern_measure import tier_spec_yaml
from harness.config import parse_run_config
from harness.runner import run
from tests.harness.conftest import SLOW_MODELLED_CLOCK

GOVERNOR = {"short_window_s": 1.0, "long_window_s": 4.0, "tiers": [
    {"name": "premium", "tenants": ["premium"], "criticality": 0, "objective": 0.995, "ttft_s": 0.5,
     "tpot_s": 0.5, "protected": True},
    {"name": "free", "tenants": ["free"], "criticality": 1, "objective": 0.9, "ttft_s": 2.0, "tpot_s": 0.5}]}


def recording(db, *, policy: str, premium: int, free: int, surge: float, drain_s: float, duration_s: float = 6.0,
              half: float = 3.0, load: float = 0.3):
    """A run with a baseline and an incident phase: a rate surge at ``half`` on a calibrated load (so the
    overload does not depend on the machine's speed), tiers in its [governor] section. On the modelled clock
    (the replays inherit it): on the wall clock the capacity measured at the start and the speed during the run
    drifted apart on a shared machine, and the free tier's burn was then blamed on the arrival rate."""
    return run(parse_run_config({
        "name": f"gov-{policy}", "seed": 3, "duration_s": duration_s, "drain_timeout_s": drain_s,
        "engine": {"model": "tiny", "policy": policy, "max_num_seqs": 4, "max_num_batched_tokens": 128,
                   "max_queue_len": 400, "request_timeout_s": 60.0},
        "workload": {"arrival": "poisson", "load_fraction": load,
                     "tenants": [{"name": "premium", "weight": premium}, {"name": "free", "weight": free}],
                     "prompt": {"dist": "uniform", "low": 16, "high": 96},
                     "output": {"dist": "uniform", "low": 4, "high": 24}},
        "faults": [{"kind": "rate_surge", "at_s": half, "factor": surge}],
        "phases": [{"name": "baseline", "start_s": 0.0, "end_s": half},
                   {"name": "incident", "start_s": half, "end_s": duration_s}],
        "governor": GOVERNOR, "clock": SLOW_MODELLED_CLOCK}), db)


def spec_file(path, name, objective, ttft, tpot):
    """One tier's OpenSLO spec, written as eval govern writes it."""
    path.write_text(tier_spec_yaml(name, name, objective, ttft, tpot))
    return path


@pytest.fixture(scope="module")
def fcfs_run(tmp_path_factory):
    """fcfs under a 3x surge (0.9x of capacity in the incident), the tiers recorded but not used to govern."""
    folder = tmp_path_factory.mktemp("govwhatif")
    db = folder / "fcfs.duckdb"
    run_id = recording(db, policy="fcfs", premium=1, free=3, surge=3.0, drain_s=5.0)
    return folder, db, run_id


def _json(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out), captured.err


@pytest.mark.slow   # a 6 s recording and one replay of its 3 s incident
def test_policy_budget_never_observed_is_not_predicted_and_the_replay_measures_each_tier(fcfs_run, capsys):
    folder, db, run_id = fcfs_run
    spec = spec_file(folder / "premium.yaml", "premium", 0.995, 0.5, 0.5)
    replay_db = folder / "replay.duckdb"
    result, _ = _json(capsys, ["whatif", "--db", str(db), "--slo", str(spec), "--window", "phase:incident",
                               "--run", run_id, "--set", "policy=budget", "--method", "bayes", "--verify",
                               "--verify-db", str(replay_db), "--json"])
    bayes = result["predicted"]["bayes"]
    # fcfs is all the database ran: no number is invented, the interval is the whole range of the burn
    assert bayes["identified"] is False and bayes["burn_rate"] is None
    assert (bayes["low"], bayes["high"]) == (0.0, pytest.approx(1 / 0.005))
    assert any("never observed" in w and "fcfs" in w for w in result["warnings"])
    assert result["diagnostics"] is None   # nothing was fitted
    before, after = result["tiers"]["before"], result["tiers"]["after"]
    assert [t["tier"] for t in before] == ["premium", "free", "default"]
    assert sum(t["events"] for t in before) == result["requests"]
    assert sum(t["events"] for t in after) == result["verified_requests"] == result["requests"]  # same requests
    con = duckdb.connect(str(replay_db), read_only=True)
    try:   # the replay ran the governor with the recorded tiers
        assert con.execute("SELECT policy FROM runs").fetchall() == [("budget",)]
        assert con.execute("SELECT count(*) FROM control_actions WHERE action = 'final_counters'").fetchone()[0] >= 3
    finally:
        con.close()
    # each tier's budget is the one `slo report` finds on the replay with the tier's thresholds
    for tier, (objective, ttft) in {"premium": (0.995, 0.5), "free": (0.9, 2.0)}.items():
        tier_spec = spec_file(folder / f"{tier}.yaml", tier, objective, ttft, 0.5)
        report, _ = _json(capsys, ["slo", "report", "--db", str(replay_db), "--slo", str(tier_spec),
                                   "--where", f"tenant={tier}", "--json"])
        mine = next(t for t in after if t["tier"] == tier)
        assert (report[0]["events"], report[0]["bad_events"]) == (mine["events"], mine["bad_events"])
        assert report[0]["budget_consumed"] == pytest.approx(mine["budget_consumed"])


@pytest.mark.slow   # the 6 s recording (shared) and three replays of its incident
def test_recommend_governor_grid_replays_each_candidate_and_ranks_by_the_protected_budget(fcfs_run, capsys):
    folder, db, run_id = fcfs_run
    spec = spec_file(folder / "premium.yaml", "premium", 0.995, 0.5, 0.5)
    result, err = _json(capsys, ["recommend", "--db", str(db), "--slo", str(spec), "--window", "phase:incident",
                                 "--run", run_id, "--governor-grid", "--margin", "0.25", "--json"])
    candidates = result["candidates"]
    assert [c["governor"]["batching"] for c in candidates] in (["fixed", "adaptive"], ["adaptive", "fixed"])
    assert all(c["governor"]["margin"] == 0.25 for c in candidates)
    fixed = next(c["governor"] for c in candidates if c["governor"]["batching"] == "fixed")
    assert fixed["min_max_num_seqs"] == fixed["max_max_num_seqs"] == 4   # the recorded engine's bounds
    events = [t["events"] for t in result["reference"]["tiers"]]
    assert all([t["events"] for t in c["tiers"]] == events for c in candidates)  # same requests replayed

    def key(tiers):
        protected = [t["budget_consumed"] for t in tiers if t["protected"] and t["budget_consumed"] is not None]
        return (sum(c > 1 for c in protected), max(protected, default=0.0), sum(t["bad_events"] for t in tiers))

    assert [key(c["tiers"]) for c in candidates] == sorted(key(c["tiers"]) for c in candidates)
    assert result["best"] == candidates[0]
    assert [e["tier"] for e in result["effect"]] == ["premium", "free", "default"]
    assert "[2/2] policy=budget margin=0.25" in err   # progress on stderr


def test_policy_budget_without_tiers_and_a_bad_governor_file_are_one_line_errors(suite_db, tmp_path, capsys):
    base = ["whatif", "--db", str(suite_db), "--slo", "models/slos/llm-serving.yaml",
            "--window", "phase:incident@push_max_num_seqs-s0", "--set", "policy=budget"]
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert "needs the governor's tiers" in err and "--governor" in err and len(err.splitlines()) == 1
    bad = tmp_path / "tiers.toml"
    bad.write_text('[governor]\n[[governor.tiers]]\nname = "a"\ntenants = ["x"]\n'
                   '[[governor.tiers]]\nname = "b"\ntenants = ["x"]\n')
    assert main(base + ["--governor", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "tenant 'x'" in err and len(err.splitlines()) == 1
    assert main(["recommend", "--db", str(suite_db), "--slo", "models/slos/llm-serving.yaml",
                 "--window", "phase:incident@push_max_num_seqs-s0", "--margin", "0.1"]) == 2
    assert "--governor-grid" in capsys.readouterr().err


@pytest.mark.slow   # a 6 s recording with a long drain
def test_the_postmortem_names_the_governors_shedding_as_the_cause_of_the_free_tiers_burn(tmp_path, capsys):
    db = tmp_path / "shed.duckdb"
    # Premium is most of the traffic, so a 6x surge (to 3x capacity) overloads it even when served first: the
    # governor sheds free to protect it. The drain and timeout are long enough for every admitted request to
    # finish; an 8 s baseline at half load gives the postmortem enough free requests that were not shed.
    run_id = recording(db, policy="budget", premium=2, free=1, surge=6.0, drain_s=30.0, duration_s=12.0, half=8.0,
                       load=0.5)
    con = duckdb.connect(str(db), read_only=True)
    shed = dict(con.execute("SELECT tenant, count(*) FROM requests WHERE starts_with(finish_reason, 'shed_') "
                            "GROUP BY 1").fetchall())
    con.close()
    assert shed.get("free", 0) > 0 and "premium" not in shed
    # The free tier's availability objective (served at all, however late): its bad events are the sheds.
    spec = spec_file(tmp_path / "free.yaml", "free", 0.9, 120.0, 60.0)
    result, _ = _json(capsys, ["postmortem", "--db", str(db), "--slo", str(spec), "--baseline",
                               f"phase:baseline@{run_id}", "--incident", f"phase:incident@{run_id}", "--json"])
    rows = [r for r in result["attributions"] if r["role"] == "cause"]
    top = max(rows, key=lambda r: r["contribution"])
    assert top["factor"] == "governor_shed" and top["ci_low"] > 0, rows

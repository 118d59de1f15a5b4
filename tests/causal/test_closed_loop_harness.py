"""A harness closed loop records its clients (``max_concurrency``, harness/faults.py settings_at) beside its
settings, so a postmortem of two closed-loop runs that differ only in their clients names them.

Before the harness recorded it (39dcfc3), the same pair named no cause: the burn went to "other" (+0.74) and to
``queue_s`` unexplained, as nothing recorded had changed (the measured arrival rate is a mediator in a closed
loop, causalsre/causal/load_mode.py).
"""

from __future__ import annotations

import json

import pytest

from causalsre.cli.main import main
from causalsre.evaluation.score import names_a_cause
from causalsre.resources import SLO_SPEC
from harness.runner import run
from tests.conftest import query_rows
from tests.harness.conftest import MODELLED_CLOCK, tiny_config

pytestmark = pytest.mark.slow  # two 2.5 s engine runs on the modelled clock and a postmortem


def closed_loop_run(db, name: str, clients: int, phase: str) -> str:
    """A 2-seat tiny engine under ``clients`` closed-loop clients. On the modelled clock the engine serves
    about 25 requests a second whatever the machine: 2 clients wait for nothing, 40 queue about 1.5 s for
    their first token (the SLO allows 1 s)."""
    return run(tiny_config(name=name, duration_s=2.5, drain_timeout_s=3.0, clock=MODELLED_CLOCK,
                           engine={"max_num_seqs": 2, "max_queue_len": 64},
                           workload={"arrival": "closed", "rate": None, "concurrency": clients,
                                     "output": {"dist": "fixed", "value": 12}},
                           phases=[{"name": phase, "start_s": 0.0, "end_s": 2.5}]), db)


@pytest.fixture(scope="module")
def clients_pair(tmp_path_factory):
    db = tmp_path_factory.mktemp("closed") / "c.duckdb"
    return db, closed_loop_run(db, "few", 2, "baseline"), closed_loop_run(db, "many", 40, "incident")


def _postmortem(db, base: str, incident: str, capsys, *extra: str) -> dict:
    code = main(["postmortem", "--db", str(db), "--slo", str(SLO_SPEC), "--baseline", f"phase:baseline@{base}",
                 "--incident", f"phase:incident@{incident}", "--seed", "0", "--json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_a_closed_loop_run_records_its_clients_and_an_open_loop_none(clients_pair, tmp_path):
    db, base, incident = clients_pair
    rows = query_rows(db, "SELECT run_id, value FROM run_settings WHERE setting = 'max_concurrency' ORDER BY value")
    assert rows == [(base, 2.0), (incident, 40.0)]
    open_db = tmp_path / "o.duckdb"
    run(tiny_config(duration_s=0.5, clock=MODELLED_CLOCK), open_db)
    assert query_rows(open_db, "SELECT count(*) FROM run_settings WHERE setting = 'max_concurrency'") == [(0,)]


def test_more_clients_on_the_same_server_are_named_as_the_cause(clients_pair, capsys):
    db, base, incident = clients_pair
    result = _postmortem(db, base, incident, capsys)
    assert result["load_mode"] == "closed_loop"
    assert result["burn"]["baseline"]["bad_events"] == 0 and result["burn"]["incident"]["bad_rate"] > 0.5
    assert names_a_cause(result) == "max_concurrency", [(a["factor"], a["contribution"])
                                                       for a in result["attributions"]]
    assert "arrival_rate" not in [a["factor"] for a in result["attributions"]]  # the server's effect, no cause
    (change,) = [c for c in result["changes"] if c["name"] == "max_concurrency"]
    assert (change["baseline"], change["incident"]) == (2, 40)


def test_verify_replays_the_incident_as_a_closed_loop_with_the_baselines_clients(clients_pair, capsys):
    # harness/replay.py replays a closed loop as one (before, as a trace of the recorded arrivals: an open loop,
    # with no clients to set back, and max_concurrency was "the harness cannot revert it").
    db, base, incident = clients_pair
    result = _postmortem(db, base, incident, capsys, "--verify", "--verify-top", "1")
    verification = result["verification"]
    assert verification["control"]["bad_rate"] > 0.5  # 40 clients again: the replayed incident burns
    (checked,) = [c for c in verification["causes"] if c["factor"] == "max_concurrency"]
    assert checked["verified"] and checked["reverted_bad_rate"] == 0.0, checked  # 2 clients again: nothing waits
    assert checked["verified_share"] > 0.9
    assert verification["ranked_by_replay"] and "warning" not in verification  # modelled clock: speed is moot


def test_clients_are_set_only_on_a_closed_loop_replay(clients_pair, tmp_path):
    # An open loop's replay sends its recorded requests at their times: setting its clients would do nothing.
    from causalsre.errors import UserError
    from causalsre.whatif.verify import intervened_config_from
    from harness.replay import window_config

    db, _, incident = clients_pair
    replay = intervened_config_from(window_config(db, incident, "incident"), {"max_concurrency": 2.0})
    assert (replay.workload.arrival, replay.workload.concurrency, replay.duration_s) == ("closed", 2, 2.5)
    open_db = tmp_path / "o.duckdb"
    open_run = run(tiny_config(duration_s=0.5, clock=MODELLED_CLOCK,
                               phases=[{"name": "incident", "start_s": 0.0, "end_s": 0.5}]), open_db)
    with pytest.raises(UserError, match=r"cannot set max_concurrency: the window is an open loop \(trace "):
        intervened_config_from(window_config(open_db, open_run, "incident"), {"max_concurrency": 2.0})


def test_whatif_refuses_to_set_the_clients_in_one_line(clients_pair, capsys):
    # The what-if models intervene on engine knobs only; a closed loop's clients are checked by postmortem --verify.
    db, _, incident = clients_pair
    code = main(["whatif", "--db", str(db), "--slo", str(SLO_SPEC), "--window", f"phase:incident@{incident}",
                 "--set", "max_concurrency=2", "--verify"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "max_concurrency is not an actionable knob" in err and "--set max_num_seqs=8" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err

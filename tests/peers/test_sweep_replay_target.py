"""`harness sweep` and `harness replay` with --target: the same designs and windows, driven against a server.

The stub (tests/peers/stub_server.py) records every request body, so the known answers are exact: each sweep
run asks for its own level of output tokens at its own rate, and a replay sends the recorded window's requests.
"""

from __future__ import annotations

import json

import duckdb

from causalsre.cli.main import main
from tests.peers.stub_server import StubServer

BASE = """
name = "stub_base"
seed = 5
duration_s = 3
drain_timeout_s = 6
[engine]
request_timeout_s = 15.0
[workload]
arrival = "poisson"
rate = 3.0
prompt = { dist = "fixed", value = 8 }
output = { dist = "fixed", value = 4 }
[[phases]]
name = "baseline"
start_s = 0
end_s = 1.5
[[phases]]
name = "incident"
start_s = 1.5
end_s = 3
"""

SWEEP = """
name = "stub_sweep"
base = "base.toml"
design = "lhs"
runs = 2
seed = 7
[factors]
output_tokens = [3, 6]
arrival_rate = [2.0, 8.0]
"""


def _write(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    (tmp_path / "sweep.toml").write_text(SWEEP)


def test_sweep_against_a_target_sends_each_runs_levels(tmp_path, capsys):
    _write(tmp_path)
    db = tmp_path / "sweep.duckdb"
    with StubServer(model="stub", slots=4, token_s=0.005) as stub:
        code = main(["harness", "sweep", str(tmp_path / "sweep.toml"), "--db", str(db), "--target", stub.url,
                     "--model", "stub", "--json"])
        bodies = list(stub.state.bodies)
    out = capsys.readouterr().out
    assert code == 0, out
    runs = json.loads(out)
    assert len(runs) == 2 and all(r["status"] == "complete" for r in runs)
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT run_id, min(target_output_tokens), max(target_output_tokens), count(*) "
                           "FROM requests GROUP BY run_id ORDER BY 2").fetchall()
        hardware = [json.loads(h) for (h,) in con.execute("SELECT hardware_json FROM runs").fetchall()]
    finally:
        con.close()
    # LHS over two levels each: one run has 3 tokens, the other 6; every request asked for its run's level.
    assert [(lo, hi) for _, lo, hi, _ in rows] == [(3, 3), (6, 6)]
    assert sorted(b["max_tokens"] for b in bodies) == sorted([3] * rows[0][3] + [6] * rows[1][3])
    assert all(h["engine"] == "external" and h["target"] == stub.url for h in hardware)


def test_replay_against_a_target_sends_the_windows_requests(tmp_path, capsys):
    _write(tmp_path)
    source, replayed = tmp_path / "source.duckdb", tmp_path / "replay.duckdb"
    with StubServer(model="stub", slots=4, token_s=0.005) as stub:
        assert main(["harness", "run", str(tmp_path / "base.toml"), "--db", str(source), "--target", stub.url,
                     "--model", "stub", "--json"]) == 0
        run_id = json.loads(capsys.readouterr().out)["run_id"]
        sent_before = len(stub.state.bodies)
        code = main(["harness", "replay", str(source), run_id, "--window", "incident", "--db", str(replayed),
                     "--target", stub.url, "--model", "stub", "--json"])
        sent = stub.state.bodies[sent_before:]
    out = capsys.readouterr().out
    assert code == 0, out
    con = duckdb.connect(str(source), read_only=True)
    try:
        window = con.execute("SELECT prompt_tokens, target_output_tokens FROM request_metrics WHERE run_id = ? "
                             "AND phase = 'incident' ORDER BY arrival_ns", [run_id]).fetchall()
    finally:
        con.close()
    con = duckdb.connect(str(replayed), read_only=True)
    try:
        again = con.execute("SELECT prompt_tokens, target_output_tokens FROM requests ORDER BY scheduled_arrival_ns"
                            ).fetchall()
        engine = json.loads(con.execute("SELECT hardware_json FROM runs").fetchone()[0])["engine"]
    finally:
        con.close()
    assert window and again == window and len(sent) == len(window)
    assert engine == "external"


def test_sweep_target_refuses_ray_and_bad_options_in_one_line(tmp_path, capsys):
    _write(tmp_path)
    db = tmp_path / "never.duckdb"
    for args, message in (
        (["--backend", "ray", "--target", "http://127.0.0.1:9", "--model", "m"], "runs locally"),
        (["--model", "m"], "--model goes with --target"),
        (["--target", "http://127.0.0.1:9"], "needs --model"),
    ):
        code = main(["harness", "sweep", str(tmp_path / "sweep.toml"), "--db", str(db), *args])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not db.exists()

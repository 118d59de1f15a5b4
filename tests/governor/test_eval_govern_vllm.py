"""`eval govern --target vllm`: the same tiers and traffic through the gateway in front of the real vLLM peer.

The tiny run starts one real vLLM (`.venv-vllm`, `make peer-vllm`) and skips, saying why, where it is not
built. The flag checks need no vLLM.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys

import duckdb
import pytest

from causalsre.cli.main import main
from harness.peers.vllm_server import unavailable_reason

STARTS_A_REAL_VLLM = True   # one real vLLM at a time on this machine (the lock of tests/peers/conftest.py)

REASON = unavailable_reason()
RUN_KEYS = {"load", "workload", "seed", "policy", "throughput_tok_s", "goodput_rps", "tiers", "rejected", "actions",
            "speed_probe_ms", "speed_probe_after_ms", "speed_flagged"}
POLICIES = ("fcfs", "budget")
LOAD = 1.3


@pytest.fixture(scope="module", autouse=True)
def one_real_vllm_at_a_time():
    from tests.peers.conftest import LOCK

    with open(LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def test_vtc_is_not_a_gateway_policy(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["eval", "govern", "--target", "vllm", "--policies", "fcfs,vtc", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'vtc' is not a gateway policy" in err
    assert not out.exists()


def test_a_missing_peer_is_one_line(tmp_path, capsys, monkeypatch):
    import harness.peers.vllm_server as server

    monkeypatch.setattr(server, "unavailable_reason", lambda: "/nowhere/.venv-vllm is not built")
    assert main(["eval", "govern", "--target", "vllm", "--quick", "--workload", "gamma", "--load", "1.3",
                 "--seeds", "1", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "vLLM peer is unavailable" in err and "make peer-vllm" in err
    assert not (tmp_path / "out").exists()   # refused before any work


@pytest.mark.slow   # starts vLLM (a minute or more on 2 cores), two gateways, three short runs
@pytest.mark.skipif(REASON is not None, reason=f"vLLM peer unavailable: {REASON}")
def test_the_same_table_in_front_of_the_real_vllm(tmp_path, capsys):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "causalsre", "eval", "govern", "--target", "vllm", "--quick", "--workload",
               "gamma", "--load", str(LOAD), "--seeds", "1", "--policies", ",".join(POLICIES), "--out", str(out),
               "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    setup = result["setup"]
    assert setup["target"] == "vllm" and "Batching depth is out of a gateway's reach" in setup["note"]
    assert sorted(r["policy"] for r in result["runs"]) == sorted(POLICIES)
    case = setup["cases"][0]
    assert case["same_requests"] and case["requests"] > 0 and case["capacity_rps"] > 0
    for run in result["runs"]:
        assert set(run) == RUN_KEYS and run["speed_probe_after_ms"] > 0
        assert sum(t["events"] for t in run["tiers"]) == case["requests"]   # every request is one event
        db = out / "gamma" / f"x{LOAD:g}-s0-{run['policy']}.duckdb"
        for tier in run["tiers"]:   # the budgets are `slo report` on the client's database
            if not tier["events"]:
                continue
            capsys.readouterr()
            assert main(["slo", "report", "--db", str(db), "--slo", case["slo_specs"][tier["tier"]], "--where",
                         f"tenant={tier['tier']}", "--json"]) == 0
            report = json.loads(capsys.readouterr().out)[0]
            assert (report["events"], report["bad_events"]) == (tier["events"], tier["bad_events"])
    fcfs = next(r for r in result["runs"] if r["policy"] == "fcfs")
    assert fcfs["actions"] == 0
    con = duckdb.connect(str(out / "gamma" / f"x{LOAD:g}-s0-budget-gateway.duckdb"), read_only=True)
    try:   # the gateway ran the governor: protected tiers never shed, its final counters are recorded
        shed = con.execute("SELECT DISTINCT tenant FROM requests WHERE finish_reason LIKE 'shed_%'").fetchall()
        assert {t for (t,) in shed} <= {"free"}
        assert con.execute("SELECT count(*) FROM control_actions WHERE action = 'final_counters'").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM control_actions WHERE action = 'batching_depth'").fetchone()[0] == 0
    finally:
        con.close()

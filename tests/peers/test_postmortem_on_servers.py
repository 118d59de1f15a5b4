"""The postmortem on telemetry the harness recorded against real servers, with nothing imported by hand.

1. The peer vLLM (`--engine vllm`, `.venv-vllm`): the shipped vLLM rate-surge scenario
   (harness/peers/scenarios/rate_surge.toml: 1 -> 8 requests/s at 10 s, four sequences at a time); the
   postmortem must rank the arrival rate first (workload family). Checked on seeds 0 and 1 (docs/peers.md).
2. `causalsre serve` (our engine behind HTTP) started as a user would, driven with `--target`: one
   sequence at a time, 1 -> 12 requests/s; the same answer is required.

Both runs only client-side requests and the scraped `/metrics` (no engine steps): the engine-state mediators
come from vLLM's metric names (causalsre/telemetry/importers/mapping.py), which `serve` exposes too.
Slow: vLLM takes one to three minutes to start on 2 shared cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from causalsre.cli.main import main
from causalsre.evaluation.score import names_a_cause
from harness.peers.vllm_server import unavailable_reason

STARTS_A_REAL_VLLM = True  # tests/peers/conftest.py: one real vLLM at a time across workers

REPO = Path(__file__).resolve().parents[2]
SLO = str(REPO / "models" / "slos" / "llm-serving.yaml")
REASON = unavailable_reason()


def _postmortem(db: Path, run_id: str, capsys) -> dict:
    code = main(["postmortem", "--db", str(db), "--slo", SLO, "--baseline", f"phase:baseline@{run_id}",
                 "--incident", f"phase:incident@{run_id}", "--seed", "0", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def _assert_names_the_surge(result: dict) -> None:
    causes = [a for a in result["attributions"] if a.get("role", "cause") == "cause"]
    ranked = sorted(causes, key=lambda a: -a["contribution"])
    assert ranked and ranked[0]["factor"] == "arrival_rate", [(a["factor"], a["contribution"]) for a in ranked]
    assert names_a_cause(result) == "arrival_rate"  # its interval excludes 0
    families = [f["family"] for f in result["families"] if f["family"] != "other"]
    assert families[0] == "workload", result["families"]
    # The surge really burned the budget; how much depends on the machine's speed (12 % more bad requests on a
    # quiet machine with causalsre serve, over 30 % on a busy one), so only a clear burn is required.
    assert result["total_change"] > 0.05, result["burn"]


@pytest.mark.slow
@pytest.mark.skipif(REASON is not None, reason=f"vLLM peer unavailable: {REASON}")
def test_postmortem_names_the_rate_surge_on_a_real_vllm(tmp_path, capsys):
    db = tmp_path / "vllm.duckdb"
    # The shipped surge (1 -> 8 requests/s) overloads vLLM only on a busy machine: on a quiet one it decodes the
    # tiny shape at ~30 ms a token, ~11 requests/s with four sequences. 1 -> 40 requests/s is past that anywhere.
    scenario = tmp_path / "rate_surge_x40.toml"
    scenario.write_text((REPO / "harness/peers/scenarios/_base.toml").read_text()
                        + '\n[[faults]]\nkind = "rate_surge"\nat_s = 10\nfactor = 40.0\n')
    code = main(["harness", "scenario", str(scenario), "--engine", "vllm",
                 "--seed", "1", "--db", str(db), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["status"] == "complete", summary
    _assert_names_the_surge(_postmortem(db, summary["run_id"], capsys))


SERVE_CONFIG = """
name = "served"
[engine]
model = "tiny"
num_threads = 1
max_num_seqs = 1
max_queue_len = 256
[serve]
model_name = "tiny-served"
flush_interval_s = 0.2
"""

# Our engine on the tiny preset decodes a 64-token request in well under a second on one core, one at a
# time: 1 request/s is far below capacity. 12/s overloaded a busy machine but a quiet one burned too little to
# name the cause (seed 0); 40/s of 24-token replies stopped overloading once the engine and the host got faster
# (2026-12-02: 285 requests served in the 8 s incident, none bad), so the replies are 64 tokens: a request's
# service time, not only the rate, sets how far above capacity the surge is.
SURGE = """
name = "serve_surge"
duration_s = 16
drain_timeout_s = 30
[engine]
request_timeout_s = 60.0
[workload]
arrival = "poisson"
rate = 1.0
prompt = { dist = "uniform", low = 16, high = 64 }
output = { dist = "fixed", value = 64 }
[[faults]]
kind = "rate_surge"
at_s = 8
factor = 40.0
[[phases]]
name = "baseline"
start_s = 0
end_s = 8
[[phases]]
name = "incident"
start_s = 8
end_s = 16
"""


def _start_serve(config: Path) -> tuple[subprocess.Popen, dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-m", "causalsre", "serve", str(config), "--port", "0", "--json"],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(child.stdout.readline()), daemon=True)
    reader.start()
    reader.join(120)  # a bound for a shared machine, not a performance figure
    if not line or not line[0].strip():
        child.kill()
        raise AssertionError(f"causalsre serve did not start: {child.stderr.read()}")
    return child, json.loads(line[0])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_postmortem_names_the_rate_surge_on_causalsre_serve(tmp_path, capsys, seed):
    (tmp_path / "serve.toml").write_text(SERVE_CONFIG)
    (tmp_path / "surge.toml").write_text(SURGE)
    child, info = _start_serve(tmp_path / "serve.toml")
    try:
        db = tmp_path / "client.duckdb"
        code = main(["harness", "run", str(tmp_path / "surge.toml"), "--target", info["url"], "--model",
                     "tiny-served", "--seed", str(seed), "--db", str(db), "--json"])
        summary = json.loads(capsys.readouterr().out)
    finally:
        child.terminate()
        child.wait(60)
    assert code == 0 and summary["status"] == "complete", summary
    _assert_names_the_surge(_postmortem(db, summary["run_id"], capsys))

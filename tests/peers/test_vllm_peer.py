"""A real vLLM (the peer virtualenv from `make peer-vllm`) driven through the harness.

One server per module for the --target tests; the --engine vllm test starts (and restarts) its own. They
skip, printing why, where `.venv-vllm` is not built or the platform cannot run vLLM's CPU build.
"""

from __future__ import annotations

import json

import duckdb
import httpx
import pytest

from causalsre.cli.main import main
from harness.config import EngineSection
from harness.peers.vllm_server import VllmServer, unavailable_reason, vllm_args

STARTS_A_REAL_VLLM = True  # tests/peers/conftest.py: one real vLLM at a time across workers

REASON = unavailable_reason()
needs_vllm = pytest.mark.skipif(REASON is not None, reason=f"vLLM peer unavailable: {REASON}")

# The server runs one sequence at a time, so 24-token requests cap it near 4 requests/s even on a fast
# machine (10 ms a decode step); 0.5 request/s fits, the surge to 8/s for 3 s queues most of its ~24.
SURGE = """
name = "vllm_surge"
seed = 1
duration_s = 9
drain_timeout_s = 45
[engine]
model = "tiny"
num_threads = 2
max_num_seqs = 1
request_timeout_s = 90.0
[workload]
arrival = "poisson"
rate = 0.5
prompt = { dist = "uniform", low = 16, high = 48 }
output = { dist = "fixed", value = 24 }
[[faults]]
kind = "rate_surge"
at_s = 6
factor = 16.0
[[phases]]
name = "baseline"
start_s = 0
end_s = 6
[[phases]]
name = "incident"
start_s = 6
end_s = 9
"""


@pytest.fixture(scope="module")
def vllm_url():
    if REASON is not None:
        pytest.skip(f"vLLM peer unavailable: {REASON}")
    print("starting vLLM from the peer virtualenv")
    server = VllmServer(EngineSection(model="tiny", num_threads=2, max_num_seqs=1), served_model_name="tiny")
    with server:
        yield server.url


def _bad_rates(con, run_id: str) -> dict[str, float]:
    """Share of requests that failed or waited for their first token more than twice the baseline's worst.

    The threshold comes from the run's own baseline, because a shared 2-core machine can make every TTFT
    slow; what the surge must do is make them slower than the baseline ever was.
    """
    worst = con.execute("SELECT max(ttft_s) FROM request_metrics WHERE run_id = ? AND phase = 'baseline'",
                        [run_id]).fetchone()[0]
    return dict(con.execute(
        "SELECT phase, avg(CASE WHEN is_ok AND ttft_s <= ? THEN 0 ELSE 1 END) FROM request_metrics "
        "WHERE run_id = ? GROUP BY phase", [2 * worst, run_id]).fetchall())


@needs_vllm
def test_rate_surge_on_vllm_raises_the_bad_rate_and_records_its_metrics(vllm_url, tmp_path, capsys):
    config = tmp_path / "surge.toml"
    config.write_text(SURGE)
    db = tmp_path / "vllm.duckdb"
    code = main(["harness", "run", str(config), "--db", str(db), "--target", vllm_url, "--model", "tiny", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["status"] == "complete"
    con = duckdb.connect(str(db), read_only=True)
    try:
        run_id = summary["run_id"]
        n, n_ok, exact = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'ok'), "
            "bool_and(output_tokens = 24) FILTER (WHERE status = 'ok') FROM requests").fetchone()
        statuses = dict(con.execute("SELECT phase, list(DISTINCT status) FROM request_metrics GROUP BY phase"
                                    ).fetchall())
        tokens = con.execute("SELECT count(*) FROM tokens").fetchone()[0]
        bad = _bad_rates(con, run_id)
        metrics = dict(con.execute("SELECT metric, max(value) FROM metric_samples GROUP BY metric").fetchall())
        buckets = con.execute("SELECT count(*) FROM metric_samples WHERE metric = "
                              "'vllm:time_to_first_token_seconds_bucket' AND labels_json LIKE '%\"le\"%'"
                              ).fetchone()[0]
    finally:
        con.close()
    assert n >= 20 and n_ok >= 10 and exact and tokens == 24 * n_ok
    assert statuses["baseline"] == ["ok"]  # the incident's may include requests aborted after the drain
    assert bad["incident"] >= 0.3 and bad["incident"] > bad["baseline"], bad
    # max_num_seqs=1 reached the server: never more than one running (a 0.5 s scrape may miss the one)
    assert metrics["vllm:num_requests_running"] <= 1
    # The queue the surge built is in the bad rate above; whether a 0.5 s scrape catches requests waiting
    # inside vLLM (rather than in flight to it) depends on the machine's timing, so only the series is required.
    assert metrics["vllm:num_requests_waiting"] >= 0
    # Likewise KV usage: the tiny model finishes a request in a fraction of a scrape interval, and a CI run
    # (2026-12-02, a fresh 2-core machine) saw 0.0 in every scrape; the series and its range are what is required.
    assert 0 <= metrics["vllm:kv_cache_usage_perc"] <= 1
    # A counter; the last scrape follows the drain (vLLM may count the last request or two a moment later).
    assert metrics["vllm:request_success_total"] >= n_ok - 2
    assert buckets > 0


@needs_vllm
def test_engine_vllm_restarts_the_server_for_a_config_push_and_stops_it(tmp_path, capsys):
    config = tmp_path / "push.toml"
    config.write_text("""
name = "vllm_push"
seed = 2
duration_s = 6
drain_timeout_s = 30
[engine]
model = "tiny"
num_threads = 2
max_num_seqs = 4
[workload]
arrival = "poisson"
rate = 1.5
prompt = { dist = "fixed", value = 16 }
output = { dist = "fixed", value = 8 }
[[faults]]
kind = "config_push"
at_s = 3
knobs = { max_num_seqs = 1 }
[[phases]]
name = "baseline"
start_s = 0
end_s = 3
[[phases]]
name = "incident"
start_s = 3
end_s = 6
""")
    db = tmp_path / "push.duckdb"
    code = main(["harness", "run", str(config), "--db", str(db), "--engine", "vllm", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    con = duckdb.connect(str(db), read_only=True)
    try:
        hardware = json.loads(con.execute("SELECT hardware_json FROM runs").fetchone()[0])
        pushes = con.execute("SELECT start_ns, value FROM run_settings WHERE setting = 'max_num_seqs' "
                             "ORDER BY start_ns").fetchall()
        events = con.execute("SELECT key, value, kind, source FROM operator_events").fetchall()
        phases = dict(con.execute("SELECT phase, count(*) FILTER (WHERE is_ok) FROM request_metrics "
                                  "GROUP BY phase").fetchall())
        running = con.execute("SELECT max(value) FROM metric_samples WHERE metric = 'vllm:num_requests_running' "
                              "AND ts_ns >= ?", [pushes[-1][0]]).fetchone()[0]
    finally:
        con.close()
    assert hardware["engine"] == "vllm" and "--max-num-seqs" in hardware["vllm_flags"]
    assert [v for _, v in pushes] == [4.0, 1.0] and 3e9 <= pushes[1][0] < 5e9  # at 3 s after the schedule's t0
    assert events == [("max_num_seqs", "1", "config", "harness")]
    assert phases["baseline"] >= 1 and phases["incident"] >= 1
    assert running is not None and running <= 1  # the restarted server runs one sequence at a time
    with pytest.raises(httpx.HTTPError):  # stopped after the run
        httpx.get(f"{hardware['target']}/health", timeout=2.0)


def test_engine_settings_map_to_vllm_flags_and_unsupported_ones_are_refused():
    args, env = vllm_args(EngineSection(max_num_seqs=3, max_num_batched_tokens=128, enable_chunked_prefill=False,
                                        chunk_size=32, num_kv_blocks=64, block_size=32, num_threads=1))
    pairs = {flag: value for flag, value in zip(args, args[1:]) if not value.startswith("--")}
    assert pairs["--max-num-seqs"] == "3" and pairs["--max-num-batched-tokens"] == "128"
    assert pairs["--long-prefill-token-threshold"] == "32" and pairs["--num-gpu-blocks-override"] == "64"
    assert pairs["--block-size"] == "32" and "--no-enable-chunked-prefill" in args
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0"
    # vLLM's CPU attention wants blocks of 32: the default 256 blocks of 16 tokens become 128 of 32.
    args, _ = vllm_args(EngineSection(num_kv_blocks=256, block_size=16))
    assert args[args.index("--block-size") + 1] == "32" and args[args.index("--num-gpu-blocks-override") + 1] == "128"
    from causalsre.errors import UserError

    for bad in ({"policy": "sjf"}, {"batching_mode": "prefill_first"}, {"device": "cuda"}):
        with pytest.raises(UserError):
            vllm_args(EngineSection(**bad))

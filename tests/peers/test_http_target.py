"""The harness HTTP target against a stub OpenAI-compatible server with a known capacity (no vLLM needed).

The stub serves 2 requests at a time at 20 ms a token; 8-token requests make its capacity 12.5 requests/s.
A 4 requests/s baseline fits; a five-fold surge to 20/s queues, so the share of requests with TTFT over
0.5 s must rise in the incident.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from causalsre.cli.main import main
from harness.http_metrics import parse_exposition
from tests.peers.stub_server import StubServer

SURGE = """
name = "stub_surge"
seed = 3
duration_s = 6
drain_timeout_s = 6
[engine]
request_timeout_s = 15.0
[workload]
arrival = "poisson"
rate = 4.0
prompt = { dist = "fixed", value = 8 }
output = { dist = "fixed", value = 8 }
tenants = [{ name = "interactive", weight = 3 }, { name = "batch", weight = 1 }]
[[faults]]
kind = "rate_surge"
at_s = 3
factor = 5.0
[[phases]]
name = "baseline"
start_s = 0
end_s = 3
[[phases]]
name = "incident"
start_s = 3
end_s = 6
"""


@pytest.fixture(scope="module")
def surge_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stub")
    config = tmp / "surge.toml"
    config.write_text(SURGE)
    db = tmp / "stub.duckdb"
    with StubServer(model="stub", slots=2, token_s=0.02) as stub:
        code = main(["harness", "run", str(config), "--db", str(db), "--target", stub.url, "--model", "stub",
                     "--json"])
        bodies = list(stub.state.bodies)
    return code, db, bodies


def test_surge_through_the_stub_records_requests_tokens_and_metrics(surge_run, capsys):
    code, db, bodies = surge_run
    assert code == 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        run_id, status, max_num_seqs, seed, hardware = con.execute(
            "SELECT run_id, status, max_num_seqs, seed, hardware_json FROM runs").fetchone()
        counts = dict(con.execute("SELECT status, count(*) FROM requests GROUP BY status").fetchall())
        tokens_ok = con.execute(
            "SELECT bool_and(output_tokens = target_output_tokens AND output_tokens = 8) FROM requests "
            "WHERE status = 'ok'").fetchone()[0]
        per_token = con.execute("SELECT count(*) FROM tokens").fetchone()[0]
        bad = dict(con.execute(
            "SELECT phase, avg(CASE WHEN is_ok AND ttft_s <= 0.5 THEN 0 ELSE 1 END) FROM request_metrics "
            "GROUP BY phase").fetchall())
        itl = con.execute("SELECT min(itl_s), median(itl_s) FROM inter_token_latency").fetchone()
        samples = con.execute(
            "SELECT metric, count(*), max(value), min(ts_ns) FROM metric_samples GROUP BY metric").fetchall()
        settings = {r[0] for r in con.execute("SELECT DISTINCT setting FROM run_settings").fetchall()}
        faults = con.execute("SELECT kind, factor FROM faults").fetchall()
    finally:
        con.close()
    assert status == "complete" and seed == 3 and max_num_seqs is None  # a server we do not run: no engine settings
    assert json.loads(hardware)["target"].startswith("http://127.0.0.1:")
    assert counts.get("ok", 0) >= 40 and set(counts) == {"ok"}
    assert tokens_ok and per_token == 8 * counts["ok"]
    assert 0 < itl[0] and itl[1] >= 0.015  # the stub sleeps 20 ms a token
    # The known answer: the surge is above the stub's capacity, the baseline below it.
    assert bad["incident"] > bad["baseline"] + 0.2
    by_metric = {m: (n, top, first) for m, n, top, first in samples}
    assert set(by_metric) == {"stub:num_requests_running", "stub:num_requests_waiting",
                              "stub:request_success_total"}  # NaN samples are skipped
    assert by_metric["stub:num_requests_running"][0] >= 4 and by_metric["stub:num_requests_running"][1] <= 2
    assert by_metric["stub:num_requests_waiting"][1] >= 1  # the queue the surge built
    assert by_metric["stub:request_success_total"][1] == counts["ok"]  # a last scrape after the drain
    assert "arrival_rate" in settings and "max_num_seqs" not in settings
    assert faults == [("rate_surge", "arrival_rate")]
    # What went over the wire: token ids of the scheduled length, exact output lengths, tenants as `user`.
    assert all(len(b["prompt"]) == 8 and b["max_tokens"] == 8 and b["ignore_eos"] and b["stream"] for b in bodies)
    assert {b["user"] for b in bodies} == {"interactive", "batch"}


def test_config_push_is_refused_for_a_server_the_harness_does_not_manage(tmp_path, capsys):
    config = tmp_path / "push.toml"
    config.write_text(SURGE.replace('kind = "rate_surge"\nat_s = 3\nfactor = 5.0',
                                    'kind = "config_push"\nat_s = 3\nknobs = { max_num_seqs = 1 }'))
    code = main(["harness", "run", str(config), "--db", str(tmp_path / "x.duckdb"),
                 "--target", "http://127.0.0.1:9", "--model", "m"])
    err = capsys.readouterr().err
    assert code == 2 and "the harness does not manage this server" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.duckdb").exists()  # refused before anything was written


@pytest.mark.parametrize("args, message", [
    (["--target", "http://127.0.0.1:9"], "--target needs --model"),
    (["--model", "m"], "--model goes with --target"),
    (["--target", "127.0.0.1:9", "--model", "m"], "is not an http(s) URL"),
    (["--target", "http://127.0.0.1:9", "--model", "m", "--engine", "vllm"], "give one of them"),
])
def test_bad_target_options_are_one_line_errors(tmp_path, capsys, args, message):
    config = tmp_path / "c.toml"
    config.write_text(SURGE)
    code = main(["harness", "run", str(config), "--db", str(tmp_path / "x.duckdb"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_load_fraction_needs_the_servers_capacity(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(SURGE.replace("rate = 4.0", "load_fraction = 0.5"))
    code = main(["harness", "run", str(config), "--db", str(tmp_path / "x.duckdb"),
                 "--target", "http://127.0.0.1:9", "--model", "m"])
    assert code == 2 and "calibrated_capacity_rps" in capsys.readouterr().err


def test_exposition_parser_reads_labels_escapes_and_skips_non_finite_values():
    text = ('# HELP x help\nvllm:num_requests_waiting{model_name="a \\"b\\"",engine="0"} 3\n'
            'vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 12\nup 1 1700000000000\n'
            'bad NaN\nworse +Inf\n')
    assert parse_exposition(text) == [
        ("vllm:num_requests_waiting", {"model_name": 'a "b"', "engine": "0"}, 3.0),
        ("vllm:e2e_request_latency_seconds_bucket", {"le": "+Inf", "model_name": "m"}, 12.0),
        ("up", {}, 1.0)]
    with pytest.raises(ValueError):
        parse_exposition("this is { not prometheus\n")


def test_closed_loop_clients_and_429_rejections_against_the_stub(tmp_path, capsys):
    # 6 closed-loop clients against 1 slot with room for 2 waiting: the other 3 get 429 -> rejected.
    config = tmp_path / "closed.toml"
    config.write_text('name = "closed"\nseed = 1\nduration_s = 2\ndrain_timeout_s = 5\n[workload]\n'
                      'arrival = "closed"\nconcurrency = 6\nthink_time_s = 0.05\n'
                      'prompt = { dist = "fixed", value = 4 }\noutput = { dist = "fixed", value = 4 }\n')
    db = tmp_path / "closed.duckdb"
    with StubServer(model="stub", slots=1, token_s=0.02, reject_over=2) as stub:
        code = main(["harness", "run", str(config), "--db", str(db), "--target", stub.url, "--model", "stub",
                     "--json"])
    assert code == 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        counts = dict(con.execute("SELECT status, count(*) FROM requests GROUP BY status").fetchall())
        reasons = {r[0] for r in con.execute("SELECT DISTINCT finish_reason FROM requests WHERE status = 'rejected'"
                                             ).fetchall()}
        events = dict(con.execute("SELECT event_type, count(*) FROM events GROUP BY event_type").fetchall())
    finally:
        con.close()
    assert counts.get("ok", 0) >= 5 and counts.get("rejected", 0) >= 3 and set(counts) <= {"ok", "rejected"}
    assert reasons == {"queue_full"}
    assert events["queued"] == sum(counts.values()) and events["rejected"] == counts["rejected"]
    assert events["finished"] == events["first_token"] == counts["ok"]


def test_an_unreachable_target_or_a_model_it_does_not_serve_is_a_one_line_error(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(SURGE)
    with StubServer(model="stub") as stub:
        url = stub.url
        code = main(["harness", "run", str(config), "--db", str(tmp_path / "x.duckdb"), "--target", url,
                     "--model", "other"])
        err = capsys.readouterr().err
        assert code == 2 and "serves ['stub'], not 'other'" in err and len(err.strip().splitlines()) == 1
    code = main(["harness", "run", str(config), "--db", str(tmp_path / "x.duckdb"), "--target", url,
                 "--model", "stub"])  # the stub is gone now: nothing listens there
    err = capsys.readouterr().err
    assert code == 2 and f"cannot reach {url}" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.duckdb").exists()

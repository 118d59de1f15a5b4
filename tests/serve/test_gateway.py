"""`causalsre serve --upstream`: the governor as a gateway, with our own engine (or the stub) as the upstream.

The official `openai` client through the gateway gets exactly the upstream's tokens (greedy decoding is
deterministic, so a direct request is the right answer); the DB holds the telemetry; errors are OpenAI
error objects; a bad --upstream is one line and exit 2.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import httpx
import openai
import pytest

from harness.engine.governor.config import GovernorConfig
from harness.serve.gateway import GatewaySettings
from harness.serve.gateway_app import create_gateway_app
from harness.serve.server import bind, make_server
from tests.peers.stub_server import StubServer
from tests.serve.conftest import READY_TIMEOUT_S, live_server

TIERS = GovernorConfig.from_dict({"short_window_s": 4, "long_window_s": 40, "tiers": [
    {"name": "premium", "tenants": ["alice"], "criticality": 0, "objective": 0.99, "ttft_s": 5.0, "tpot_s": 1.0,
     "protected": True},
    {"name": "free", "tenants": ["bob"], "criticality": 2, "objective": 0.9, "ttft_s": 10.0, "tpot_s": 2.0}]})


@contextmanager
def live_gateway(upstream: str, model: str, db: str | None = None, **kw):
    settings = GatewaySettings(upstream=upstream, upstream_model=model, model_name=kw.pop("model_name", model),
                               **{"policy": "budget", "governor": TIERS, **kw})
    server = make_server(create_gateway_app(settings, db))
    sock = bind("127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(READY_TIMEOUT_S)
        sock.close()


@pytest.fixture(scope="module")
def pair():
    with live_server() as up, live_gateway(up.url, up.model) as gw:
        yield up, gw


def _client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def test_openai_client_through_the_gateway_gets_the_upstreams_tokens(pair):
    up, gw = pair
    with _client(up.url) as direct, _client(gw) as via:
        want = direct.completions.create(model=up.model, prompt="the gateway relays", max_tokens=6).choices[0].text
        got = via.completions.create(model=up.model, prompt="the gateway relays", max_tokens=6, user="alice")
        assert got.choices[0].text == want and got.usage.completion_tokens == 6
        chunks = list(via.completions.create(model=up.model, prompt="the gateway relays", max_tokens=6,
                                             stream=True, user="bob"))
        assert "".join(c.choices[0].text for c in chunks if c.choices) == want
        messages = [{"role": "user", "content": "hello through the gateway"}]
        chat_want = direct.chat.completions.create(model=up.model, messages=messages, max_tokens=5)
        chat = via.chat.completions.create(model=up.model, messages=messages, max_tokens=5, user="alice")
        assert chat.choices[0].message.content == chat_want.choices[0].message.content
        parts = list(via.chat.completions.create(model=up.model, messages=messages, max_tokens=5, stream=True))
        text = "".join(p.choices[0].delta.content or "" for p in parts if p.choices)
        assert text == chat_want.choices[0].message.content
        assert [m.id for m in via.models.list().data] == [up.model]


def test_the_gateway_refuses_an_unknown_model_and_exposes_vllm_metrics(pair):
    up, gw = pair
    r = httpx.post(f"{gw}/v1/completions", json={"model": "nope", "prompt": "x", "max_tokens": 2})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = httpx.post(f"{gw}/v1/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()
    text = httpx.get(f"{gw}/metrics").text
    assert "vllm:num_requests_running" in text and "vllm:generation_tokens_total" in text
    assert httpx.get(f"{gw}/health").status_code == 200


def test_an_api_key_guards_the_gateway(pair):
    up, _ = pair
    with live_gateway(up.url, up.model, api_key="s3cret") as gw:
        assert httpx.get(f"{gw}/v1/models").status_code == 401
        with _client(gw, "s3cret") as c:
            assert c.completions.create(model=up.model, prompt="a b", max_tokens=2).usage.completion_tokens == 2


def test_telemetry_rows_land_in_the_db(tmp_path):
    db = str(tmp_path / "gw.duckdb")
    with live_server() as up:
        with live_gateway(up.url, up.model, db=db) as gw, _client(gw) as c:
            for i, user in enumerate(["alice", "bob", "alice", "bob"]):
                c.completions.create(model=up.model, prompt=f"request {i}", max_tokens=4, user=user, stream=i % 2 == 0)
            time.sleep(1.5)   # one upstream /metrics scrape at least (every 1 s); not a timing assertion
    con = duckdb.connect(db, read_only=True)
    try:
        rows = con.execute("SELECT tenant, status, output_tokens, first_token_ns IS NOT NULL FROM requests "
                           "ORDER BY request_id").fetchall()
        assert rows == [("alice", "ok", 4, True), ("bob", "ok", 4, True)] * 2
        assert con.execute("SELECT count(*) FROM tokens").fetchone()[0] == 16
        kind, status, policy = con.execute("SELECT kind, status, policy FROM runs").fetchone()
        assert (kind, status, policy) == ("serve", "complete", "budget")
        finals = con.execute("SELECT tier, params_after FROM control_actions WHERE action = 'final_counters' "
                             "AND tier IS NOT NULL ORDER BY tier").fetchall()
        assert [t for t, _ in finals] == ["default", "free", "premium"]
        assert '"events": 2' in dict(finals)["premium"]
        assert con.execute("SELECT value_text FROM run_settings WHERE setting = 'policy'").fetchone() == ("budget",)
        assert con.execute("SELECT count(*) FROM metric_samples WHERE metric LIKE 'vllm:%'").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM control_actions WHERE action = 'batching_depth'").fetchone()[0] == 0
    finally:
        con.close()


def test_a_dead_upstream_is_a_502_with_an_openai_error_object():
    stub = StubServer(model="stub")
    with stub:
        url = stub.url
    with live_gateway(url, "stub", policy="fcfs", governor=None) as gw:
        r = httpx.post(f"{gw}/v1/completions", json={"model": "stub", "prompt": [1, 2], "max_tokens": 2})
        assert r.status_code == 502
        assert r.json()["error"]["code"] == "upstream_error"


def test_the_stub_upstream_streams_through_unchanged():
    with StubServer(model="stub", slots=1, token_s=0.001) as stub, live_gateway(stub.url, "stub") as gw:
        body = {"model": "stub", "prompt": [1, 2, 3], "max_tokens": 3, "stream": True}
        direct = httpx.post(f"{stub.url}/v1/completions", json=body).text
        via = httpx.post(f"{gw}/v1/completions", json=body).text
        assert via == direct and via.endswith("data: [DONE]\n\n")


def test_a_bad_upstream_is_one_line_and_exit_2():
    exe = str(Path(sys.executable).parent / "causalsre")
    proc = subprocess.run([exe, "serve", "--upstream", "http://127.0.0.1:1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the upstream" in lines[0] and "Traceback" not in proc.stderr


def test_gateway_flag_mistakes_are_one_line_exit_2(tmp_path, capsys):
    from causalsre.cli.main import main

    assert main(["serve", "--upstream", "http://127.0.0.1:1", "--governor", str(tmp_path / "none.toml")]) == 2
    assert "governor file" in capsys.readouterr().err
    (tmp_path / "bad.toml").write_text("[governor]\n[[governor.tiers]]\nname = 'p'\nobjective = 2.0\n")
    assert main(["serve", "--upstream", "http://127.0.0.1:1", "--governor", str(tmp_path / "bad.toml")]) == 2
    assert "bad governor file" in capsys.readouterr().err
    assert main(["serve", "--policy", "budget"]) == 2
    assert "gateway options" in capsys.readouterr().err


def test_the_queue_seats_premium_first_and_never_sheds_it():
    """GatewayQueue alone, on a fake clock: one seat, a free request running, then free and premium arrivals;
    budget seats the premium one first (fcfs the earlier free one), and shedding only ever hits free."""
    import asyncio

    from harness.serve.gateway import GatewayQueue

    def run(policy: str) -> tuple[list, list]:
        async def go():
            now = [0]
            actions: list = []
            settings = GatewaySettings(upstream="http://x", upstream_model="m", model_name="m", policy=policy,
                                       max_concurrency=1, governor=TIERS)
            q = GatewayQueue(settings, lambda: now[0], actions.append)
            first = q.ticket(0, "bob", 0, 0, 8, 4)
            assert q.admit(first) is None and first.go.done()
            order, reasons = [], []
            for i in range(1, 40):   # a free then a premium arrival every 0.5 s, while the seat stays busy
                now[0] = i * 500_000_000
                t = q.ticket(i, "bob" if i % 2 else "alice", 0, now[0], 8, 4)
                reasons.append((t.tenant, q.admit(t)))
            q.done(first, "ok")
            while q.running:
                seated = q.running[0]
                order.append(seated.tenant)
                q.done(seated, "ok")
            return order, reasons
        return asyncio.run(go())

    order, reasons = run("budget")
    assert order[0] == "alice" and all(r is None for t, r in reasons if t == "alice")
    assert any(r and r.startswith("shed_") for t, r in reasons if t == "bob")
    order, reasons = run("fcfs")
    assert order[0] == "bob" and all(r is None for _, r in reasons)


def _gauge(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def test_a_client_that_hangs_up_frees_its_seat_and_the_upstreams():
    with StubServer(model="stub", slots=1, token_s=0.05) as stub, live_gateway(stub.url, "stub") as gw:
        body = {"model": "stub", "prompt": [1, 2], "max_tokens": 200, "stream": True, "user": "bob"}
        with httpx.stream("POST", f"{gw}/v1/completions", json=body) as r:
            lines = r.iter_lines()   # held: a dropped line iterator closes the response itself
            next(lines)   # the first event: it is running upstream
            assert _gauge(gw, "vllm:num_requests_running") == 1
        deadline = time.monotonic() + READY_TIMEOUT_S   # a bound, not a timing assertion
        while (_gauge(gw, "vllm:num_requests_running") or stub.state.running) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gauge(gw, "vllm:num_requests_running") == 0 and stub.state.running == 0
        # The seat is free: the next request is served (streamed: the stub always answers with SSE).
        r = httpx.post(f"{gw}/v1/completions", json={"model": "stub", "prompt": [1], "max_tokens": 2, "stream": True},
                       timeout=30)
        assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n"), r.text

"""Hostile HTTP bodies at `causalsre serve` and at the gateway (`serve --upstream`), and hostile --governor files.

Before the fixes: the gateway answered a deeply nested body, `NaN`/`Infinity` and a lone surrogate with a 500
and a traceback (json.loads recursion, then httpx refusing to encode the body it forwards); a `priority` of
10**40 (either server) or a gateway `max_tokens` of 10**12 made the telemetry writer's flush overflow its
INTEGER column, which stopped the writer and lost every row of the run; `temperature: NaN` was a 200; and
`--governor` with a deeply nested array raised RecursionError. Each is now a 400 with OpenAI's error object
naming the field (or a one-line error), and the telemetry of the requests around it is kept.
"""

from __future__ import annotations

import time

import duckdb
import httpx
import pytest

from tests.serve.conftest import live_server
from tests.serve.test_gateway import live_gateway

DEEP = b"[" * 50_000 + b"]" * 50_000
BODIES = [  # (id, body, param the 400 names or None). Every one of them is sent to both servers.
    ("nested-array", b'{"prompt": "x", "stop": ' + DEEP + b"}", None),
    ("nested-object", b'{"prompt": "x", "extra": ' + b'{"a":' * 20_000 + b"1" + b"}" * 20_000 + b"}", None),
    ("nan-temperature", b'{"prompt": "x", "max_tokens": 2, "temperature": NaN}', "temperature"),
    ("infinite-top-p", b'{"prompt": "x", "max_tokens": 2, "top_p": Infinity}', "top_p"),
    ("negative-temperature", b'{"prompt": "x", "max_tokens": 2, "temperature": -1}', "temperature"),
    ("top-p-above-one", b'{"prompt": "x", "max_tokens": 2, "top_p": 5}', "top_p"),
    ("priority-10e40", b'{"prompt": "x", "max_tokens": 2, "priority": 1' + b"0" * 40 + b"}", "priority"),
    ("priority-below-int32", b'{"prompt": "x", "max_tokens": 2, "priority": -2147483649}', "priority"),
    ("max-tokens-10e12", b'{"prompt": "x", "max_tokens": 1000000000000}', "max_tokens"),
    ("max-tokens-negative", b'{"prompt": "x", "max_tokens": -1}', "max_tokens"),
    ("chat-nested", b'{"messages": ' + DEEP + b"}", None),
]
# Both servers refuse the body itself (the gateway: never a seat, never the upstream): a NaN is not JSON.
NOT_JSON = {"nan-temperature": None, "infinite-top-p": None}


def _post(url: str, body: bytes, chat: bool = False) -> httpx.Response:
    path = "/v1/chat/completions" if chat else "/v1/completions"
    return httpx.post(url + path, content=body, headers={"content-type": "application/json"}, timeout=60)


def _is_400_naming(r: httpx.Response, param: str | None) -> None:
    assert r.status_code == 400, r.text[:300]
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param, error


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Our engine's server with telemetry, and the gateway (with telemetry) in front of it."""
    folder = tmp_path_factory.mktemp("http")
    with live_server(db=str(folder / "serve.duckdb")) as up, \
            live_gateway(up.url, up.model, db=str(folder / "gateway.duckdb")) as gw:
        yield up.url, gw, folder


@pytest.mark.parametrize("case_id,body,param", BODIES, ids=[b[0] for b in BODIES])
@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_hostile_bodies_are_a_400_naming_the_field(which, case_id, body, param, servers):
    serve_url, gateway_url, _ = servers
    url = serve_url if which == "serve" else gateway_url
    param = NOT_JSON.get(case_id, param)
    _is_400_naming(_post(url, body, chat=case_id.startswith("chat")), param)


def test_a_lone_surrogate_goes_through_the_gateway_as_the_escape_it_came_as(servers):
    serve_url, gateway_url, _ = servers
    body = b'{"prompt": "\\ud800 alone", "max_tokens": 2}'
    direct, proxied = _post(serve_url, body), _post(gateway_url, body)
    assert direct.status_code == 200, direct.text  # our server reads it as text...
    assert proxied.status_code == 200, proxied.text  # ...and the gateway forwards it (a 500 before)
    assert proxied.json()["choices"][0]["text"] == direct.json()["choices"][0]["text"]  # greedy: same tokens


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_the_telemetry_of_requests_around_hostile_ones_is_kept(which, servers):
    # The right answer: the two good requests sent after every hostile body are in the database, each with
    # its priority. Before the fix the hostile priority stopped the writer and the table stayed empty.
    serve_url, gateway_url, folder = servers
    url = serve_url if which == "serve" else gateway_url
    for _, body, _ in BODIES:
        _post(url, body)
    for priority in (7, 8):
        r = httpx.post(url + "/v1/completions", json={"prompt": "x", "max_tokens": 2, "priority": priority},
                       timeout=60)
        assert r.status_code == 200, r.text
    db = folder / f"{which}.duckdb"
    deadline = time.monotonic() + 60  # the writers flush about every second; a bound, not a timing assertion
    while True:
        # The same configuration as the server's writer in this process (DuckDB shares that instance; a
        # read-only connection would be refused as "other settings"); the test only reads.
        con = duckdb.connect(str(db)) if db.exists() else None
        try:
            rows = [] if con is None else con.execute(
                "SELECT priority FROM requests WHERE status = 'ok' AND priority IN (7, 8)").fetchall()
        except duckdb.Error:
            rows = []
        finally:
            if con is not None:
                con.close()
        if sorted(r[0] for r in rows) == [7, 8] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sorted(r[0] for r in rows) == [7, 8]

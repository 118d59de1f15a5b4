"""Round 3 at the HTTP side of `causalsre serve` and the gateway: a seeded sweep of hostile OpenAI fields (wrong
types, huge arrays, absurd numbers, unknown models), each a JSON 4xx (or a 200 when the value is valid) and never
a 500; and slow clients bounded in time (a slow-loris header, a chunked body with no last chunk: a JSON 408)."""

from __future__ import annotations

import json
import random
import socket
import time

import httpx
import pytest

from harness.serve import limits
from tests.serve.conftest import live_server
from tests.serve.test_gateway import live_gateway

SEED = 20261202
PROBES = 60  # per server: bounded (about 15 s on a loaded 2-core machine)
HOSTILE = [None, True, -1, 0, 1.5, 2**31, 2**63, -2**63, 1e308, "x", "", [], {}, [1, 2], {"a": 1},
           "9" * 5000, [[[[[]]]]], ["x"] * 100_000, list(range(100_000))]
FIELDS = ["max_tokens", "n", "logprobs", "stream", "stream_options", "model", "user", "priority", "temperature",
          "top_p", "seed", "stop", "prompt", "echo", "ignore_eos", "max_completion_tokens", "messages", "tools"]
OK = {200, 400, 404, 413, 422, 429}


def _probe(rng: random.Random) -> tuple[str, dict]:
    chat = rng.random() < 0.4
    body: dict = ({"messages": [{"role": "user", "content": "hi"}]} if chat else {"prompt": "hi"}) | {"max_tokens": 2}
    for field in rng.sample(FIELDS, rng.randint(1, 3)):
        body[field] = rng.choice(HOSTILE)
    if body.get("stream") is True:
        body["stream"] = False  # a stream answers 200 then errors inside the events: the sweep reads statuses
    return ("/v1/chat/completions" if chat else "/v1/completions"), body


@pytest.fixture(scope="module")
def servers():
    with live_server() as up, live_gateway(up.url, up.model) as gw:
        yield {"serve": up.url, "gateway": gw}


@pytest.mark.slow  # 25-30 s per server on a loaded 2-core machine (CI's first pass runs it; the second skips it)
@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_a_seeded_sweep_of_hostile_fields_is_a_json_4xx_or_a_200(which, servers):
    url = servers[which]
    rng = random.Random(SEED)
    seen: dict[int, int] = {}
    with httpx.Client(timeout=120) as client:
        for _ in range(PROBES):
            path, body = _probe(rng)
            r = client.post(url + path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            assert r.status_code in OK, (r.status_code, path, json.dumps(body)[:300], r.text[:300])
            if r.status_code != 200:
                error = r.json()["error"]
                assert set(error) == {"message", "type", "param", "code"} and len(error["message"]) <= 2100, error
        assert client.get(url + "/v1/models").status_code == 200  # still serving
    assert seen.get(400, 0) > PROBES // 3, seen  # the sweep hits refusals, not only valid bodies


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("body,param", [
    ({"prompt": "x", "max_tokens": 2, "n": 2}, "n"),
    ({"prompt": "x", "max_tokens": 2.5}, "max_tokens"),
    ({"prompt": "x", "max_tokens": "2"}, "max_tokens"),
    ({"prompt": "x", "max_tokens": 2, "logprobs": 10**6}, "logprobs"),
    ({"prompt": "x", "max_tokens": 2, "stream": True, "stream_options": "yes"}, "stream_options"),
    ({"prompt": "x", "max_tokens": 2, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
], ids=["n-2", "max-tokens-float", "max-tokens-string", "logprobs-absurd", "stream-options-string",
        "stream-options-field"])
def test_wrong_openai_field_types_are_a_400_naming_the_field(which, body, param, servers):
    r = httpx.post(servers[which] + "/v1/completions", json=body, timeout=60)
    assert r.status_code == 400, r.text[:300]
    assert r.json()["error"]["param"] == param, r.json()


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_an_unknown_model_is_a_404_model_not_found(which, servers):
    r = httpx.post(servers[which] + "/v1/completions", json={"prompt": "x", "max_tokens": 2, "model": "gpt-9"},
                   timeout=60)
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found", r.text[:300]


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


@pytest.fixture(scope="module")
def quick_deadlines():
    """A server whose header and body deadlines are 1 s (10 s and 30 s by default)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limits, "HEADER_TIMEOUT_S", 1.0)
        patch.setattr(limits, "BODY_TIMEOUT_S", 1.0)
        with live_server() as up:
            yield up.url


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)  # a bound on the test, not an assertion


def test_a_slow_loris_header_gets_a_json_408_and_the_connection_closes(quick_deadlines):
    with _connect(quick_deadlines) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: a")  # never ends its headers
        data = _read_all(sock)  # returns because the server closes; before the fix it waited for ever
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), data[:200]
    assert "did not arrive within" in json.loads(body)["error"]["message"]
    assert httpx.get(quick_deadlines + "/v1/models", timeout=30).status_code == 200


def test_an_idle_connection_is_closed(quick_deadlines):
    with _connect(quick_deadlines) as sock:
        assert _read_all(sock) == b""  # closed without a word: nothing was asked


def test_a_chunked_body_with_no_end_gets_a_json_408(quick_deadlines):
    with _connect(quick_deadlines) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                     b"transfer-encoding: chunked\r\n\r\n5\r\n{\"pro\r\n")  # the last, empty chunk never comes
        data = _read_all(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), data[:300]
    assert b"did not arrive within" in body
    # A whole body sent slowly but within the deadline is served.
    r = httpx.post(quick_deadlines + "/v1/completions", json={"prompt": "x", "max_tokens": 2}, timeout=30)
    assert r.status_code == 200, r.text


def test_a_keep_alive_connection_is_bounded_on_its_second_request_too(quick_deadlines):
    with _connect(quick_deadlines) as sock:
        body = b'{"prompt": "x", "max_tokens": 2}'
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(0.2)
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: a")  # the second request's headers stall
        data = _read_all(sock)
    assert data.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 408" in data, data[:400]

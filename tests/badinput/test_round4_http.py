"""Round 4 of the hostile inputs, over HTTP: an upstream that lies to the gateway (`causalsre serve --upstream`).

The earlier rounds sent hostile requests; here the answer is hostile. An upstream is a raw socket server that
says whatever a test tells it, so each failure is exact: a usage count that is a string (a 500 from the
metrics), or 10^9 tokens for a max_tokens of 2 (one telemetry row per claimed token: memory and the database
flush held hostage), garbage, a connection closed before or during the answer, and an upstream that hangs.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager

import duckdb
import httpx
import pytest

from tests.serve.test_gateway import live_gateway

MODELS = b'{"object":"list","data":[{"id":"m","object":"model"}]}'


def _http(body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\ncontent-length: %d\r\n\r\n" % len(body)
            + body)


def _sse(*events: dict | str) -> bytes:
    text = b"".join(b"data: " + (e.encode() if isinstance(e, str) else json.dumps(e).encode()) + b"\n\n"
                    for e in (*events, "[DONE]"))
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(text) + text + b"\r\n0\r\n\r\n")


@contextmanager
def hostile_upstream(answer: bytes | None, hang_s: float = 0.0):
    """An upstream answering /v1/models properly and every other request with ``answer`` (None: close at once)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def handle(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            if b"/v1/models" in data.split(b"\r\n", 1)[0]:
                conn.sendall(_http(MODELS))
                return
            time.sleep(hang_s)
            if answer is not None:
                conn.sendall(answer)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


BODY = {"model": "m", "prompt": [1, 2, 3], "max_tokens": 2}


@pytest.mark.parametrize("usage, fragment", [
    ({"completion_tokens": "many"}, "not a whole number"),
    ({"completion_tokens": True}, "not a whole number"),
    ({"completion_tokens": -5}, "outside 0..2"),
    ({"completion_tokens": 10**9}, "outside 0..2"),
    ({"completion_tokens": 1.5}, "not a whole number"),
])
def test_an_answer_whose_usage_lies_is_a_502_and_records_no_tokens(usage, fragment, tmp_path):
    # Before: "many" was a text/plain 500 (prometheus' inc() compared a str); 10**9 queued a billion token rows.
    db = str(tmp_path / "gw.duckdb")
    answer = _http(json.dumps({"choices": [{"text": "ab", "index": 0}], "usage": usage}).encode())
    with hostile_upstream(answer) as up, live_gateway(up, "m", db=db, policy="fcfs", governor=None) as gw:
        r = httpx.post(f"{gw}/v1/completions", json=BODY, timeout=30)
        assert r.status_code == 502, r.text
        error = r.json()["error"]
        assert error["code"] == "upstream_error" and fragment in error["message"]
        ok = httpx.post(f"{gw}/v1/completions", json=BODY, timeout=30)  # the gateway still serves
        assert ok.status_code == 502
    con = duckdb.connect(db, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM tokens").fetchone()[0] == 0
        assert con.execute("SELECT status, output_tokens FROM requests ORDER BY request_id").fetchall() == \
            [("error", 0)] * 2
    finally:
        con.close()


def test_a_stream_claiming_a_billion_tokens_records_at_most_max_tokens(tmp_path):
    db = str(tmp_path / "gw.duckdb")
    answer = _sse({"choices": [{"text": "a", "index": 0}], "usage": {"completion_tokens": 10**9}},
                  {"choices": [{"text": "b", "index": 0, "finish_reason": "length"}],
                   "usage": {"completion_tokens": "x"}})
    with hostile_upstream(answer) as up, live_gateway(up, "m", db=db, policy="fcfs", governor=None) as gw:
        r = httpx.post(f"{gw}/v1/completions", json={**BODY, "stream": True}, timeout=30)
        assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n")  # relayed unchanged
    con = duckdb.connect(db, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM tokens").fetchone()[0] == 2
        assert con.execute("SELECT output_tokens FROM requests").fetchall() == [(2,)]
    finally:
        con.close()


def test_n_choices_raise_the_token_limit():
    from harness.serve.gateway_parse import completion_count, token_limit

    assert token_limit({"n": 3}, 4) == 12 and token_limit({"best_of": 5, "n": 2}, 4) == 20
    assert token_limit({"n": True}, 4) == 4 and token_limit({"n": 10**9}, 4) == 4  # refused upstream anyway
    assert token_limit({}, 2**31 - 1) == 2**31 - 1 and token_limit({"n": 8}, 2**31 - 1) == 2**31 - 1
    assert completion_count(None, 4) == 0 and completion_count({"prompt_tokens": 3}, 4) == 0
    assert completion_count({"completion_tokens": 4}, 4) == 4


@pytest.mark.parametrize("answer, stream, status", [
    (_http(b"<html>not json</html>"), False, 502),
    (None, False, 502),
    (None, True, 502),
    (b"HTTP/1.1 abc\r\n\r\n", False, 502),
    (_http(b"[1, 2, 3]"), False, 502),
    (_http(b'{"choices": [], "usage": {"completion_tokens": 1}}'), False, 200),
])
def test_garbage_and_closed_connections_are_a_json_502(answer, stream, status):
    with hostile_upstream(answer) as up, live_gateway(up, "m", policy="fcfs", governor=None) as gw:
        r = httpx.post(f"{gw}/v1/completions", json={**BODY, "stream": stream}, timeout=30)
        assert r.status_code == status, r.text
        if status == 502:
            assert r.json()["error"]["code"] == "upstream_error"


def test_an_upstream_that_hangs_is_a_502_after_the_upstream_timeout():
    with hostile_upstream(None, hang_s=20) as up, \
            live_gateway(up, "m", policy="fcfs", governor=None, upstream_timeout_s=1.0) as gw:
        r = httpx.post(f"{gw}/v1/completions", json=BODY, timeout=30)
        assert r.status_code == 502 and "ReadTimeout" in r.json()["error"]["message"]

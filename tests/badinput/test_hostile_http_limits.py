"""What uvicorn's HTTP parser refuses gets our JSON error object too, at `causalsre serve` and at the gateway.

Before the fix: a 200 KB header (or any request h11 cannot parse) was answered by uvicorn itself with a
text/plain 400 "Invalid HTTP request received.", which an OpenAI client cannot read as an error object.
Now oversized request lines/headers are a JSON 431 whether h11 (while buffering) or our middleware (when the
headers arrived whole) sees them first, a malformed request is a JSON 400, and the server keeps serving.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from harness.serve.limits import MAX_HEADER_BYTES
from tests.serve.conftest import live_server
from tests.serve.test_gateway import live_gateway


@pytest.fixture(scope="module")
def servers():
    with live_server() as up, live_gateway(up.url, up.model) as gw:
        yield {"serve": up.url, "gateway": gw}


def _raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (httpx would refuse some of them) and read the whole answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):  # the server answered and closed before we finished
            pass
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def _is_json_error(status: int, headers: dict[str, str], body: bytes, expected: int) -> None:
    import json

    assert status == expected, (status, body[:200])
    assert headers.get("content-type", "").startswith("application/json"), headers
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"] and error["code"] == expected


def _get(path: str, header_value: bytes) -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + header_value + b"\r\n\r\n"


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("size", [200_000, MAX_HEADER_BYTES + 1_000], ids=["200KB", "just-over"])
def test_an_oversized_header_is_a_json_431(which, size, servers):
    _is_json_error(*_raw(servers[which], _get("/v1/models", b"a" * size)), 431)
    assert httpx.get(servers[which] + "/v1/models", timeout=30).status_code == 200  # and it still serves


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_a_long_url_is_a_json_431(which, servers):
    _is_json_error(*_raw(servers[which], _get("/v1/models?q=" + "b" * 100_000, b"1")), 431)


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("request_bytes", [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
                                           b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"],
                         ids=["no-request-line", "header-without-colon", "negative-length"])
def test_a_malformed_request_is_a_json_400(which, request_bytes, servers):
    _is_json_error(*_raw(servers[which], request_bytes), 400)


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_headers_under_the_limit_are_served(which, servers):
    # The right answer for a big but allowed header (a long bearer token): served as usual.
    r = httpx.get(servers[which] + "/v1/models", headers={"x-token": "t" * 16_000}, timeout=30)
    assert r.status_code == 200, r.text[:200]


@pytest.mark.parametrize("which", ["serve", "gateway"])
def test_a_huge_model_name_is_not_echoed_back_whole(which, servers):
    r = httpx.post(servers[which] + "/v1/completions", json={"model": "m" * 100_000, "prompt": "x", "max_tokens": 2},
                   timeout=30)
    assert r.status_code == 404, r.text[:200]
    message = r.json()["error"]["message"]
    assert len(message) < 2500 and "chars]" in message

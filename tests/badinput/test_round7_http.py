"""Round 7 at the HTTP side of `causalsre serve` and the gateway: edge values of OpenAI bodies and transports.

Before the fixes: a body over the size limit sent whole (a 10 MB prompt, declared or chunked) was answered with
a 413 and the connection closed while the client was still sending, so the kernel reset it and the client got
"peer closed connection" instead of the answer (one in four tries on a keep-alive connection over httpx, every
time at the size guard: it answered before reading the rest of the body, which a plain socket survives but a
busy server does not).
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

import pytest

from tests.serve.conftest import live_server
from tests.serve.test_gateway import live_gateway

BIG = 40 << 20  # past every socket buffer on the way (tcp_rmem's maximum is 32 MiB here): the server must read


@pytest.fixture(scope="module")
def servers():
    with live_server() as up, live_gateway(up.url, up.model) as gw:
        yield {"serve": up.url, "gateway": gw}


def _exchange(url: str, head: bytes, body_parts) -> bytes:
    """Send a whole request over a plain socket, then read the answer until the server closes."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        try:
            sock.sendall(head)
            for part in body_parts:
                sock.sendall(part)
        except OSError:  # reset while sending: whatever came back is read below
            pass
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    return answer


@pytest.mark.parametrize("which", ["serve", "gateway"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_the_limit_sent_whole_still_gets_its_413(which, framing, servers):
    piece = b"x" * (1 << 20)
    if framing == "content-length":
        head = (f"POST /v1/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
                f"content-length: {BIG}\r\n\r\n").encode()
        parts = (piece for _ in range(BIG >> 20))
    else:
        head = b"POST /v1/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        parts = [*(b"%x\r\n" % len(piece) + piece + b"\r\n" for _ in range(BIG >> 20)), b"0\r\n\r\n"]
    answer = _exchange(servers[which], head, parts)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"the request body is larger than" in answer and b'"error"' in answer, answer[-300:]


def _run_limit(framing: str, expect: bool = False) -> tuple[int, int, int]:
    """(body messages read before the answer started, messages in all, status) for a 10 MiB body sent to the
    size guard in front of an app that reads its body, as FastAPI does."""
    from harness.serve.limits import BodySizeLimit

    total = 10
    read = {"n": 0, "at_answer": None}

    async def receive():
        read["n"] += 1
        return {"type": "http.request", "body": b"x" * (1 << 20), "more_body": read["n"] < total}

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass

    sent = []

    async def send(message):
        if message["type"] == "http.response.start":
            read["at_answer"] = read["n"]
        sent.append(message)

    headers = [(b"content-type", b"application/json")]
    headers += [(b"content-length", str(total << 20).encode())] if framing == "content-length" else []
    headers += [(b"expect", b"100-continue")] if expect else []
    asyncio.run(BodySizeLimit(app, max_bytes=1 << 20)({"type": "http", "headers": headers}, receive, send))
    return read["at_answer"], read["n"], sent[0]["status"]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_the_size_guard_reads_a_refused_body_to_its_end_before_answering(framing):
    assert _run_limit(framing) == (10, 10, 413)


def test_a_client_waiting_for_100_continue_is_answered_without_reading():
    assert _run_limit("content-length", expect=True) == (0, 0, 413)

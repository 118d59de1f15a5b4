"""A real server on a free localhost port: uvicorn in a thread of the test process (the SIGKILL and CLI tests
start `causalsre serve` in a subprocess instead)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from harness.serve import load_serve_settings
from harness.serve.app import create_app
from harness.serve.loop import EngineLoop
from harness.serve.server import bind, make_server

READY_TIMEOUT_S = 60   # a generous bound on a shared 2-core machine, not a performance assertion


@dataclass
class LiveServer:
    url: str
    loop: EngineLoop
    model: str

    def metric(self, name: str) -> float:
        """The value of one unlabelled-by-anything-else series from /metrics (e.g. vllm:num_requests_running)."""
        text = httpx.get(f"{self.url}/metrics").text
        for line in text.splitlines():
            if line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)


@contextmanager
def live_server(db: str | None = None, loop_factory=EngineLoop, **settings_kw):
    """``loop_factory(settings, db)`` builds the engine loop (a test's subclass can hold the engine thread)."""
    settings = load_serve_settings(**settings_kw) if settings_kw else load_serve_settings()
    loop = loop_factory(settings, db)
    server = make_server(create_app(loop))
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", loop, settings.model_name)
    finally:
        server.should_exit = True
        thread.join(READY_TIMEOUT_S)
        sock.close()


@pytest.fixture(scope="module")
def server():
    """One default server (tiny model, no telemetry) shared by a module's tests."""
    with live_server() as live:
        yield live

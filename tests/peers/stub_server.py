"""A tiny OpenAI-compatible server for tests (stdlib only): streams ``max_tokens`` tokens per completion.

It has a known capacity: ``slots`` requests are served at once, each token takes ``token_s``; the rest wait
for a slot. So a load above ``slots / (max_tokens * token_s)`` requests/s queues, and TTFT grows: a known
right answer for a rate-surge test. ``/metrics`` exposes running and waiting gauges and a request counter
in Prometheus text format, ``/health`` answers 200.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubState:
    def __init__(self, *, model: str, slots: int, token_s: float, reject_over: int | None):
        self.model = model
        self.token_s = token_s
        self.reject_over = reject_over  # waiting requests above this get 429
        self.slots = threading.Semaphore(slots)
        self.lock = threading.Lock()
        self.running = self.waiting = self.total = 0
        self.bodies: list[dict] = []


class _Handler(BaseHTTPRequestHandler):
    server_version = "stub/1"
    state: StubState

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, "text/plain", b"")
        elif self.path == "/v1/models":
            self._send(200, "application/json", json.dumps({"object": "list", "data": [
                {"id": self.state.model, "object": "model"}]}).encode())
        elif self.path == "/metrics":
            s = self.state
            text = ("# HELP stub:num_requests_running Requests being served.\n# TYPE stub:num_requests_running gauge\n"
                    f'stub:num_requests_running{{model_name="{s.model}"}} {s.running}\n'
                    f'stub:num_requests_waiting{{model_name="{s.model}"}} {s.waiting}\n'
                    f'stub:request_success_total{{model_name="{s.model}",finished_reason="length"}} {s.total}\n'
                    "stub:not_a_number NaN\n")
            self._send(200, "text/plain; version=0.0.4", text.encode())
        else:
            self._send(404, "application/json", b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:
        s = self.state
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        with s.lock:
            s.bodies.append(body)
        if self.path != "/v1/completions" or body.get("model") != s.model:
            self._send(404, "application/json", b'{"error": {"message": "no such model"}}')
            return
        with s.lock:
            if s.reject_over is not None and s.waiting >= s.reject_over:
                self._send(429, "application/json", b'{"error": {"message": "queue full"}}')
                return
            s.waiting += 1
        s.slots.acquire()
        with s.lock:
            s.waiting -= 1
            s.running += 1
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            n = int(body["max_tokens"])
            for i in range(n):
                time.sleep(s.token_s)
                choice = {"index": 0, "text": f" w{i}", "finish_reason": "length" if i == n - 1 else None}
                chunk = {"choices": [choice], "usage": {"prompt_tokens": len(body["prompt"]), "completion_tokens": i + 1}}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            with s.lock:
                s.total += 1  # counted before the client can see the end, as a server counts a finished request
            self.wfile.write(b"data: [DONE]\n\n")
        finally:
            with s.lock:
                s.running -= 1
            s.slots.release()

    def _send(self, code: int, kind: str, payload: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class StubServer:
    """Run on 127.0.0.1:<free port> in a background thread: ``with StubServer(...) as stub: stub.url``."""

    def __init__(self, *, model: str = "stub", slots: int = 2, token_s: float = 0.02, reject_over: int | None = None):
        self.state = StubState(model=model, slots=slots, token_s=token_s, reject_over=reject_over)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "StubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

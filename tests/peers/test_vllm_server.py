"""Starting and stopping a peer server, with a stand-in for vLLM (no peer virtualenv needed).

The stand-in is a Python process that starts a 'worker' child (as vLLM starts its engine core) and serves
/health; the server object must wait for it, and stop must end the whole process group, worker included.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from causalsre.errors import UserError
from harness.config import EngineSection
from harness.peers.vllm_server import VllmServer

STAND_IN = """
import http.server, subprocess, sys
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[2], "w").write(str(worker.pid))
if sys.argv[3] == "fail":
    print("stand-in: refusing to start", flush=True)
    sys.exit(3)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


@pytest.fixture
def fake_venv(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "models" / "tiny").mkdir(parents=True)
    (venv / "models" / "tiny" / "config.json").write_text("{}")
    (venv / ".installed").touch()
    return venv


def _server(fake_venv, tmp_path, monkeypatch, mode: str) -> tuple[VllmServer, object]:
    pid_file = tmp_path / f"worker-{mode}.pid"
    server = VllmServer(EngineSection(), venv=fake_venv, log_path=tmp_path / "server.log")
    monkeypatch.setattr(server, "command",
                        lambda: [sys.executable, "-c", STAND_IN, str(server.port), str(pid_file), mode])
    return server, pid_file


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of a live parent is a zombie until reaped: it counts as gone.
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(") ", 1)[1][0] != "Z"


def _wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc: Linux only")
def test_start_waits_for_health_and_stop_ends_the_whole_process_group(fake_venv, tmp_path, monkeypatch):
    server, pid_file = _server(fake_venv, tmp_path, monkeypatch, "serve")
    with server:
        import httpx

        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
        worker = int(pid_file.read_text())
        assert _alive(worker)
    assert server.process is None and _wait_gone(worker)
    server.stop()  # twice is fine


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc: Linux only")
def test_a_server_that_exits_while_starting_is_a_user_error_with_its_log(fake_venv, tmp_path, monkeypatch):
    server, pid_file = _server(fake_venv, tmp_path, monkeypatch, "fail")
    with pytest.raises(UserError) as info:
        server.start(timeout_s=60)
    assert "exited with status 3" in str(info.value) and "refusing to start" in str(info.value)
    assert _wait_gone(int(pid_file.read_text()))  # its worker did not outlive it


def test_a_missing_peer_virtualenv_is_a_user_error_naming_the_make_target(tmp_path):
    with pytest.raises(UserError) as info:
        VllmServer(EngineSection(), venv=tmp_path / "absent")
    assert "make peer-vllm" in str(info.value)

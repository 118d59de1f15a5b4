"""`causalsre serve` as a user starts it: a subprocess on a free port; SIGKILL mid-load keeps flushed telemetry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from harness.writer import effective_status

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90   # a bound for a shared machine, not a performance figure

CONFIG = """
name = "served"
[engine]
model = "tiny"
max_num_seqs = 4
[serve]
model_name = "tiny-served"
flush_interval_s = 0.2
"""


def _start(args: list[str]) -> tuple[subprocess.Popen, dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-m", "causalsre", "serve", "--port", "0", "--json", *args],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(child.stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    if not line or not line[0].strip():
        child.kill()
        raise AssertionError(f"server did not start: {child.stderr.read()}")
    return child, json.loads(line[0])


def test_help_has_an_example(capsys):
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example: causalsre serve" in out and "--api-key" in out and "127.0.0.1" in out


@pytest.mark.parametrize("args, words", [
    (["missing.toml"], "does not exist"),
    (["--max-queue", "0"], "--max-queue"),
    (["--api-key", " "], "--api-key is empty"),
])
def test_bad_flags_are_one_line_errors(capsys, args, words):
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and "Traceback" not in err


def test_bad_serve_section_is_a_user_error(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[serve]\nmax_tokens_limit = 0\n")
    assert main(["serve", str(cfg)]) == 2
    assert "serve.max_tokens_limit" in capsys.readouterr().err


def test_sigkill_mid_load_keeps_the_flushed_rows(tmp_path):
    cfg = tmp_path / "serve.toml"
    cfg.write_text(CONFIG)
    db = tmp_path / "serve.duckdb"
    child, info = _start([str(cfg), "--db", str(db)])
    try:
        assert info["model"] == "tiny-served" and info["host"] == "127.0.0.1" and info["run_id"]
        url = info["url"]
        done = []
        for i in range(6):
            r = httpx.post(f"{url}/v1/completions", json={"prompt": f"warm {i}", "max_tokens": 4},
                           headers={"X-Tenant": "kill-test"}, timeout=60)
            assert r.status_code == 200
            done.append(r.json())
        # Load in flight while it dies: streams that will not finish.
        streams = [threading.Thread(target=_drain_stream, args=(url,), daemon=True) for _ in range(4)]
        for t in streams:
            t.start()
        time.sleep(1.0)   # five flush intervals: the six finished requests are on disk by now
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    con = connect_readonly(db)
    run_id = info["run_id"]
    assert effective_status(con, run_id) == "incomplete"
    rows = con.execute("SELECT tenant, status, output_tokens FROM requests WHERE run_id = ? AND tenant = 'kill-test'",
                       [run_id]).fetchall()
    tokens = con.execute("SELECT count(*) FROM tokens t JOIN requests r USING (run_id, request_id) "
                         "WHERE r.tenant = 'kill-test'").fetchone()[0]
    settings = con.execute("SELECT count(*) FROM run_settings WHERE run_id = ?", [run_id]).fetchone()[0]
    con.close()
    assert sorted(rows) == [("kill-test", "ok", 4)] * 6
    assert tokens == 24 and settings > 0


def _drain_stream(url: str) -> None:
    body = {"prompt": "never finishes", "max_tokens": 1000, "stream": True}
    try:
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as r:
            for _ in r.iter_lines():
                pass
    except httpx.HTTPError:
        pass   # the server died under us: that is the point

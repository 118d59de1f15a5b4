"""`db import vllm-log` on the log of the vLLM this machine has (the peer virtualenv), written while the test runs.

The committed real log (tests/telemetry/test_importers_vllm_log_real.py) is vLLM 0.32.0's; this one is whatever
`make peer-vllm` installed, so a newer vLLM that changes its lines fails here first. It skips, saying why,
where `.venv-vllm` is not built or the platform cannot run vLLM's CPU build.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import httpx
import pytest

from harness.config import EngineSection
from harness.peers.realfiles import BASE_ENGINE
from harness.peers.vllm_server import VllmServer, unavailable_reason

STARTS_A_REAL_VLLM = True  # tests/peers/conftest.py: one real vLLM at a time across workers

REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"vLLM peer unavailable: {REASON}")
BUSY_S = 25.0  # vLLM logs its stats line every 10 s, and only while busy: two or more lines


def _keep_busy(url: str, until: float) -> None:
    with httpx.Client(timeout=60.0) as client:
        while time.monotonic() < until:
            client.post(f"{url}/v1/completions", json={"model": "causalsre", "prompt": "hello " * 40,
                                                       "max_tokens": 32, "ignore_eos": True})


def test_the_live_servers_log_imports_with_its_settings_and_stats(tmp_path):
    from causalsre.telemetry.importers import vllm_log

    log = tmp_path / "vllm.log"
    with VllmServer(EngineSection(**{**BASE_ENGINE, "max_num_seqs": 2}), log_path=log) as server:
        until = time.monotonic() + BUSY_S
        clients = [threading.Thread(target=_keep_busy, args=(server.url, until)) for _ in range(3)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
    batch = vllm_log.parse([log], year=datetime.now(timezone.utc).year)
    assert batch.config["stats_lines"] >= 2, batch.config
    assert len(batch.config["starts"]) == 1 and batch.config["damaged_lines"] == {}
    settings = {r.setting: r.value for r in batch.settings.itertuples()}
    assert settings["max_num_seqs"] == 2.0 and settings["max_num_batched_tokens"] == 1024.0
    running = batch.samples[batch.samples["metric"] == "vllm:num_requests_running"]
    assert running["value"].max() >= 1 and set(running["labels_json"]) == {json.dumps({"engine": "0",
                                                                                     "model_name": "causalsre"})}
    assert batch.config["http"].get("POST /v1/completions 200", 0) > 0

"""`causalsre bench engine --peer vllm`: our engine and the peer vLLM on the same shape and the same requests.

The known answers are structural (never wall-clock figures): both systems produce every requested token of
every request, and each ratio is ours / vLLM of the figures reported beside it. Where `.venv-vllm` is absent
the command prints why and reports `skipped` (exit 0), which the first test checks on any machine.
"""

from __future__ import annotations

import json

import pytest

import harness.peers.vllm_server as vllm_server
from causalsre.cli.main import main
from harness.engine.benchmark.workload import mixed_workload
from harness.engine.config import ModelConfig

STARTS_A_REAL_VLLM = True  # tests/peers/conftest.py: one real vLLM at a time across workers

REASON = vllm_server.unavailable_reason()
ARGS = ["bench", "engine", "--peer", "vllm", "--preset", "tiny", "--num-requests", "8", "--prompt-lengths", "16:64",
        "--output-lengths", "8:24", "--rounds", "1", "--max-num-seqs", "8", "--max-num-batched-tokens", "128",
        "--chunk-size", "64", "--json"]


def test_without_the_peer_virtualenv_it_is_skipped_with_the_reason(monkeypatch, capsys):
    monkeypatch.setattr(vllm_server, "unavailable_reason", lambda venv=None: "/nowhere/.venv-vllm is not built")
    assert main(ARGS) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report == {"peer": "vllm", "skipped": "vLLM peer unavailable: /nowhere/.venv-vllm is not built "
                                                 "(build it with `make peer-vllm`, or point CAUSALSRE_VLLM_VENV at an "
                                                 "existing one)"}
    assert "skipped: vLLM peer unavailable" in captured.err


def test_requests_longer_than_vllms_context_are_refused_before_it_starts(capsys):
    if REASON is not None:
        pytest.skip(f"vLLM peer unavailable: {REASON}")
    args = [a if a != "16:64" else "1010:1020" for a in ARGS]  # + 8-24 outputs: past 1024
    assert main(args) == 0
    assert "longer than vLLM's 1024 positions" in json.loads(capsys.readouterr().out)["skipped"]


@pytest.mark.slow
@pytest.mark.skipif(REASON is not None, reason=f"vLLM peer unavailable: {REASON}")
def test_both_engines_serve_the_same_requests_and_the_ratios_are_ours_over_vllm(capsys):
    assert main(ARGS) == 0
    report = json.loads(capsys.readouterr().out)
    expected = sum(r.target_output_tokens for r in mixed_workload(8, ModelConfig.from_name("tiny").vocab_size, 0,
                                                                  (16, 64), (8, 24)))
    ours, vllm = report["ours"], report["vllm"]
    assert ours["output_tokens"] == expected and vllm["output_tokens"] == expected
    assert vllm["failed"] == 0 and vllm["short_outputs"] == 0
    assert "--max-num-seqs" in report["vllm_flags"] and report["limits"]["max_num_seqs"] == 8
    ratios = report["ratio_ours_over_vllm"]
    assert ratios["throughput"] == pytest.approx(ours["throughput_tok_s"] / vllm["throughput_tok_s"], rel=1e-2)
    assert ratios["p99_tpot"] == pytest.approx(ours["p99_tpot_s"] / vllm["p99_tpot_s"], rel=1e-2)
    for key in ("p50_ttft_s", "p99_ttft_s", "p50_tpot_s", "p99_tpot_s"):
        assert ours[key] > 0 and vllm[key] > 0

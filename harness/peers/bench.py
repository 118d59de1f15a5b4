"""``causalsre bench engine --peer vllm``: the embedded engine against the peer vLLM, same shape, same requests.

One run measures both on the same seeded mixed workload (:func:`harness.engine.benchmark.workload.mixed_workload`),
all requests arriving at t=0 (offline throughput), with the same scheduler limits (``max_num_seqs``, the token
budget per step, the chunk size):

* **ours**: the engine in this process (:func:`harness.engine.benchmark.run.run_engine`), telemetry off;
* **vLLM**: the peer server (``.venv-vllm``, dummy weights of the same preset's shape, ``--enforce-eager``)
  started here, every request streamed at once over ``/v1/completions`` (prompt token ids, ``max_tokens`` =
  the output length, ``ignore_eos``), times taken by the client when each chunk arrives.

So vLLM's figures include its HTTP, tokenizer-free detokenization and streaming path, and ours do not: the
ratio is what a user gets from each as shipped here, not a kernel comparison. Our engine runs its rounds
before vLLM starts (an idle vLLM still occupies its cores), then vLLM runs its rounds; each system's best
round is reported (a shared machine's bursts of load do not pick the winner).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Callable

from harness.engine.benchmark.workload import BenchRequest, mixed_workload, summarize

VLLM_BLOCK = 32  # vLLM 0.32's CPU attention takes blocks of a multiple of 32 tokens


class _Quiet:
    """stream_request reports events and tokens to an observer; the benchmark needs only the record."""

    def on_event(self, *args) -> None:
        pass

    def on_token(self, *args) -> None:
        pass

    def on_request_done(self, record) -> None:
        pass


def _best(rounds: list[dict]) -> dict:
    best = dict(max(rounds, key=lambda r: r["throughput_tok_s"] or 0.0))
    best["rounds_tok_s"] = [r["throughput_tok_s"] for r in rounds]
    return best


def run_vllm_requests(url: str, model: str, requests: list[BenchRequest], timeout_s: float = 900.0) -> dict:
    """Stream every request at once to ``url``; the summary (same arithmetic as the engine's) and failures."""
    import httpx

    from harness.http_target import RunClock, Target, stream_request
    from harness.workload import RequestSpec

    target = Target(url, model)
    clock = RunClock()

    async def go() -> list:
        limits = httpx.Limits(max_connections=len(requests) + 4, max_keepalive_connections=len(requests) + 4)
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=30.0), limits=limits) as client:
            specs = [RequestSpec(i, 0, len(r.prompt), r.target_output_tokens, None, 0) for i, r in enumerate(requests)]
            return await asyncio.gather(*(stream_request(client, target, spec, r.prompt, arrival_ns=0, clock=clock,
                                                         observer=_Quiet(), timeout_s=timeout_s)
                                          for spec, r in zip(specs, requests)))

    start_ns = clock.now_ns()
    records = asyncio.run(go())
    end_ns = clock.now_ns()
    done = [r for r in records if r.status == "ok" and r.first_token_ns is not None]
    summary = summarize([(r.first_token_ns * 1e-9, r.last_token_ns * 1e-9, r.output_tokens) for r in done],
                        start_ns * 1e-9, end_ns * 1e-9)
    summary["failed"] = len(records) - len(done)
    summary["short_outputs"] = sum(r.output_tokens != q.target_output_tokens for r, q in zip(records, requests))
    return summary


def vllm_engine_section(s: Any, requests: list[BenchRequest]):
    """The engine settings the peer vLLM is started with: the benchmark's limits, a KV pool for every request."""
    from harness.config import EngineSection

    from harness.peers.vllm_server import MAX_MODEL_LEN

    # vLLM refuses to start unless the pool holds one request of its whole context (MAX_MODEL_LEN tokens) beside
    # the block it keeps reserved; exactly MAX_MODEL_LEN tokens of blocks was refused.
    blocks = max(sum(-(-(len(r.prompt) + r.target_output_tokens) // VLLM_BLOCK) for r in requests),
                 -(-MAX_MODEL_LEN // VLLM_BLOCK)) + 8
    return EngineSection(model=s.preset, dtype=s.dtype, seed=s.seed, num_threads=s.threads,
                         max_num_seqs=s.max_num_seqs, max_num_batched_tokens=s.max_num_batched_tokens,
                         # the engine cuts prefill pieces to what the step's budget leaves: so does vLLM here
                         enable_chunked_prefill=True, chunk_size=min(s.chunk_size, s.max_num_batched_tokens),
                         policy="fcfs",
                         batching_mode="decode_first", num_kv_blocks=blocks, block_size=VLLM_BLOCK)


def run_peer_benchmark(s: Any, progress: Callable[[str], None] = lambda message: None) -> dict:
    """Ours against vLLM on ``s`` (a :class:`harness.engine.benchmark.run.BenchSettings`); the JSON report.

    A report with ``skipped`` (and no figures) where the peer virtualenv is absent or the platform cannot run it.
    """
    from harness.peers.vllm_server import unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        return {"peer": "vllm", "skipped": f"vLLM peer unavailable: {reason} (build it with `make peer-vllm`, "
                                           "or point CAUSALSRE_VLLM_VENV at an existing one)"}
    import torch

    from harness.engine.benchmark.run import _engine_config, run_engine
    from harness.engine.config import ModelConfig
    from harness.engine.engine import Engine
    from harness.engine.observer import NullObserver
    from harness.peers.vllm_server import MAX_MODEL_LEN, VllmServer

    if s.device != "cpu":
        return {"peer": "vllm", "skipped": f"the vLLM peer is its CPU build; --device {s.device} is not"}
    mc = ModelConfig.from_name(s.preset)
    requests = mixed_workload(s.num_requests, mc.vocab_size, s.seed, s.prompt_range, s.output_range)
    if max(len(r.prompt) + r.target_output_tokens for r in requests) > MAX_MODEL_LEN:
        return {"peer": "vllm", "skipped": f"requests longer than vLLM's {MAX_MODEL_LEN} positions: "
                                           "lower --prompt-lengths/--output-lengths"}
    warmup = mixed_workload(4, mc.vocab_size, s.seed + 7, (8, 64), (4, 8))
    torch.set_num_threads(s.threads)
    progress("building the engine")
    engine = Engine(_engine_config(s, requests), observer=NullObserver())
    run_engine(engine, warmup, id_base=1_000_000)
    section = vllm_engine_section(s, requests)
    ours: list[dict] = []
    theirs: list[dict] = []
    # Ours first, with no vLLM running: an idle vLLM server (API process, engine core, worker) stays
    # resident on the same two cores; interleaved, one system's figures would carry the other's idle cost.
    for rnd in range(s.rounds):
        progress(f"round {rnd + 1}/{s.rounds}: our engine")
        ours.append(run_engine(engine, requests, id_base=(rnd + 2) * 10_000_000)[0])
    del engine
    progress("starting vLLM from .venv-vllm (a minute or more on 2 cores)")
    server = VllmServer(section, served_model_name=s.preset)
    with server:
        run_vllm_requests(server.url, s.preset, warmup)  # first requests pay vLLM's lazy set-up
        for rnd in range(s.rounds):
            progress(f"round {rnd + 1}/{s.rounds}: vLLM")
            theirs.append(run_vllm_requests(server.url, s.preset, requests))
    a, b = _best(ours), _best(theirs)

    def ratio(x, y):
        return round(x / y, 3) if x is not None and y else None

    return {
        "peer": "vllm",
        "model": {"preset": s.preset, "parameters": mc.num_parameters(), "vllm_weights": "dummy (same shape)"},
        "workload": {"num_requests": s.num_requests, "seed": s.seed, "prompt_range": list(s.prompt_range),
                     "output_range": list(s.output_range), "arrivals": "all at t=0 (offline)", "rounds": s.rounds,
                     "order": "our rounds, then vLLM started and its rounds"},
        "machine": {"threads": s.threads, "dtype": s.dtype, "cpu_count": os.cpu_count(),
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                    "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "limits": {"max_num_seqs": s.max_num_seqs, "max_num_batched_tokens": section.max_num_batched_tokens,
                   "chunk_size": s.chunk_size},
        "vllm_flags": server.flags,
        "ours": a,
        "vllm": b,
        "ratio_ours_over_vllm": {"throughput": ratio(a["throughput_tok_s"], b["throughput_tok_s"]),
                                 "p50_ttft": ratio(a["p50_ttft_s"], b["p50_ttft_s"]),
                                 "p99_ttft": ratio(a["p99_ttft_s"], b["p99_ttft_s"]),
                                 "p50_tpot": ratio(a["p50_tpot_s"], b["p50_tpot_s"]),
                                 "p99_tpot": ratio(a["p99_tpot_s"], b["p99_tpot_s"])},
    }

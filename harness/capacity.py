"""Measuring the engine on this machine: saturated capacity (for ``load_fraction``) and the speed probe.

The engine is imported inside the functions so that importing the run loop does not import torch.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from harness.lengths import sample_lengths
from harness.sizing import engine_config, fit_to_model, max_position, vocab_size
from harness.stats import RunStats
from harness.workload import RequestSpec, prompt_token_ids


def calibrate_capacity(cfg, seed: int, *, max_seconds: float = 8.0) -> float:
    """Requests per second the engine completes when saturated with this workload's lengths.

    Submits a burst of ``2 x max_num_seqs`` requests at once (lengths drawn from the workload) to an engine
    that records nothing, and divides the requests finished by the time taken, on the engine's clock (the
    run's modelled clock when ``clock.mode = "modelled"``, so capacity is then the model's, not the machine's).
    """
    from harness.engine import Engine

    engine_cfg = engine_config(cfg)
    counter = RunStats({})
    engine = Engine(engine_cfg, observer=counter, clock=cfg.step_cost_model())
    rng = np.random.default_rng([seed, 42])
    count = min(2 * cfg.engine.max_num_seqs, cfg.engine.max_queue_len)
    prompts = sample_lengths(cfg.workload.prompt, rng, count)
    outputs = sample_lengths(cfg.workload.output, rng, count)
    vocab = vocab_size(cfg)
    started = engine.now_ns()
    limit = max_position(cfg)
    for rid in range(count):
        spec = fit_to_model(RequestSpec(rid, 0, int(prompts[rid]), int(outputs[rid]), None, 0), limit)
        engine.add_request(rid, prompt_token_ids(seed, rid, spec.prompt_tokens, vocab), spec.output_tokens)
    while engine.has_unfinished() and (engine.now_ns() - started) / 1e9 < max_seconds:
        if engine.step() is None:
            engine.advance_to(engine.now_ns() + 1_000_000)   # nothing runnable: let modelled time move
    elapsed = (engine.now_ns() - started) / 1e9
    return max(counter.num_ok, 1) / max(elapsed, 1e-6)


PROBE_BATCH, PROBE_PROMPT, PROBE_DECODE_STEPS = 8, 64, 24


def probe_speed(cfg) -> dict[str, Any]:
    """How fast this machine runs the run's model right now: a fixed mini-workload, independent of the knobs.

    Eight 64-token prompts are prefilled in one step and then decoded for 24 steps on a fresh engine with
    fixed batching settings (only model, device, dtype and threads come from ``cfg``). The median decode step
    and the prefill step are stored with the run (``runs.hardware_json -> 'speed_probe'``), so a replay can be
    compared with its recording on the same footing: a replay on a machine twice as fast sees half the load.
    Costs well under a second for the CPU presets.
    """
    from harness.engine import Engine, EngineConfig

    eng = cfg.engine
    blocks_per_seq = -(-(PROBE_PROMPT + PROBE_DECODE_STEPS + 1) // 16)
    engine = Engine(EngineConfig(model=eng.model, device=eng.device, dtype=eng.dtype, num_threads=eng.num_threads,
                                 seed=0, max_num_seqs=PROBE_BATCH, max_num_batched_tokens=PROBE_BATCH * PROBE_PROMPT,
                                 chunk_size=PROBE_PROMPT, num_kv_blocks=PROBE_BATCH * blocks_per_seq + 1,
                                 block_size=16, max_queue_len=PROBE_BATCH, request_timeout_s=None))
    vocab = vocab_size(cfg)
    for rid in range(PROBE_BATCH):
        engine.add_request(rid, prompt_token_ids(0, rid, PROBE_PROMPT, vocab), PROBE_DECODE_STEPS + 1)
    engine.step()  # warm-up: first-use costs (allocator, kernel build cache lookup) are not machine speed
    timings = []
    while engine.has_unfinished() and len(timings) < PROBE_DECODE_STEPS:
        started = time.perf_counter()
        engine.step()
        timings.append(time.perf_counter() - started)
    prefill = _timed_prefill(engine, vocab)
    return {"decode_step_ms": round(1e3 * float(np.median(timings)), 3), "prefill_step_ms": round(1e3 * prefill, 3),
            "batch": PROBE_BATCH, "prompt_tokens": PROBE_PROMPT, "model": eng.model, "num_threads": eng.num_threads}


def _timed_prefill(engine, vocab: int) -> float:
    while engine.has_unfinished():
        engine.step()
    for rid in range(PROBE_BATCH):
        engine.add_request(100 + rid, prompt_token_ids(1, rid, PROBE_PROMPT, vocab), 1)
    started = time.perf_counter()
    engine.step()
    elapsed = time.perf_counter() - started
    while engine.has_unfinished():
        engine.step()
    return elapsed


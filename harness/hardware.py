"""Describing the machine a run used, and measuring the engine's capacity on it."""

from __future__ import annotations

import os
import platform
import socket
import time
from typing import Any

import numpy as np


def hardware_info(device: str = "cpu") -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "writer_pid": os.getpid(),
    }
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda)
    return info


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gb() -> float | None:
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def calibrate_capacity(cfg, seed: int, *, max_seconds: float = 8.0) -> float:
    """Requests per second the engine completes when saturated with this workload's lengths.

    Submits a burst of ``2 x max_num_seqs`` requests at once (lengths drawn from the workload) to an engine
    that records nothing, and divides the requests finished by the time taken.
    """
    from harness.engine import Engine
    from harness.lengths import sample_lengths
    from harness.runner import engine_config, fit_to_model, max_position, vocab_size
    from harness.stats import RunStats
    from harness.workload import RequestSpec, prompt_token_ids

    engine_cfg = engine_config(cfg)
    counter = RunStats({})
    engine = Engine(engine_cfg, observer=counter)
    rng = np.random.default_rng([seed, 42])
    count = min(2 * cfg.engine.max_num_seqs, cfg.engine.max_queue_len)
    prompts = sample_lengths(cfg.workload.prompt, rng, count)
    outputs = sample_lengths(cfg.workload.output, rng, count)
    vocab = vocab_size(cfg)
    started = time.perf_counter()
    limit = max_position(cfg)
    for rid in range(count):
        spec = fit_to_model(RequestSpec(rid, 0, int(prompts[rid]), int(outputs[rid]), None, 0), limit)
        engine.add_request(rid, prompt_token_ids(seed, rid, spec.prompt_tokens, vocab), spec.output_tokens)
    while engine.has_unfinished() and time.perf_counter() - started < max_seconds:
        engine.step()
    elapsed = time.perf_counter() - started
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
    from harness.runner import vocab_size
    from harness.workload import prompt_token_ids

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
    from harness.workload import prompt_token_ids

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


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

"""How close decode steps come to what the hardware allows.

The roofline step time is the larger of (bytes a decode step must read / measured memory bandwidth) and
(its FLOPs / measured matmul FLOP rate), both measured here, on this machine, with the engine's threads
and dtype. ``fraction`` = roofline time / achieved time: 1.0 would be a step as fast as the hardware allows.
"""

from __future__ import annotations

import time

import torch

from harness.engine import cpu_kernels, hugepages
from harness.engine.config import ModelConfig


def _best_time(fn, repeats: int, device: torch.device) -> float:
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


@torch.inference_mode()
def measure_hardware(device: torch.device, dtype: torch.dtype, repeats: int = 5) -> dict:
    """Read bandwidth (bytes/s, a reduction over a buffer much larger than the caches) and matmul FLOP/s."""
    numel = (1 << 28) if device.type == "cuda" else (1 << 26)      # 1 GiB / 256 MiB of float32
    buf = torch.ones(numel, device=device, dtype=dtype)
    buf.sum()
    read_s = _best_time(lambda: buf.sum(), repeats, device)
    probe = "torch sum"
    if device.type == "cpu" and dtype == torch.float32 and cpu_kernels.available(device, dtype, 1):
        # also a load-bound C read (8 independent vector sums) on the engine's threads; the ceiling is the
        # faster of the two, since a probe slower than the hardware would overstate every fraction
        # on huge pages where the engine's weights and KV pool are (hugepages.py): a stream over 4 KiB pages
        # measured slower than the engine's own weight stream, which would again overstate the fractions
        threads = torch.get_num_threads()
        huge = hugepages.zeros((numel,), dtype=dtype)
        huge.fill_(1.0)
        cpu_kernels.read_probe(huge, threads)
        c_read_s = _best_time(lambda: cpu_kernels.read_probe(huge, threads), repeats, device)
        if c_read_s < read_s:
            read_s = c_read_s
            probe = "C read loop, huge pages" if huge.data_ptr() % hugepages.HUGE_PAGE == 0 else "C read loop"
        del huge
    bandwidth = numel * buf.element_size() / read_s
    del buf
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    mm_s = _best_time(lambda: a @ b, repeats, device)
    return {"bandwidth_bytes_s": bandwidth, "matmul_flop_s": 2 * n ** 3 / mm_s, "matmul_n": n,
            "bandwidth_probe": probe}


def best_hardware(probes: list[dict]) -> dict:
    """The ceiling over several probes spread through a benchmark, with their spread.

    A roofline is what the hardware *can* do; on a shared machine a probe that ran while another process held a
    core understates it (then fractions come out above 1). The best probe is the honest ceiling, and the spread
    (worst / best) says how much the machine moved while the benchmark ran.
    """
    if not probes:
        raise ValueError("best_hardware needs at least one probe")
    fastest = max(probes, key=lambda p: p["bandwidth_bytes_s"])
    best = {"bandwidth_bytes_s": fastest["bandwidth_bytes_s"], "bandwidth_probe": fastest.get("bandwidth_probe"),
            "matmul_flop_s": max(p["matmul_flop_s"] for p in probes), "matmul_n": probes[0]["matmul_n"]}
    best["probes"] = len(probes)
    best["bandwidth_spread"] = min(p["bandwidth_bytes_s"] for p in probes) / best["bandwidth_bytes_s"]
    best["matmul_spread"] = min(p["matmul_flop_s"] for p in probes) / best["matmul_flop_s"]
    return best


def decode_step_cost(config: ModelConfig, batch: int, context_tokens: int, dtype_bytes: int) -> tuple[int, int]:
    """(bytes read, FLOPs) of one decode step: every weight once (embedding rows only for the batch), the
    K/V of ``context_tokens`` cached tokens in total, and 2 FLOPs per weight per token plus attention."""
    h, d = config.hidden_size, config.head_dim
    dense_weights = config.num_parameters() - config.vocab_size * h
    kv_bytes = context_tokens * config.num_layers * 2 * config.num_kv_heads * d * dtype_bytes
    weight_bytes = (dense_weights + batch * h) * dtype_bytes
    flops = 2 * dense_weights * batch + 4 * context_tokens * config.num_heads * d * config.num_layers
    return weight_bytes + kv_bytes, flops


def roofline_seconds(config: ModelConfig, batch: int, context_tokens: int, dtype_bytes: int,
                     hardware: dict) -> float:
    nbytes, flops = decode_step_cost(config, batch, context_tokens, dtype_bytes)
    return max(nbytes / hardware["bandwidth_bytes_s"], flops / hardware["matmul_flop_s"])

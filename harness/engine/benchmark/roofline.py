"""How close decode steps come to what the hardware allows.

The roofline step time is the larger of (bytes a decode step must read / memory bandwidth) and (its FLOPs /
matmul FLOP rate), both measured here, on this machine, with the engine's threads and dtype. ``fraction`` =
roofline time / achieved time: 1.0 would be a step as fast as the hardware allows.

A roofline's ceilings are the *attainable peaks*, so each probe is the best of several repeats, the
benchmark takes probes before, between and after its phases (run.py), and the ceiling is the best probe;
the spread (worst / best probe) says how much the machine moved meanwhile. The compute ceiling is a GEMM
over **the model's own projection shapes** (one layer's four matrices and the ``lm_head``, weighted as a
step runs them) at enough rows to be compute-bound, through the fastest GEMM this torch has for each
shape. Until 2026-12-02 it was one 1024^3 sgemm, a shape the model never runs, which moved from 67.9 to
110.2 GFLOP/s between two quiet runs; it is still measured, and every fraction is also reported against it
(``*_sgemm1024``) so the change of yardstick stays visible.
"""

from __future__ import annotations

import functools
import time

import torch
import torch.nn.functional as F

from harness.engine import cpu_kernels, hugepages
from harness.engine.config import ModelConfig

# rows of the model-shape GEMM probe: 2 * 256 FLOPs per 4-byte weight is far past the ridge point
# (bandwidth / FLOP rate, ~4 FLOP/byte on the CPUs measured), so the probe measures compute, not memory
GEMM_ROWS = {"cpu": 256, "cuda": 4096}


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


def _bandwidth(device: torch.device, dtype: torch.dtype, repeats: int) -> tuple[float, str]:
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
    return numel * buf.element_size() / read_s, probe


def projection_shapes(config: ModelConfig) -> list[tuple[int, int, int]]:
    """(out, in, times a step runs it) of every projection of a decode step."""
    h, q, kv = config.hidden_size, config.num_heads * config.head_dim, config.num_kv_heads * config.head_dim
    layers = config.num_layers
    return [(q + 2 * kv, h, layers), (h, q, layers), (2 * config.intermediate_size, h, layers),
            (h, config.intermediate_size, layers), (config.vocab_size, h, 1)]


def _gemm_candidates(w: torch.Tensor, rows: int):
    """The GEMMs this torch can run ``x @ w.T`` with: its default, and oneDNN's packed one on the CPU (what
    the engine's long prefill chunks use)."""
    yield "torch linear", lambda x: F.linear(x, w)
    if w.device.type == "cpu" and w.dtype == torch.float32 and torch.backends.mkldnn.is_available() \
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
        packed = torch.ops.mkldnn._reorder_linear_weight(w, rows)
        yield "oneDNN packed", lambda x: torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [None], "")


@functools.lru_cache(maxsize=2)
def _gemm_operands(config: ModelConfig, device: torch.device, dtype: torch.dtype, rows: int) -> list:
    """Seeded weights and inputs of the probe's shapes, with their GEMM candidates, built once per benchmark
    (the values do not matter, the shapes do)."""
    gen = torch.Generator().manual_seed(0)
    operands = []
    for out_f, in_f, times in projection_shapes(config):
        w = torch.randn(out_f, in_f, generator=gen).to(device=device, dtype=dtype)
        x = torch.randn(rows, in_f, generator=gen).to(device=device, dtype=dtype)
        operands.append((2.0 * rows * out_f * in_f, times, x, list(_gemm_candidates(w, rows))))
    return operands


def model_gemm_rate(config: ModelConfig, device: torch.device, dtype: torch.dtype, repeats: int) -> tuple[float, str]:
    """FLOP/s of the step's projection mix at GEMM_ROWS rows: the best time of each shape over the available
    GEMMs, weighted by how often a step runs it."""
    rows = GEMM_ROWS.get(device.type, GEMM_ROWS["cuda"])
    flops = seconds = 0.0
    used = set()
    for shape_flops, times, x, candidates in _gemm_operands(config, device, dtype, rows):
        best, name = float("inf"), ""
        for label, fn in candidates:
            fn(x)
            t = _best_time(lambda: fn(x), repeats, device)
            if t < best:
                best, name = t, label
        used.add(name)
        flops += shape_flops * times
        seconds += best * times
    return flops / seconds, ", ".join(sorted(used))


@torch.inference_mode()
def measure_hardware(device: torch.device, dtype: torch.dtype, repeats: int = 5,
                     config: ModelConfig | None = None) -> dict:
    """One probe: read bandwidth (bytes/s over a buffer much larger than the caches), the 1024^3 sgemm's
    FLOP/s, and with ``config`` the model-shape GEMM's (the compute ceiling), each the best of ``repeats``."""
    bandwidth, probe = _bandwidth(device, dtype, repeats)
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    sgemm = 2 * n ** 3 / _best_time(lambda: a @ b, repeats, device)
    result = {"bandwidth_bytes_s": bandwidth, "bandwidth_probe": probe, "sgemm_flop_s": sgemm, "matmul_n": n,
              "matmul_flop_s": sgemm, "matmul_probe": f"{n}^3 matmul"}
    if config is not None:
        rate, gemms = model_gemm_rate(config, device, dtype, repeats)
        result.update(matmul_flop_s=rate, matmul_probe=f"model projection shapes x {GEMM_ROWS.get(device.type, 4096)}"
                                                       f" rows ({gemms})")
    return result


def best_hardware(probes: list[dict]) -> dict:
    """The ceiling over several probes spread through a benchmark, with their spread.

    A roofline is what the hardware *can* do; on a shared machine a probe that ran while another process held a
    core understates it (then fractions come out above 1). The best probe is the honest ceiling, and the spread
    (worst / best) says how much the machine moved while the benchmark ran.
    """
    if not probes:
        raise ValueError("best_hardware needs at least one probe")
    fastest = max(probes, key=lambda p: p["bandwidth_bytes_s"])
    compute = max(probes, key=lambda p: p["matmul_flop_s"])
    best = {"bandwidth_bytes_s": fastest["bandwidth_bytes_s"], "bandwidth_probe": fastest.get("bandwidth_probe"),
            "matmul_flop_s": compute["matmul_flop_s"], "matmul_probe": compute.get("matmul_probe"),
            "matmul_n": probes[0]["matmul_n"], "probes": len(probes)}
    best["bandwidth_spread"] = min(p["bandwidth_bytes_s"] for p in probes) / best["bandwidth_bytes_s"]
    best["matmul_spread"] = min(p["matmul_flop_s"] for p in probes) / best["matmul_flop_s"]
    if all("sgemm_flop_s" in p for p in probes):
        best["sgemm_flop_s"] = max(p["sgemm_flop_s"] for p in probes)
        best["sgemm_spread"] = min(p["sgemm_flop_s"] for p in probes) / best["sgemm_flop_s"]
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
                     hardware: dict, flop_key: str = "matmul_flop_s") -> float:
    nbytes, flops = decode_step_cost(config, batch, context_tokens, dtype_bytes)
    return max(nbytes / hardware["bandwidth_bytes_s"], flops / hardware[flop_key])

"""CUDA graphs for decode-only steps: one launch per step instead of hundreds.

On a GPU a decode step of a small batch is bound by Python and kernel launches, not by the GPU: on an H200 the
0.9B preset took 8.7 ms per step at batch 1 against a 0.45 ms roofline (about 400 kernels). As in vLLM and
nano-vllm, decode-only steps replay a captured graph instead. A graph has fixed shapes, so batches are padded
up to a batch bucket (1, 2, 4, 8, then multiples of 16) and contexts up to a width bucket (a power of two of
blocks); each (batch, width) pair is captured the first time it is needed (two warm-up forwards and one
capture, tens of milliseconds), and all graphs share one memory pool. Padded rows write their K/V into a
scratch block at the end of the pool that no sequence owns, and read key 0 only, so they cannot touch real
sequences. Steps with prefill chunks, and batches or contexts beyond the largest bucket, run eagerly.

Status: **opt-in** (``CAUSALSRE_CUDA_GRAPHS=1``). The padding and scratch-block logic is tested on the CPU with
an eager replay (tests/engine/test_cuda_graphs.py), but no GPU was available after this was written, so the
captured path has not run on one yet; the ``gpu``-marked test there (graph tokens equal eager tokens) and the
engine benchmark on CUDA are what to run before turning it on by default.
"""

from __future__ import annotations

import os

import torch

from harness.engine.model import Llama, PagedBatch

ENABLE_ENV = "CAUSALSRE_CUDA_GRAPHS"
MAX_BATCH = 512


def enabled(device: torch.device) -> bool:
    if device.type != "cuda":
        return False
    return os.environ.get(ENABLE_ENV, "0").strip().lower() in ("1", "true", "on", "yes")


def batch_bucket(n: int) -> int | None:
    if n > MAX_BATCH:
        return None
    for b in (1, 2, 4, 8):
        if n <= b:
            return b
    return -(-n // 16) * 16


def width_bucket(blocks: int, max_blocks: int) -> int | None:
    width = 4
    while width < blocks:
        width *= 2
    return min(width, max_blocks) if blocks <= max_blocks else None


class DecodeGraphs:
    """Captured decode steps keyed by (batch bucket, width bucket in blocks)."""

    def __init__(self, model: Llama, block_size: int, max_blocks: int, device: torch.device) -> None:
        self.model, self.block_size, self.max_blocks, self.device = model, block_size, max_blocks, device
        self.pool = None   # one memory pool for every graph, made at the first capture
        self.graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, PagedBatch, torch.Tensor]] = {}
        self.captures = 0
        self.replays = 0

    def reset(self) -> None:
        """Forget every graph (they hold the address of the KV pool, which a resize replaces)."""
        self.graphs.clear()

    def key(self, num_decode: int, context_blocks: int) -> tuple[int, int] | None:
        b, w = batch_bucket(num_decode), width_bucket(context_blocks, self.max_blocks)
        return None if b is None or w is None else (b, w)

    def _static_batch(self, key: tuple[int, int], scratch_slot: int) -> PagedBatch:
        """The fixed-shape input buffers a graph reads; :meth:`run` copies each step's batch into them."""
        b, w = key
        length = w * self.block_size
        dev, long = self.device, torch.long
        mask = torch.zeros(b, 1, 1, length, dtype=torch.bool, device=dev)
        mask[..., 0] = True
        return PagedBatch(
            input_ids=torch.zeros(b, dtype=long, device=dev), positions=torch.zeros(b, dtype=long, device=dev),
            slot_mapping=torch.full((b,), scratch_slot, dtype=long, device=dev), num_decode=b,
            decode_slots=torch.zeros(b, length, dtype=long, device=dev), decode_mask=mask,
            token_tables=None, token_lengths=None, block_size=self.block_size,
            prefill_gather=None, prefill_scatter=None, prefill_shape=(0, 0), prefill_slots=None,
            prefill_mask=None, sample_index=torch.arange(b, dtype=long, device=dev))

    def _capture(self, key: tuple[int, int], kv_caches: torch.Tensor, scratch_slot: int):
        static = self._static_batch(key, scratch_slot)
        dev = self.device
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        side = torch.cuda.Stream(device=dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):
            for _ in range(2):   # warm-up: lazy initialisation and autotuning stay out of the graph
                self.model.forward_paged(static, kv_caches)
        torch.cuda.current_stream(dev).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            logits = self.model.forward_paged(static, kv_caches)
        self.captures += 1
        return graph, static, logits

    def run(self, key: tuple[int, int], host: PagedBatch, kv_caches: torch.Tensor, scratch_slot: int) -> torch.Tensor:
        """Logits [n, V] of a decode-only batch prepared on the host (its slots and mask not yet padded)."""
        entry = self.graphs.get(key)
        if entry is None:
            entry = self.graphs[key] = self._capture(key, kv_caches, scratch_slot)
        graph, static, logits = entry
        n, length = host.num_decode, host.decode_slots.shape[1]
        static.input_ids[:n].copy_(host.input_ids, non_blocking=True)
        static.positions[:n].copy_(host.positions, non_blocking=True)
        static.slot_mapping.fill_(scratch_slot)
        static.slot_mapping[:n].copy_(host.slot_mapping, non_blocking=True)
        static.decode_slots.zero_()
        static.decode_slots[:n, :length].copy_(host.decode_slots, non_blocking=True)
        static.decode_mask.zero_()
        static.decode_mask[..., 0] = True
        static.decode_mask[:n, :, :, :length].copy_(host.decode_mask, non_blocking=True)
        graph.replay()
        self.replays += 1
        return logits[:n]

"""Turns a scheduled step into tensors, runs one forward for the whole batch, and samples greedily.

Owns the model and the paged KV pool ``[layers, num_blocks * block_size, 2, Hkv, D]``. Index tensors are
built on the CPU from the block tables (one small Python pass over the step's tokens) and moved to the
device in one go; everything per layer happens in torch.
"""

from __future__ import annotations

import torch

from harness.engine import cpu_kernels, cuda_graphs, hugepages
from harness.engine.config import EngineConfig, ModelConfig
from harness.engine.model import Llama, PagedBatch, can_pack_for_cpu
from harness.engine.scheduler import ScheduledChunk


class ModelRunner:
    def __init__(self, model_config: ModelConfig, config: EngineConfig) -> None:
        self.model_config = model_config
        self.device = torch.device(config.device)
        self.dtype = getattr(torch, config.dtype)
        self.block_size = config.block_size
        model = Llama(model_config)
        model.init_weights(config.seed)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        if can_pack_for_cpu(self.device, self.dtype):
            self.model.pack_for_cpu()
        # CUDA graphs pad batches with rows that write into one scratch block at the end of the pool
        self.graphs = None
        self.scratch_blocks = 0
        if cuda_graphs.enabled(self.device):
            self.scratch_blocks = 1
            max_blocks = -(-model_config.max_position // self.block_size)
            self.graphs = cuda_graphs.DecodeGraphs(self.model, self.block_size, max_blocks, self.device)
        self.kv_caches = self._allocate(config.num_kv_blocks)
        # CPU float32: the C kernels run the step (attention straight from the block pool, fused norms, rotary
        # and cache writes, matrix-vector projections); elsewhere, or without a compiler, the torch path
        self.use_cpu_kernels = cpu_kernels.available(self.device, self.dtype, model_config.num_heads)
        if self.use_cpu_kernels:
            self.model.pack_panels()

    def _allocate(self, num_blocks: int) -> torch.Tensor:
        c = self.model_config
        shape = (c.num_layers, (num_blocks + self.scratch_blocks) * self.block_size, 2, c.num_kv_heads, c.head_dim)
        if self.device.type == "cpu":     # on huge pages: attention streams the pool like the weights (hugepages.py)
            return hugepages.zeros(shape, dtype=self.dtype)
        return torch.zeros(shape, device=self.device, dtype=self.dtype)

    @property
    def num_blocks(self) -> int:
        return self.kv_caches.shape[1] // self.block_size - self.scratch_blocks

    @property
    def scratch_slot(self) -> int:
        return self.kv_caches.shape[1] - self.block_size

    def resize_kv(self, num_blocks: int) -> None:
        """Grow the pool keeping its contents; a smaller pool keeps the tensor (the ids beyond it go unused)."""
        if num_blocks > self.num_blocks:
            bigger = self._allocate(num_blocks)
            real = self.num_blocks * self.block_size
            bigger[:, :real] = self.kv_caches[:, :real]
            self.kv_caches = bigger
            if self.graphs is not None:
                self.graphs.reset()

    def _slots(self, table: list[int], start: int, stop: int) -> list[int]:
        bs = self.block_size
        return [table[p // bs] * bs + p % bs for p in range(start, stop)]

    def _context_slots(self, tables: list[list[int]], lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded cache slots [S, L] of each sequence's context, and the key-is-real mask [S, L]."""
        width = max(-(-n // self.block_size) for n in lengths)
        padded = torch.tensor([t[:width] + [0] * (width - len(t[:width])) for t in tables], dtype=torch.long)
        offsets = torch.arange(self.block_size, dtype=torch.long)
        slots = (padded.unsqueeze(-1) * self.block_size + offsets).flatten(1)       # [S, width*bs]
        keys = torch.arange(slots.shape[1], dtype=torch.long)
        return slots, keys

    def prepare(self, chunks: list[ScheduledChunk], on_device: bool = True) -> tuple[PagedBatch, list[int]]:
        """The step's tensors (on the model's device, or left on the host for a graph replay to copy), and for
        each input chunk the row of its logits (-1 if it does not sample)."""
        decodes = [i for i, c in enumerate(chunks) if not c.is_prefill]
        prefills = [i for i, c in enumerate(chunks) if c.is_prefill]
        ids, positions, slots, sample_rows = [], [], [], [-1] * len(chunks)
        sample_index = []
        for i in decodes:
            c = chunks[i]
            ids.append(c.seq.token_ids[c.start])
            positions.append(c.start)
            slots.extend(self._slots(c.seq.block_table, c.start, c.start + 1))
            sample_rows[i] = len(sample_index)
            sample_index.append(len(ids) - 1)
        for i in prefills:
            c = chunks[i]
            stop = c.start + c.num_tokens
            ids.extend(c.seq.token_ids[c.start:stop])
            positions.extend(range(c.start, stop))
            slots.extend(self._slots(c.seq.block_table, c.start, stop))
            if c.samples:
                sample_rows[i] = len(sample_index)
                sample_index.append(len(ids) - 1)
        sd = len(decodes)
        decode_slots = decode_mask = token_tables = token_lengths = None
        if self.use_cpu_kernels:
            # one attention call for the step: every token is a query over its sequence's table, up to itself
            tables, lengths = [], []
            for i in decodes + prefills:
                c = chunks[i]
                tables.extend([c.seq.block_table] * c.num_tokens)
                lengths.extend(range(c.start + 1, c.start + c.num_tokens + 1))
            width = max(len(t) for t in tables)
            token_tables = torch.tensor([t + [0] * (width - len(t)) for t in tables], dtype=torch.int32)
            token_lengths = torch.tensor(lengths, dtype=torch.int32)
        elif sd:
            lengths = [chunks[i].start + 1 for i in decodes]
            decode_slots, keys = self._context_slots([chunks[i].seq.block_table for i in decodes], lengths)
            decode_mask = (keys < torch.tensor(lengths).unsqueeze(1)).view(sd, 1, 1, -1)
        gather = scatter = prefill_slots = prefill_mask = None
        shape = (0, 0)
        if prefills and token_tables is None:
            sizes = [chunks[i].num_tokens for i in prefills]
            starts = torch.tensor([chunks[i].start for i in prefills])
            sp, qp = len(prefills), max(sizes)
            n = torch.tensor(sizes)
            offsets = torch.cumsum(n, 0) - n + sd                                  # first flat token of each
            j = torch.arange(qp)
            real = j.unsqueeze(0) < n.unsqueeze(1)                                 # [Sp, Qp]
            gather = (offsets.unsqueeze(1) + torch.minimum(j.unsqueeze(0), (n - 1).unsqueeze(1))).flatten()
            scatter = (torch.arange(sp).unsqueeze(1) * qp + j.unsqueeze(0))[real]
            prefill_slots, keys = self._context_slots([chunks[i].seq.block_table for i in prefills],
                                                      [chunks[i].start + s for i, s in zip(prefills, sizes)])
            last_key = starts.unsqueeze(1) + torch.minimum(j.unsqueeze(0), (n - 1).unsqueeze(1))   # [Sp, Qp]
            mask = keys.view(1, 1, -1) <= last_key.unsqueeze(-1)                   # [Sp, Qp, Lp]
            group = self.model_config.num_heads // self.model_config.num_kv_heads
            prefill_mask = mask.repeat_interleave(group, dim=1).unsqueeze(1)        # [Sp, 1, Qp*G, Lp]
            shape = (sp, qp)
        dev = self.device

        def to_dev(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None or not on_device or dev.type == "cpu":    # .to(cpu) is a no-op, but a dispatch
                return t
            return t.to(dev, non_blocking=True)

        batch = PagedBatch(
            input_ids=to_dev(torch.tensor(ids, dtype=torch.long)),
            positions=to_dev(torch.tensor(positions, dtype=torch.long)),
            slot_mapping=to_dev(torch.tensor(slots, dtype=torch.long)),
            num_decode=sd, decode_slots=to_dev(decode_slots), decode_mask=to_dev(decode_mask),
            token_tables=token_tables, token_lengths=token_lengths, block_size=self.block_size,
            prefill_gather=to_dev(gather), prefill_scatter=to_dev(scatter), prefill_shape=shape,
            prefill_slots=to_dev(prefill_slots), prefill_mask=to_dev(prefill_mask),
            sample_index=to_dev(torch.tensor(sample_index, dtype=torch.long)),
        )
        return batch, sample_rows

    def _forward(self, chunks: list[ScheduledChunk]) -> tuple[torch.Tensor, list[int]]:
        if self.graphs is not None and all(not c.is_prefill for c in chunks):
            host, rows = self.prepare(chunks, on_device=False)
            key = None if host.decode_slots is None else self.graphs.key(
                host.num_decode, host.decode_slots.shape[1] // self.block_size)
            if key is not None:
                return self.graphs.run(key, host, self.kv_caches, self.scratch_slot), rows
        batch, rows = self.prepare(chunks)
        return self.model.forward_paged(batch, self.kv_caches), rows

    @torch.inference_mode()
    def run(self, chunks: list[ScheduledChunk]) -> list[int | None]:
        """Greedy next token for each chunk that samples (None for the others), in the order of ``chunks``."""
        logits, rows = self._forward(chunks)                                         # [S_sample, V]
        tokens = logits.argmax(dim=-1).tolist()
        return [tokens[r] if r >= 0 else None for r in rows]

"""The paged KV cache's bookkeeping: a pool of fixed-size blocks and one block table per sequence.

Only ids move here; the tensors live in the model runner. Token ``i`` of a sequence lives in slot
``block_table[i // block_size] * block_size + i % block_size`` of the pool.
"""

from __future__ import annotations

from collections import deque

from harness.engine.sequence import Sequence


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int) -> None:
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.free_blocks: deque[int] = deque(range(num_blocks))
        self.num_used = 0

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    @property
    def num_free(self) -> int:
        return len(self.free_blocks)

    def extra_blocks_for(self, seq: Sequence, num_new_tokens: int) -> int:
        """Blocks to add so the cache can hold ``num_new_tokens`` more computed tokens of ``seq``."""
        needed = self.blocks_needed(seq.num_computed_tokens + num_new_tokens)
        return max(0, needed - len(seq.block_table))

    def can_grow(self, seq: Sequence, num_new_tokens: int) -> bool:
        return self.extra_blocks_for(seq, num_new_tokens) <= len(self.free_blocks)

    def grow(self, seq: Sequence, num_new_tokens: int) -> None:
        """Give ``seq`` the blocks for ``num_new_tokens`` more tokens (the caller checked :meth:`can_grow`)."""
        for _ in range(self.extra_blocks_for(seq, num_new_tokens)):
            seq.block_table.append(self.free_blocks.popleft())
            self.num_used += 1

    def free(self, seq: Sequence) -> None:
        self.free_blocks.extend(seq.block_table)
        self.num_used -= len(seq.block_table)
        seq.block_table = []

    def resize(self, num_blocks: int) -> None:
        """Change the pool size. Before shrinking, the caller frees every sequence holding an id beyond the
        new size (``Scheduler.resize_kv`` preempts them), so only free ids are dropped here."""
        if num_blocks > self.num_blocks:
            self.free_blocks.extend(range(self.num_blocks, num_blocks))
        else:
            self.free_blocks = deque(b for b in self.free_blocks if b < num_blocks)
        self.num_blocks = num_blocks

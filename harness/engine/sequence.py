"""A request's state inside the engine (pure Python, no torch)."""

from __future__ import annotations

import enum
import itertools

_arrival_counter = itertools.count()


class SeqStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


class Sequence:
    """Prompt plus generated tokens, how many of them have KV in the cache, and the blocks that hold it.

    ``num_computed_tokens`` counts tokens whose keys and values are in the cache. A sequence needs a forward
    over ``token_ids[num_computed_tokens:]``; when that covers the last token, the forward also yields the next
    token. Preemption by recompute drops the cache (``num_computed_tokens = 0``) but keeps the generated
    tokens, so the recompute prefill covers prompt and output and continues where it stopped.
    """

    __slots__ = ("request_id", "token_ids", "num_prompt_tokens", "target_output_tokens", "priority", "tenant",
                 "arrival_ns", "enqueue_ns", "order", "status", "num_computed_tokens", "block_table",
                 "num_preemptions", "first_scheduled_ns", "first_token_ns", "last_token_ns")

    def __init__(self, request_id: int, prompt_token_ids: list[int], target_output_tokens: int, *,
                 priority: int = 0, tenant: str | None = None, arrival_ns: int = 0, enqueue_ns: int = 0) -> None:
        self.request_id = request_id
        self.token_ids = list(prompt_token_ids)
        self.num_prompt_tokens = len(self.token_ids)
        self.target_output_tokens = target_output_tokens
        self.priority = priority
        self.tenant = tenant
        self.arrival_ns = arrival_ns
        self.enqueue_ns = enqueue_ns
        self.order = next(_arrival_counter)   # tie-breaker that keeps FCFS stable for equal timestamps
        self.status = SeqStatus.WAITING
        self.num_computed_tokens = 0
        self.block_table: list[int] = []
        self.num_preemptions = 0
        self.first_scheduled_ns: int | None = None
        self.first_token_ns: int | None = None
        self.last_token_ns: int | None = None

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def num_uncomputed_tokens(self) -> int:
        return len(self.token_ids) - self.num_computed_tokens

    @property
    def is_decoding(self) -> bool:
        """One token left to compute and it is a generated one: the next forward is a decode."""
        return self.num_uncomputed_tokens == 1 and self.num_output_tokens > 0

    @property
    def is_done(self) -> bool:
        return self.num_output_tokens >= self.target_output_tokens

    @property
    def remaining_work(self) -> int:
        """Tokens still to push through the model: the shortest-job-first key."""
        return self.num_uncomputed_tokens + self.target_output_tokens - self.num_output_tokens

    def __repr__(self) -> str:
        return (f"Sequence(id={self.request_id}, len={len(self)}, computed={self.num_computed_tokens}, "
                f"out={self.num_output_tokens}/{self.target_output_tokens}, {self.status.value})")

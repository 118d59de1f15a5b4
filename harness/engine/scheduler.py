"""Which sequences run in the next step, and how many tokens each: plain Python, no torch.

One call to :meth:`Scheduler.schedule` builds one iteration of continuous batching under a token budget
(``max_num_batched_tokens``) and a seat limit (``max_num_seqs``):

* ``decode_first`` (Sarathi-Serve's stall-free batching): running decodes take the budget first, then
  partially prefilled sequences continue, then waiting requests are admitted with what is left, so a long
  prompt never stalls ongoing generations.
* ``prefill_first`` (vLLM v0's default): prefills take the budget first; without chunked prefill a step
  holding a prefill runs no decodes, which is what makes inter-token latency spike under arrivals.

KV blocks for a whole prompt are reserved when it is admitted; decodes take a block each time they cross a
block boundary. When a decode cannot get a block, the running sequence that sorts last under the policy is
preempted by recompute: its blocks are freed and it goes back to the waiting
queue, keeping its generated tokens. Timeouts are measured from each request's arrival.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.engine.block_manager import BlockManager
from harness.engine.config import EngineConfig
from harness.engine.governor.config import GovernorConfig
from harness.engine.governor.governor import Governor
from harness.engine.governor.ordering import Policy, make_policy
from harness.engine.sequence import Sequence, SeqStatus


@dataclass(slots=True)
class ScheduledChunk:
    seq: Sequence
    start: int          # first position computed in this step (the sequence's computed count when scheduled)
    num_tokens: int
    is_prefill: bool
    samples: bool       # reaches the sequence's last token, so the forward yields its next token


@dataclass(slots=True)
class SchedulerOutput:
    chunks: list[ScheduledChunk] = field(default_factory=list)
    newly_scheduled: list[Sequence] = field(default_factory=list)   # moved from waiting to running
    preempted: list[Sequence] = field(default_factory=list)
    timed_out: list[Sequence] = field(default_factory=list)
    shed: list[Sequence] = field(default_factory=list)          # dropped from the queue by the policy

    @property
    def num_tokens(self) -> int:
        return sum(c.num_tokens for c in self.chunks)


def policy_key(policy: str):
    """Sort key of the waiting queue for fcfs, priority and sjf (kept for callers that sort by hand).
    ``priority``: lower value first (vLLM's convention). ``sjf``: least remaining work (prompt + target)."""
    if policy == "priority":
        return lambda s: (s.priority, s.arrival_ns, s.order)
    if policy == "sjf":
        return lambda s: (s.remaining_work, s.arrival_ns, s.order)
    return lambda s: (s.arrival_ns, s.order)


class Scheduler:
    def __init__(self, config: EngineConfig, governor: GovernorConfig | None = None) -> None:
        self.config = config
        self.block_manager = BlockManager(config.num_kv_blocks, config.block_size)
        self.waiting: list[Sequence] = []
        self.running: list[Sequence] = []
        # Without tiers every tenant is in the implicit default tier (the shipped SLO's thresholds).
        self.has_tiers = governor is not None
        self.governor_config = governor if governor is not None else GovernorConfig()
        self.governor = Governor(self.governor_config, config.max_num_seqs, config.max_num_batched_tokens)
        if config.enable_chunked_prefill:   # its prefill pace (updated each step by prefill_cap)
            self.governor.chunk_tokens = min(config.chunk_size, config.max_num_batched_tokens)
        self._policies: dict[str, Policy] = {}

    @property
    def policy(self) -> Policy:
        """The object of the policy in force (``policy`` is a live knob, so looked up each time)."""
        name = self.config.policy
        if name not in self._policies:
            self._policies[name] = make_policy(name, self.governor_config, has_tiers=self.has_tiers,
                                               governor=self.governor)
            for seq in self.waiting + self.running:   # a policy pushed mid-run learns who is in the engine
                self._policies[name].on_enter(seq)
        return self._policies[name]

    # ---- queue management -------------------------------------------------------------------------------
    def has_room(self) -> bool:
        return len(self.waiting) < self.config.max_queue_len

    def add(self, seq: Sequence) -> bool:
        """Queue a new request; False when the waiting queue is full (admission control)."""
        if not self.has_room():
            return False
        seq.status = SeqStatus.WAITING
        self.waiting.append(seq)
        for policy in self._policies.values():
            policy.on_enter(seq)
        return True

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def remove(self, seq: Sequence) -> None:
        """Take a sequence out of the engine (finished, timed out or aborted) and free its blocks."""
        if seq.status is SeqStatus.RUNNING:
            self.running.remove(seq)
        elif seq.status is SeqStatus.WAITING:
            self.waiting.remove(seq)
        else:
            return   # already out (e.g. aborted twice)
        self.block_manager.free(seq)
        seq.status = SeqStatus.FINISHED
        for policy in self._policies.values():
            policy.on_leave(seq)

    def _preempt(self, seq: Sequence, out: SchedulerOutput) -> None:
        self.running.remove(seq)
        self.block_manager.free(seq)
        seq.num_computed_tokens = 0
        seq.num_preemptions += 1
        seq.status = SeqStatus.WAITING
        self.waiting.append(seq)
        out.preempted.append(seq)

    def resize_kv(self, num_blocks: int) -> SchedulerOutput:
        """Change the KV pool size; sequences holding blocks beyond a smaller pool are preempted."""
        out = SchedulerOutput()
        for seq in list(self.running):
            if any(b >= num_blocks for b in seq.block_table):
                self._preempt(seq, out)
        self.block_manager.resize(num_blocks)
        return out

    # ---- one step -----------------------------------------------------------------------------------------
    def expire(self, now_ns: int, out: SchedulerOutput) -> None:
        timeout = self.config.request_timeout_s
        if timeout is None:
            return
        limit_ns = int(timeout * 1e9)
        for seq in [s for s in self.waiting + self.running if now_ns - s.arrival_ns > limit_ns]:
            self.remove(seq)
            out.timed_out.append(seq)

    def schedule(self, now_ns: int) -> SchedulerOutput:
        out = SchedulerOutput()
        self.expire(now_ns, out)
        policy = self.policy
        for seq in policy.queue_drops(self.waiting, now_ns):
            self.remove(seq)
            out.shed.append(seq)
        policy.sort(self.waiting, self.running, now_ns)
        # As many seats as the policy asks for at once (the budget governor: one per urgent protected request
        # without an open seat); a running list that shrinks each time bounds the loop.
        while (victim := policy.seat_victim(self.waiting, self.running, self.config.max_num_seqs, now_ns)) is not None:
            self._preempt(victim, out)   # this step then admits nobody; the freed seats go next step
            policy.sort(self.waiting, self.running, now_ns)
        state = _StepState(self.config.max_num_batched_tokens, self.config.max_num_seqs, now_ns)
        # As in vLLM, a step that had to preempt admits nobody: readmitting the victim at once would thrash.
        if self.config.batching_mode == "decode_first":
            self._schedule_decodes(state, out)
            if self.config.enable_chunked_prefill:   # only a chunk can be cut to the time the decodes leave
                state.cap = policy.prefill_cap(out.chunks, now_ns, min(self.config.chunk_size, state.budget),
                                               state.budget)
            self._schedule_running_prefills(state, out)
            if not out.preempted:
                self._schedule_waiting(state, out)
        else:
            # Keep the blocks this step's decodes will need, or prefills would take them and the decodes
            # would preempt each other forever.
            state.reserve = sum(1 for seq in self.running
                                if seq.is_decoding and self.block_manager.extra_blocks_for(seq, 1))
            self._schedule_running_prefills(state, out)
            if not out.preempted:
                self._schedule_waiting(state, out)
            # Without chunked prefill, vLLM v0 never mixes prefills and decodes in one step.
            if self.config.enable_chunked_prefill or not out.chunks:
                self._schedule_decodes(state, out)
        policy.on_served(out.chunks)
        return out

    def _reserve(self, seq: Sequence, num_tokens: int, state: _StepState, out: SchedulerOutput) -> bool:
        """Reserve blocks for a running sequence, preempting unscheduled sequences from the tail of the running
        list (the policy's least important) until it fits. False if ``seq`` itself had to be preempted."""
        bm = self.block_manager
        while not bm.can_grow(seq, num_tokens):
            victims = [s for s in self.running if id(s) not in state.scheduled]
            victim = victims[-1]
            self._preempt(victim, out)
            if victim is seq:
                return False
        bm.grow(seq, num_tokens)
        return True

    def _add_chunk(self, seq: Sequence, num_tokens: int, state: _StepState, out: SchedulerOutput) -> None:
        start = seq.num_computed_tokens
        if state.cap is not None and not seq.is_decoding:
            state.cap.charge(start, num_tokens)
        samples = start + num_tokens == len(seq)
        out.chunks.append(ScheduledChunk(seq, start, num_tokens, not seq.is_decoding, samples))
        state.budget -= num_tokens
        state.seats -= 1
        state.scheduled.add(id(seq))

    def _schedule_decodes(self, state: _StepState, out: SchedulerOutput) -> None:
        for seq in list(self.running):
            if state.budget < 1 or state.seats < 1:
                return
            if seq.status is not SeqStatus.RUNNING or id(seq) in state.scheduled or not seq.is_decoding:
                continue
            if self._reserve(seq, 1, state, out):
                self._add_chunk(seq, 1, state, out)

    def _prefill_size(self, seq: Sequence, state: _StepState) -> int:
        """Tokens of ``seq``'s pending prefill to run now, 0 if it must wait for a later step."""
        remaining = seq.num_uncomputed_tokens
        budget = state.budget
        if self.config.enable_chunked_prefill:
            size = min(remaining, self.config.chunk_size, budget)
            if state.cap is None:
                return size
            # The policy's time cap (the governor's per-step TPOT rule): what the step's decodes leave; a
            # prompt whose TTFT is at stake may take more than one chunk, up to the token budget.
            return state.cap.tokens(seq.num_computed_tokens, size, seq, min(remaining, budget))
        if remaining <= budget:
            return remaining
        # A prefill longer than the whole budget could never run unchunked; split it rather than deadlock.
        if remaining > self.config.max_num_batched_tokens and budget == self.config.max_num_batched_tokens:
            return budget
        return 0

    def _schedule_running_prefills(self, state: _StepState, out: SchedulerOutput) -> None:
        # The policy orders the chunks competing for what the decodes left of the token budget (the budget
        # governor by its budget-risk/slack key; baselines keep their running order).
        prefilling = [s for s in self.running if not s.is_decoding and id(s) not in state.scheduled]
        for seq in self.policy.prefill_order(prefilling, state.now_ns):
            if state.budget < 1 or state.seats < 1:
                return
            if seq.status is not SeqStatus.RUNNING or id(seq) in state.scheduled:
                continue
            size = self._prefill_size(seq, state)
            if size == 0:
                continue
            if self._reserve(seq, size, state, out):
                self._add_chunk(seq, size, state, out)

    def _schedule_waiting(self, state: _StepState, out: SchedulerOutput) -> None:
        policy = self.policy
        index = 0
        while index < len(self.waiting) and state.budget >= 1 and state.seats >= 1 \
                and len(self.running) < self.config.max_num_seqs:
            seq = self.waiting[index]
            if not policy.may_start(seq):
                index += 1   # held back by the policy (the governor's buffer or deferral): the next may go
                continue
            size = self._prefill_size(seq, state)
            if size == 0:
                return   # head-of-line blocking keeps the policy's order
            # Admission reserves blocks for the whole pending prefill (as vLLM v0), so a prefill in progress
            # never waits for blocks; only decodes grow, and they preempt. Admitting on a partial fit instead
            # lets half-prefilled sequences hold the pool between them and preempt each other forever.
            pending = seq.num_uncomputed_tokens
            if self.block_manager.extra_blocks_for(seq, pending) + state.reserve > self.block_manager.num_free:
                return   # wait for running sequences to free blocks
            self.waiting.pop(index)
            policy.started(seq)
            seq.status = SeqStatus.RUNNING
            self.running.append(seq)
            self.block_manager.grow(seq, pending)
            out.newly_scheduled.append(seq)
            self._add_chunk(seq, size, state, out)


class _StepState:
    __slots__ = ("budget", "seats", "scheduled", "reserve", "now_ns", "cap")

    def __init__(self, budget: int, seats: int, now_ns: int = 0) -> None:
        self.cap = None    # the policy's PrefillTimeCap for this step, if any
        self.budget = budget
        self.seats = seats
        self.now_ns = now_ns
        self.reserve = 0   # free blocks kept back for this step's decodes
        self.scheduled: set[int] = set()

"""Scheduling policies as objects the scheduler asks, one per ``engine.policy`` (pure Python).

Each policy sorts the waiting queue (admission order) and the running list (the one sorting last is
preempted first under KV pressure), may refuse a seat to a waiting request (the budget governor's buffer
and deferral), and hears of requests entering and leaving the engine and of the tokens each step served.

* ``fcfs``: arrival order. ``priority``: vLLM's, (priority, arrival), so preemption takes the lowest
  priority, latest arrival; with tiers, a tier's criticality is the priority. ``sjf``: least remaining work.
* ``edf``: earliest TTFT deadline (arrival + the tier's ttft_s) first; preemption takes the latest deadline.
* ``vtc``: Sheng et al., OSDI'24: a counter per tenant of served tokens (prefill 1, decode 2, divided by
  the tier weight); the backlogged tenant with the smallest counter is served next; a tenant that becomes
  backlogged has its counter lifted to the smallest counter among the active ones, so idling earns no credit.
* ``budget``: the governor (:mod:`harness.engine.governor.governor`).
"""

from __future__ import annotations

from collections import defaultdict, deque

from harness.engine.governor.config import GovernorConfig


class Policy:
    """fcfs, and the default behaviour of every hook."""

    def __init__(self, config: GovernorConfig) -> None:
        self.config = config

    def waiting_key(self, seq, now_ns: int):
        return (seq.arrival_ns, seq.order)

    def running_key(self, seq, now_ns: int):
        return self.waiting_key(seq, now_ns)

    def sort(self, waiting: list, running: list, now_ns: int) -> None:
        running.sort(key=lambda s: self.running_key(s, now_ns))
        waiting.sort(key=lambda s: self.waiting_key(s, now_ns))

    def prefill_order(self, prefilling: list, now_ns: int) -> list:
        """The running sequences with prefill left, in the order their chunks take a step's token budget.
        Every baseline keeps its running order (its own rule: fcfs arrival, priority, vtc counter...)."""
        return prefilling

    def may_start(self, seq) -> bool:
        return True

    def queue_victim(self, arriving, waiting: list):
        """A queued request to push out of a full waiting queue so ``arriving`` gets its place, or None (every
        baseline: the arrival is refused, as vLLM's bounded queue would)."""
        return None

    def queue_drops(self, waiting: list, now_ns: int) -> list:
        """Queued requests to drop before this step (they leave as rejected): none for every baseline."""
        return []

    def prefill_cap(self, decodes: list, now_ns: int, chunk_tokens: int = 0, budget_tokens: int = 0):
        """A cap on the time this step's prefill chunks may take, given the decodes it already carries
        (``step_budget.PrefillTimeCap``; ``chunk_tokens``: one prefill's chunk, ``budget_tokens``: the token
        budget the decodes left), or None: no cap (every baseline; the governor's is per step)."""
        return None

    def seat_victim(self, waiting: list, running: list, max_num_seqs: int, now_ns: int):
        """A running sequence to preempt so an urgent waiting one gets a seat (None: no one; vLLM's rule)."""
        return None

    def started(self, seq) -> None:
        pass

    def on_enter(self, seq) -> None:
        pass

    def on_leave(self, seq) -> None:
        pass

    def on_served(self, chunks) -> None:
        pass


class PriorityPolicy(Policy):
    def __init__(self, config: GovernorConfig, use_tiers: bool) -> None:
        super().__init__(config)
        self.use_tiers = use_tiers

    def waiting_key(self, seq, now_ns: int):
        prio = self.config.tier_of(seq.tenant).criticality if self.use_tiers else seq.priority
        return (prio, seq.arrival_ns, seq.order)


class SjfPolicy(Policy):
    def waiting_key(self, seq, now_ns: int):
        return (seq.remaining_work, seq.arrival_ns, seq.order)


class EdfPolicy(Policy):
    def waiting_key(self, seq, now_ns: int):
        return (deadline_ns(self.config, seq), seq.order)


def deadline_ns(config: GovernorConfig, seq) -> int:
    return seq.arrival_ns + int(config.tier_of(seq.tenant).ttft_s * 1e9)


class VtcPolicy(Policy):
    PREFILL_COST, DECODE_COST = 1.0, 2.0   # the paper's w_p, w_q

    def __init__(self, config: GovernorConfig) -> None:
        super().__init__(config)
        self.counters: dict[str | None, float] = defaultdict(float)
        self.active: dict[str | None, int] = defaultdict(int)   # tenant -> its requests in the engine

    def weight(self, tenant) -> float:
        return self.config.tier_of(tenant).weight

    def on_enter(self, seq) -> None:
        t = seq.tenant
        if self.active[t] == 0:
            others = [self.counters[a] for a, n in self.active.items() if n > 0 and a != t]
            if others:
                self.counters[t] = max(self.counters[t], min(others))
        self.active[t] += 1

    def on_leave(self, seq) -> None:
        self.active[seq.tenant] -= 1

    def on_served(self, chunks) -> None:
        for c in chunks:
            cost = self.PREFILL_COST if c.is_prefill else self.DECODE_COST
            self.counters[c.seq.tenant] += c.num_tokens * cost / self.weight(c.seq.tenant)

    def running_key(self, seq, now_ns: int):
        return (self.counters[seq.tenant], seq.arrival_ns, seq.order)

    def sort(self, waiting: list, running: list, now_ns: int) -> None:
        running.sort(key=lambda s: self.running_key(s, now_ns))
        # The order VTC's one-at-a-time loop would admit in: take the least counter's earliest request and
        # charge its prompt to a scratch copy of the counters, then pick again.
        queues: dict = defaultdict(deque)
        for seq in sorted(waiting, key=lambda s: (s.arrival_ns, s.order)):
            queues[seq.tenant].append(seq)
        scratch = {t: self.counters[t] for t in queues}
        ordered = []
        while queues:
            tenant = min(queues, key=lambda t: (scratch[t], queues[t][0].arrival_ns))
            seq = queues[tenant].popleft()
            ordered.append(seq)
            scratch[tenant] += seq.num_uncomputed_tokens * self.PREFILL_COST / self.weight(tenant)
            if not queues[tenant]:
                del queues[tenant]
        waiting[:] = ordered


def make_policy(name: str, config: GovernorConfig, *, has_tiers: bool, governor=None) -> Policy:
    if name == "priority":
        return PriorityPolicy(config, use_tiers=has_tiers)
    if name == "sjf":
        return SjfPolicy(config)
    if name == "edf":
        return EdfPolicy(config)
    if name == "vtc":
        return VtcPolicy(config)
    if name == "budget":
        return governor
    return Policy(config)

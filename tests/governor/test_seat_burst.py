"""A burst of urgent protected requests gets its seats in one step, and sheddable prefills wait while a
protected request waits with a seat open (harness/engine/governor/queue_hooks.py: seat_victim,
prefill_order; the scheduler asks seat_victim until it says no). Pure Python: the scheduler on Sequences."""

from __future__ import annotations

from harness.engine.config import EngineConfig
from harness.engine.governor.config import GovernorConfig, TierSpec
from harness.engine.scheduler import Scheduler
from harness.engine.sequence import Sequence

S = 1_000_000_000
TIERS = GovernorConfig(tiers=(
    TierSpec("premium", ("premium",), criticality=0, ttft_s=0.6, tpot_s=0.040, protected=True, objective=0.995),
    TierSpec("standard", ("standard",), criticality=1, ttft_s=0.6, tpot_s=0.040, protected=True, objective=0.99),
    TierSpec("free", ("free",), criticality=2, ttft_s=3.0, tpot_s=0.2, objective=0.95)),
    short_window_s=1, long_window_s=10, buffer_share=0.0)


def scheduler_with_seated(tenants, seats=4):
    """``seats`` seats, taken by requests of ``tenants`` (in arrival order, 1 ms apart), each decoding."""
    config = EngineConfig(max_num_seqs=seats, max_num_batched_tokens=256, chunk_size=64, policy="budget",
                          request_timeout_s=None, num_kv_blocks=256)
    scheduler = Scheduler(config, TIERS)
    for i, tenant in enumerate(tenants):
        scheduler.add(Sequence(i, [1] * 8, 100, tenant=tenant, arrival_ns=i * 1_000_000))
    scheduler.schedule(int(0.01 * S))
    return scheduler


def add_urgent(scheduler, tenants, now, first_id=20):
    """Protected requests that waited 0.35 s (past half their 0.6 s TTFT, able to make it)."""
    for i, tenant in enumerate(tenants, start=first_id):
        scheduler.add(Sequence(i, [1] * 32, 8, tenant=tenant, arrival_ns=now - int(0.35 * S)))


def test_every_urgent_request_gets_a_seat_the_least_critical_latest_seated_first():
    scheduler = scheduler_with_seated(["free", "standard", "free", "free"])
    now = 2 * S
    add_urgent(scheduler, ["standard", "premium"], now)
    out = scheduler.schedule(now)
    # two urgent, no open seat: the two latest free requests, in one step (before: one, the latest)
    assert [s.request_id for s in out.preempted] == [3, 2]
    assert not out.newly_scheduled   # a step that preempts admits nobody (vLLM's rule)
    out = scheduler.schedule(now + int(0.04 * S))
    assert sorted(s.tenant for s in out.newly_scheduled) == ["premium", "standard"]


def test_never_a_protected_seat_and_no_more_victims_than_urgent_requests_lack_seats():
    scheduler = scheduler_with_seated(["premium", "standard", "standard", "free"])
    now = 2 * S
    add_urgent(scheduler, ["premium", "premium", "standard"], now)
    out = scheduler.schedule(now)
    assert [s.tenant for s in out.preempted] == ["free"]   # three urgent, one sheddable seat: only it

    scheduler = scheduler_with_seated(["free", "free"])   # two of four seats open
    add_urgent(scheduler, ["standard", "standard"], now)
    out = scheduler.schedule(now)
    assert not out.preempted and len(out.newly_scheduled) == 2

    scheduler = scheduler_with_seated(["free", "free", "free"])   # one open seat, two urgent: one victim
    add_urgent(scheduler, ["standard", "premium"], now)
    assert [s.request_id for s in scheduler.schedule(now).preempted] == [2]


def advance(out, now):
    """What the engine does with a step's chunks: the tokens are computed, a sampling chunk emits one."""
    for c in out.chunks:
        c.seq.num_computed_tokens += c.num_tokens
        if c.samples:
            c.seq.token_ids.append(7)
            c.seq.first_token_ns = c.seq.first_token_ns or now
            c.seq.last_token_ns = now


def test_a_sheddable_prefill_waits_while_a_protected_request_waits_with_a_seat_open():
    config = EngineConfig(max_num_seqs=4, max_num_batched_tokens=64, chunk_size=64, policy="budget",
                          request_timeout_s=None, num_kv_blocks=256)
    scheduler = Scheduler(config, TIERS)
    scheduler.add(Sequence(0, [1] * 256, 8, tenant="free", arrival_ns=0))
    out = scheduler.schedule(0)
    assert [c.num_tokens for c in out.chunks] == [64]   # alone: its first chunk
    advance(out, 0)
    governor = scheduler.governor
    scheduler.add(Sequence(1, [1] * 32, 8, tenant="standard", arrival_ns=int(0.01 * S)))
    out = scheduler.schedule(int(0.02 * S))
    # the standard prompt is served first and the free prefill gets nothing this step, although the
    # 64-token budget had room after the 32 standard tokens (before: the free chunk went first, 64 tokens)
    assert [(c.seq.tenant, c.num_tokens) for c in out.chunks] == [("standard", 32)]
    assert governor.protected_waiting == 0
    advance(out, int(0.02 * S))
    out = scheduler.schedule(int(0.03 * S))   # no protected request waits: the free prefill goes on
    assert [(c.seq.tenant, c.num_tokens) for c in out.chunks] == [("standard", 1), ("free", 63)]

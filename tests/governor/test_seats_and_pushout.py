"""Protected bursts: the seat reserve grows with the protected queue, and a protected arrival pushes a queued
sheddable request out of a full queue (harness/engine/governor: components.may_take_seat,
Governor.queue_victim; the engine's add_request)."""

from __future__ import annotations

import pytest

from harness.engine.config import EngineConfig
from harness.engine.governor.components import may_take_seat
from harness.engine.governor.config import GovernorConfig, TierSpec
from harness.engine.scheduler import Scheduler
from harness.engine.sequence import Sequence

S = 1_000_000_000
TIERS = GovernorConfig(tiers=(
    TierSpec("premium", ("premium",), criticality=0, ttft_s=2.0, protected=True, objective=0.995),
    TierSpec("standard", ("standard",), criticality=1, ttft_s=2.0, protected=True, objective=0.99),
    TierSpec("free", ("free",), criticality=2, ttft_s=0.5, objective=0.95)),
    short_window_s=1, long_window_s=10, buffer_share=0.0)


def seq(i, tenant, arrival_s, prompt=8, out=4):
    return Sequence(i, [1] * prompt, out, tenant=tenant, arrival_ns=int(arrival_s * S))


def test_a_sheddable_request_leaves_a_free_seat_to_each_protected_request_waiting():
    # 8 seats, 5 running, 2 of them unprotected, no static reserve: 3 seats free
    assert may_take_seat(False, 2, 8, 0, num_running=5, protected_waiting=2)
    assert not may_take_seat(False, 2, 8, 0, num_running=5, protected_waiting=3)
    assert may_take_seat(True, 2, 8, 0, num_running=7, protected_waiting=5)   # protected: any free seat
    assert not may_take_seat(False, 6, 8, 2, num_running=6, protected_waiting=0)   # the static reserve holds


@pytest.mark.parametrize("policy,seated", [("budget", ["premium", "standard"]), ("fcfs", ["free", "free"])])
def test_in_a_burst_the_last_seats_go_to_protected_requests(policy, seated):
    # 4 seats, 2 taken by running free requests; queued: two free requests (earlier and tighter deadlines,
    # first in the healthy pulled-deadline order) and then a premium and a standard one
    config = EngineConfig(max_num_seqs=4, max_num_batched_tokens=256, chunk_size=64, policy=policy,
                          request_timeout_s=None, num_kv_blocks=64)
    scheduler = Scheduler(config, TIERS)
    for i in range(2):
        scheduler.add(seq(i, "free", 0.0))
    scheduler.schedule(0)
    for i, tenant in enumerate(["free", "free", "premium", "standard"], start=2):
        scheduler.add(seq(i, tenant, 0.1 + 0.001 * i))
    out = scheduler.schedule(int(0.2 * S))
    assert [s.tenant for s in out.newly_scheduled] == seated


def governor_with_queue(tenants):
    scheduler = Scheduler(EngineConfig(max_num_seqs=4, policy="budget", request_timeout_s=None), TIERS)
    waiting = [seq(i, t, 0.01 * i) for i, t in enumerate(tenants)]
    return scheduler.governor, waiting


def test_a_protected_arrival_pushes_out_the_last_queued_sheddable_request():
    governor, waiting = governor_with_queue(["premium", "free", "standard", "free", "standard"])
    assert governor.queue_victim(seq(9, "premium", 1.0), waiting) is waiting[3]
    assert governor.queue_victim(seq(9, "standard", 1.0), waiting) is waiting[3]


def test_push_out_never_takes_a_protected_request_nor_serves_a_sheddable_arrival():
    governor, waiting = governor_with_queue(["premium", "standard", "standard"])
    assert governor.queue_victim(seq(9, "premium", 1.0), waiting) is None
    governor, waiting = governor_with_queue(["free", "free"])
    assert governor.queue_victim(seq(9, "free", 1.0), waiting) is None


@pytest.mark.slow   # builds the tiny model
def test_the_engine_records_a_pushed_out_request_as_rejected_and_counts_it():
    from harness.engine.engine import Engine
    from tests.governor.finishes import FinishRecorder

    for policy, expect in (("budget", [(1, "rejected", "shed_queue")]), ("fcfs", [(2, "rejected", "queue_full")])):
        observer = FinishRecorder()
        engine = Engine(EngineConfig(model="tiny", max_num_seqs=2, max_queue_len=2, policy=policy,
                                     request_timeout_s=None), observer=observer, governor=TIERS)
        assert engine.add_request(0, [1] * 8, 4, tenant="free")
        assert engine.add_request(1, [1] * 8, 4, tenant="free")
        # no step yet, so the queue is in arrival order: the later free request sorts last
        assert engine.add_request(2, [1] * 8, 4, tenant="premium") == (policy == "budget")
        assert observer.done == expect
        free = {c["tier"]: c for c in engine.governor.summary()}["free"]
        assert (free["events"], free["bad_events"]) == ((1, 1) if policy == "budget" else (0, 0))

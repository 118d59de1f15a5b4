"""Sustained overload (4 December): the relax time backs off while the overload lasts, a protected prompt at its
latest start asks for shedding, and doomed sheddable requests leave the queue while the governor protects
(harness/engine/governor: components.AdmissionLevel, QueueHooks.sort and queue_drops; the scheduler and engine)."""

from __future__ import annotations

import pytest

from harness.engine.config import EngineConfig
from harness.engine.governor.components import AdmissionLevel
from harness.engine.governor.config import GovernorConfig, TierSpec
from harness.engine.scheduler import Scheduler
from harness.engine.sequence import Sequence

S = 1_000_000_000
TIERS = GovernorConfig(tiers=(
    TierSpec("premium", ("premium",), criticality=0, ttft_s=2.0, protected=True, objective=0.995),
    TierSpec("standard", ("standard",), criticality=1, ttft_s=1.0, tpot_s=0.05, protected=True, objective=0.99),
    TierSpec("free", ("free",), criticality=2, ttft_s=0.5, objective=0.95)),
    short_window_s=1, long_window_s=10, buffer_share=0.0)


def seq(i, tenant, arrival_s, prompt=8, out=4):
    return Sequence(i, [1] * prompt, out, tenant=tenant, arrival_ns=int(arrival_s * S))


def test_a_relax_that_came_too_early_doubles_the_next_one_up_to_the_cap():
    level = AdmissionLevel(max_level=1, hold_ns=S, relax_ns=2 * S, max_relax_ns=8 * S)
    assert level.update(0, True) == 1
    assert level.update(2 * S, False) == 0                      # the base relax: 2 s without a trigger
    t = 3 * S
    for relax in (4, 8, 8):                                     # each re-trigger soon after a fall: twice, capped
        assert level.update(t, True) == 1
        assert level.update(t + (relax - 1) * S, False) is None
        assert level.update(t + relax * S, False) == 0
        t += relax * S + S
    # a cap's worth of quiet after the last fall: a new burst is shed for the base relax again
    quiet = t - S + 8 * S
    assert level.update(quiet, False) is None and level.relax_now_ns == 2 * S
    assert level.update(quiet + S, True) == 1 and level.update(quiet + 3 * S, False) == 0


def test_without_a_cap_the_relax_never_moves():
    level = AdmissionLevel(max_level=1, hold_ns=S, relax_ns=2 * S)
    for t in range(0, 40, 3):   # trigger, relax, trigger again a second later, ...
        level.update(t * S, True)
        level.update((t + 2) * S, False)
        assert level.relax_now_ns == 2 * S


def _scheduler():
    config = EngineConfig(max_num_seqs=4, max_num_batched_tokens=256, chunk_size=64, policy="budget",
                          request_timeout_s=None, num_kv_blocks=256)
    return Scheduler(config, TIERS)


def test_a_long_protected_prompt_past_its_latest_start_asks_for_shedding_before_half_its_ttft():
    # standard: 1 s TTFT, steps held to its 50 ms TPOT, 64-token chunks. A 1024-token prompt needs 16 chunks and
    # the preempting step, 0.85 s: its latest start comes 0.15 s after arrival, well before half the TTFT (0.5 s).
    # At 0.3 s it asks for shedding; an 8-token prompt that waited as long is not yet a signal.
    for prompt, expect in ((1024, "standard"), (8, None)):
        scheduler = _scheduler()
        governor = scheduler.governor
        governor.chunk_tokens = 64
        scheduler.waiting.append(seq(1, "standard", 0.0, prompt=prompt))
        governor.sort(scheduler.waiting, scheduler.running, int(0.3 * S))
        assert (governor.late[0] if governor.late else None) == expect


def test_doomed_sheddable_requests_leave_the_queue_only_while_the_governor_protects():
    scheduler = _scheduler()
    governor = scheduler.governor
    now = 1.0
    queued = [seq(1, "free", now - 0.6),       # waited past free's 0.5 s: doomed
              seq(2, "free", now - 0.2),       # can still make it
              seq(3, "premium", now - 3.0),    # protected and doomed: never dropped
              seq(4, "free", now - 0.9)]       # preempted after its first token: its TPOT can still hold
    queued[3].first_token_ns = int((now - 0.8) * S)
    for s in queued:
        scheduler.add(s)
    governor.is_protecting = False
    assert governor.queue_drops(scheduler.waiting, int(now * S)) == []
    governor.is_protecting = True
    assert [s.request_id for s in governor.queue_drops(scheduler.waiting, int(now * S))] == [1]
    out = scheduler.schedule(int(now * S))
    assert [s.request_id for s in out.shed] == [1] and queued[0] not in scheduler.waiting


@pytest.mark.parametrize("policy", ["fcfs", "priority", "vtc", "edf"])
def test_no_baseline_drops_a_queued_request(policy):
    config = EngineConfig(max_num_seqs=4, policy=policy, request_timeout_s=None, num_kv_blocks=256)
    scheduler = Scheduler(config, TIERS)
    scheduler.add(seq(1, "free", 0.0))
    assert scheduler.schedule(10 * S).shed == []


@pytest.mark.slow   # builds the tiny model
def test_the_engine_records_a_doomed_drop_as_rejected_and_counts_it():
    from harness.engine.engine import Engine
    from tests.governor.finishes import FinishRecorder

    observer = FinishRecorder()
    engine = Engine(EngineConfig(model="tiny", max_num_seqs=2, policy="budget", request_timeout_s=None),
                    observer=observer, governor=TIERS)
    assert engine.add_request(0, [1] * 8, 4, tenant="free", arrival_ns=engine.now_ns() - 2 * S)
    engine.governor.is_protecting = True
    engine.governor.next_tick_ns = 1 << 62   # no tick: the state set above stands for this step
    engine.step()
    assert observer.done == [(0, "rejected", "shed_doomed")]
    free = {c["tier"]: c for c in engine.governor.summary()}["free"]
    assert (free["events"], free["bad_events"]) == (1, 1)

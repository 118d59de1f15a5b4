"""Policies inside the real scheduler (no torch): a fake forward advances sequences as the engine does."""

from __future__ import annotations

import random

from harness.engine.config import EngineConfig
from harness.engine.governor.config import GovernorConfig, TierSpec
from harness.engine.scheduler import Scheduler
from harness.engine.sequence import Sequence

S = 1_000_000_000
TIERS = GovernorConfig(tiers=(
    TierSpec("premium", ("premium",), criticality=0, ttft_s=1.0, protected=True, objective=0.995),
    TierSpec("standard", ("standard",), criticality=1, ttft_s=2.0, objective=0.99),
    TierSpec("free", ("free",), criticality=2, ttft_s=4.0, objective=0.95)), short_window_s=1, long_window_s=10)


def seq(i, tenant, arrival_s, prompt=8, out=4):
    return Sequence(i, [1] * prompt, out, tenant=tenant, arrival_ns=int(arrival_s * S))


def run_steps(scheduler, steps, now_ns=0):
    """Advance like the engine: every scheduled chunk computes, samples append a token, done ones leave."""
    served = []
    for _ in range(steps):
        out = scheduler.schedule(now_ns)
        for c in out.chunks:
            c.seq.num_computed_tokens += c.num_tokens
            if c.samples:
                c.seq.token_ids.append(7)
                if c.seq.first_token_ns is None:
                    c.seq.first_token_ns = now_ns
                if c.seq.is_done:
                    scheduler.remove(c.seq)
        served.append(out)
        now_ns += S // 100
    return served


def admitted_order(policy, seqs, governor=TIERS, now_ns=0):
    config = EngineConfig(max_num_seqs=1, max_num_batched_tokens=64, policy=policy, request_timeout_s=None)
    scheduler = Scheduler(config, governor)
    for s in seqs:
        scheduler.add(s)
    order = []
    for out in run_steps(scheduler, 200, now_ns):
        order += [s.request_id for s in out.newly_scheduled]
    return order


def test_edf_orders_by_ttft_deadline():
    # deadlines: free 0.0 + 4 = 4.0, standard 0.5 + 2 = 2.5, premium 1.0 + 1 = 2.0, premium 0.2 + 1 = 1.2
    seqs = [seq(0, "free", 0.0), seq(1, "standard", 0.5), seq(2, "premium", 1.0), seq(3, "premium", 0.2)]
    assert admitted_order("edf", seqs) == [3, 2, 1, 0]
    assert admitted_order("fcfs", [seq(i, s.tenant, s.arrival_ns / S) for i, s in enumerate(seqs)]) == [0, 3, 1, 2]


def test_priority_uses_tier_criticality_then_arrival():
    seqs = [seq(0, "free", 0.0), seq(1, "standard", 0.5), seq(2, "premium", 1.0), seq(3, "standard", 0.1)]
    assert admitted_order("priority", seqs) == [2, 3, 1, 0]


def test_budget_serves_protected_first_and_within_a_tier_by_deadline():
    seqs = [seq(0, "free", 0.0), seq(1, "standard", 0.1), seq(2, "premium", 0.9), seq(3, "premium", 0.3)]
    assert admitted_order("budget", seqs, now_ns=S) == [3, 2, 1, 0]


def test_preemption_under_kv_pressure_takes_the_least_critical_first():
    for policy, victim_tenant in (("budget", "free"), ("priority", "free")):
        config = EngineConfig(max_num_seqs=3, max_num_batched_tokens=64, num_kv_blocks=6, block_size=4,
                              policy=policy, request_timeout_s=None)
        scheduler = Scheduler(config, TIERS)
        # Arrival order puts free first: fcfs would preempt the latest (premium); these must not.
        for i, tenant in enumerate(("free", "premium", "standard")):
            scheduler.add(seq(i, tenant, i * 0.01, prompt=4, out=12))   # 4 blocks each, 6 in all
        preempted = [s.tenant for out in run_steps(scheduler, 30) for s in out.preempted]
        assert preempted and preempted[0] == victim_tenant, (policy, preempted)
        assert "premium" not in preempted


def test_vtc_keeps_the_service_difference_of_two_backlogged_tenants_bounded():
    rng = random.Random(3)
    config = EngineConfig(max_num_seqs=4, max_num_batched_tokens=64, policy="vtc", request_timeout_s=None,
                          max_queue_len=1000, num_kv_blocks=512)
    scheduler = Scheduler(config, None)
    # Tenant "heavy" floods (3x the requests, longer prompts); both stay backlogged the whole time.
    i = 0
    for k in range(60):
        scheduler.add(seq(i := i + 1, "light", k * 0.001, prompt=rng.randint(4, 16), out=rng.randint(2, 8)))
        for _ in range(3):
            scheduler.add(seq(i := i + 1, "heavy", k * 0.001, prompt=rng.randint(16, 48), out=rng.randint(2, 8)))
    served = {"light": 0.0, "heavy": 0.0}
    worst = 0.0
    for out in run_steps(scheduler, 150):
        for c in out.chunks:
            served[c.seq.tenant] += c.num_tokens * (1 if c.is_prefill else 2)
        if any(s.tenant == "light" for s in scheduler.waiting):   # both backlogged
            worst = max(worst, abs(served["light"] - served["heavy"]))
    # VTC's bound is a few requests' worth of tokens (2 x max request cost x seats here), not growing with time.
    assert worst <= 2 * (48 + 2 * 8) * config.max_num_seqs
    # fcfs on the same traffic lets the flood take about three quarters of the service.
    fcfs = Scheduler(EngineConfig(max_num_seqs=4, max_num_batched_tokens=64, request_timeout_s=None,
                                  max_queue_len=1000, num_kv_blocks=512))
    i = 0
    rng = random.Random(3)
    for k in range(60):
        fcfs.add(seq(i := i + 1, "light", k * 0.001, prompt=rng.randint(4, 16), out=rng.randint(2, 8)))
        for _ in range(3):
            fcfs.add(seq(i := i + 1, "heavy", k * 0.001, prompt=rng.randint(16, 48), out=rng.randint(2, 8)))
    got = {"light": 0.0, "heavy": 0.0}
    for out in run_steps(fcfs, 150):
        for c in out.chunks:
            got[c.seq.tenant] += c.num_tokens * (1 if c.is_prefill else 2)
    assert abs(got["light"] - got["heavy"]) > worst


def test_vtc_lifts_a_newly_backlogged_tenant_to_the_active_minimum():
    config = EngineConfig(max_num_seqs=2, max_num_batched_tokens=64, policy="vtc", request_timeout_s=None)
    scheduler = Scheduler(config, None)
    for i in range(6):
        scheduler.add(seq(i, "a", 0.0, prompt=16, out=8))
    run_steps(scheduler, 20)
    policy = scheduler.policy
    assert policy.counters["a"] > 0 and policy.counters["b"] == 0
    scheduler.add(seq(99, "b", 0.2))
    assert policy.counters["b"] == policy.counters["a"]   # no credit for having been idle


def test_reliability_buffer_holds_seats_for_protected_tiers():
    config = EngineConfig(max_num_seqs=10, max_num_batched_tokens=512, policy="budget", request_timeout_s=None)
    gov = GovernorConfig(tiers=TIERS.tiers, buffer_share=0.2, short_window_s=1, long_window_s=10)
    scheduler = Scheduler(config, gov)
    for i in range(20):
        scheduler.add(seq(i, "free", 0.0, out=50))
    run_steps(scheduler, 3)
    assert len(scheduler.running) == 8            # 2 of 10 seats held back
    scheduler.add(seq(100, "premium", 0.0))
    run_steps(scheduler, 1)
    assert any(s.request_id == 100 for s in scheduler.running)


def test_the_governors_one_pass_sort_agrees_with_its_key():
    rng = random.Random(5)
    config = EngineConfig(max_num_seqs=4, policy="budget", request_timeout_s=None, max_queue_len=500)
    scheduler = Scheduler(config, TIERS)
    gov = scheduler.governor
    gov._pull_ns["premium"] = int(0.7 * S)   # pulled deadlines must sort the same in both paths
    seqs = [seq(i, rng.choice(["premium", "standard", "free", "walkin"]), rng.uniform(0, 3)) for i in range(80)]
    for s in seqs[::7]:
        s.first_token_ns = int(2.5 * S)   # preempted after their first token
    now = 3 * S
    waiting, running = list(seqs), []
    gov.sort(waiting, running, now)
    assert waiting == sorted(seqs, key=lambda s: gov.waiting_key(s, now))


# As in eval govern: two protected tiers with the same thresholds, premium 10 % of traffic at 99.5 %,
# standard 30 % at 99 %, so equal slack cannot tell them apart; only their budgets can.
EQUAL = GovernorConfig(tiers=(
    TierSpec("premium", ("premium",), criticality=0, ttft_s=2.0, protected=True, objective=0.995),
    TierSpec("standard", ("standard",), criticality=1, ttft_s=2.0, protected=True, objective=0.99),
    TierSpec("free", ("free",), criticality=2, ttft_s=2.0, objective=0.95)), short_window_s=1, long_window_s=10)


def _governor_with_traffic(premium=10, standard=30):
    config = EngineConfig(max_num_seqs=4, policy="budget", request_timeout_s=None, max_queue_len=500)
    scheduler = Scheduler(config, EQUAL)
    gov = scheduler.governor
    gov.arrivals.update(premium=premium, standard=standard, free=60)
    gov.on_step(0, 4, 256, is_active=True)   # a control tick re-reads the tiers' budgets
    return gov


def _first(gov, seqs, now_ns):
    waiting = list(seqs)
    gov.sort(waiting, [], now_ns)
    assert waiting == sorted(seqs, key=lambda s: gov.waiting_key(s, now_ns))
    return [s.tenant for s in waiting]


def test_budget_puts_premium_before_standard_at_equal_slack():
    gov = _governor_with_traffic()
    # the same arrival, so the same slack: premium first (a late premium request costs 6x the budget share)
    assert _first(gov, [seq(1, "standard", 0.5), seq(2, "premium", 0.5)], S) == ["premium", "standard"]
    # premium arriving a little later still goes first; edf and fcfs would serve standard first
    assert _first(gov, [seq(1, "standard", 0.5), seq(2, "premium", 0.9)], S) == ["premium", "standard"]
    assert admitted_order("edf", [seq(1, "standard", 0.5), seq(2, "premium", 0.9)], EQUAL, S) == [1, 2]
    # slack still counts: a standard request about to miss its TTFT goes before a fresh premium one
    assert _first(gov, [seq(1, "standard", 0.0), seq(2, "premium", 1.9)], int(1.9 * S)) == ["standard", "premium"]
    # every budget healthy: sheddable free shares the pulled-deadline order (its 2.0 s deadline is before
    # standard's pulled 2.17 s), so it goes before standard, after premium
    three = [seq(0, "free", 0.0), seq(1, "standard", 0.5), seq(2, "premium", 0.5)]
    assert not gov.is_protecting and _first(gov, three, S) == ["premium", "free", "standard"]
    # a protected tier at risk (here the slack signal: premium waited past half its TTFT): free goes after
    # both, however early it arrived, until the shed level relaxes
    gov.sort([seq(9, "premium", 0.0)], [], int(1.5 * S))
    assert gov.late is not None
    gov.on_step(int(1.5 * S), 4, 256, is_active=True)
    assert gov.is_protecting and _first(gov, three, S) == ["premium", "standard", "free"]


def test_a_tier_burning_its_budget_is_pulled_ahead_of_a_healthy_more_critical_one():
    gov = _governor_with_traffic()
    now = int(0.5 * S)
    for k in range(12):   # standard: 12 timeouts in the short window, premium healthy
        gov.counters["standard"].record(now, "timeout", None, None)
        gov.counters["premium"].record(now, "ok", 0.1, 0.01)
    gov.on_step(now + gov.tick_ns, 4, 256, is_active=True)
    assert gov._pull_ns["standard"] == int(2.0 * S) > gov._pull_ns["premium"]
    assert _first(gov, [seq(1, "standard", 0.5), seq(2, "premium", 0.5)], S) == ["standard", "premium"]


def test_a_protected_request_prefilling_past_half_its_ttft_holds_batching_depth_but_sheds_nobody():
    gov = _governor_with_traffic()
    prefilling = seq(7, "premium", 0.0, prompt=300)
    prefilling.num_computed_tokens = 128          # chunked: part of its prompt done, no token yet
    gov.sort([], [prefilling], int(0.9 * S))
    assert not gov.is_prefill_late                # 0.9 s of a 2 s TTFT: not yet
    gov.sort([], [prefilling], int(1.1 * S))
    assert gov.is_prefill_late and gov.late is None and gov.urgent is None   # running: no shedding signal
    gov.step_ewma_ns = 10 * S                     # decode steps far beyond every TPOT objective
    for k in range(6):
        assert gov.on_step(int(1.1 * S) + (k + 1) * gov.tick_ns, 16, 256, is_active=True) is None
    assert not gov.shed and (gov.batching.seqs, gov.batching.tokens) == gov.batching.base

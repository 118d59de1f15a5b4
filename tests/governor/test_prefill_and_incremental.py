"""Prefill chunk order inside a step (the policy hook) and the governor's incremental sort keys (no torch)."""

from __future__ import annotations

import random

from harness.engine.config import EngineConfig
from harness.engine.governor.config import GovernorConfig, TierSpec
from harness.engine.scheduler import Scheduler
from harness.engine.sequence import Sequence

S = 1_000_000_000
TIERS = GovernorConfig(tiers=(
    TierSpec("premium", ("premium",), criticality=0, ttft_s=2.0, protected=True, objective=0.995),
    TierSpec("standard", ("standard",), criticality=1, ttft_s=2.0, protected=True, objective=0.99),
    TierSpec("free", ("free",), criticality=2, ttft_s=2.0, objective=0.95)), short_window_s=1, long_window_s=10)


def seq(i, tenant, arrival_s, prompt=8, out=4):
    return Sequence(i, [1] * prompt, out, tenant=tenant, arrival_ns=int(arrival_s * S))


def two_running_prefills(policy, first, second, now_ns, arrivals=(0.0, 0.0)):
    """Both admitted with a 64-token budget (32-token chunks), then the budget cut to one chunk: whose chunk
    does the next step run? ``first`` is queued (and admitted) before ``second``."""
    config = EngineConfig(max_num_seqs=4, max_num_batched_tokens=64, chunk_size=32, policy=policy,
                          request_timeout_s=None, num_kv_blocks=64)
    scheduler = Scheduler(config, TIERS)
    a, b = seq(0, first, arrivals[0], prompt=200), seq(1, second, arrivals[1], prompt=200)
    scheduler.add(a)
    scheduler.add(b)
    out = scheduler.schedule(now_ns)
    assert sorted(c.seq.request_id for c in out.chunks) == [0, 1]   # both running, both still prefilling
    for c in out.chunks:
        c.seq.num_computed_tokens += c.num_tokens
    config.max_num_batched_tokens = 32
    out = scheduler.schedule(now_ns + S // 100)
    return [c.seq.tenant for c in out.chunks]


def test_budget_runs_a_premium_prompts_chunk_before_a_free_ones_at_equal_arrival():
    # free arrived (and was admitted) first at the same instant: fcfs keeps that order, budget does not
    assert two_running_prefills("budget", "free", "premium", 0) == ["premium"]
    assert two_running_prefills("fcfs", "free", "premium", 0) == ["free"]
    assert two_running_prefills("edf", "free", "premium", 0) == ["free"]   # equal deadlines: arrival order


def test_prefill_order_follows_slack_too_not_only_criticality():
    # standard arrived at 0 and is 0.05 s from its 2 s TTFT; premium arrived at 1.9 s: the pulled deadline
    # (budget risk) puts the standard prompt first, where the preemption order (criticality) would not
    now = int(1.95 * S)
    assert two_running_prefills("budget", "premium", "standard", now, arrivals=(1.9, 0.0)) == ["standard"]
    # with equal slack premium (the costlier miss) goes first again
    assert two_running_prefills("budget", "standard", "premium", 0) == ["premium"]


def test_baselines_keep_their_own_running_order_for_prefills():
    # priority: criticality; vtc and sjf: their running keys; the hook leaves their order as it was
    assert two_running_prefills("priority", "free", "premium", 0) == ["premium"]
    assert two_running_prefills("sjf", "free", "premium", 0) == ["free"]   # equal work: arrival order


def test_incremental_sort_keys_equal_fresh_keys_step_after_step():
    """Arrivals, ticks that move the pulls, deadlines passing, preemptions, deferral switching: after every
    sort the queue is in exactly the order fresh keys give."""
    rng = random.Random(11)
    config = EngineConfig(max_num_seqs=6, max_num_batched_tokens=96, chunk_size=32, policy="budget",
                          request_timeout_s=None, num_kv_blocks=40, max_queue_len=1000)
    scheduler = Scheduler(config, TIERS)
    gov = scheduler.governor
    now, next_id, checked, versions = 0, 0, 0, set()
    for step in range(600):
        for _ in range(rng.choice([0, 0, 1, 2])):
            s = seq(next_id, rng.choice(["premium", "standard", "standard", "free", "free", "free", "walkin"]),
                    now / S, prompt=rng.randint(8, 120), out=rng.randint(2, 40))
            s.arrival_ns = now
            gov.on_arrival(s, now, is_active=True)
            scheduler.add(s)
            next_id += 1
        gov.on_step(now, config.max_num_seqs, config.max_num_batched_tokens, is_active=True,
                    last_decode_step_ns=10_000_000)
        if step % 97 == 50:
            gov.is_deferring = not gov.is_deferring   # deferral reads the predictor live
        versions.add(gov._version)
        gov.sort(scheduler.waiting, scheduler.running, now)
        if len(scheduler.waiting) > 1:
            assert scheduler.waiting == sorted(scheduler.waiting, key=lambda s: gov.waiting_key(s, now)), step
            checked += 1
        out = scheduler.schedule(now)
        for c in out.chunks:
            c.seq.num_computed_tokens += c.num_tokens
            if c.samples:
                c.seq.token_ids.append(7)
                c.seq.first_token_ns = c.seq.first_token_ns or now
                c.seq.last_token_ns = now
                if c.seq.is_done:
                    scheduler.remove(c.seq)
                    gov.on_done(c.seq, rng.choice(["ok", "ok", "ok", "error"]), now)
        now += 30_000_000
    assert checked > 300 and len(versions) > 5   # the pulls really moved, and the queue was non-trivial
    assert len(gov._keys) <= len(scheduler.waiting)   # kept keys leave with their requests

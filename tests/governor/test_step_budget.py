"""The per-step prefill cap (feed-forward batching depth, harness/engine/governor/step_budget.py), alone with a
known step-cost model, then through the scheduler (no torch)."""

from __future__ import annotations

import random

from harness.engine.clock import StepCostModel, StepFeatures
from harness.engine.config import EngineConfig
from harness.engine.governor.config import GovernorConfig, TierSpec
from harness.engine.governor.step_budget import (KnownStepCost, OnlineStepCost, PrefillTimeCap, decode_only_ns,
                                                 prefill_cap)
from harness.engine.scheduler import Scheduler
from harness.engine.sequence import Sequence

MS = 1_000_000
S = 1_000_000_000
MODEL = StepCostModel(base_s=0.006, prefill_token_s=0.0004, decode_seq_s=0.0003, kv_token_s=0.000002)
TIERS = GovernorConfig(tiers=(
    TierSpec("premium", ("premium",), criticality=0, ttft_s=5.0, tpot_s=0.040, protected=True, objective=0.995),
    TierSpec("free", ("free",), criticality=1, ttft_s=5.0, tpot_s=0.040, objective=0.95)),
    short_window_s=1, long_window_s=10, buffer_share=0.0)


def test_cap_spends_exactly_the_time_left_in_the_models_terms():
    known = KnownStepCost(MODEL)
    # one protected decode due 40 ms from now, 2 decodes attending to 300 tokens in all
    decode_only = 6 * MS + 2 * 0.3 * MS + 300 * 0.002 * MS
    assert abs(decode_only_ns(known.coefficients_ns(), 2, 300) - decode_only) < 1
    cap = prefill_cap(known, 40 * MS, decode_only, 0)
    assert abs(cap.left_ns - (40 * MS - decode_only)) < 1
    # a chunk of c tokens after s cached costs 0.4 c + 0.002 (s + c) ms
    c = cap.tokens(cached=100, wanted=1000)
    assert c == int((cap.left_ns - 100 * 0.002 * MS) // (0.402 * MS))
    cap.charge(100, c)
    assert 0 <= cap.left_ns < 0.402 * MS
    assert cap.tokens(cached=0, wanted=64) == 0
    assert PrefillTimeCap(10 * MS, 0.5 * MS, 0.0).tokens(0, 8) == 8   # capped by what is wanted


def test_no_cap_without_a_protected_decode_or_a_prediction():
    out, _, _ = step_with("budget", 0.040, premium_tenant="free")    # only sheddable decodes: no cap
    assert sum(c.num_tokens for c in out.chunks if c.is_prefill) == 254
    out, _, _ = step_with("budget", 0.040, known=False)              # the online fit has seen nothing yet
    assert sum(c.num_tokens for c in out.chunks if c.is_prefill) == 254


def test_a_step_delay_fault_is_part_of_the_known_cost():
    known = KnownStepCost(MODEL)
    known.delay_ns = 10 * MS
    assert decode_only_ns(known.coefficients_ns(), 0, 0) == 16 * MS


def test_online_fit_recovers_a_known_model_and_its_margin_is_twice_the_noise():
    rng = random.Random(5)
    online = OnlineStepCost()
    sigma_ns = 0.5 * MS
    for _ in range(600):
        f = StepFeatures(rng.choice([0, 0, 32, 64, 128, 256]), rng.randint(0, 16), rng.randint(0, 4000))
        online.observe(f.prefill_tokens, f.decode_seqs, f.kv_context_tokens,
                       MODEL.cost_ns(f) + int(rng.gauss(0, sigma_ns)))
    for got, want in zip(online.coefficients_ns(), MODEL.coefficients()):
        assert abs(got - want * 1e9) <= 0.1 * want * 1e9
    assert 1.5 * sigma_ns < online.margin_ns < 2.6 * sigma_ns


def test_online_fit_never_predicts_a_negative_cost():
    online = OnlineStepCost()
    for i in range(64):   # a feature that never varies (no decodes) and one that does
        online.observe(i % 7 * 10, 0, 0, 5 * MS + (i % 7) * 10 * 400_000)
    assert all(c >= 0 for c in online.coefficients_ns())


# ---- through the scheduler -------------------------------------------------------------------------------

def decoding(i, tenant, first_token_s, generated, prompt=32):
    """A running sequence whose prompt is computed and ``generated`` tokens are out, the first at first_token_s."""
    s = Sequence(i, [1] * prompt, 64, tenant=tenant, arrival_ns=0)
    s.token_ids.extend([2] * generated)
    s.num_computed_tokens = prompt + generated - 1
    s.first_token_ns = int(first_token_s * S)
    return s


def step_with(policy, premium_slack_s, now_s=1.0, premium_tenant="premium", known=True):
    """A premium decode whose next token is due ``premium_slack_s`` after now, a free decode, and free prompts
    waiting: the step the scheduler builds and its modelled cost."""
    config = EngineConfig(max_num_seqs=16, max_num_batched_tokens=256, chunk_size=64, policy=policy,
                          request_timeout_s=None, num_kv_blocks=256)
    scheduler = Scheduler(config, TIERS)
    if known:
        scheduler.governor.step_cost = KnownStepCost(MODEL)
    now = int(now_s * S)
    generated = 10
    # the 11th token is due at first + 10 x 40 ms; place first so that this is now + slack
    premium = decoding(0, premium_tenant, now_s + premium_slack_s - generated * 0.040, generated)
    free = decoding(1, "free", now_s - 0.5, 20)
    for s in (premium, free):
        s.status = s.status.RUNNING
        scheduler.running.append(s)
        scheduler.block_manager.grow(s, len(s))
    for i in range(2, 6):
        scheduler.add(Sequence(i, [1] * 200, 8, tenant="free", arrival_ns=now - S // 10))
    out = scheduler.schedule(now)
    cost = MODEL.cost_ns(StepFeatures(
        sum(c.num_tokens for c in out.chunks if c.is_prefill), sum(1 for c in out.chunks if not c.is_prefill),
        sum(c.seq.num_computed_tokens + c.num_tokens for c in out.chunks)))
    return out, now + cost, now + int(premium_slack_s * S)


def test_budget_cuts_the_prefill_so_the_premium_token_is_in_time_and_fcfs_does_not():
    out, end, due = step_with("budget", 0.040)
    prefill = sum(c.num_tokens for c in out.chunks if c.is_prefill)
    assert 0 < prefill < 254 and end <= due
    # one more token would not have fitted
    assert end + 0.402 * MS > due
    out, end, due = step_with("fcfs", 0.040)
    assert sum(c.num_tokens for c in out.chunks if c.is_prefill) == 254 and end > due


def test_banked_slack_buys_a_longer_prefill_and_a_deficit_buys_none():
    def prefill(slack):
        out, end, due = step_with("budget", slack)
        assert end <= due or sum(c.num_tokens for c in out.chunks if c.is_prefill) == 0
        return sum(c.num_tokens for c in out.chunks if c.is_prefill)
    assert prefill(0.020) < prefill(0.040) < prefill(0.080) <= 254
    assert prefill(0.005) == 0    # behind its deadlines but a few decode-only steps catch up: decodes only


def test_a_lost_tpot_does_not_hold_every_prefill():
    # 5 s behind with a few tokens to go: decode-only steps cannot bring it back, so the step is not capped
    out, _, _ = step_with("budget", -5.0)
    assert sum(c.num_tokens for c in out.chunks if c.is_prefill) == 254


def test_property_every_counted_protected_token_is_in_time():
    rng = random.Random(11)
    for _ in range(200):
        slack = rng.uniform(0.012, 0.3)
        out, end, due = step_with("budget", slack, now_s=rng.uniform(1.0, 50.0))
        assert end <= due, (slack, end - due)

"""Protected prefills under the per-step TPOT cap (harness/engine/governor/step_budget.py: UrgentPrefills,
hard_deadline_ns): a protected prompt the soft bound would make miss its TTFT may spend the protected decodes'
recoverable slack, never more; alone with known deadlines, then a seeded run of the scheduler on a known
step-cost model (no torch)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from harness.engine.clock import StepCostModel, StepFeatures
from harness.engine.config import EngineConfig
from harness.engine.governor import step_budget
from harness.engine.governor.config import GovernorConfig, TierSpec
from harness.engine.governor.step_budget import KnownStepCost, PrefillTimeCap, UrgentPrefills, hard_deadline_ns
from harness.engine.scheduler import Scheduler
from harness.engine.sequence import Sequence

MS = 1_000_000
S = 1_000_000_000
MODEL = StepCostModel(base_s=0.006, prefill_token_s=0.0004, decode_seq_s=0.0003, kv_token_s=0.000002)
PER_TOKEN = 0.402 * MS   # prefill + kv per prefill token


def prompt(tokens, deadline_ns):
    return SimpleNamespace(num_uncomputed_tokens=tokens, deadline=deadline_ns)


def urgency(now=0, decode_only=10 * MS, steady=30 * MS, chunk=64, budget=64):
    return UrgentPrefills(now, decode_only, steady, PER_TOKEN, chunk, budget, lambda s: s.deadline)


def test_urgent_exactly_when_the_soft_pace_misses_and_the_full_pace_makes_it():
    # 512 tokens: 205.8 ms of prefill; full pace 8 steps x 10 ms + 205.8 = 285.8 ms; soft pace 30 ms a step:
    # ceil(205.8 / 30) = 7 < 8 steps, so 8 x 40 ms = 320 ms
    assert not urgency()(prompt(512, 321 * MS))      # the soft pace makes it
    assert urgency()(prompt(512, 319 * MS))          # only the full pace makes it
    assert urgency()(prompt(512, 286 * MS))
    assert not urgency()(prompt(512, 285 * MS))      # lost at the full pace too: no claim on the decodes
    assert not urgency()(SimpleNamespace(num_uncomputed_tokens=512, deadline=None))   # not protected
    assert urgency(steady=0)(prompt(64, 100 * MS))   # the soft bound leaves nothing: any feasible one is urgent


def test_prompts_asked_before_count_as_work_ahead():
    u = urgency()
    assert not u(prompt(128, 500 * MS))              # 51 ms of work, soft pace 2 steps: in time
    # alone 128 tokens would make 170 ms at the soft pace; behind 51 ms of work it needs 4 steps = 160 ms
    assert u(prompt(128, 150 * MS))
    assert not urgency()(prompt(128, 150 * MS))


def test_hard_deadline_is_half_the_recoverable_slack():
    # tpot 40 ms, decode-only steps 10 ms: each later step banks 30 ms, 20 tokens to go: 600 ms, half of it
    assert hard_deadline_ns(100 * MS, 40 * MS, 10 * MS, 20) == 100 * MS + 300 * MS
    assert hard_deadline_ns(100 * MS, 40 * MS, 50 * MS, 20) == 100 * MS   # no gain: no slack to lend
    assert hard_deadline_ns(0, 40 * MS, 10 * MS, 0) == 15 * MS            # at least one token to come


def test_only_an_urgent_chunk_goes_past_the_soft_bound_and_never_past_the_hard_one():
    cap = PrefillTimeCap(10 * MS, PER_TOKEN, 0.002 * MS, 60 * MS, lambda s: s.urgent)
    calm, urgent = SimpleNamespace(urgent=False), SimpleNamespace(urgent=True)
    assert cap.tokens(0, 256, calm) == int(10 * MS // PER_TOKEN)
    assert cap.tokens(0, 256, urgent) == int(60 * MS // PER_TOKEN)
    cap.charge(0, 64)   # both bounds pay for every chunk
    assert cap.left_ns < 0 and cap.tokens(0, 64, calm) == 0
    assert cap.tokens(0, 256, urgent) == int((60 * MS - 64 * PER_TOKEN) // PER_TOKEN)


# ---- runs of the scheduler on the known step-cost model ---------------------------------------------------

TIERS = GovernorConfig(tiers=(
    TierSpec("premium", ("premium",), criticality=0, ttft_s=0.27, tpot_s=0.040, protected=True, objective=0.995),
    TierSpec("free", ("free",), criticality=1, ttft_s=3.0, tpot_s=0.2, objective=0.95)),
    short_window_s=1, long_window_s=10, buffer_share=0.0)


def simulate(arrivals: list[Sequence], policy: str = "budget"):
    """Run the scheduler and the governor on a clock that is the known step-cost model (what the engine's
    modelled clock does, without the model's forward pass) until every request is done; the finished ones."""
    config = EngineConfig(max_num_seqs=16, max_num_batched_tokens=256, chunk_size=64, policy=policy,
                          request_timeout_s=None, num_kv_blocks=4096)
    scheduler = Scheduler(config, TIERS)
    governor = scheduler.governor
    governor.step_cost = KnownStepCost(MODEL)
    arrivals = sorted(arrivals, key=lambda s: s.arrival_ns)
    now, done = 0, []
    while arrivals or scheduler.has_unfinished():
        while arrivals and arrivals[0].arrival_ns <= now:
            seq = arrivals.pop(0)
            governor.on_arrival(seq, now, is_active=policy == "budget")
            scheduler.add(seq)
        governor.on_step(now, config.max_num_seqs, config.max_num_batched_tokens, is_active=policy == "budget")
        out = scheduler.schedule(now)
        if not out.chunks:
            now = arrivals[0].arrival_ns if arrivals else now + 20 * MS
            continue
        now += MODEL.cost_ns(StepFeatures(sum(c.num_tokens for c in out.chunks if c.is_prefill),
                                          sum(1 for c in out.chunks if not c.is_prefill),
                                          sum(c.seq.num_computed_tokens + c.num_tokens for c in out.chunks)))
        for chunk in out.chunks:
            seq = chunk.seq
            seq.num_computed_tokens += chunk.num_tokens
            if not chunk.samples:
                continue
            seq.token_ids.append(0)
            seq.first_token_ns = seq.first_token_ns or now
            seq.last_token_ns = now
            if seq.is_done:
                scheduler.remove(seq)
                governor.on_done(seq, "ok", now)
                done.append(seq)
    return done


def ttft_s(seq):
    return (seq.first_token_ns - seq.arrival_ns) / S


def tpot_s(seq):
    return (seq.last_token_ns - seq.first_token_ns) / S / (seq.num_output_tokens - 1)


def long_prompt_among_decodes(seed: int) -> list[Sequence]:
    """12 premium requests with short prompts and long outputs (decoding by 0.3 s), then a premium 512-token
    prompt at 0.5 s + jitter: under the soft bound its 8 chunks of 64 tokens take ~0.30 s, over its 0.27 s
    objective; in 3 steps of up to the token budget ~0.25 s."""
    rng = random.Random(seed)
    out = [Sequence(i, [1] * rng.randint(8, 24), rng.randint(150, 200), tenant="premium",
                    arrival_ns=int(rng.uniform(0, 0.02) * S)) for i in range(12)]
    out.append(Sequence(99, [1] * 512, 8, tenant="premium", arrival_ns=int((0.5 + rng.uniform(0, 0.05)) * S)))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_long_protected_prompt_takes_the_decodes_slack_and_every_protected_tpot_holds(seed, monkeypatch):
    done = {s.request_id: s for s in simulate(long_prompt_among_decodes(seed))}
    with monkeypatch.context() as m:   # the cap of 2 December: no prefill is urgent
        m.setattr(step_budget.UrgentPrefills, "__call__", lambda self, seq: False)
        soft = {s.request_id: s for s in simulate(long_prompt_among_decodes(seed))}
    assert ttft_s(soft[99]) > 0.27 and ttft_s(done[99]) <= 0.27
    assert all(tpot_s(s) <= 0.040 for s in soft.values() if s.request_id != 99)
    assert all(tpot_s(s) <= 0.040 for s in done.values() if s.request_id != 99)   # borrowed slack came back
    fcfs = {s.request_id: s for s in simulate(long_prompt_among_decodes(seed), "fcfs")}
    assert ttft_s(fcfs[99]) > 0.27   # no cap, but 64-token chunks: 8 steps are the miss, not the cap alone


# ---- a seat for a long protected prompt: its latest start, not half its TTFT ----------------------------

SEATS = GovernorConfig(tiers=(
    TierSpec("standard", ("standard",), criticality=0, ttft_s=0.6, tpot_s=0.040, protected=True, objective=0.99),
    TierSpec("free", ("free",), criticality=1, ttft_s=3.0, tpot_s=0.2, objective=0.95)),
    short_window_s=1, long_window_s=10, buffer_share=0.0)


@pytest.mark.parametrize("prompt_tokens,waited_s,preempts", [
    # latest start: waited + (the preempting step + 8 chunks) x 40 ms past the 0.6 s objective
    (512, 0.23, False),   # 0.23 + 9 x 40 ms = 0.59 s: it can still start later
    (512, 0.25, True),    # 0.61 s > 0.6: its latest start has come, before half its TTFT (0.3 s)
    (32, 0.29, False),    # a short prompt: one chunk; only half its TTFT makes it urgent
    (32, 0.31, True),
    (512, 0.61, False),   # past its TTFT: lost, no one is preempted for it
])
def test_a_long_protected_prompt_gets_a_seat_by_its_latest_start(prompt_tokens, waited_s, preempts):
    config = EngineConfig(max_num_seqs=4, max_num_batched_tokens=256, chunk_size=64, policy="budget",
                          request_timeout_s=None, num_kv_blocks=256)
    scheduler = Scheduler(config, SEATS)
    for i in range(4):   # every seat taken by a free request
        scheduler.add(Sequence(i, [1] * 8, 100, tenant="free", arrival_ns=0))
    scheduler.schedule(0)
    now = 2 * S
    scheduler.add(Sequence(9, [1] * prompt_tokens, 8, tenant="standard", arrival_ns=now - int(waited_s * S)))
    out = scheduler.schedule(now)
    assert [s.tenant for s in out.preempted] == (["free"] if preempts else [])

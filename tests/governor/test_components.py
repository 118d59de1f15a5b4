"""The governor's parts alone: ring windows, admission (never a protected tier), batching bounds, the
length predictor and the reliability buffer. Pure Python: no engine, no torch."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.engine.errors import UserError
from harness.engine.governor.components import (AdmissionLevel, BatchingDepth, LengthPredictor, TierState,
                                                may_take_seat, reserved_seats, sheddable_order, tiers_to_shed,
                                                trigger_reason)
from harness.engine.governor.config import GovernorConfig, TierSpec
from harness.engine.governor.counters import RingWindow, TierCounters, is_good
from harness.engine.governor.governor import Governor
from harness.engine.sequence import Sequence

S = 1_000_000_000


def test_ring_window_forgets_events_older_than_the_window():
    w = RingWindow(10.0)               # ten buckets of 1 s
    for t in range(20):
        w.add(t * S, bad=t % 4 == 0)
    events, bad = w.totals(19 * S)     # t = 10..19 are in the window
    assert events == 10 and bad == sum(1 for t in range(10, 20) if t % 4 == 0)
    assert w.totals(100 * S) == (0, 0)


def test_counters_burn_and_budget_as_slo_report_defines_them():
    tier = TierSpec("p", objective=0.99, ttft_s=1.0, tpot_s=0.1)
    c = TierCounters(tier, 10.0, 100.0)
    for i in range(98):
        c.record(i * S // 10, "ok", 0.5, 0.05)
    c.record(10 * S, "ok", 1.5, 0.05)          # TTFT too slow: bad
    c.record(10 * S, "rejected", None, None)   # rejected: bad
    assert (c.events, c.bad) == (100, 2)
    assert c.budget_consumed == pytest.approx(2.0)      # 2 % bad against a 1 % budget
    assert c.long_burn(10 * S) == pytest.approx(2.0)
    assert is_good(tier, "ok", None, None) and is_good(tier, "ok", 1.0, 0.1)   # undefined metrics hold


TIER_STATES = st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.floats(0, 100), st.floats(0, 100),
                                 st.floats(-50, 1)), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(TIER_STATES, st.integers(0, 10))
def test_admission_never_sheds_a_protected_tier(rows, level):
    tiers = tuple(TierSpec(f"t{i}", (f"tenant{i}",), criticality=c, protected=p) for i, (c, p, *_) in enumerate(rows))
    states = [TierState(t, sb, lb, rem, 100) for t, (_, _, sb, lb, rem) in zip(tiers, rows)]
    protected = {t.name for t in tiers if t.protected}
    assert not tiers_to_shed(tiers, level) & protected
    assert all(trigger_reason(s, 14.4, 0.25, 1) is None for s in states if not s.tier.protected)
    # The whole governor under the same states: a protected tenant's arrival is never rejected.
    gov = Governor(GovernorConfig(tiers=tiers, short_window_s=1.0, long_window_s=10.0), 16, 256)
    gov.arrivals = {t.name: 1 for t in gov.tiers}
    gov.shed = {t.name for t in gov.tiers}          # even if every tier were marked shed
    for i, tier in enumerate(tiers):
        reason = gov.on_arrival(Sequence(i, [1] * 8, 4, tenant=f"tenant{i}"), 0, is_active=True)
        assert (reason is None) == tier.protected


def test_shedding_goes_least_critical_first_and_relaxes_with_hysteresis():
    tiers = (TierSpec("premium", criticality=0, protected=True), TierSpec("standard", criticality=1),
             TierSpec("free", criticality=2))
    assert [t.name for t in sheddable_order(tiers)] == ["free", "standard"]
    level = AdmissionLevel(max_level=2, hold_ns=S)
    assert level.update(0, True) == 1 and level.update(S // 2, True) is None   # held for a second
    assert level.update(S, True) == 2 and level.update(2 * S, True) is None   # at the top
    assert level.update(3 * S, False) == 1 and level.update(4 * S, False) == 0
    slow = AdmissionLevel(max_level=2, hold_ns=S, relax_ns=3 * S)
    assert slow.update(0, True) == 1
    assert slow.update(S, False) is None and slow.update(2 * S, False) is None   # relaxes 3 s after the trigger
    assert slow.update(3 * S, False) == 0
    page = TierState(tiers[0], 20.0, 15.0, 0.9, 50)
    assert trigger_reason(page, 14.4, 0.25, 10) == "page"
    assert trigger_reason(TierState(tiers[0], 20.0, 1.0, 0.9, 50), 14.4, 0.25, 10) is None    # one window only
    assert trigger_reason(TierState(tiers[0], 1.0, 1.0, 0.1, 50), 14.4, 0.25, 10) == "budget"
    assert trigger_reason(TierState(tiers[0], 0.5, 1.0, 0.1, 50), 14.4, 0.25, 10) is None     # no longer burning


def test_a_burn_rate_on_too_few_events_triggers_nothing():
    premium = TierSpec("premium", criticality=0, protected=True, objective=0.995)
    # one bad event of three: a burn of 67x in both windows, and the budget spent; on 3 events it is not evidence
    thin = TierState(premium, 66.7, 66.7, -65.0, 3)
    assert trigger_reason(thin, 14.4, 0.25, 10) is None
    assert trigger_reason(thin, 14.4, 0.25, 3) == "page"        # the bound is the setting, inclusive
    assert trigger_reason(TierState(premium, 66.7, 66.7, -65.0, 10), 14.4, 0.25, 10) == "page"


def _governor_after(num_ok: int, num_bad: int, min_short_events: int | None = None) -> Governor:
    """A governor whose premium tier saw ``num_ok`` good and ``num_bad`` rejected requests, then one tick."""
    tiers = (TierSpec("premium", ("premium",), criticality=0, protected=True, objective=0.995),
             TierSpec("free", ("free",), criticality=2, objective=0.95))
    extra = {} if min_short_events is None else {"min_short_events": min_short_events}
    gov = Governor(GovernorConfig(tiers=tiers, short_window_s=10.0, long_window_s=100.0, **extra), 16, 256)
    gov.on_arrival(Sequence(10_000, [1] * 8, 4, tenant="free"), 0, is_active=True)   # free has had traffic
    for i in range(num_ok + num_bad):
        seq = Sequence(i, [1] * 8, 4, tenant="premium")
        gov.on_arrival(seq, i * S // 100, is_active=True)
        gov.on_done(seq, "ok" if i < num_ok else "rejected", i * S // 100)
    gov.on_step(S, 16, 256, is_active=True)
    return gov


def test_the_governor_does_not_shed_free_on_one_bad_premium_event_of_three():
    assert GovernorConfig().min_short_events == 10     # the documented default
    gov = _governor_after(num_ok=2, num_bad=1)
    assert gov.shed == set() and gov.trigger is None
    assert gov.on_arrival(Sequence(20_000, [1] * 8, 4, tenant="free"), S, is_active=True) is None
    # the same bad share on enough events is a page: free is shed
    gov = _governor_after(num_ok=10, num_bad=5)
    assert gov.shed == {"free"} and gov.trigger == ("premium", "page")
    assert gov.on_arrival(Sequence(20_001, [1] * 8, 4, tenant="free"), S, is_active=True) == "shed_page"
    # and the bound is configurable in [governor]: min_short_events = 3 pages on the three events
    assert _governor_after(num_ok=2, num_bad=1, min_short_events=3).shed == {"free"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 20), max_size=60), st.integers(1, 64), st.integers(1, 2048))
def test_batching_depth_stays_in_bounds_and_returns_to_base(burns, base_seqs, base_tokens):
    depth = BatchingDepth(base_seqs, base_tokens, (2, 32), (64, 512))
    for burn in burns:
        depth.update(burn)
        assert 2 <= depth.seqs <= 32 and 64 <= depth.tokens <= 512
    for _ in range(40):
        depth.update(0.0)
    assert (depth.seqs, depth.tokens) == depth.base == (min(32, max(2, base_seqs)), min(512, max(64, base_tokens)))
    assert depth.update(5.0) is None   # one burning reading does not move it
    tokens_down = max(64, int(depth.base[1] * 0.75))
    # the token budget moves first; the seats only once the token budget is at its floor
    expected = (depth.base[0], tokens_down) if tokens_down != depth.base[1] else \
        (max(2, int(depth.base[0] * 0.75)), depth.base[1])
    assert depth.update(5.0) in (None, expected)


def test_batching_depth_shrinks_the_token_budget_before_the_seats_and_restores_seats_first():
    depth = BatchingDepth(16, 256, (2, 16), (64, 256))
    moves = [depth.update(5.0) for _ in range(12)]
    moves = [m for m in moves if m]
    assert moves[:5] == [(16, 192), (16, 144), (16, 108), (16, 81), (16, 64)]
    assert moves[5] == (12, 64) and depth.seqs < 12
    ups = [m for m in (depth.update(0.0) for _ in range(30)) if m]
    assert all(m[1] == 64 for m in ups if m[0] < 16)    # every seat is back before the token budget grows
    assert (depth.seqs, depth.tokens) == (16, 256)


def test_length_predictor_learns_per_tenant_and_prompt_bucket():
    p = LengthPredictor(alpha=0.5)
    assert p.predict("a", 100) is None
    for _ in range(20):
        p.observe("a", 100, 200, p.predict("a", 100))
        p.observe("b", 10, 10, p.predict("b", 10))
    assert p.predict("a", 100) == pytest.approx(200) and p.predict("b", 10) == pytest.approx(10)
    assert p.is_long(p.predict("a", 100)) and not p.is_long(p.predict("b", 10))
    assert p.accuracy()["within_2x"] > 0.9


def test_reliability_buffer_keeps_seats_for_protected_tiers():
    assert reserved_seats(20, 0.1, True) == 2 and reserved_seats(20, 0.1, False) == 0
    assert reserved_seats(1, 0.5, True) == 0       # never the last seat
    assert may_take_seat(False, 17, 20, 2) and not may_take_seat(False, 18, 20, 2) and may_take_seat(True, 19, 20, 2)


def test_bad_governor_configs_are_user_errors():
    with pytest.raises(UserError, match="short_window_s"):
        GovernorConfig(short_window_s=300, long_window_s=30)
    with pytest.raises(UserError, match="tenant 'x' is in tiers"):
        GovernorConfig(tiers=(TierSpec("a", ("x",)), TierSpec("b", ("x",))))
    with pytest.raises(UserError, match="objective"):
        TierSpec("a", objective=1.0)
    config = GovernorConfig(tiers=(TierSpec("premium", ("p",), protected=True, ttft_s=2.0),))
    assert config.tier_of("someone").name == "default" and not config.tier_of("someone").protected
    assert config.tier_of("someone").ttft_s == 2.0 and config.tier_of("someone").criticality == 1
    assert GovernorConfig.from_dict(config.to_dict()) == config

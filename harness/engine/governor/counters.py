"""Online SLO counters per tier: good/bad events over the run and over two sliding windows, O(1) each.

The good/bad rule is ``causalsre.slo``'s (``good_event_sql`` over the ``request_metrics`` view), computed
with the same arithmetic so a float at the threshold falls on the same side:

* ttft_s = (first_token_ns - arrival_ns) / 1e9, undefined without a first token;
* tpot_s = (last_token_ns - first_token_ns) / 1e9 / (output_tokens - 1), undefined unless output_tokens > 1;
* good iff status == 'ok' AND (ttft_s undefined OR ttft_s <= ttft) AND (tpot_s undefined OR tpot_s <= tpot).

Every request that leaves the engine is one event, rejected and timed-out ones included (they are bad).
Windows are rings of ``NUM_BUCKETS`` buckets keyed by the bucket's epoch, so adding an event and reading a
window cost the same whatever the traffic (no list of requests is kept).
"""

from __future__ import annotations

from harness.engine.governor.config import TierSpec

NUM_BUCKETS = 10


def ttft_seconds(arrival_ns: int, first_token_ns: int | None) -> float | None:
    return None if first_token_ns is None else (first_token_ns - arrival_ns) / 1e9


def tpot_seconds(first_token_ns: int | None, last_token_ns: int | None, output_tokens: int) -> float | None:
    if output_tokens <= 1 or first_token_ns is None or last_token_ns is None:
        return None
    return (last_token_ns - first_token_ns) / 1e9 / (output_tokens - 1)


def is_good(tier: TierSpec, status: str, ttft: float | None, tpot: float | None) -> bool:
    return status == "ok" and (ttft is None or ttft <= tier.ttft_s) and (tpot is None or tpot <= tier.tpot_s)


class RingWindow:
    """(events, bad) over the last ``window_s`` seconds, at bucket resolution (window_s / NUM_BUCKETS)."""

    __slots__ = ("width_ns", "epochs", "events", "bad")

    def __init__(self, window_s: float) -> None:
        self.width_ns = max(1, int(window_s * 1e9 / NUM_BUCKETS))
        self.epochs = [-1] * NUM_BUCKETS
        self.events = [0] * NUM_BUCKETS
        self.bad = [0] * NUM_BUCKETS

    def add(self, now_ns: int, bad: bool) -> None:
        epoch = now_ns // self.width_ns
        i = epoch % NUM_BUCKETS
        if self.epochs[i] != epoch:   # the bucket last held an older epoch: start it afresh
            self.epochs[i], self.events[i], self.bad[i] = epoch, 0, 0
        self.events[i] += 1
        self.bad[i] += bad

    def totals(self, now_ns: int) -> tuple[int, int]:
        oldest = now_ns // self.width_ns - NUM_BUCKETS + 1
        events = bad = 0
        for i in range(NUM_BUCKETS):
            if self.epochs[i] >= oldest:
                events += self.events[i]
                bad += self.bad[i]
        return events, bad


class TierCounters:
    """One tier's events: whole run, short and long windows, and TPOT-bad events over the short window."""

    __slots__ = ("tier", "events", "bad", "short", "long", "tpot_short")

    def __init__(self, tier: TierSpec, short_window_s: float, long_window_s: float) -> None:
        self.tier = tier
        self.events = 0
        self.bad = 0
        self.short = RingWindow(short_window_s)
        self.long = RingWindow(long_window_s)
        self.tpot_short = RingWindow(short_window_s)   # events that had a TPOT; bad = TPOT above the objective

    def record(self, now_ns: int, status: str, ttft: float | None, tpot: float | None) -> bool:
        """Count one finished request; returns whether it was bad."""
        bad = not is_good(self.tier, status, ttft, tpot)
        self.events += 1
        self.bad += bad
        self.short.add(now_ns, bad)
        self.long.add(now_ns, bad)
        if tpot is not None:
            self.tpot_short.add(now_ns, tpot > self.tier.tpot_s)
        return bad

    def burn(self, window: RingWindow, now_ns: int) -> float:
        """Bad share over the window divided by the allowed share (1.0 = spending exactly the budget)."""
        events, bad = window.totals(now_ns)
        return 0.0 if events == 0 else (bad / events) / self.tier.budget

    def short_burn(self, now_ns: int) -> float:
        return self.burn(self.short, now_ns)

    def short_events_and_burn(self, now_ns: int) -> tuple[int, float]:
        """(events, burn) of the short window in one read of its ring."""
        events, bad = self.short.totals(now_ns)
        return events, 0.0 if events == 0 else (bad / events) / self.tier.budget

    def long_burn(self, now_ns: int) -> float:
        return self.burn(self.long, now_ns)

    def tpot_burn(self, now_ns: int) -> float:
        return self.burn(self.tpot_short, now_ns)

    @property
    def budget_consumed(self) -> float:
        """As ``slo report``: bad / (events x (1 - objective)); 1.0 = the run's whole budget spent."""
        return 0.0 if self.events == 0 else self.bad / (self.events * self.tier.budget)

    @property
    def budget_remaining(self) -> float:
        return 1.0 - self.budget_consumed

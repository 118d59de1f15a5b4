"""The governor's small parts, each pure Python and tested alone: admission level, batching depth, the
output-length predictor and the reliability buffer. :mod:`harness.engine.governor.governor` wires them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.engine.governor.config import TierSpec


@dataclass(frozen=True, slots=True)
class TierState:
    """What admission reads of one tier at one instant."""

    tier: TierSpec
    short_burn: float
    long_burn: float
    budget_remaining: float
    short_events: int   # events in the short window: how much evidence the short burn rests on


def trigger_reason(state: TierState, page_burn: float, margin: float, min_events: int) -> str | None:
    """Why this protected tier asks for shedding, or None. ``page``: both windows burn at >= page_burn (the
    page alert would fire); ``budget``: its remaining budget is below the margin and it is still burning
    (short-window burn >= 1), so shedding stops once the burn stops even if the budget stays spent.

    Neither fires on fewer than ``min_events`` events in the short window: with 0.5 % of budget one bad
    event of three is a burn of 67x, which says nothing about the tier yet (the leading ``slack`` signal,
    a protected request queueing, is the governor's answer to thin traffic)."""
    if not state.tier.protected or state.short_events < min_events:
        return None
    if state.short_burn >= page_burn and state.long_burn >= page_burn:
        return "page"
    if state.budget_remaining < margin and state.short_burn >= 1.0:
        return "budget"
    return None


def sheddable_order(tiers: tuple[TierSpec, ...]) -> list[TierSpec]:
    """Tiers that may be shed, least critical first; a protected tier is never in this list."""
    return sorted((t for t in tiers if not t.protected), key=lambda t: (-t.criticality, t.name))


def tiers_to_shed(tiers: tuple[TierSpec, ...], level: int) -> set[str]:
    """Names of the ``level`` least critical sheddable tiers."""
    return {t.name for t in sheddable_order(tiers)[:max(0, level)]}


class AdmissionLevel:
    """How many sheddable tiers are shed: one more each ``hold_ns`` while a protected tier triggers; one
    fewer each ``hold_ns`` once no tier has triggered for the current relax time (hysteresis: shedding that
    stopped a burn must not stop the moment the burn does, or the level flaps with the queue).

    The relax time backs off: a level that rises again within one relax time of falling relaxed too early
    (the overload outlasted it), so the next relax waits twice as long, up to ``max_relax_ns``; once no tier
    has triggered for ``max_relax_ns`` it is back to ``relax_ns``. A transient burst is shed for ``relax_ns``;
    a sustained overload is shed until it ends, rather than readmitting the shed tier every ``relax_ns`` and
    letting each readmission's requests take the seats and prefill time a protected burst needs next."""

    __slots__ = ("max_level", "hold_ns", "relax_ns", "max_relax_ns", "relax_now_ns", "level", "last_change_ns",
                 "last_trigger_ns", "last_fall_ns")

    def __init__(self, max_level: int, hold_ns: int, relax_ns: int | None = None,
                 max_relax_ns: int | None = None) -> None:
        self.max_level = max_level
        self.hold_ns = hold_ns
        self.relax_ns = hold_ns if relax_ns is None else relax_ns
        self.max_relax_ns = max(self.relax_ns, self.relax_ns if max_relax_ns is None else max_relax_ns)
        self.relax_now_ns = self.relax_ns
        self.level = 0
        self.last_change_ns = -hold_ns
        self.last_trigger_ns = -self.max_relax_ns
        self.last_fall_ns: int | None = None

    def update(self, now_ns: int, triggered: bool) -> int | None:
        """The new level when it changes, else None."""
        if triggered:
            self.last_trigger_ns = now_ns
        elif self.level == 0 and now_ns - max(self.last_trigger_ns, self.last_fall_ns or 0) >= self.max_relax_ns:
            self.relax_now_ns = self.relax_ns
        if now_ns - self.last_change_ns < self.hold_ns:
            return None
        if triggered and self.level < self.max_level:
            if self.last_fall_ns is not None and now_ns - self.last_fall_ns < self.max_relax_ns:
                self.relax_now_ns = min(2 * self.relax_now_ns, self.max_relax_ns)
            self.level += 1
        elif not triggered and self.level > 0 and now_ns - self.last_trigger_ns >= self.relax_now_ns:
            self.level -= 1
            self.last_fall_ns = now_ns
        else:
            return None
        self.last_change_ns = now_ns
        return self.level


class BatchingDepth:
    """Sarathi-Serve's rule driven by measured TPOT burn: a smaller token budget, then fewer seats per step,
    shorten each step (lower TPOT, at some throughput); step down by ``factor`` while the most at-risk tier
    burns its TPOT budget at >= 1, step back toward the configured base when every tier burns at < 0.5.

    The token budget moves first and seats only once it is at its lower bound: a step's time is mostly its
    prefill tokens (the fitted step-cost model of the tiny CPU engine: 0.36 ms per prefill token against
    0.32 ms per decode sequence, so a 256-token chunk costs what 290 decodes do), so a smaller chunk buys the
    TPOT back while a smaller ``max_num_seqs`` would cut decode throughput for little step time (on the
    azure 1.3x development run shrinking both took ``max_num_seqs`` to 2 and cost 22 % of the goodput).
    Going back up, seats return first."""

    __slots__ = ("seq_bounds", "token_bounds", "base", "seqs", "tokens", "factor", "streak")

    def __init__(self, base_seqs: int, base_tokens: int, seq_bounds: tuple[int, int],
                 token_bounds: tuple[int, int], factor: float = 0.75) -> None:
        self.seq_bounds = seq_bounds
        self.token_bounds = token_bounds
        self.base = (_clamp(base_seqs, seq_bounds), _clamp(base_tokens, token_bounds))
        self.seqs, self.tokens = self.base
        self.factor = factor
        self.streak = 0   # consecutive updates in the same direction: +n burning, -n healthy

    def update(self, worst_tpot_burn: float) -> tuple[int, int] | None:
        """New (max_num_seqs, max_num_batched_tokens) when they change, else None. A move needs the same
        reading on two updates in a row, so one slow step (a noisy neighbour) does not move the batch."""
        if worst_tpot_burn >= 1.0:
            self.streak = max(1, self.streak + 1)
        elif worst_tpot_burn < 0.5:
            self.streak = min(-1, self.streak - 1)
        else:
            self.streak = 0
        seqs, tokens = self.seqs, self.tokens
        if self.streak >= 2:
            tokens = _clamp(int(self.tokens * self.factor), self.token_bounds)
            if tokens == self.tokens:   # the token budget is at its floor: now the seats
                seqs = _clamp(int(self.seqs * self.factor), self.seq_bounds)
        elif self.streak <= -2:
            seqs = min(max(self.base[0], self.seqs), _clamp(math.ceil(self.seqs / self.factor), self.seq_bounds))
            if seqs == self.seqs:       # every seat is back: now the token budget
                tokens = min(max(self.base[1], self.tokens),
                             _clamp(math.ceil(self.tokens / self.factor), self.token_bounds))
        else:
            return None
        if (seqs, tokens) == (self.seqs, self.tokens):
            return None
        self.seqs, self.tokens = seqs, tokens
        return seqs, tokens


def _clamp(value: int, bounds: tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], value))


class LengthPredictor:
    """Output length per (tenant, prompt-length bucket = bit length of the prompt length), as an EWMA of the
    lengths seen; falls back to the tenant's EWMA, then the global one. Also scores itself: the mean absolute
    error of each prediction made at arrival against the length the request really generated."""

    __slots__ = ("alpha", "by_key", "by_tenant", "global_mean", "abs_error", "num_scored", "num_within_2x")

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha
        self.by_key: dict[tuple[str | None, int], float] = {}
        self.by_tenant: dict[str | None, float] = {}
        self.global_mean: float | None = None
        self.abs_error = 0.0
        self.num_scored = 0
        self.num_within_2x = 0

    def predict(self, tenant: str | None, prompt_tokens: int) -> float | None:
        value = self.by_key.get((tenant, prompt_tokens.bit_length()))
        if value is None:
            value = self.by_tenant.get(tenant, self.global_mean)
        return value

    def is_long(self, predicted: float | None) -> bool:
        """Predicted at least twice the mean generation: a long one."""
        return predicted is not None and self.global_mean is not None and predicted >= 2.0 * self.global_mean

    def observe(self, tenant: str | None, prompt_tokens: int, output_tokens: int, predicted: float | None) -> None:
        if predicted is not None:
            self.abs_error += abs(predicted - output_tokens)
            self.num_scored += 1
            self.num_within_2x += output_tokens / 2.0 <= predicted <= output_tokens * 2.0
        key = (tenant, prompt_tokens.bit_length())
        for table, k in ((self.by_key, key), (self.by_tenant, tenant)):
            old = table.get(k)
            table[k] = float(output_tokens) if old is None else old + self.alpha * (output_tokens - old)
        g = self.global_mean
        self.global_mean = float(output_tokens) if g is None else g + self.alpha * (output_tokens - g)

    def accuracy(self) -> dict[str, float | int | None]:
        n = self.num_scored
        return {"scored": n, "mae_tokens": self.abs_error / n if n else None,
                "within_2x": self.num_within_2x / n if n else None}


def reserved_seats(max_num_seqs: int, buffer_share: float, has_protected: bool) -> int:
    """Seats of a step only protected tiers may take (the reliability buffer); none without a protected tier."""
    if not has_protected or buffer_share <= 0:
        return 0
    return min(max_num_seqs - 1, math.ceil(buffer_share * max_num_seqs))


def may_take_seat(is_protected: bool, num_running_unprotected: int, max_num_seqs: int, reserved: int,
                  num_running: int = 0, protected_waiting: int = 0) -> bool:
    """A protected request may always take a free seat. A sheddable one may not take the reserved seats, nor
    a seat that a protected request waiting for one would otherwise get: the free seats after it must still
    cover every protected request queued for a seat (the buffer grows with the protected queue in a burst;
    a seat given to a free request is held for its whole generation, about a second here, while the
    protected requests queued behind it run out of TTFT: gamma 1.3x, development seed 0, 9.8 s)."""
    if is_protected:
        return True
    return num_running_unprotected < max_num_seqs - reserved and max_num_seqs - num_running > protected_waiting


MIN_REMAINING = 0.05   # a spent budget still ranks by its burn: the floor keeps the division finite


def budget_risk(state: TierState, arrivals: int) -> float:
    """How much of a tier's remaining budget one more late request would cost, scaled by how fast it burns:
    (1 / (its requests x (1 - objective))) x (1 + short burn) / remaining budget. The first factor is the
    share of the budget one bad event spends (premium, 10 % of traffic at 99.5 %, spends 6x what standard,
    30 % at 99 %, does); less budget left and a faster burn raise it."""
    miss_cost = 1.0 / ((arrivals + 1) * (1.0 - state.tier.objective))
    return miss_cost * (1.0 + max(state.short_burn, 0.0)) / max(state.budget_remaining, MIN_REMAINING)


def deadline_pulls_ns(states: list[TierState], arrivals: dict[str, int]) -> dict[str, int]:
    """How far each tier's TTFT deadlines are pulled forward in the governor's order: its budget risk relative
    to the most at-risk protected tier (at most 1), times its TTFT objective (the most at-risk tier's requests
    sort as if due now; a tier at a sixth of that risk gains a sixth of its TTFT). So criticality (what a miss
    costs) and slack (time left to the deadline) combine in one key. A sheddable tier's pull counts only
    while no protected tier is at risk (then every tier shares the order; else sheddable tiers go after
    every protected one, by criticality); without a protected tier every pull is 0."""
    risks = {s.tier.name: budget_risk(s, arrivals.get(s.tier.name, 0)) for s in states}
    top = max((risks[s.tier.name] for s in states if s.tier.protected), default=0.0)
    return {s.tier.name: int(s.tier.ttft_s * 1e9 * min(1.0, risks[s.tier.name] / top)) if top > 0 else 0
            for s in states}

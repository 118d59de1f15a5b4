"""The budget governor: admission, ordering, batching depth, length-aware deferral and the reliability
buffer, all read off each tier's online SLO counters (the control law is in docs/methods/governor.md).

O(1) per request (a counter update, a predictor lookup) and per step (one control tick every
``short_window_s / NUM_BUCKETS`` reads each tier's rings once); sorting the queues is the scheduler's usual
per-step sort with a different key. Decisions are kept as control actions (transitions only) for the
harness to record; knob changes are returned for the engine's live-config path (``run_settings``).
"""

from __future__ import annotations

from harness.engine.governor.components import (AdmissionLevel, BatchingDepth, LengthPredictor, TierState,
                                                deadline_pulls_ns, sheddable_order, trigger_reason)
from harness.engine.governor.config import GovernorConfig
from harness.engine.governor.counters import NUM_BUCKETS, TierCounters, tpot_seconds, ttft_seconds
from harness.engine.governor.queue_hooks import QueueHooks
from harness.engine.governor.step_budget import OnlineStepCost
from harness.engine.governor.step_hooks import StepCapHooks

# The longest a shed tier waits, once a sustained overload has backed its relax time off, before it is admitted
# again to probe whether the overload is over. Chosen on development seeds 0-3 of the azure 1.3x evaluation
# (docs/methods/governor.md, 4 December: 2 long windows shed too briefly, a fixed long relax cost 0.8x's
# throughput); with the default 300 s window, 20 minutes.
MAX_RELAX_LONG_WINDOWS = 4


class Governor(StepCapHooks, QueueHooks):
    """The state and the control tick; the per-step cap (:mod:`.step_hooks`, first: it overrides the Policy
    default ``prefill_cap``) and the queue hooks (:mod:`.queue_hooks`) are mixed in and read the state set here."""

    def __init__(self, config: GovernorConfig, max_num_seqs: int, max_num_batched_tokens: int) -> None:
        super().__init__(config)
        self.tiers = config.all_tiers
        self.counters = {t.name: TierCounters(t, config.short_window_s, config.long_window_s) for t in self.tiers}
        self.tick_ns = max(1, int(config.short_window_s * 1e9 / NUM_BUCKETS))
        self.next_tick_ns = 0
        # Shedding relaxes after half a short window without a trigger (five ticks); a sustained overload, which
        # triggers again soon after each relax, backs that off to at most MAX_RELAX_LONG_WINDOWS long windows.
        self.admission = AdmissionLevel(len(sheddable_order(self.tiers)), self.tick_ns, 5 * self.tick_ns,
                                        int(MAX_RELAX_LONG_WINDOWS * config.long_window_s * 1e9))
        self.batching = BatchingDepth(max_num_seqs, max_num_batched_tokens,
                                      (config.min_max_num_seqs, config.max_max_num_seqs),
                                      (config.min_batched_tokens, config.max_batched_tokens))
        self.predictor = LengthPredictor()
        self.predictions: dict[int, float | None] = {}
        self.has_protected = any(t.protected for t in self.tiers)
        self.shed: set[str] = set()
        self.trigger: tuple[str, str] | None = None   # (protected tier, reason) asking for shedding now
        self.is_deferring = False
        # Which order the queue follows: earliest deadline while every budget is healthy, the budget-risk order
        # (protected tiers first, pulled deadlines) while a protected tier triggers or a tier is shed.
        self.is_protecting = False
        self.max_num_seqs = max_num_seqs
        self.num_unprotected_running = 0
        self.num_running = 0
        self.protected_waiting = 0                  # protected requests queued for a seat that can still be good
        self.actions: list[dict] = []
        self.arrivals: dict[str, int] = {t.name: 0 for t in self.tiers}
        # How far each tier's TTFT deadlines are pulled forward by its budget risk (re-read every tick).
        self._pull_ns: dict[str, int] = deadline_pulls_ns(
            [TierState(t, 0.0, 0.0, 1.0, 0) for t in self.tiers], self.arrivals)
        self.late: tuple[str, int] | None = None   # a protected tier with a request waiting past half its TTFT
        self.is_prefill_late = False                # a protected request prefilling past half its TTFT
        self.urgent: int | None = None              # the criticality of such a request that can still make it
        self._tenant_info: dict = {}                # tenant -> (tier, protected, criticality, ttft_ns)
        self._keys: dict[int, tuple] = {}           # seq.order -> (sort key, version, stale-at deadline)
        self._version = 0                           # bumped when the pulls change (a tick)
        self._reserved = (-1, 0)                    # (max_num_seqs, reserved seats) last computed
        self._seat_open: bool | None = None        # may a sheddable request take a seat (None: ask again)
        self.seat_preempted_ns: int | None = None  # the step that last preempted for a seat (it admits nobody)
        self.num_urgent = 0                         # protected requests urgent for a seat (sort)
        self._sorted_running: list | None = None    # the running list as sort last left it (sorted)
        self.step_ewma_ns: float | None = None      # EWMA of decode-step durations
        # The step-cost estimate the per-step prefill cap reads (step_budget): the engine sets the modelled
        # clock's own model; on the wall clock an online fit of the steps it measures.
        self.step_cost = OnlineStepCost()
        self._tpot_ns: dict = {}                    # tenant -> its tier's TPOT objective if protected, else None
        self.chunk_tokens = 1 << 30                 # a step's largest prefill chunk, as the scheduler last said
        self.tightest_tpot_ns = min(t.tpot_s for t in ([t for t in self.tiers if t.protected] or self.tiers)) * 1e9

    # ---- requests ---------------------------------------------------------------------------------------
    def on_arrival(self, seq, now_ns: int, *, is_active: bool) -> str | None:
        """Predict its length; the rejection reason when ``is_active`` and its tier is being shed."""
        self.predictions[seq.request_id] = self.predictor.predict(seq.tenant, seq.num_prompt_tokens)
        tier = self.config.tier_of(seq.tenant)
        self.arrivals[tier.name] += 1
        if is_active and tier.name in self.shed and not tier.protected:
            return f"shed_{self.trigger[1] if self.trigger else 'budget'}"
        return None

    def on_done(self, seq, status: str, now_ns: int) -> None:
        tier = self.config.tier_of(seq.tenant)
        ttft = ttft_seconds(seq.arrival_ns, seq.first_token_ns)
        tpot = tpot_seconds(seq.first_token_ns, seq.last_token_ns, seq.num_output_tokens)
        self.counters[tier.name].record(now_ns, status, ttft, tpot)
        predicted = self.predictions.pop(seq.request_id, None)
        if status == "ok":
            self.predictor.observe(seq.tenant, seq.num_prompt_tokens, seq.num_output_tokens, predicted)

    # ---- the control tick -------------------------------------------------------------------------------
    def states(self, now_ns: int) -> list[TierState]:
        out = []
        for t in self.tiers:
            c = self.counters[t.name]
            events, short_burn = c.short_events_and_burn(now_ns)
            out.append(TierState(t, short_burn, c.long_burn(now_ns), c.budget_remaining, events))
        return out

    def on_step(self, now_ns: int, max_num_seqs: int, max_num_batched_tokens: int, *, is_active: bool,
                last_decode_step_ns: int | None = None) -> dict[str, int] | None:
        """Once per tick: update shedding, deferral, risk and batching depth; knobs to change, or None.
        ``last_decode_step_ns``: the duration of the last step that ran decodes (each decode's inter-token
        time), the leading signal of TPOT; finished requests' TPOT is the lagging one."""
        if max_num_seqs != self.max_num_seqs:
            self.max_num_seqs, self._seat_open = max_num_seqs, None
        if last_decode_step_ns is not None:
            e = self.step_ewma_ns
            self.step_ewma_ns = last_decode_step_ns if e is None else e + 0.2 * (last_decode_step_ns - e)
        if not is_active or now_ns < self.next_tick_ns:
            return None
        self.next_tick_ns = now_ns + self.tick_ns
        states = self.states(now_ns)
        cfg = self.config
        triggers = [(s, r) for s in states if (r := trigger_reason(s, cfg.page_burn, cfg.margin, cfg.min_short_events))]
        if self.late is not None and not triggers:   # the leading signal: a protected request is queueing
            triggers = [(s, "slack") for s in states if s.tier.name == self.late[0]]
        worst = max(triggers, key=lambda sr: sr[0].short_burn) if triggers else None
        self.trigger = (worst[0].tier.name, worst[1]) if worst else None
        pulls = deadline_pulls_ns(states, self.arrivals)
        if pulls != self._pull_ns:
            self._pull_ns, self._version = pulls, self._version + 1   # every kept sort key is stale
        level_before, shed_before = self.admission.level, self.shed   # the dict only when the level moves
        level = self.admission.update(now_ns, bool(triggers))
        if level is not None:
            before = {"level": level_before, "shed": sorted(shed_before)}
            # Tiers that never had an arrival (the implicit default tier, often) are not worth a level.
            seen = [t for t in sheddable_order(self.tiers) if self.arrivals[t.name]]
            self.admission.max_level = len(seen)
            level = min(level, len(seen))
            self.admission.level = level
            self.shed = {t.name for t in seen[:level]}
            self._act(now_ns, "shed_level", worst, before, {"level": level, "shed": sorted(self.shed)})
        if bool(triggers) != self.is_deferring:
            self.is_deferring = bool(triggers)
            self._act(now_ns, "defer_long_on" if triggers else "defer_long_off", worst, {}, {})
        # The order's mode follows the same state (so the shed_level and defer_long rows above record it). While
        # no protected tier is at risk every tier shares one budget-risk-pulled deadline order: a sheddable
        # request about to miss goes before a protected one with slack to spare (serving free strictly last
        # let free miss while premium and standard finished far inside their objectives: gamma 1.0x, seed 0).
        # Once one triggers (the slack signal included: a protected request waited past half its TTFT)
        # protected tiers go first until the shed level has relaxed to 0.
        protecting = bool(triggers) or self.admission.level > 0
        if protecting != self.is_protecting:
            self.is_protecting, self._version = protecting, self._version + 1   # every kept key is stale
        protected = [s for s in states if s.tier.protected] or states
        # each ring read once (max keeps the first of equal burns, as before)
        tpot_burn, at_risk = max(((self.counters[s.tier.name].tpot_burn(now_ns), s) for s in protected),
                                 key=lambda burn_state: burn_state[0])
        # A decode step as long as the tightest TPOT objective burns it whatever finished requests say (each
        # decode's inter-token time is the step); under 70 % of it is healthy (Sarathi-Serve's rule: size the
        # batch so one iteration fits the TPOT target).
        # Once the per-step prefill cap can predict steps (prefill_cap) it holds this per step, so the reading
        # would only repeat what the cap already did; the finished requests' TPOT burn stays (what it missed).
        if self.step_ewma_ns is not None and self.step_cost.coefficients_ns() is None:
            ratio = self.step_ewma_ns / self.tightest_tpot_ns
            tpot_burn = max(tpot_burn, 1.0 if ratio >= 1.0 else 0.75 if ratio >= 0.7 else 0.0)
        # A smaller batch serves fewer requests per second: while a protected request is queueing (TTFT at
        # risk) shrinking it would trade one objective for the other, so it only shrinks when the queue is not.
        if tpot_burn >= 1.0 and (self.late is not None or self.is_prefill_late):
            tpot_burn = 0.75
        seqs_before, tokens_before = self.batching.seqs, self.batching.tokens
        change = self.batching.update(tpot_burn)
        if change is None:
            return None
        before = {"max_num_seqs": seqs_before, "max_num_batched_tokens": tokens_before}
        after = {"max_num_seqs": change[0], "max_num_batched_tokens": change[1]}
        self._act(now_ns, "batching_depth", (at_risk, f"tpot_burn={tpot_burn:.2f}"), before, after)
        return after

    def _act(self, now_ns: int, action: str, cause, before: dict, after: dict) -> None:
        state, reason = cause if cause else (None, "healthy")
        self.actions.append({
            "ts_ns": now_ns, "action": action, "tier": state.tier.name if state else None, "reason": reason,
            "short_burn": state.short_burn if state else None, "long_burn": state.long_burn if state else None,
            "budget_remaining": state.budget_remaining if state else None,
            "params_before": before, "params_after": after})

    def drain_actions(self) -> list[dict]:
        actions, self.actions = self.actions, []
        return actions

    def summary(self) -> list[dict]:
        """Each tier's final online counters (recorded at the end of a run, compared with ``slo report``)."""
        return [{"tier": t.name, "events": c.events, "bad_events": c.bad, "budget_consumed": c.budget_consumed,
                 "objective": t.objective} for t, c in ((t, self.counters[t.name]) for t in self.tiers)]

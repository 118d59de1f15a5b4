"""The budget governor: admission, ordering, batching depth, length-aware deferral and the reliability
buffer, all read off each tier's online SLO counters (the control law is in docs/methods/governor.md).

O(1) per request (a counter update, a predictor lookup) and per step (one control tick every
``short_window_s / NUM_BUCKETS`` reads each tier's rings once); sorting the queues is the scheduler's usual
per-step sort with a different key. Decisions are kept as control actions (transitions only) for the
harness to record; knob changes are returned for the engine's live-config path (``run_settings``).
"""

from __future__ import annotations

from harness.engine.governor.components import (AdmissionLevel, BatchingDepth, LengthPredictor, TierState,
                                                deadline_pulls_ns, may_take_seat, reserved_seats, sheddable_order,
                                                trigger_reason)
from harness.engine.governor.config import GovernorConfig
from harness.engine.governor.counters import NUM_BUCKETS, TierCounters, tpot_seconds, ttft_seconds
from harness.engine.governor.ordering import Policy, deadline_ns
from harness.engine.governor.step_budget import (OnlineStepCost, PrefillTimeCap, UrgentPrefills, decode_only_ns,
                                                 hard_deadline_ns, prefill_cap)


class Governor(Policy):
    def __init__(self, config: GovernorConfig, max_num_seqs: int, max_num_batched_tokens: int) -> None:
        super().__init__(config)
        self.tiers = config.all_tiers
        self.counters = {t.name: TierCounters(t, config.short_window_s, config.long_window_s) for t in self.tiers}
        self.tick_ns = max(1, int(config.short_window_s * 1e9 / NUM_BUCKETS))
        self.next_tick_ns = 0
        # Shedding relaxes only after half a short window without a trigger (five ticks).
        self.admission = AdmissionLevel(len(sheddable_order(self.tiers)), self.tick_ns, 5 * self.tick_ns)
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
        self.max_num_seqs = max_num_seqs
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
        before = {"level": self.admission.level, "shed": sorted(self.shed)}
        level = self.admission.update(now_ns, bool(triggers))
        if level is not None:
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
        at_risk = max(protected, key=lambda s: self.counters[s.tier.name].tpot_burn(now_ns))
        tpot_burn = self.counters[at_risk.tier.name].tpot_burn(now_ns)
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
        before = {"max_num_seqs": self.batching.seqs, "max_num_batched_tokens": self.batching.tokens}
        change = self.batching.update(tpot_burn)
        if change is None:
            return None
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

    # ---- ordering, seats, deferral (the Policy hooks) ---------------------------------------------------
    def waiting_key(self, seq, now_ns: int):
        tier = self.config.tier_of(seq.tenant)
        if seq.first_token_ns is not None:
            deadline, doomed = now_ns, False   # preempted after its first token: resume it, TPOT is running
        else:
            deadline = deadline_ns(self.config, seq)
            doomed = deadline < now_ns        # its TTFT is already missed: it is bad whatever we do now
        # Budget risk pulls a protected tier's deadlines forward (components.deadline_pulls_ns): the tier a
        # late request would cost most goes first at equal slack, and slack still counts; protected tiers go
        # before sheddable ones.
        deadline -= self._pull_ns[tier.name]
        if not self.is_protecting:   # every budget healthy: one pulled-deadline order, whatever the tier
            return (self._is_deferred(seq, tier), False, doomed, 0, deadline, tier.criticality, seq.order)
        # Sheddable tiers are served strictly by criticality (the next to be shed goes last); protected tiers
        # share one (pulled) deadline order, so a looser protected objective does not starve a tighter one.
        rank = 0 if tier.protected else tier.criticality
        return (self._is_deferred(seq, tier), not tier.protected, doomed, rank, deadline, tier.criticality, seq.order)

    def running_key(self, seq, now_ns: int):
        # Sorting last = preempted first: the least critical, then the latest arrival.
        return (self.config.tier_of(seq.tenant).criticality, seq.arrival_ns, seq.order)

    def sort(self, waiting: list, running: list, now_ns: int) -> None:
        """Both lists by their keys, noting on the way the leading signals: a protected request past half its
        TTFT objective (``late``) and the criticality of one that can still make it (``urgent``).

        Incremental: a waiting request's key is computed once and kept (by ``seq.order``) until the tick
        changes the pulls or deferral (``_version``), its TTFT deadline passes (``doomed`` flips once), or it
        leaves the queue; a step then costs one cheap pass and a sort of an already sorted list (timsort:
        linear), not a fresh key per request per step."""
        cache, keys, version = self._tenant_info, self._keys, self._version
        late = urgent = None
        protected_waiting = 0
        for seq in waiting:
            entry = keys.get(seq.order)
            if entry is None or entry[1] != version or (entry[2] is not None and entry[2] < now_ns):
                entry = keys[seq.order] = self._key_entry(seq, now_ns, version)
            info = cache.get(seq.tenant) or self._info(seq.tenant)
            if info[1] and (seq.first_token_ns is not None or now_ns - seq.arrival_ns <= info[3]):
                protected_waiting += 1
            if info[1] and urgent is None and seq.first_token_ns is None:
                waited_ns = now_ns - seq.arrival_ns
                if 2 * waited_ns > info[3]:
                    late = late or (info[0], seq.request_id)
                # A seat is urgent past half the TTFT, or once its latest start has come: the TTFT deadline less
                # its prompt's prefill at the capped pace (a chunk a step, steps held to the tightest TPOT).
                # Half the TTFT alone came too late for long prompts (azure 1.3x, development seed 0: 512-token
                # standard prompts need 8 steps of ~62 ms, 0.5 s of a 0.69 s objective).
                if waited_ns <= info[3] and (2 * waited_ns > info[3] or waited_ns + -(-seq.num_prompt_tokens
                                             // self.chunk_tokens) * self.tightest_tpot_ns > info[3]):
                    urgent = info[2]
        if waiting:
            if self.is_deferring:   # deferral reads the predictor's running mean, which moves per finish
                waiting.sort(key=lambda s: (self._is_deferred(s, self.config.tier_of(s.tenant)),
                                            keys[s.order][0]))
            else:
                waiting.sort(key=lambda s: keys[s.order][0])
        # A protected request still prefilling (chunked) past half its TTFT: batching depth must not shrink
        # the token budget under it. It is not a shedding signal: it already runs, and rejecting new free
        # arrivals does not speed up its chunks (on the azure 1.0x development run a lone 512-token standard
        # prompt shed 5 free requests that every baseline served in time).
        prefill_late = False
        num_unprotected = 0
        for s in running:
            info = cache.get(s.tenant) or self._info(s.tenant)
            if not info[1]:
                num_unprotected += 1
            elif not prefill_late and s.first_token_ns is None and 2 * (now_ns - s.arrival_ns) > info[3]:
                prefill_late = True
        self.is_prefill_late = prefill_late
        if len(running) > 1:
            running.sort(key=lambda s: ((cache.get(s.tenant) or self._info(s.tenant))[2], s.arrival_ns, s.order))
        self.late, self.urgent = late, urgent
        self.num_unprotected_running = num_unprotected
        self.num_running, self.protected_waiting = len(running), protected_waiting

    def _key_entry(self, seq, now_ns: int, version: int) -> tuple:
        """(key without deferral, version, the deadline at which it goes stale or None)."""
        name, protected, crit, ttft_ns = self._tenant_info.get(seq.tenant) or self._info(seq.tenant)
        pull = self._pull_ns[name]
        # protecting: protected tiers first, sheddable ones after by criticality; healthy: one order (on_step)
        rank, later = ((0 if protected else crit), not protected) if self.is_protecting else (0, False)
        if seq.first_token_ns is not None:   # preempted after its first token: resume it, TPOT is running
            # (due now, so the key moves with the clock: stale at once, recomputed next step)
            return (later, False, rank, now_ns - pull, crit, seq.order), version, now_ns - 1
        deadline = seq.arrival_ns + ttft_ns
        doomed = deadline < now_ns           # its TTFT is already missed: it is bad whatever we do now
        return ((later, doomed, rank, deadline - pull, crit, seq.order), version, None if doomed else deadline)

    def prefill_order(self, prefilling: list, now_ns: int) -> list:
        """Running prefills by the waiting queue's budget-risk/slack key: a protected prompt's chunks take the
        step's token budget before a sheddable one's, and among protected tiers the pulled deadline decides
        (the running list itself stays in preemption order, by criticality)."""
        if len(prefilling) < 2:
            return prefilling
        version = self._version
        return sorted(prefilling, key=lambda s: self._key_entry(s, now_ns, version)[0])

    def started(self, seq) -> None:
        self._keys.pop(seq.order, None)
        self.num_running += 1
        if not (self._tenant_info.get(seq.tenant) or self._info(seq.tenant))[1]:
            self.num_unprotected_running += 1
        elif self.protected_waiting:
            self.protected_waiting -= 1

    def on_leave(self, seq) -> None:
        self._keys.pop(seq.order, None)

    def queue_victim(self, arriving, waiting: list):
        """Push-out: a protected arrival at a full queue takes the place of the queued request of a less
        critical, sheddable tier that sorts last (in the last step's order: the latest deadline, or already
        late). A queue full of free requests otherwise refuses premium at the door (gamma 1.3x, development
        seed 0: once protected requests got seats first, 14 premium and 36 standard arrivals were refused
        as queue_full behind free requests that then timed out). Never a protected one; never for a
        sheddable arrival."""
        tier = self.config.tier_of(arriving.tenant)
        if not tier.protected:
            return None
        for seq in reversed(waiting):
            other = self.config.tier_of(seq.tenant)
            if not other.protected and other.criticality > tier.criticality:
                return seq
        return None

    def prefill_cap(self, decodes: list, now_ns: int, chunk_tokens: int = 0,
                    budget_tokens: int = 0) -> PrefillTimeCap | None:
        """How long this step's prefill chunks may take so that each protected decode among ``decodes`` (the
        step's chunks so far) still gets its token by its deadline first token + j x tpot_s (step_budget).
        A request already so far behind that decode-only steps could not bring it back within its predicted
        remaining tokens does not hold the step: its TPOT is lost, and capping would only cost TTFT.
        A protected prefill that this bound would make miss its TTFT (``UrgentPrefills``) may go on to the
        point from which every protected decode can still recover (``hard_deadline_ns``): both kinds of
        protected deadline weigh in, not the decodes' alone (azure 1.3x: every protected miss was a TTFT
        of a long prompt, cut step after step to keep decodes exactly on their token deadlines)."""
        if chunk_tokens:
            self.chunk_tokens = chunk_tokens
        estimate = self.step_cost
        coef = estimate.coefficients_ns()
        if coef is None or not decodes:
            return None
        kv_tokens = 0
        protected = []
        tpot_of = self._tpot_ns
        for chunk in decodes:
            seq = chunk.seq
            computed = seq.num_computed_tokens
            kv_tokens += computed + 1   # a decode attends to its cache and its one new token
            tenant = seq.tenant
            tpot_ns = tpot_of[tenant] if tenant in tpot_of else self._tpot_info(tenant)
            if tpot_ns is not None:
                # generated tokens so far = computed + 1 - prompt (the decode's input is the last one)
                generated = computed + 1 - seq.num_prompt_tokens
                protected.append((seq, tpot_ns, seq.first_token_ns + generated * tpot_ns, generated))
        if not protected:
            return None
        decode_only = decode_only_ns(coef, len(decodes), kv_tokens)
        end = now_ns + decode_only
        tightest = hard = None
        predictions = self.predictions
        for seq, tpot_ns, deadline, generated in protected:
            predicted = predictions.get(seq.request_id)
            remaining = max(1.0, (predicted or 0.0) - generated)
            if end > deadline:   # behind: can decode-only steps bring it back before it ends?
                gain = tpot_ns - decode_only
                if gain <= 0 or end - deadline > remaining * gain:
                    continue
            if tightest is None or deadline < tightest:
                tightest = deadline
            latest = hard_deadline_ns(deadline, tpot_ns, decode_only, remaining)
            if hard is None or latest < hard:
                hard = latest
        if tightest is None:
            return None
        # Steady state of the soft bound: a step on time leaves the tightest TPOT less its decodes to prefills.
        steady = max(tightest - end, self.tightest_tpot_ns - decode_only)
        urgent = UrgentPrefills(now_ns, decode_only, steady, coef[1] + coef[3], chunk_tokens or 1 << 30,
                                budget_tokens or chunk_tokens or 1 << 30, self._ttft_deadline)
        return prefill_cap(estimate, tightest, decode_only, now_ns, hard, urgent)

    def _ttft_deadline(self, seq) -> int | None:
        """A protected request's TTFT deadline (arrival + its tier's ttft_s) while it has no token; else None."""
        if seq.first_token_ns is not None:
            return None
        info = self._tenant_info.get(seq.tenant) or self._info(seq.tenant)
        return seq.arrival_ns + info[3] if info[1] else None

    def observe_step(self, prefill_tokens: int, decode_seqs: int, kv_tokens: int, duration_ns: int) -> None:
        self.step_cost.observe(prefill_tokens, decode_seqs, kv_tokens, duration_ns)

    def _tpot_info(self, tenant):
        tier = self.config.tier_of(tenant)
        value = self._tpot_ns[tenant] = tier.tpot_s * 1e9 if tier.protected else None
        return value

    def _info(self, tenant) -> tuple:
        tier = self.config.tier_of(tenant)
        info = (tier.name, tier.protected, tier.criticality, int(tier.ttft_s * 1e9))
        self._tenant_info[tenant] = info
        return info

    def seat_victim(self, waiting: list, running: list, max_num_seqs: int, now_ns: int):
        """Every seat is taken and a protected request has waited past half its TTFT objective (but can still
        make it) without a token: preempt the least critical, latest running request of a less critical,
        sheddable tier (never a protected one). vLLM's priority policy never does this."""
        if self.urgent is None or len(running) < max_num_seqs:
            return None
        victim = running[-1]   # sorted by running_key: the least critical, latest
        victim_tier = self.config.tier_of(victim.tenant)
        if victim_tier.protected or victim_tier.criticality <= self.urgent:
            return None
        return victim

    def _is_deferred(self, seq, tier) -> bool:
        if not self.is_deferring or tier.protected or seq.first_token_ns is not None:
            return False
        return self.predictor.is_long(self.predictions.get(seq.request_id))

    def may_start(self, seq) -> bool:
        protected = (self._tenant_info.get(seq.tenant) or self._info(seq.tenant))[1]
        if protected:
            return True
        if self.is_deferring and self._is_deferred(seq, self.config.tier_of(seq.tenant)):
            return False
        if self._reserved[0] != self.max_num_seqs:   # seats are a live knob: recompute only when they move
            self._reserved = (self.max_num_seqs, reserved_seats(self.max_num_seqs, self.config.buffer_share,
                                                                self.has_protected))
        return may_take_seat(False, self.num_unprotected_running, self.max_num_seqs, self._reserved[1],
                             self.num_running, self.protected_waiting)


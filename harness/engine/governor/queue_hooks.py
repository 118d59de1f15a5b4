"""The budget governor's queue hooks (mixed into :class:`harness.engine.governor.governor.Governor`, whose
``__init__`` and control tick set the state they read): the waiting queue's budget-risk/slack order with its
incrementally kept keys, the running order (preemption), the order of prefill chunks, seats (the reliability
buffer, deferral, preemption for an urgent protected request) and push-out at a full queue. Control law items
3-6 and 8 of docs/methods/governor.md."""

from __future__ import annotations

from harness.engine.governor.components import may_take_seat, reserved_seats
from harness.engine.governor.ordering import Policy, deadline_ns


class QueueHooks(Policy):
    """The Policy hooks of the governor that order and seat requests (reads the tick's ``_pull_ns``,
    ``_version``, ``is_protecting``, ``is_deferring``; keeps ``_keys``, ``late``, ``urgent`` and the seat
    counts)."""

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
        protected_waiting = num_urgent = 0
        for seq in waiting:
            entry = keys.get(seq.order)
            if entry is None or entry[1] != version or (entry[2] is not None and entry[2] < now_ns):
                entry = keys[seq.order] = self._key_entry(seq, now_ns, version)
            info = cache.get(seq.tenant) or self._info(seq.tenant)
            if not info[1]:   # sheddable (most of the queue): nothing more to note
                continue
            if seq.first_token_ns is not None:   # preempted after its first token: it can still be good
                protected_waiting += 1
            else:
                waited_ns = now_ns - seq.arrival_ns
                if waited_ns <= info[3]:
                    protected_waiting += 1
                if urgent is None and 2 * waited_ns > info[3]:
                    late = late or (info[0], seq.request_id)
                # A seat is urgent past half the TTFT, or once its latest start has come: the TTFT deadline less
                # its prompt's prefill at the capped pace (a chunk a step, steps held to the tightest TPOT) and
                # less the step a preemption for its seat takes (that step admits nobody). Half the TTFT alone
                # came too late for long prompts (azure 1.3x, development seed 0: 512-token standard prompts
                # need 8 steps of ~62 ms, 0.5 s of a 0.69 s objective).
                if waited_ns <= info[3] and (2 * waited_ns > info[3] or waited_ns + (1 + -(-seq.num_prompt_tokens
                                             // self.chunk_tokens)) * self.tightest_tpot_ns > info[3]):
                    if urgent is None:
                        urgent = info[2]
                    num_urgent += 1
                    # The same moment is the shedding signal (``late``): waiting for half the TTFT let the
                    # queue of a long prompt grow past saving before any arrival was shed.
                    late = late or (info[0], seq.request_id)
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
        # The running key (criticality, arrival, order) never changes, and the scheduler only removes from the
        # running list (which keeps it sorted) or appends after ``started``: the list this hook last sorted
        # needs no sort until a start (held, not by id, so a new list is never mistaken for it).
        if len(running) > 1 and running is not self._sorted_running:
            running.sort(key=lambda s: ((cache.get(s.tenant) or self._info(s.tenant))[2], s.arrival_ns, s.order))
            self._sorted_running = running
        self.late, self.urgent, self.num_urgent = late, urgent, num_urgent
        self.num_unprotected_running = num_unprotected
        self.num_running, self.protected_waiting = len(running), protected_waiting
        self._seat_open = None

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
        (the running list itself stays in preemption order, by criticality).

        While a protected request that can still be good waits and a seat is open for it (none was preempted
        this step: that step admits nobody), sheddable prefills are left out of the step: the scheduler serves
        running prefills before the queue, so their chunks would take the time the per-step cap leaves
        before the waiting protected prompt is asked (azure 1.3x, development seed 0: in the steps where a
        protected request waited, 0.59 free prompts on average were prefilling beside 0.52 protected ones,
        and 8 of the 25 standard TTFT misses at 346985456 were short prompts). A held prefill keeps its seat
        and its cached tokens and goes on once the protected queue is served."""
        if self._holds_sheddable_prefills(now_ns):
            prefilling = [s for s in prefilling if (self._tenant_info.get(s.tenant) or self._info(s.tenant))[1]]
        if len(prefilling) < 2:
            return prefilling
        version = self._version
        return sorted(prefilling, key=lambda s: self._key_entry(s, now_ns, version)[0])

    def _holds_sheddable_prefills(self, now_ns: int) -> bool:
        return self.protected_waiting > 0 and self.num_running < self.max_num_seqs and self.seat_preempted_ns != now_ns

    def started(self, seq) -> None:
        self._keys.pop(seq.order, None)
        self._sorted_running = None   # the scheduler appends it to the running list
        self._seat_open = None
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

    def queue_drops(self, waiting: list, now_ns: int) -> list:
        """While protecting (a protected tier triggers, or a tier is shed), queued requests of sheddable tiers
        whose TTFT objective has already passed without a first token leave as rejected (``shed_doomed``):
        they are bad events whatever happens now, and serving them would spend seats and prefill time a
        protected request needs (Google SRE's "Handling Overload": do not do work nobody can use). Never a
        protected request; never one preempted after its first token (its TPOT can still hold)."""
        if not self.is_protecting:
            return []
        cache, drops = self._tenant_info, []
        for seq in waiting:
            _, protected, _, ttft_ns = cache.get(seq.tenant) or self._info(seq.tenant)
            if not protected and seq.first_token_ns is None and now_ns - seq.arrival_ns > ttft_ns:
                drops.append(seq)
        return drops

    def _info(self, tenant) -> tuple:
        tier = self.config.tier_of(tenant)
        info = (tier.name, tier.protected, tier.criticality, int(tier.ttft_s * 1e9))
        self._tenant_info[tenant] = info
        return info

    def seat_victim(self, waiting: list, running: list, max_num_seqs: int, now_ns: int):
        """More protected requests are urgent for a seat (past half their TTFT objective or their latest
        start, but able to make it, without a token) than there are open seats: preempt the least critical,
        latest running request of a less critical, sheddable tier (never a protected one); the scheduler asks
        again until the urgent ones have a seat each. One victim per step, and only with every seat taken, seated
        at most one urgent request per two steps (a step that preempts admits nobody): on azure 1.3x
        (development seed 0) the standard requests that missed their TTFT had queued 0.13-1.4 s, with 15.3 of
        16 seats taken on average while a protected request waited. vLLM's priority policy never does this."""
        if self.urgent is None or self.num_urgent <= max_num_seqs - len(running):
            return None
        victim = running[-1]   # sorted by running_key: the least critical, latest
        victim_tier = self.config.tier_of(victim.tenant)
        if victim_tier.protected or victim_tier.criticality <= self.urgent:
            return None
        self.seat_preempted_ns = now_ns   # this step admits nobody
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
        # The answer is the same for every sheddable candidate until a seat is taken or the queue is sorted
        # again (the counts it reads change only there), so a step asks may_take_seat once, not once per
        # request the scheduler walks past.
        open_ = self._seat_open
        if open_ is None:
            if self._reserved[0] != self.max_num_seqs:   # seats are a live knob: recompute only when they move
                self._reserved = (self.max_num_seqs, reserved_seats(self.max_num_seqs, self.config.buffer_share,
                                                                    self.has_protected))
            open_ = self._seat_open = may_take_seat(False, self.num_unprotected_running, self.max_num_seqs,
                                                    self._reserved[1], self.num_running, self.protected_waiting)
        return open_

"""The budget governor's per-step hooks (mixed into :class:`harness.engine.governor.governor.Governor`, whose
``__init__`` sets the state they read): the prefill cap that holds protected decodes to their token deadlines
and lets an urgent protected prompt spend their recoverable slack (the arithmetic is
:mod:`harness.engine.governor.step_budget`'s), and the wall clock's step observations that teach the cost
estimate. Control law item 9 of docs/methods/governor.md."""

from __future__ import annotations

from harness.engine.governor.step_budget import (PrefillTimeCap, UrgentPrefills, decode_only_ns, hard_deadline_ns,
                                                 prefill_cap)


class StepCapHooks:
    """``prefill_cap`` and ``observe_step`` of the governor (reads ``step_cost``, ``predictions``, ``_tpot_ns``,
    ``_tenant_info``, ``tightest_tpot_ns``; writes ``chunk_tokens``)."""

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
        # Two passes without a per-decode tuple (this runs every step): the first sums the KV context and
        # keeps the protected sequences, the second reads their deadlines against the step's decode-only end.
        kv_tokens = len(decodes)   # a decode attends to its cache and its one new token
        protected = []
        tpot_of = self._tpot_ns
        for chunk in decodes:
            seq = chunk.seq
            kv_tokens += seq.num_computed_tokens
            tenant = seq.tenant
            if (tpot_of[tenant] if tenant in tpot_of else self._tpot_info(tenant)) is not None:
                protected.append(seq)
        if not protected:
            return None
        decode_only = decode_only_ns(coef, len(decodes), kv_tokens)
        end = now_ns + decode_only
        tightest = hard = None
        predictions = self.predictions
        for seq in protected:
            tpot_ns = tpot_of[seq.tenant]
            # generated tokens so far = computed + 1 - prompt (the decode's input is the last one)
            generated = seq.num_computed_tokens + 1 - seq.num_prompt_tokens
            deadline = seq.first_token_ns + generated * tpot_ns
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

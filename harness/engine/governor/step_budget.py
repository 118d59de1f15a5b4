"""Feed-forward batching depth: how many prefill tokens a step may take so that every protected decode in it
still gets its next token in time (Sarathi-Serve's rule, applied per step rather than per control tick).

A request's TPOT is (last token - first token) / (output tokens - 1), so it meets its objective ``tpot_s``
exactly when its last token comes by first + (n - 1) x tpot_s. Holding every token j to its own deadline
first + j x tpot_s is sufficient and needs no knowledge of n; a step that starts at ``now`` and carries the
request's j-th token must therefore end by that deadline. Steps that came in under tpot_s bank the
difference (the deadline is cumulative), so a request with slack lets the step take a longer prefill chunk,
and one behind its deadlines gets decode-only steps until it has caught up.

Per step: the tightest such deadline among the protected decodes the step carries, less the predicted cost of
the step's decodes alone, less a margin for the prediction's error, is the time its prefill chunks may take.
The cost prediction is the step-cost model (:class:`KnownStepCost`: the modelled clock's own model, so the
error is 0) or an online least-squares fit of measured steps (:class:`OnlineStepCost`, the wall clock; its
margin is two root-mean-square errors of its one-step-ahead predictions).

The token deadlines are a soft bound: a protected prompt that the soft bound would make miss its TTFT
(:class:`UrgentPrefills`) may spend the decodes' slack up to the point from which each can still recover its
TPOT (:func:`hard_deadline_ns`), and more than one chunk. Pure Python, no torch.
"""

from __future__ import annotations

import math

from harness.engine.clock import StepCostModel

MARGIN_RMSE = 2.0        # margin = this many RMSEs of the online prediction (about 98 % one-sided if normal)
MIN_OBSERVATIONS = 32    # the online fit predicts nothing before this many steps (no cap: the tick rule holds)
FORGET = 0.995           # the online fit's forgetting factor per step (an effective memory of ~200 steps)
RIDGE = 1e-9             # keeps the normal equations solvable while a feature has not varied yet
# An urgent protected prefill may spend this share of a protected decode's recoverable slack (hard_deadline_ns):
# the length prediction behind "recoverable" is an EWMA mean, so half of it is kept back. Chosen a priori.
RECOVERY_SHARE = 0.5


class KnownStepCost:
    """The modelled clock's step-cost model: exact, so no margin; ``delay_ns`` is the engine's step-delay
    fault, which the modelled clock adds to every step."""

    __slots__ = ("coef_ns", "delay_ns")

    def __init__(self, model: StepCostModel) -> None:
        self.coef_ns = tuple(c * 1e9 for c in model.coefficients())
        self.delay_ns = 0.0

    def coefficients_ns(self) -> tuple[float, float, float, float] | None:
        base, prefill, decode, kv = self.coef_ns
        return base + self.delay_ns, prefill, decode, kv

    @property
    def margin_ns(self) -> float:
        return 0.0

    def observe(self, prefill_tokens: int, decode_seqs: int, kv_tokens: int, duration_ns: int) -> None:
        pass   # the model is the clock


class OnlineStepCost:
    """Least squares of measured step durations on (1, prefill tokens, decode sequences, KV context tokens),
    with exponential forgetting; O(1) per step: the step adds its 14 distinct products to a batch of sums,
    and every ``refit_every`` steps the batch joins the forgotten statistics (forgetting applied per batch,
    ``FORGET ** refit_every``) and a 4x4 non-negative solve refits. Its error is the RMS of its one-step-ahead
    prediction errors (an EWMA of their squares over about 50 steps)."""

    __slots__ = ("xtx", "xty", "batch", "count", "coef", "mse", "refit_every")

    def __init__(self, refit_every: int = 16) -> None:
        self.xtx = [[0.0] * 4 for _ in range(4)]
        self.xty = [0.0] * 4
        self.batch = [0.0] * 14   # n, p, d, k, pp, pd, pk, dd, dk, kk, y, py, dy, ky
        self.count = 0
        self.coef: tuple[float, float, float, float] | None = None
        self.mse = 0.0
        self.refit_every = refit_every

    def coefficients_ns(self) -> tuple[float, float, float, float] | None:
        return self.coef

    @property
    def margin_ns(self) -> float:
        return MARGIN_RMSE * math.sqrt(self.mse)

    def observe(self, prefill_tokens: int, decode_seqs: int, kv_tokens: int, duration_ns: int) -> None:
        p, d, k, y = float(prefill_tokens), float(decode_seqs), float(kv_tokens), float(duration_ns)
        coef = self.coef
        if coef is not None:
            error = y - (coef[0] + coef[1] * p + coef[2] * d + coef[3] * k)
            self.mse += 0.02 * (error * error - self.mse)
        b = self.batch
        b[0] += 1.0
        b[1] += p
        b[2] += d
        b[3] += k
        b[4] += p * p
        b[5] += p * d
        b[6] += p * k
        b[7] += d * d
        b[8] += d * k
        b[9] += k * k
        b[10] += y
        b[11] += p * y
        b[12] += d * y
        b[13] += k * y
        self.count += 1
        if self.count % self.refit_every == 0:
            self._fold()
            if self.count >= MIN_OBSERVATIONS:
                self.coef = _solve_nonnegative(self.xtx, self.xty)

    def _fold(self) -> None:
        """Forget the old statistics by one batch's worth and add the batch."""
        f = FORGET ** self.refit_every
        b = self.batch
        sym = ((b[0], b[1], b[2], b[3]), (b[1], b[4], b[5], b[6]), (b[2], b[5], b[7], b[8]),
               (b[3], b[6], b[8], b[9]))
        for i in range(4):
            row = self.xtx[i]
            for j in range(4):
                row[j] = f * row[j] + sym[i][j]
            self.xty[i] = f * self.xty[i] + b[10 + i]
        self.batch = [0.0] * 14


def _solve_nonnegative(xtx: list[list[float]], xty: list[float]) -> tuple[float, float, float, float] | None:
    """Least squares from the normal equations, dropping any feature whose coefficient comes out negative
    (a cost cannot be negative) and solving again without it."""
    active = [0, 1, 2, 3]
    while active:
        a = [[xtx[i][j] + (RIDGE * (xtx[i][i] + 1.0) if i == j else 0.0) for j in active] for i in active]
        b = [xty[i] for i in active]
        solution = _gauss(a, b)
        if solution is None:
            return None
        negative = [active[k] for k, v in enumerate(solution) if v < 0]
        if not negative:
            coef = [0.0] * 4
            for k, i in enumerate(active):
                coef[i] = solution[k]
            return tuple(coef)  # type: ignore[return-value]
        active = [i for i in active if i not in negative]
    return None


def _gauss(a: list[list[float]], b: list[float]) -> list[float] | None:
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < 1e-300:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    return [m[i][n] / m[i][i] for i in range(n)]


class PrefillTimeCap:
    """The time one step's prefill chunks may still take, spent chunk by chunk. A chunk of c tokens of a
    sequence with s tokens already cached costs prefill x c + kv x (s + c) (it attends to its cache and
    itself), the step-cost model's terms.

    Two bounds: ``left_ns`` holds every protected decode to its next token's deadline (the soft bound), and
    ``hard_left_ns`` only to the point from which it can still recover its TPOT (:func:`hard_deadline_ns`).
    A chunk of a prefill ``urgent(seq)`` says the soft bound would make miss its TTFT may spend up to the
    hard bound; every other chunk stops at the soft one. Both are charged for every chunk."""

    __slots__ = ("left_ns", "per_token_ns", "per_cached_ns", "hard_left_ns", "urgent")

    def __init__(self, left_ns: float, per_token_ns: float, per_cached_ns: float,
                 hard_left_ns: float | None = None, urgent=None) -> None:
        self.left_ns = left_ns
        self.per_token_ns = per_token_ns
        self.per_cached_ns = per_cached_ns
        self.hard_left_ns = left_ns if hard_left_ns is None else hard_left_ns
        self.urgent = urgent

    def tokens(self, cached: int, wanted: int, seq=None, longest: int | None = None) -> int:
        """The most of ``wanted`` prefill tokens (with ``cached`` before them) that fit in the time left. For a
        ``seq`` whose TTFT is at stake (:class:`UrgentPrefills`): the hard bound, and up to ``longest`` tokens
        (the engine's chunk size bounds a step's time for the decodes' sake, which the bounds here do
        directly; a 512-token prompt in 64-token chunks needs 8 steps, most of an azure TTFT objective)."""
        left = self.left_ns
        if seq is not None and self.hard_left_ns > left and self.urgent is not None and self.urgent(seq):
            left = self.hard_left_ns
            wanted = max(wanted, longest or 0)
        room = left - self.per_cached_ns * cached
        if room <= 0:
            return 0
        if self.per_token_ns <= 0:
            return wanted
        return max(0, min(wanted, int(room // self.per_token_ns)))

    def charge(self, cached: int, num_tokens: int) -> None:
        cost = self.per_token_ns * num_tokens + self.per_cached_ns * cached
        self.left_ns -= cost
        self.hard_left_ns -= cost


def hard_deadline_ns(deadline_ns: float, tpot_ns: float, decode_only: float, remaining_tokens: float) -> float:
    """The latest a step may end for a protected decode whose next token is due at ``deadline_ns`` and which can
    still recover its TPOT. Every later decode-only step banks tpot - decode_only (its token is due tpot_s after
    the last deadline, the step takes decode_only), so over its predicted ``remaining_tokens`` it can make up
    that many times the gain; :data:`RECOVERY_SHARE` of it may be spent now, the rest is kept for the error of
    the length prediction and for later steps that are not decode-only."""
    gain = tpot_ns - decode_only
    if gain <= 0:
        return deadline_ns
    return deadline_ns + RECOVERY_SHARE * max(1.0, remaining_tokens) * gain


class UrgentPrefills:
    """Which protected prefills the soft bound would make miss their TTFT. Asked in the step's prefill order
    (running prefills, then the waiting queue), it keeps the remaining prefill time of the protected prompts
    asked before (``ahead_ns``: they take the step's time first). A request is urgent when, at the soft pace
    (every step at most ``chunk`` of its tokens and ``steady_ns`` of prefill: what the soft bound leaves a step
    in steady state, the step then lasting decode_only + steady_ns), the prompts ahead and its own remaining
    prompt would finish after its TTFT deadline (arrival + its tier's ``ttft_s``), while at the full pace
    (steps filled with prefill, up to ``budget`` tokens) it still makes it. A prefill that misses at the full
    pace too is lost whatever this step does, and does not get to spend the decodes' slack."""

    __slots__ = ("now_ns", "decode_only_ns", "steady_ns", "per_token_ns", "chunk", "budget", "deadline_of",
                 "ahead_ns")

    def __init__(self, now_ns: int, decode_only: float, steady_ns: float, per_token_ns: float, chunk: int,
                 budget: int, deadline_of) -> None:
        self.now_ns = now_ns
        self.decode_only_ns = decode_only
        self.steady_ns = steady_ns
        self.per_token_ns = per_token_ns
        self.chunk = max(1, chunk)
        self.budget = max(1, budget)
        self.deadline_of = deadline_of   # seq -> its TTFT deadline in ns, or None (not protected, or has a token)
        self.ahead_ns = 0.0

    def __call__(self, seq) -> bool:
        deadline = self.deadline_of(seq)
        if deadline is None:
            return False
        remaining = seq.num_uncomputed_tokens
        work = self.ahead_ns + self.per_token_ns * remaining
        self.ahead_ns = work
        if self.now_ns + -(-remaining // self.budget) * self.decode_only_ns + work > deadline:
            return False   # lost even at the full pace
        if self.steady_ns <= 0:
            return True    # the soft bound leaves prefills nothing until the decodes catch up
        soft_steps = max(-(-remaining // self.chunk), math.ceil(work / self.steady_ns))
        return self.now_ns + soft_steps * (self.decode_only_ns + self.steady_ns) > deadline


def decode_only_ns(coef: tuple[float, float, float, float], decode_seqs: int, kv_tokens: int) -> float:
    """Predicted nanoseconds of a step that runs ``decode_seqs`` decodes attending to ``kv_tokens`` and no prefill."""
    return coef[0] + coef[2] * decode_seqs + coef[3] * kv_tokens


def prefill_cap(estimate, deadline_ns: float, decode_only: float, now_ns: int,
                hard_ns: float | None = None, urgent=None) -> PrefillTimeCap:
    """The prefill time of a step that starts at ``now_ns``, whose decodes alone are predicted to take
    ``decode_only`` ns and whose tightest protected token is due at ``deadline_ns`` (``hard_ns``: the tightest
    :func:`hard_deadline_ns`): what is left less the estimate's margin, spent at the model's per-token and
    per-cached-token prices."""
    coef = estimate.coefficients_ns()
    margin = estimate.margin_ns
    hard_left = None if hard_ns is None else hard_ns - now_ns - decode_only - margin
    return PrefillTimeCap(deadline_ns - now_ns - decode_only - margin, coef[1] + coef[3], coef[3], hard_left, urgent)

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
margin is two root-mean-square errors of its one-step-ahead predictions). Pure Python, no torch.
"""

from __future__ import annotations

import math

from harness.engine.clock import StepCostModel

MARGIN_RMSE = 2.0        # margin = this many RMSEs of the online prediction (about 98 % one-sided if normal)
MIN_OBSERVATIONS = 32    # the online fit predicts nothing before this many steps (no cap: the tick rule holds)
FORGET = 0.995           # the online fit's forgetting factor per step (an effective memory of ~200 steps)
RIDGE = 1e-9             # keeps the normal equations solvable while a feature has not varied yet


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
    itself), the step-cost model's terms."""

    __slots__ = ("left_ns", "per_token_ns", "per_cached_ns")

    def __init__(self, left_ns: float, per_token_ns: float, per_cached_ns: float) -> None:
        self.left_ns = left_ns
        self.per_token_ns = per_token_ns
        self.per_cached_ns = per_cached_ns

    def tokens(self, cached: int, wanted: int) -> int:
        """The most of ``wanted`` prefill tokens (with ``cached`` before them) that fit in the time left."""
        room = self.left_ns - self.per_cached_ns * cached
        if room <= 0:
            return 0
        if self.per_token_ns <= 0:
            return wanted
        return max(0, min(wanted, int(room // self.per_token_ns)))

    def charge(self, cached: int, num_tokens: int) -> None:
        self.left_ns -= self.per_token_ns * num_tokens + self.per_cached_ns * cached


def decode_only_ns(coef: tuple[float, float, float, float], decode_seqs: int, kv_tokens: int) -> float:
    """Predicted nanoseconds of a step that runs ``decode_seqs`` decodes attending to ``kv_tokens`` and no prefill."""
    return coef[0] + coef[2] * decode_seqs + coef[3] * kv_tokens


def prefill_cap(estimate, deadline_ns: float, decode_only: float, now_ns: int) -> PrefillTimeCap:
    """The prefill time of a step that starts at ``now_ns``, whose decodes alone are predicted to take
    ``decode_only`` ns and whose tightest protected token is due at ``deadline_ns``: what is left less the
    estimate's margin, spent at the model's per-token and per-cached-token prices."""
    coef = estimate.coefficients_ns()
    return PrefillTimeCap(deadline_ns - now_ns - decode_only - estimate.margin_ns, coef[1] + coef[3], coef[3])

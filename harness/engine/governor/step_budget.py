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
    with exponential forgetting; O(1) per step (sufficient statistics), a 4x4 solve every ``refit_every``
    steps. Its error is the RMS of its one-step-ahead prediction errors (an EWMA of their squares)."""

    __slots__ = ("xtx", "xty", "count", "coef", "mse", "refit_every")

    def __init__(self, refit_every: int = 16) -> None:
        self.xtx = [[0.0] * 4 for _ in range(4)]
        self.xty = [0.0] * 4
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
        x = (1.0, float(prefill_tokens), float(decode_seqs), float(kv_tokens))
        y = float(duration_ns)
        if self.coef is not None:
            error = y - sum(c * v for c, v in zip(self.coef, x))
            self.mse += (1.0 - FORGET) * 4 * (error * error - self.mse)   # EWMA over ~50 steps
        xtx, xty = self.xtx, self.xty
        for i in range(4):
            row, xi = xtx[i], x[i]
            xty[i] = FORGET * xty[i] + xi * y
            for j in range(4):
                row[j] = FORGET * row[j] + xi * x[j]
        self.count += 1
        if self.count >= MIN_OBSERVATIONS and self.count % self.refit_every == 0:
            self.coef = _solve_nonnegative(xtx, xty)


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


def prefill_cap(estimate, deadlines_ns: list[float], decode_seqs: int, decode_kv_tokens: int,
                now_ns: int) -> PrefillTimeCap | None:
    """The prefill time of a step that starts at ``now_ns`` and carries ``decode_seqs`` decodes (attending to
    ``decode_kv_tokens`` in all), of which the protected ones must get their tokens by ``deadlines_ns``.
    None (no cap) when no protected decode rides on the step or the estimate cannot predict yet."""
    coef = estimate.coefficients_ns()
    if not deadlines_ns or coef is None:
        return None
    base, prefill, decode, kv = coef
    decode_only_ns = base + decode * decode_seqs + kv * decode_kv_tokens
    left = min(deadlines_ns) - now_ns - decode_only_ns - estimate.margin_ns
    return PrefillTimeCap(left, prefill + kv, kv)

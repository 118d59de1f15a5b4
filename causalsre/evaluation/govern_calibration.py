"""Per-tier latency objectives of ``eval govern``, from the half-load run, with a stated confidence.

The issue asks for TTFT and TPOT objectives "that the engine meets at 0.5x load": a tier at objective q
(premium 99.5 %) must find at least q of its half-load requests good. So each tier's threshold is a
*distribution-free upper confidence bound* of the q-quantile of the half-load latencies (all tenants pooled:
under FCFS at half load the tiers are the same traffic), times a headroom factor (1 on the modelled clock, 2
on the wall clock: ``govern_traffic.LATENCY_FACTORS``):

    k = the smallest order statistic with P(Binomial(n, q) <= k - 1) >= CONFIDENCE,
    threshold = factor x X_(k)      (X_(1) <= ... <= X_(n), the n ok requests' latencies)

X_(k) is then at or above the true q-quantile with probability >= CONFIDENCE whatever the distribution.
The largest one (k = n) reaches 95 % confidence for the 99.5 % quantile only with n >= 598 requests (1 -
0.995^n >= 0.95), 299 for 99 %, 59 for 95 % (:func:`requests_needed`); the half-load run is made long enough
to expect that many (:func:`calibration_seconds`). With fewer, the largest value is used and the confidence
it has is recorded (``tiers[name].confidence``), and a warning goes to stderr: the bound is then weak.

Run length (:func:`run_seconds`): ``budget_consumed <= 1.0`` allows b bad events only with b / (1 - q) events,
so a tier's budget can be judged (one bad event within it) only from 1 / (1 - q) events: premium (10 % of
traffic at 99.5 %) needs 200. On the modelled clock the runs at the load the ``protects`` target judges are
made that long; the other loads are judged on goodput and throughput (means over all requests) and keep
``--duration-s``.
"""

from __future__ import annotations

import functools
import math

CONFIDENCE = 0.95
SLACK = 1.15   # expect 15 % more requests than needed: arrivals are random and a few may still be running


def requests_needed(objective: float, confidence: float = CONFIDENCE) -> int:
    """Smallest n whose largest value is an upper ``confidence`` bound of the ``objective`` quantile."""
    return math.ceil(math.log(1.0 - confidence) / math.log(objective))


def calibration_seconds(objectives, rate_rps: float, duration_s: float) -> float:
    """Half-load run length that expects enough requests for the strictest objective (never shorter than
    a run of the evaluation)."""
    need = max(requests_needed(q) for q in objectives)
    return max(duration_s, math.ceil(SLACK * need / max(rate_rps, 1e-9)))


def run_seconds(share: float, objective: float, rate_rps: float, duration_s: float) -> float:
    """Run length (model seconds) that expects ``SLACK`` x 1 / (1 - objective) events of a tier with ``share``
    of the traffic at ``rate_rps``: enough that one bad event of it fits in its budget (never shorter than
    ``duration_s``)."""
    need = 1.0 / (1.0 - objective)
    return max(duration_s, float(math.ceil(SLACK * need / max(share * rate_rps, 1e-9))))


def judged_seconds(load: float, capacity: float, duration_s: float, *, strictest: tuple, modelled: bool,
                   quick: bool) -> float:
    """How long the runs of one load last. At the load the ``protects`` target judges, on the modelled clock,
    long enough for the strictest tier's budget to be measurable (``strictest``: a ``govern_traffic.TIERS``
    row; premium: 200 events expected, x ``SLACK``); elsewhere ``duration_s``. The wall clock keeps
    ``duration_s`` (each wall second brings the machine's noise), as does ``--quick``."""
    from causalsre.evaluation.govern_targets import PROTECT_LOAD

    if not modelled or quick or load != PROTECT_LOAD:
        return duration_s
    _, share, objective, _, _ = strictest
    return run_seconds(share, objective, load * capacity, duration_s)


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k), summed in log space (n up to a few thousand)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        total += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p
                          + (n - i) * log_q)
    return min(1.0, total)


@functools.lru_cache(maxsize=64)   # depends on (n, objective, confidence) only
def upper_bound_index(n: int, objective: float, confidence: float = CONFIDENCE) -> tuple[int, float]:
    """(k, confidence reached): the 1-based order statistic X_(k) bounding the quantile from above."""
    if n < 1:
        raise ValueError("no sample")
    lo, hi = 1, n
    if _binom_cdf(n - 1, n, objective) < confidence:   # even the largest is a weak bound
        return n, 1.0 - objective ** n
    while lo < hi:   # the CDF grows with k: bisect for the smallest k that reaches the confidence
        mid = (lo + hi) // 2
        if _binom_cdf(mid - 1, n, objective) >= confidence:
            hi = mid
        else:
            lo = mid + 1
    return lo, _binom_cdf(lo - 1, n, objective)


def tier_threshold(values: list[float], objective: float, factor: float) -> dict:
    """One metric's threshold for one tier: ``factor`` x the upper confidence bound of its quantile."""
    ordered = sorted(values)
    k, reached = upper_bound_index(len(ordered), objective)
    return {"value": factor * ordered[k - 1], "bound": ordered[k - 1], "k": k, "n": len(ordered),
            "confidence": round(reached, 4)}


def reused_calibration(path, workload: str, clock: dict, factor: float) -> tuple[float, dict]:
    """(capacity, thresholds) of ``workload`` from an earlier modelled evaluation's govern.json. Refused
    unless it used the same step-cost model (the calibration is then the same run) and per-tier thresholds.
    The thresholds are rebuilt as ``factor`` x the recorded bounds (the measurement), so a file written
    under another headroom factor gives today's rule's thresholds."""
    from causalsre.errors import UserError
    from causalsre.safeio import load_json

    data = load_json(path, what="--calibration-from file")
    setup = data.get("setup") if isinstance(data, dict) else None
    entry = (setup.get("workloads") or {}).get(workload) if isinstance(setup, dict) else None
    fix = "give the govern.json of a modelled-clock evaluation with the same --clock-model, or drop the flag"
    if not isinstance(entry, dict) or not isinstance(entry.get("thresholds"), dict) \
            or "tiers" not in entry["thresholds"] or not isinstance(entry.get("capacity_rps"), (int, float)):
        raise UserError(f"{path} holds no per-tier calibration of the {workload} workload", fix)
    theirs = (setup.get("clock") or {}).get("coefficients")
    if theirs != clock.get("coefficients"):
        raise UserError(f"{path} was calibrated with another step-cost model", fix)
    thresholds = dict(entry["thresholds"], reused_from=str(path), factor=factor)
    tiers = {}
    for name, tier in thresholds["tiers"].items():
        if not isinstance(tier, dict) or not all(isinstance(tier.get(k), (int, float))
                                                 for k in ("ttft_bound_s", "tpot_bound_s")):
            raise UserError(f"{path} holds no upper bounds of the {workload} tier {name}", fix)
        tiers[name] = dict(tier, ttft_s=round(factor * tier["ttft_bound_s"], 3),
                           tpot_s=round(factor * tier["tpot_bound_s"], 4))
    strictest = min(tiers.values(), key=lambda t: 1 - t.get("objective", 0.0))
    thresholds.update(tiers=tiers, ttft_s=strictest["ttft_s"], tpot_s=strictest["tpot_s"])
    if isinstance(thresholds.get("rule"), str):
        thresholds["rule"] = f"{factor:g} x the recorded upper bounds; calibrated as: {thresholds['rule']}"
    return float(entry["capacity_rps"]), thresholds

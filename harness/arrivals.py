"""Arrival processes as renewal processes in operational time.

Every open-loop process is generated the same way: a rate function lambda(t) (piecewise constant, on/off or a
ramp, multiplied by surges) defines operational time Lambda(t) = integral of lambda; arrivals are a renewal
process with unit mean gaps in operational time, the gaps Gamma(k, 1/k) with shape k = burstiness (k = 1 is
Poisson, k < 1 burstier, ``constant`` has gaps of exactly 1), mapped back through Lambda^-1. This gives the
right mean rate and the right coefficient of variation (1/sqrt(k)) whatever the rate function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID_S = 0.001  # resolution of the rate function (1 ms)


@dataclass(frozen=True, slots=True)
class RateWindow:
    """Multiply the rate by ``factor`` (and optionally set the gap shape) during [start_s, end_s)."""

    start_s: float
    end_s: float
    factor: float = 1.0
    shape: float | None = None


def base_rate_function(kind: str, rate: float, duration_s: float, *, end_rate: float | None = None,
                       on_s: float = 2.0, off_s: float = 2.0) -> np.ndarray:
    """lambda(t) on a 1 ms grid for the base process; ``rate`` is the mean rate over on/off cycles."""
    t = np.arange(0.0, duration_s, GRID_S)
    if kind == "ramp":
        return rate + (end_rate - rate) * t / duration_s
    if kind == "onoff":
        is_on = (t % (on_s + off_s)) < on_s
        return np.where(is_on, rate * (on_s + off_s) / on_s, 0.0)
    return np.full(t.shape, float(rate))


def renewal_arrivals(rate_fn: np.ndarray, rng: np.random.Generator, *, shape: float,
                     windows: list[RateWindow] = (), deterministic: bool = False) -> np.ndarray:
    """Arrival times (seconds) of a renewal process with rate function ``rate_fn`` (on the 1 ms grid)."""
    rate_fn = rate_fn.copy()
    shape_fn = np.full(rate_fn.shape, float(shape))
    for w in windows:
        lo, hi = int(round(w.start_s / GRID_S)), int(round(w.end_s / GRID_S))
        rate_fn[lo:hi] *= w.factor
        if w.shape is not None:
            shape_fn[lo:hi] = w.shape
    cumulative = np.concatenate([[0.0], np.cumsum(rate_fn) * GRID_S])  # Lambda at grid edges
    total = cumulative[-1]
    times: list[float] = []
    u = 0.0
    # The first gap is drawn like the others: the process starts "fresh" at t0.
    while True:
        if deterministic:
            gap = 1.0
        else:
            cell = min(int(np.searchsorted(cumulative, u, side="right")) - 1, len(shape_fn) - 1)
            k = shape_fn[max(cell, 0)]
            gap = rng.gamma(k, 1.0 / k)
        u += gap
        if u >= total:
            break
        idx = int(np.searchsorted(cumulative, u, side="right")) - 1
        # Linear interpolation within the 1 ms cell.
        within = (u - cumulative[idx]) / max(cumulative[idx + 1] - cumulative[idx], 1e-300)
        times.append((idx + within) * GRID_S)
    return np.asarray(times)

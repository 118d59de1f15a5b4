"""Scores in burn points and conformal calibration of the what-if intervals (``eval whatif --data``).

Burn points are percentage points of the bad-event share (0-100). Per method: 90 % interval coverage, median
interval width, median absolute error of the point prediction; an interval spanning [0, 100] always misses the
width target, whatever the median says.

Conformalised intervals (``<method>_cqr``): conformalised quantile regression (Romano, Patterson & Candes 2019).
Each case's score is how far the measured share fell outside the model's own interval,
``s = max(low - y, y - high)`` (negative inside); an interval becomes ``[low - q, high + q]`` where ``q`` is the
ceil((n+1)·0.9)-th smallest score of n calibration cases (infinite, i.e. [0, 100], when n is too small). On the
development suites the calibration cases of an incident are all the *other* incidents' cases (leave one incident
out: the cases of one incident share its window, so they are not exchangeable with each other); on a fresh suite
they are the development cases (``--calibrate-from``), so nothing of the fresh suite tunes its own intervals.
"""

from __future__ import annotations

import math

import numpy as np

FULL_RANGE = (0.0, 100.0)
TARGETS = {"coverage_90": 0.80, "median_width": 30.0, "median_abs_error": 10.0, "cases": 30}
LEVEL = 0.9


def covered(p: dict, y: float) -> bool:
    return p["low"] - 1e-9 <= y <= p["high"] + 1e-9


def full_range(p: dict) -> bool:
    return p["low"] <= FULL_RANGE[0] + 0.5 and p["high"] >= FULL_RANGE[1] - 0.5


def _measured(case: dict) -> float | None:
    measured = case.get("measured")
    return None if measured is None else measured["points"]


def score_points(cases: list[dict], methods) -> dict:
    """Per method: cases, coverage_90, median_width, median_abs_error (burn points), full_range (how many
    [0, 100] intervals), width_ok (share of intervals <= the width target and not [0, 100]), unobserved
    (cases whose knob value the data never had), and which targets it meets."""
    out = {}
    for method in methods:
        rows = [(c["predicted"][method], _measured(c), c) for c in cases
                if method in c.get("predicted", {}) and _measured(c) is not None]
        if not rows:
            continue
        errors = [abs(p["point"] - y) for p, y, _ in rows]
        s = {"cases": len(rows), "median_abs_error": float(np.median(errors)), "mean_abs_error": float(np.mean(errors)),
             "unobserved": sum(1 for *_, c in rows if not c.get("value_observed", True))}
        with_interval = [(p, y) for p, y, _ in rows if "low" in p]
        if with_interval:
            widths = [p["high"] - p["low"] for p, _ in with_interval]
            s.update(coverage_90=float(np.mean([covered(p, y) for p, y in with_interval])),
                     median_width=float(np.median(widths)),
                     full_range=sum(full_range(p) for p, _ in with_interval),
                     width_ok=float(np.mean([w <= TARGETS["median_width"] and not full_range(p)
                                             for w, (p, _) in zip(widths, with_interval)])))
        else:
            s.update(coverage_90=None, median_width=None, full_range=0, width_ok=None)
        s["meets"] = {
            "cases": s["cases"] >= TARGETS["cases"],
            "coverage_90": s["coverage_90"] is not None and s["coverage_90"] >= TARGETS["coverage_90"],
            "median_width": s["median_width"] is not None and s["median_width"] <= TARGETS["median_width"],
            "median_abs_error": s["median_abs_error"] <= TARGETS["median_abs_error"]}
        out[method] = s
    return out


def nonconformity(p: dict, y: float) -> float:
    return max(p["low"] - y, y - p["high"])


def conformal_quantile(scores, level: float = LEVEL) -> float:
    """The ceil((n+1)·level)-th smallest score: the margin with finite-sample coverage >= level."""
    scores = sorted(scores)
    k = math.ceil((len(scores) + 1) * level)
    return math.inf if k > len(scores) else float(scores[k - 1])


def _incident(case: dict) -> tuple:
    return case.get("suite"), case.get("scenario")


def _widen(p: dict, q: float) -> dict:
    low, high = max(FULL_RANGE[0], p["low"] - q), min(FULL_RANGE[1], p["high"] + q)
    # A negative margin narrows; it never moves an interval off its own point prediction.
    return {"point": p["point"], "low": min(low, p["point"]), "high": max(high, p["point"]),
            "margin": None if math.isinf(q) else q}   # None: too few calibration cases, [0, 100]


def margins_from(calibration_cases: list[dict], methods) -> dict:
    """q per method from calibration cases (e.g. the development suites' report)."""
    out = {}
    for method in methods:
        scores = [nonconformity(c["predicted"][method], _measured(c)) for c in calibration_cases
                  if "low" in c.get("predicted", {}).get(method, {}) and _measured(c) is not None]
        if scores:
            q = conformal_quantile(scores)
            out[method] = {"margin": None if math.isinf(q) else q, "calibration_cases": len(scores)}
    return out


def add_conformal(cases: list[dict], methods, margins: dict | None = None) -> list[str]:
    """Add ``<method>_cqr`` to every case's predictions, in place; returns the names added. With ``margins``
    (from :func:`margins_from` on other suites) one q per method; without, leave one incident out."""
    added = []
    for method in methods:
        name = f"{method}_cqr"
        for case in cases:
            p = case.get("predicted", {}).get(method)
            if p is None or "low" not in p:
                continue
            if margins is not None:
                if method not in margins:
                    continue
                q = math.inf if margins[method]["margin"] is None else margins[method]["margin"]
            else:
                q = conformal_quantile([nonconformity(c["predicted"][method], _measured(c)) for c in cases
                                        if _incident(c) != _incident(case) and _measured(c) is not None
                                        and "low" in c.get("predicted", {}).get(method, {})])
            case["predicted"][name] = _widen(p, q)
            if name not in added:
                added.append(name)
    return added


def best_method(scores: dict) -> str | None:
    """The method meeting most targets; ties by coverage, then narrower median width, then smaller error."""
    ranked = [(sum(s["meets"].values()), s["coverage_90"] or 0.0, -(s["median_width"] or 1e9), -s["median_abs_error"], m)
              for m, s in scores.items() if s["coverage_90"] is not None]
    return max(ranked)[-1] if ranked else None


def failures(cases: list[dict], method: str) -> list[str]:
    """One line per case where ``method`` misses: measured outside its interval, wider than the target or
    [0, 100], or off by more than the error target."""
    lines = []
    for c in cases:
        p, y = c.get("predicted", {}).get(method), _measured(c)
        if p is None or y is None or "low" not in p:
            continue
        why = []
        if not covered(p, y):
            why.append("outside the interval")
        if full_range(p):
            why.append("interval is [0, 100]")
        elif p["high"] - p["low"] > TARGETS["median_width"]:
            why.append(f"width {p['high'] - p['low']:.0f}")
        if abs(p["point"] - y) > TARGETS["median_abs_error"]:
            why.append(f"error {abs(p['point'] - y):.0f}")
        if why:
            unseen = "" if c.get("value_observed", True) else " [value never observed]"
            lines.append(f"{c['key']}: predicted {p['point']:.1f} [{p['low']:.1f}, {p['high']:.1f}], measured "
                         f"{y:.1f} (observed {c['observed']:.1f}){unseen}: {', '.join(why)}")
    return lines


def binomial_floor(points: float, requests: int) -> float:
    """Width (burn points) of the 90 % interval of the share a window of ``requests`` measures at a true share of
    ``points``: what even a perfect model's interval must span. Above the width target, the case is below the
    floor."""
    from scipy.stats import binom

    if requests <= 0:
        return 100.0
    low, high = binom.interval(0.9, int(requests), min(max(points / 100.0, 0.0), 1.0))
    return 100.0 * float(high - low) / requests


def replay_speed(cases: list[dict]) -> dict | None:
    """Median and range of the speed probe's ratio (recording / replay) over every replay of these cases."""
    ratios = [r["speed_ratio"] for c in cases for r in (c.get("measured"), c.get("unchanged"))
              if r and r.get("speed_ratio") is not None]
    if not ratios:
        return None
    return {"median": float(np.median(ratios)), "min": float(min(ratios)), "max": float(max(ratios)),
            "replays": len(ratios)}

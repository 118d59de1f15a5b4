"""``bayes_paired_pooled``: the paired prediction with the share ``lam`` learnt across incidents, not assumed.

:mod:`causalsre.bayes.paired` gives a window's excess intercept ``eps`` (what the window burns beyond its run's
baseline window that the factors do not explain) a share ``lam ~ Uniform(0, 1)`` that stays under an
intervention leaving another recorded change in place: one window cannot say how much of its excess was the
reverted cause. Across incidents it can be learnt. This module keeps the paired model and changes two things:

1. **The share's prior is pooled over other incidents (empirical Bayes).** Per case the predictive distribution
   of the replay's share is computed at every ``lam`` of a grid (:func:`share_pmf_by_lam`, a matrix
   ``P[lam, point]``). Once a case is replayed, ``P[:, measured]`` is the likelihood of its ``lam``. A
   ``Beta(a, b)`` prior over ``lam`` is fitted by maximum marginal likelihood on the *calibration* cases
   (:func:`fit_share_prior`: other incidents of the development suites, leave one incident out; on a fresh
   suite the development report's cases), and a case's prediction is the mixture ``sum_lam Beta(lam) P[lam]``
   (:func:`mixture_points`). Two parameters on tens of cases; Beta(1, 1) is the uniform share, so the data can
   only move the prior where the calibration incidents agree. A case where ``lam`` does not enter (the revert of
   every recorded change, or a factor unchanged since the baseline) has a flat likelihood and informs nothing.
   **The share depends on what stays in place**, so the prior is fitted per kind of what the intervention
   leaves (:func:`left_kind`): a *workload* shift left in place (more traffic, longer requests, a tenant's
   flood) keeps burning by itself, while a *setting* left in place (a knob or fault) may only burn under the
   load that was reverted with the cause; the two are different populations of ``lam``. Each kind's Beta is
   **partially pooled** (:func:`fit_share_prior`): its fit is penalised towards the fit over all kinds, and that
   one towards the uniform Beta(1, 1) (a Normal(0, 1) hyperprior on log a and log b), so a kind with few
   calibration cases borrows from the others and no fit can collapse to a spike on a handful of cases (the
   development prior of session 11 was Beta(0.05, 50), at the bounds, on 10 cases).
2. **No session shift where the replay is the recording.** On the modelled clock (``eval generate --clock
   modelled``) a replay runs on the recording's step-cost clock; where the unchanged replay reproduces the
   recorded window exactly (same requests, same bad count) the session differs from the recording by nothing,
   so the shift ``delta`` is 0. The paired model's posterior on ``delta`` would reuse the window's own requests,
   which the fit has already seen, as fresh evidence about the session: double counting that widens the interval
   by the binomial noise of the window a second time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LAM_GRID = np.linspace(0.0, 1.0, 21)
POINTS = np.arange(101)                 # the replay's bad share, in whole burn points
FLOOR = 1e-4                            # likelihood floor: a measured share the samples never reached
_BETA_BOUNDS = (np.log(0.05), np.log(50.0))   # log a, log b: from a spike at either end to a narrow bump


def share_pmf_by_lam(fitted, window: pd.DataFrame, interventions: dict, *, unchanged_bad: int, unchanged_n: int,
                     absorbed: bool, reverts_all: bool, fixed_session: bool, n_samples: int = 2000,
                     n_draws: int | None = 400, seed: int = 0) -> np.ndarray:
    """``P[j, k]``: the probability that the intervention's replay measures ``k`` burn points when the window
    keeps the share ``LAM_GRID[j]`` of its excess (rows all equal where ``lam`` does not enter)."""
    from causalsre.bayes.paired import _logistic, excess_and_samples

    eta, eps, n1, rng = excess_and_samples(fitted, window, interventions, unchanged_bad=unchanged_bad,
                                           unchanged_n=unchanged_n, absorbed=absorbed, fixed_session=fixed_session,
                                           n_samples=n_samples, n_draws=n_draws, seed=seed)
    if eps is None or reverts_all:   # lam does not enter (reverts_all: all of the excess leaves, lam = 0)
        shift = np.zeros(len(eta)) if eps is None else eps
        row = _histogram(rng.binomial(n1[None, :], _logistic(eta - shift[:, None])).sum(axis=1) / n1.sum())
        return np.tile(row, (len(LAM_GRID), 1))
    out = np.empty((len(LAM_GRID), len(POINTS)))
    for j, lam in enumerate(LAM_GRID):
        bad = rng.binomial(n1[None, :], _logistic(eta - ((1.0 - lam) * eps)[:, None])).sum(axis=1)
        out[j] = _histogram(bad / n1.sum())
    return out


def _histogram(shares: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.clip(np.rint(100.0 * shares).astype(int), 0, 100), minlength=len(POINTS))
    return counts / counts.sum()


def lam_likelihood(pmf: np.ndarray, measured_points: float) -> np.ndarray:
    """Likelihood of each grid ``lam`` given the replay's measured share (floored, so a share the samples never
    reached costs every ``lam`` alike instead of ruling the case out)."""
    return np.maximum(pmf[:, int(np.clip(round(measured_points), 0, 100))], FLOOR)


def informative(likelihood) -> bool:
    """Whether a case says anything about ``lam`` (its likelihood is not flat over the grid)."""
    likelihood = np.asarray(likelihood, dtype=float)
    return bool(likelihood.max() > likelihood.min() * (1.0 + 1e-6))


def beta_weights(a: float, b: float) -> np.ndarray:
    """Beta(a, b) on the grid, as weights summing to 1 (the end points get the mass of their half cells)."""
    from scipy.stats import beta

    edges = np.concatenate([[0.0], (LAM_GRID[1:] + LAM_GRID[:-1]) / 2.0, [1.0]])
    mass = np.diff(beta.cdf(edges, a, b))
    return mass / mass.sum()


HYPER_SD = 1.0   # sd of log a, log b around their centre: Beta(1, 1) can move a factor e per sd, not to a spike


def fit_share_prior(likelihoods: list, centre: tuple | None = None) -> dict:
    """Beta(a, b) over ``lam`` maximising the marginal likelihood of the informative calibration cases times a
    Normal(centre, HYPER_SD) hyperprior on (log a, log b) (``centre``: another fit's (a, b), default the uniform
    Beta(1, 1)); the centre itself where none is informative."""
    from scipy.optimize import minimize

    mu = np.zeros(2) if centre is None else np.log(np.asarray(centre, dtype=float))
    rows = [np.asarray(lk, dtype=float) for lk in likelihoods if informative(lk)]
    if not rows:
        a, b = np.exp(mu)
        return {"a": float(a), "b": float(b), "cases": 0}
    matrix = np.vstack(rows)

    def loss(theta):
        penalty = 0.5 * float((((theta - mu) / HYPER_SD) ** 2).sum())
        return -float(np.log(matrix @ beta_weights(*np.exp(theta))).sum()) + penalty

    best = min((minimize(loss, np.array(start), method="L-BFGS-B", bounds=[_BETA_BOUNDS] * 2)
                for start in ((0.0, 0.0), (-1.0, 1.0), (1.0, -1.0))), key=lambda r: r.fun)
    a, b = np.exp(best.x)
    return {"a": float(a), "b": float(b), "cases": len(rows)}


def mixture_points(pmf: np.ndarray, weights: np.ndarray) -> dict:
    """{point, low, high} in burn points: median and 90 % interval of the mixture ``sum_j weights[j] P[j]``."""
    cdf = np.cumsum(weights @ pmf)
    cdf = cdf / cdf[-1]
    at = lambda q: float(POINTS[min(int(np.searchsorted(cdf, q - 1e-12)), len(POINTS) - 1)])
    return {"point": at(0.5), "low": at(0.05), "high": at(0.95)}


def replay_is_recording(unchanged: dict, window: pd.DataFrame, clock_mode: str | None) -> bool:
    """Whether the unchanged replay reproduced the recorded window exactly on the modelled clock (then the
    session adds no shift: module doc, item 2)."""
    if clock_mode != "modelled" or unchanged.get("requests") != len(window):
        return False
    return int(round(unchanged["points"] * unchanged["requests"] / 100.0)) == int(window["is_bad"].sum())


def left_kind(left_in_place) -> str:
    """What an intervention leaves in place, for the share's prior: ``workload`` (a workload shift stays, with or
    without settings), ``setting`` (only settings, faults or governor actions stay), ``none`` (nothing recorded
    stays, or unknown)."""
    from causalsre.evaluation.whatif_cases import WORKLOAD_COLUMNS

    names = set(left_in_place or ())
    workload = set(WORKLOAD_COLUMNS) | {c for cols in WORKLOAD_COLUMNS.values() for c in cols}
    if names & workload:
        return "workload"
    return "setting" if names else "none"


def fit_by_kind(rows: list[dict], method: str = "bayes_paired_pooled") -> dict:
    """{kind: prior, "all": prior}: the all-kinds fit (centred on Beta(1, 1)) and per kind a fit centred on it."""
    def likelihoods(kind=None):
        return [r["predicted"][method]["lam_likelihood"] for r in rows
                if "lam_likelihood" in r.get("predicted", {}).get(method, {})
                and (kind is None or left_kind(r["predicted"][method].get("left_in_place")) == kind)]

    pooled = fit_share_prior(likelihoods())
    out = {"all": pooled}
    for kind in ("workload", "setting", "none"):
        out[kind] = {**fit_share_prior(likelihoods(kind), centre=(pooled["a"], pooled["b"])), "kind": kind}
    return out


METHOD = "bayes_paired_pooled"


def pool_cases(cases: list[dict], calibration: list[dict] | None = None, method: str = METHOD) -> dict | None:
    """Replace each case's provisional ``method`` prediction (the uniform share) by the mixture under a Beta prior
    fitted on calibration cases, in place: ``calibration`` (another report's cases, e.g. the development suites')
    or else, per incident, the other incidents' cases here (leave one incident out). Each case keeps its own
    ``lam_likelihood`` (for a later ``--calibrate-from``) and the prior it was given (``share_prior``); returns the
    priors fitted on ``calibration`` (:func:`fit_by_kind`; None when leave one incident out)."""
    own = [c for c in cases if "_pmfs" in c.get("predicted", {}).get(method, {})]
    for case in own:
        p, measured = case["predicted"][method], case.get("measured")
        if measured is not None:
            p["lam_likelihood"] = [round(float(v), 6) for v in lam_likelihood(p["_pmfs"][0], measured["points"])]

    fixed = None if calibration is None else fit_by_kind(calibration, method)
    by_incident: dict = {}
    for case in own:
        incident = (case.get("suite"), case.get("scenario"))
        if fixed is None and incident not in by_incident:
            by_incident[incident] = fit_by_kind([c for c in own if (c.get("suite"), c.get("scenario")) != incident],
                                                method)
        p = case["predicted"][method]
        prior = (fixed or by_incident[incident])[left_kind(p.get("left_in_place"))]
        weights = beta_weights(prior["a"], prior["b"])
        pmfs = p.pop("_pmfs")
        p.update(mixture_points(pmfs[0], weights), share_prior=prior)
        for other in pmfs[1:]:   # the never-observed value's neighbours: the hull, as for every method
            hull = mixture_points(other, weights)
            p.update(low=min(p["low"], hull["low"]), high=max(p["high"], hull["high"]), widened=True)
    return fixed

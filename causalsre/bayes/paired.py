"""Paired what-if prediction: the counterfactual of a window, anchored on an unchanged replay of that window.

``whatif --verify`` and ``eval whatif --data`` measure an intervention by replaying the window's workload. The
replay machine is rarely the recording's (a shared machine runs at another speed from one minute to the next),
so the share a replay measures differs from the recording even with no change at all. The paired design replays
the window twice in the same session, unchanged (``u_bad`` of ``u_n`` requests) and with the intervention, and
predicts the intervention's replay *given the unchanged one*. Per posterior draw ``d`` of the burn model:

1. **Session shift** ``delta`` (abduction on the unchanged replay): the replay session's conditions move every
   request's logit by one shared ``delta``, prior ``Normal(0, sigma_window[d])`` (a replay is another stretch of
   time like a window); its posterior on a grid given ``u_bad ~ Binomial(u_n, mean p(eta0 + delta))``. The
   draws are reweighted jointly with ``delta`` by the same likelihood: the unchanged replay is data about the
   model too.
2. **The window intercept is partly the cause.** When the intervened factor's value in the window differs from
   the run's baseline window (``absorbed=True``), the window's own effect beyond its run's baseline window,
   ``eps = effect[incident] - effect[baseline]``, may hold part of the cause (a knob value seen in one window
   only is not separable from that window's intercept). Under the intervention ``eps`` keeps a share ``lam``:
   0 = all of it was the cause, 1 = none was. Where the intervention reverts **every recorded change** between
   the baseline and the window (``reverts_all``: :func:`unreverted_changes` is empty: settings, workload shifts
   and governor actions of :mod:`causalsre.causal.changes`), the window differs from its baseline by nothing
   else the telemetry knows, so all of the excess leaves with it: ``lam = 0``. Otherwise (another change stays
   in place, or a knob is set to a value between its baseline and the pushed one) nothing in the data says how
   much, so ``lam ~ Uniform(0, 1)``.
3. **Binomial noise** of a window of that many requests, so the interval is for what the replay measures.

``prediction = Binomial(n, logistic(eta1 - (1 - lam) * eps + delta)) / n``, ``eta1`` the linear predictor of the
window's requests under the intervention (the model's own counterfactual, which keeps the window effect).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalsre.bayes.encoding import WINDOW
from causalsre.bayes.predict import apply_interventions, cell_linear_predictor

GRID = np.linspace(-10.0, 10.0, 201)   # logit shifts: 10 covers a replay from every request good to every one bad


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def window_excess(draws, window_level: str, baseline_level: str | None) -> np.ndarray:
    """Per draw, the window's effect minus its run's baseline window's (0 where either was not fitted)."""
    if WINDOW not in draws.effects or baseline_level is None:
        return np.zeros(draws.n)
    levels, eff, _ = draws.effects[WINDOW]
    index = {level: i for i, level in enumerate(levels)}
    if window_level not in index or baseline_level not in index:
        return np.zeros(draws.n)
    return eff[:, index[window_level]] - eff[:, index[baseline_level]]


def session_posterior(eta0: np.ndarray, n0: np.ndarray, u_bad: int, u_n: int, sigma: np.ndarray) -> np.ndarray:
    """Joint posterior weights w[draw, grid] of (draw, delta) given the unchanged replay's u_bad of u_n."""
    if u_n <= 0:
        raise ValueError("the unchanged replay has no requests")
    share = n0 / n0.sum()
    p = np.clip((_logistic(eta0[:, None, :] + GRID[None, :, None]) * share).sum(axis=2), 1e-12, 1 - 1e-12)
    log_w = u_bad * np.log(p) + (u_n - u_bad) * np.log1p(-p)
    sigma = np.maximum(np.asarray(sigma, dtype=float), 1e-3)[:, None]
    log_w += -0.5 * (GRID[None, :] / sigma) ** 2 - np.log(sigma)
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def paired_bad_rate(fitted, window: pd.DataFrame, interventions: dict, *, unchanged_bad: int, unchanged_n: int,
                    absorbed: bool = True, reverts_all: bool = False, revert_all: dict | None = None,
                    n_samples: int = 2000, n_draws: int | None = 400, seed: int = 0) -> np.ndarray:
    """Draws of the bad-event share the intervention's replay measures, given the unchanged replay (module doc).

    ``fitted``: a :class:`causalsre.bayes.FittedBurnModel`; ``window``: the recorded window's requests (one run's
    phase); ``absorbed``: whether the intervened factors changed between the run's baseline and this window;
    ``reverts_all``: whether the intervention sets back every recorded change between them (then ``lam = 0``);
    ``revert_all``: otherwise, the intervention that sets back every recorded change (this one's and those left
    in place), when the model can express it: ``lam`` is then split by the model's own factor effects
    (:func:`kept_share`) instead of Uniform(0, 1)."""
    eta, eps, n1, rng, d = _samples(fitted, window, interventions, unchanged_bad, unchanged_n, absorbed, False,
                                    n_samples, n_draws, seed)
    if eps is not None:
        if reverts_all:
            lam = np.zeros(n_samples)
        elif revert_all is not None:
            lam = kept_share(fitted.draws(n_draws, seed), fitted.encoding, window, interventions, revert_all, seed)[d]
        else:
            lam = rng.uniform(0.0, 1.0, size=n_samples)
        eta = eta - ((1.0 - lam) * eps)[:, None]
    bad = rng.binomial(n1[None, :], _logistic(eta)).sum(axis=1)
    return bad / n1.sum()


def excess_and_samples(fitted, window: pd.DataFrame, interventions: dict, *, unchanged_bad: int, unchanged_n: int,
                       absorbed: bool, fixed_session: bool = False, n_samples: int = 2000, n_draws: int | None = 400,
                       seed: int = 0):
    """The paired model's samples before the share and the binomial noise: ``(eta, eps, n1, rng)`` with ``eta``
    the intervened linear predictor per sample and cell (session shift included; 0 with ``fixed_session``),
    ``eps`` the window's excess per sample (None where it does not enter), ``n1`` the requests per cell."""
    eta, eps, n1, rng, _ = _samples(fitted, window, interventions, unchanged_bad, unchanged_n, absorbed,
                                    fixed_session, n_samples, n_draws, seed)
    return eta, eps, n1, rng


def _samples(fitted, window, interventions, unchanged_bad, unchanged_n, absorbed, fixed_session, n_samples,
             n_draws, seed):
    draws = fitted.draws(n_draws, seed)
    encoding = fitted.encoding
    eta0, n0 = cell_linear_predictor(draws, encoding, window, seed)
    eta1, n1 = cell_linear_predictor(draws, encoding, apply_interventions(window, interventions), seed)
    sigma = draws.effects[WINDOW][2] if WINDOW in draws.effects else np.ones(draws.n)
    if fixed_session:
        # The replay is the recording, which the fit has seen: no new evidence, so no shift and no reweighting.
        weights = np.zeros((draws.n, GRID.size))
        weights[:, int(np.argmin(np.abs(GRID)))] = 1.0 / draws.n
    else:
        weights = session_posterior(eta0, n0, int(unchanged_bad), int(unchanged_n), sigma)
    rng = np.random.default_rng(seed + 7)
    flat = rng.choice(weights.size, size=n_samples, p=weights.ravel())
    d, g = np.unravel_index(flat, weights.shape)
    eta = eta1[d] + GRID[g][:, None]
    eps = None
    if absorbed:
        run_ids = window["run_id"].astype(str).unique() if "run_id" in window else []
        phases = window["phase"].astype(str).unique() if "phase" in window else []
        if len(run_ids) == 1 and len(phases) == 1 and phases[0] != "baseline":
            eps = window_excess(draws, f"{run_ids[0]}/{phases[0]}", f"{run_ids[0]}/baseline")[d]
    return eta, eps, n1, rng, d


def _mean_bad(draws, encoding, frame, seed) -> np.ndarray:
    """Per draw, the request-weighted mean bad probability of ``frame`` (window effect included)."""
    eta, n = cell_linear_predictor(draws, encoding, frame, seed)
    return (_logistic(eta) * n).sum(axis=1) / n.sum()


def kept_share(draws, encoding, window: pd.DataFrame, interventions: dict, revert_all: dict, seed: int = 0):
    """Per draw, the share ``lam`` of the window's excess that stays under ``interventions`` when other recorded
    changes stay in place, split as the model splits what its factor effects explain: with ``p0`` the window's
    mean bad probability, ``pR`` under this intervention and ``pA`` under ``revert_all`` (every recorded change
    set back), ``lam = 1 - (p0 - pR) / (p0 - pA)``, clipped to [0, 1]. Where the factor effects explain
    (almost) nothing of the change (``|p0 - pA| < 0.01``) the model has no split to offer: Uniform(0, 1)."""
    p0 = _mean_bad(draws, encoding, window, seed)
    p_r = _mean_bad(draws, encoding, apply_interventions(window, interventions), seed)
    p_a = _mean_bad(draws, encoding, apply_interventions(window, revert_all), seed)
    explained = p0 - p_a
    rng = np.random.default_rng(seed + 11)
    uniform = rng.uniform(0.0, 1.0, size=draws.n)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.clip((p0 - p_r) / explained, 0.0, 1.0)
    return np.where(np.abs(explained) < 0.01, uniform, 1.0 - share)


def changed_from_baseline(window: pd.DataFrame, baseline: pd.DataFrame, columns) -> bool:
    """Whether any of ``columns`` takes other values in ``window`` than in ``baseline`` (then the window's
    intercept may have absorbed part of that change)."""
    for column in columns:
        if column not in window or column not in baseline:
            continue
        a, b = window[column].dropna(), baseline[column].dropna()
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(a):
            if a.empty or b.empty or not np.isclose(float(a.mean()), float(b.mean()), rtol=0.05, atol=1e-9):
                return True
        elif set(a.astype(str).unique()) != set(b.astype(str).unique()):
            return True
    return False


def unreverted_changes(changes: list[dict], intervened) -> list[str]:
    """Names of the significant recorded changes (:func:`causalsre.causal.changes.what_changed`) between the
    baseline and the window that an intervention on the columns ``intervened`` leaves in place. Settings and
    workload shifts are matched by name (a reverted tenant flood reverts its rate too: its columns include
    ``arrival_rate``, and the lengths that only followed its mix: ``explained_by``); operator events are skipped (a push or fault event is also a setting change); a governor
    action always stays (no what-if here reverts the governor)."""
    from causalsre.causal.mix_faces import faces_of

    names = set(intervened)
    names |= faces_of(changes, names)   # a reverted tenant mix takes the lengths that only followed it
    left = set()
    for change in changes:
        if not change.get("significant") or change.get("kind") == "event":
            continue
        if change.get("kind") in ("setting", "workload") and change.get("name") in names:
            continue
        left.add(str(change.get("name")))
    return sorted(left)

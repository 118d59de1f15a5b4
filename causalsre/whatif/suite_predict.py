"""Per-case predictions of ``causalsre eval whatif --data`` (:mod:`.calibration_suite` runs the cases).

``predict_case``: the unpaired methods (gcm, bayes, bayes_new_run, no_change) from the recorded window;
``predict_paired``: the methods that also see the unchanged replay of the same session (``no_change_replay``,
``bayes_paired``: :mod:`causalsre.bayes.paired`). At a knob value the suite never observed, every interval is
widened to the hull of the predictions at the observed neighbours.
"""

from __future__ import annotations

import numpy as np

POOLED = "bayes_paired_pooled"


def _points(draws: np.ndarray) -> dict:
    low, high = np.quantile(draws, [0.05, 0.95])
    return {"point": 100.0 * float(np.median(draws)), "low": 100.0 * float(low), "high": 100.0 * float(high)}


def _neighbours(column, value: float) -> list[float]:
    seen = np.unique(column.dropna().to_numpy(dtype=float))
    below, above = seen[seen < value], seen[seen > value]
    return ([float(below.max())] if below.size else []) + ([float(above.min())] if above.size else [])


def predict_case(case, window, baseline, table, models: dict, seed: int) -> dict:
    """Per method {point, low, high} in burn points, and how the case was widened or limited."""
    from causalsre.evaluation.whatif_cases import model_intervention

    intervention = model_intervention(case, baseline, window, seed=seed)
    notes = []
    # A knob value the data never had: the models interpolate, with nothing to say they interpolate right. If
    # the effect is monotone between the observed neighbours, the answer lies between their predictions: the
    # interval becomes the hull of the three (honest, and counted under `unobserved`).
    others = _neighbours(table[case.cause], case.value) if case.family == "knob" and not case.value_observed else []
    if others:
        notes.append(f"{case.cause}={case.value:g} never observed: interval widened to the predictions at "
                     + " and ".join(f"{v:g}" for v in others))
    out = {}
    for method in ("gcm", "bayes", "bayes_new_run"):
        model = models.get("gcm" if method == "gcm" else "bayes")
        if model is None or method not in models["methods"]:
            continue
        out[method] = _predict_one(method, model, window, intervention, seed, notes)
        for other in others:
            hull = _predict_one(method, model, window, {**intervention, case.cause: other}, seed, [])
            out[method]["low"] = min(out[method]["low"], hull["low"])
            out[method]["high"] = max(out[method]["high"], hull["high"])
            out[method]["widened"] = True
    if "no_change" in models["methods"]:
        out["no_change"] = {"point": 100.0 * float(window["is_bad"].mean())}
    return {"predicted": out, "notes": notes}


def _predict_one(method, model, window, intervention, seed, notes) -> dict:
    if method == "gcm":
        usable = {k: v for k, v in intervention.items() if k in model.graph}
        if not usable and "gcm: the cause is not in its graph" not in notes:
            notes.append("gcm: the cause is not in its graph (constant or unconnected): predicted unchanged")
        return _points(model.bad_rate(window, usable or None, seed=seed))
    return _points(model.bad_rate(window, intervention, new_run=method == "bayes_new_run", seed=seed))


def predict_paired(case, window, baseline, table, model, unchanged: dict, seed: int,
                   changes: list | None = None, *, pooled: bool = False, clock_mode: str | None = None) -> dict:
    """The paired predictions, given the unchanged replay of the same session: ``no_change_replay`` (its share),
    ``bayes_paired`` and ``bayes_paired_split`` (:mod:`causalsre.bayes.paired`; widened like the others at a
    never-observed value). ``changes``: the recorded changes between the run's baseline and the window
    (``what_changed``); a revert that sets back all of them takes the window's whole excess with it (None:
    unknown, the uniform share). Otherwise ``bayes_paired`` keeps the uniform share and ``bayes_paired_split``
    splits it by the model's factor effects (where the model can set back every change left in place).
    ``pooled``: also ``bayes_paired_pooled`` (:mod:`causalsre.bayes.pooled`), provisional here (the uniform share)
    until :func:`causalsre.bayes.pooled.pool_cases` gives it the share prior of the other incidents;
    ``clock_mode``: the suite's clock (``modelled``: a replay that reproduces the recording has no session shift)."""
    from causalsre.bayes.paired import changed_from_baseline, paired_bad_rate, unreverted_changes
    from causalsre.evaluation.whatif_cases import model_intervention

    out = {"no_change_replay": {"point": unchanged["points"]}}
    if model is None:
        return out
    intervention = model_intervention(case, baseline, window, seed=seed)
    absorbed = changed_from_baseline(window, baseline, list(intervention))
    left = None if changes is None else unreverted_changes(changes, {*intervention, case.cause})
    reverts_all = case.kind == "revert" and left == []
    bad = int(round(unchanged["points"] * unchanged["requests"] / 100.0))
    everything = None if reverts_all or not left else revert_everything(left, intervention, baseline, window, seed)
    others = _neighbours(table[case.cause], case.value) if case.family == "knob" and not case.value_observed else []
    for method, split in (("bayes_paired", None), ("bayes_paired_split", everything)):
        def one(change):
            return _points(paired_bad_rate(model, window, change, unchanged_bad=bad,
                                           unchanged_n=unchanged["requests"], absorbed=absorbed,
                                           reverts_all=reverts_all, seed=seed,
                                           revert_all=None if split is None else {**split, **change}))

        out[method] = {**one(intervention), "absorbed": absorbed, "reverts_all": reverts_all, "left_in_place": left}
        if method == "bayes_paired_split":
            out[method]["split"] = "model" if split is not None else "reverts all" if reverts_all else "uniform"
        for other in others:
            hull = one({**intervention, case.cause: other})
            out[method].update(low=min(out[method]["low"], hull["low"]), high=max(out[method]["high"], hull["high"]),
                               widened=True)
    if pooled:
        out[POOLED] = _pooled(model, window, intervention, others, case, bad, unchanged, absorbed, reverts_all,
                              left, clock_mode, seed)
    return out


def _pooled(model, window, intervention, others, case, bad, unchanged, absorbed, reverts_all, left, clock_mode,
            seed) -> dict:
    from causalsre.bayes.pooled import LAM_GRID, mixture_points, replay_is_recording, share_pmf_by_lam

    fixed = replay_is_recording(unchanged, window, clock_mode)
    pmfs = [share_pmf_by_lam(model, window, change, unchanged_bad=bad, unchanged_n=unchanged["requests"],
                             absorbed=absorbed, reverts_all=reverts_all, fixed_session=fixed, seed=seed)
            for change in (intervention, *({**intervention, case.cause: o} for o in others))]
    uniform = np.full(len(LAM_GRID), 1.0 / len(LAM_GRID))
    return {**mixture_points(pmfs[0], uniform), "_pmfs": pmfs, "absorbed": absorbed, "reverts_all": reverts_all,
            "left_in_place": left, "fixed_session": fixed}


def revert_everything(left: list[str], intervention: dict, baseline, window, seed: int) -> dict | None:
    """The model intervention that also sets back every change ``left`` in place (a setting to the baseline's
    most common value, workload columns jointly resampled from the baseline's requests), or None when one of
    them is nothing the model can set (a governor action, a column it does not have)."""
    from causalsre.evaluation.whatif_cases import WORKLOAD_COLUMNS

    out: dict = {}
    rows = np.random.default_rng(seed + 3).integers(0, len(baseline), size=len(window)) if len(baseline) else None
    for name in left:
        if name in WORKLOAD_COLUMNS and rows is not None:
            for column in WORKLOAD_COLUMNS[name]:
                if column in window.columns and column in baseline.columns:
                    out[column] = baseline[column].to_numpy()[rows]
        elif name in window.columns and name in baseline.columns and not baseline[name].dropna().empty:
            out[name] = baseline[name].mode().iloc[0]
        else:
            return None
    return out

"""Predicted bad-event and burn rates of a window under an intervention, per method, as report dicts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalsre.bayes.predict import interval

METHODS = ("gcm", "bayes")


def summarise(bad_rate_draws: np.ndarray, objective: float, level: float = 0.9) -> dict:
    """``{burn_rate, low, high, bad_rate}`` from draws of the bad-event rate."""
    budget = 1.0 - objective
    low, high = interval(bad_rate_draws, level)
    median = float(np.median(bad_rate_draws))
    return {"burn_rate": median / budget, "low": low / budget, "high": high / budget, "bad_rate": median}


def range_warnings(table: pd.DataFrame, interventions: dict) -> list[str]:
    """Interventions outside what the data has seen are extrapolation: say so next to the numbers."""
    notes = []
    for knob, value in interventions.items():
        column = table[knob]
        if isinstance(value, str):
            continue
        seen = np.unique(column.dropna().to_numpy(dtype=float))
        if seen.size == 1:
            notes.append(f"{knob} never varied in the data (always {seen[0]:g}): its effect is not identified "
                         "from this database, the prediction rests on the model's form and priors")
        elif not seen.min() <= value <= seen.max():
            notes.append(f"{knob}={value:g} is outside the observed range [{seen.min():g}, {seen.max():g}]: "
                         "extrapolation")
    return notes


def unobserved_values(table: pd.DataFrame, interventions: dict) -> dict:
    """Categorical interventions whose value no request of the database had ({knob: values seen}): a model
    fitted here knows nothing of them (``policy=budget`` on telemetry recorded under fcfs only)."""
    out = {}
    for knob, value in interventions.items():
        if isinstance(value, str):
            seen = sorted(str(v) for v in table[knob].dropna().unique())
            if value not in seen:
                out[knob] = seen
    return out


def unidentified(methods: tuple[str, ...], objective: float) -> dict:
    """What each method can honestly say about a value it never saw: no point, the whole range of the burn
    (0 to every request bad, 1 / (1 - objective)), ``identified`` false."""
    return {m: {"burn_rate": None, "low": 0.0, "high": 1.0 / (1.0 - objective), "bad_rate": None,
                "identified": False} for m in methods}


def unobserved_warning(unseen: dict) -> str:
    said = "; ".join(f"{k} took only {', '.join(v) or 'no value'}" for k, v in unseen.items())
    return (f"never observed in this database ({said}): no model fitted on it can predict the change, so each "
            "method reports the whole range with no point; --verify measures it by replaying the window")


def predict(window: pd.DataFrame, interventions: dict, *, objective: float, gcm_model=None, bayes_model=None,
            seed: int = 0, new_run: bool = False) -> dict:
    """Per-method predictions for one intervention in one window. ``bayes`` is the counterfactual for this
    window; with ``new_run`` a ``bayes_new_run`` entry adds the spread of a fresh run of it."""
    out = {}
    if gcm_model is not None:
        out["gcm"] = summarise(gcm_model.bad_rate(window, interventions, seed=seed), objective)
    if bayes_model is not None:
        out["bayes"] = summarise(bayes_model.bad_rate(window, interventions, seed=seed), objective)
        if new_run:
            out["bayes_new_run"] = summarise(bayes_model.bad_rate(window, interventions, new_run=True, seed=seed),
                                             objective)
    return out


def observed(window: pd.DataFrame, objective: float) -> dict:
    bad_rate = float(window["is_bad"].mean())
    return {"burn_rate": bad_rate / (1.0 - objective), "bad_rate": bad_rate, "requests": int(len(window))}

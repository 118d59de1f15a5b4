"""``causalsre recommend``: search the actionable knobs and rank interventions by predicted burn.

Candidates are the values each actionable knob took anywhere in the database (the model has seen them;
unseen values would be extrapolation), one knob at a time. Each is scored with the Bayesian posterior
predictive on the window's requests; the ranking is by the upper end of the 90 % interval, so a
confident improvement beats a lucky-looking one.
"""

from __future__ import annotations

import pandas as pd

from causalsre.whatif.predict import summarise


def candidates(table: pd.DataFrame, actionable: list[str], window: pd.DataFrame, max_per_knob: int = 8) -> list[dict]:
    out = []
    for knob in actionable:
        seen = table[knob].dropna().unique().tolist()
        if len(seen) < 2:
            continue   # never varied: the data cannot say what changing it does
        current = set(window[knob].dropna().unique().tolist())
        for value in sorted(seen, key=str)[:max_per_knob]:
            if {value} != current:
                out.append({knob: value})
    return out


def recommend(bayes_model, table: pd.DataFrame, window: pd.DataFrame, actionable: list[str], *,
              objective: float, seed: int = 0) -> list[dict]:
    """Interventions ranked by the 95th percentile of predicted burn rate (best first)."""
    rows = []
    for intervention in candidates(table, actionable, window):
        predicted = summarise(bayes_model.bad_rate(window, intervention, seed=seed), objective)
        rows.append({"intervention": intervention, **predicted,
                     "within_budget": predicted["high"] <= 1.0})
    rows.sort(key=lambda r: (r["high"], r["burn_rate"]))
    return rows

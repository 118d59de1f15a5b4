"""``causalsre effect``: the average effect of a knob on the bad-event rate, two ways.

1. DoWhy: identify the effect on the graph (backdoor), estimate it with a backdoor-adjusted linear
   probability model (the effect is then directly a change in bad-event rate), and refute it with a
   placebo treatment, a random common cause and data subsets.
2. pgmpy: a discrete Bayesian network on the treatment, its backdoor parents and ``is_bad`` (the graph
   projected onto them), fitted with a BDeu prior, answering P(is_bad | do(knob)) by adjustment.
Both compare the same two knob values: the most and the least common (or --control / --treated).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalsre.bayes.factors import OUTCOME, GraphView
from causalsre.errors import UserError
from causalsre.whatif.gcm_predict import Encoded, project_graph

_META = {"run_id", "request_id", "phase", "arrival_ts"}
REFUTERS = {
    "placebo": ("placebo_treatment_refuter", {"placebo_type": "permute"}),
    "random_common_cause": ("random_common_cause", {}),
    "data_subset": ("data_subset_refuter", {"subset_fraction": 0.8}),
}


def _numeric_frame(table: pd.DataFrame, graph, view: GraphView) -> pd.DataFrame:
    encoded = Encoded.fit(table, graph, view)
    data = encoded.apply(table, list(graph.nodes))
    for name in graph.nodes:
        if name == OUTCOME:
            data[name] = (data[name] == "1").astype(int)
        elif name in encoded.categories:
            data[name] = pd.Categorical(data[name], categories=encoded.categories[name]).codes.astype(float)
    return data


def choose_values(table: pd.DataFrame, treatment: str, control=None, treated=None) -> tuple:
    counts = table[treatment].value_counts()
    if len(counts) < 2:
        raise UserError(f"{treatment} never varies in this database (always {counts.index[0]})",
                        "its effect cannot be estimated from these data; run a sweep over it first")
    numeric = pd.api.types.is_numeric_dtype(table[treatment])
    def cast(value, flag: str):
        if not numeric:
            return str(value)
        try:
            return float(value)  # "abc" or "" was a ValueError traceback
        except (TypeError, ValueError):
            raise UserError(f"{flag} {value!r} is not a number, and {treatment} is numeric",
                            f"give {flag} one of the values {treatment} takes: {', '.join(map(str, counts.index[:8]))}"
                            ) from None

    control = cast(control, "--control") if control is not None else counts.index[0]
    treated = (cast(treated, "--treated") if treated is not None else counts.index[-1] if len(counts) > 1
               else counts.index[0])
    for value in (control, treated):
        if value not in set(counts.index):
            raise UserError(f"{treatment}={value} never occurs in the data", f"seen: {sorted(counts.index)[:10]}")
    return control, treated


def dowhy_effect(table: pd.DataFrame, view: GraphView, treatment: str, control, treated, *, seed: int = 0,
                 max_rows: int = 5000, simulations: int = 10) -> dict:
    import networkx as nx
    from dowhy import CausalModel

    # The graph projected onto the treatment, its parents (the backdoor set) and the outcome: the same
    # identification as on the full graph, without DoWhy enumerating adjustment sets over 25 nodes.
    graph = project_graph(view, [treatment, OUTCOME, *_measured_parents(view, table, treatment)])
    graph.remove_nodes_from([n for n in list(graph.nodes) if table[n].nunique(dropna=False) < 2 and n != treatment])
    # Compare exactly the two values: the treatment becomes a 0/1 indicator on the rows that have either,
    # so a knob with a U-shaped effect is not forced through a straight line over its whole range.
    subset = table[table[treatment].isin([control, treated])]
    if len(subset) > max_rows:
        subset = subset.sample(max_rows, random_state=seed)
    data = _numeric_frame(subset, graph, view)
    data[treatment] = (subset[treatment] == treated).astype(int).to_numpy()
    if treatment not in graph or not nx.has_path(graph, treatment, OUTCOME):
        raise UserError(f"the graph has no path from {treatment} to is_bad", "check models/serving.yaml")
    model = CausalModel(data=data, treatment=treatment, outcome=OUTCOME, graph=nx.DiGraph(graph.edges))
    identified = model.identify_effect(proceed_when_unidentifiable=True)
    estimate = model.estimate_effect(identified, method_name="backdoor.linear_regression",
                                     control_value=0, treatment_value=1)
    refutations = {}
    for label, (method, kwargs) in REFUTERS.items():
        result = model.refute_estimate(identified, estimate, method_name=method, num_simulations=simulations,
                                       random_seed=seed, **kwargs)
        p_value = (result.refutation_result or {}).get("p_value")
        refutations[label] = {"new_effect": float(np.ravel(result.new_effect)[0]),
                              "p_value": None if p_value is None else float(p_value)}
    backdoor = identified.get_backdoor_variables() or []
    return {"effect": float(estimate.value), "backdoor_set": sorted(backdoor), "refutations": refutations,
            "rows": int(len(data))}


def _measured_parents(view: GraphView, table: pd.DataFrame, treatment: str) -> list[str]:
    return [p for p in view.digraph.predecessors(treatment) if p in table.columns and table[p].nunique() > 1]


def _discretise(series: pd.Series, bins: int = 3) -> pd.Series:
    if not pd.api.types.is_numeric_dtype(series) or series.nunique() <= 6:
        return series.astype(str)
    return pd.qcut(series.rank(method="first"), bins, labels=False).astype(str)


def pgmpy_effect(table: pd.DataFrame, view: GraphView, treatment: str, control, treated) -> dict:
    """P(is_bad | do(treatment)) in a discrete BN on the treatment, its parents and is_bad."""
    import warnings

    with warnings.catch_warnings():   # pgmpy's own deprecation notices are not the user's business
        warnings.simplefilter("ignore")
        from pgmpy.inference import CausalInference
        from pgmpy.models import DiscreteBayesianNetwork
        from pgmpy.parameter_estimator import DiscreteBayesianEstimator

    parents = _measured_parents(view, table, treatment)
    keep = [treatment, OUTCOME, *parents]
    graph = project_graph(view, keep)
    frame = pd.DataFrame({n: _discretise(table[n]) if n != OUTCOME else table[n].astype(bool).astype(str)
                          for n in graph.nodes})
    network = DiscreteBayesianNetwork(list(graph.edges))
    network.add_nodes_from(graph.nodes)
    network = network.fit(frame, estimator=DiscreteBayesianEstimator(prior_type="BDeu", equivalent_sample_size=5))
    inference = CausalInference(network)
    probabilities = {}
    for value in (control, treated):
        state = str(value)
        result = inference.query([OUTCOME], do={treatment: state}, show_progress=False)
        states = result.state_names[OUTCOME]
        probabilities[state] = float(result.values[states.index("True")]) if "True" in states else 0.0
    p_control, p_treated = probabilities[str(control)], probabilities[str(treated)]
    return {"effect": p_treated - p_control, "p_bad_control": p_control, "p_bad_treated": p_treated,
            "adjustment_set": sorted(parents)}


def estimate_effect(table: pd.DataFrame, view: GraphView, treatment: str, *, control=None, treated=None,
                    seed: int = 0) -> dict:
    if treatment not in view.actionable or treatment not in table.columns:
        actionable = [n for n in view.actionable if n in table.columns]
        raise UserError(f"{treatment} is not an actionable knob measured in this database",
                        f"choose one of {', '.join(actionable)}")
    control, treated = choose_values(table, treatment, control, treated)
    raw = table[treatment]
    observed = {str(v): float(table.loc[raw == v, OUTCOME].mean()) for v in (control, treated)}
    return {"treatment": treatment, "control": control, "treated": treated, "observed_bad_rate": observed,
            "dowhy": dowhy_effect(table, view, treatment, control, treated, seed=seed),
            "pgmpy": pgmpy_effect(table, view, treatment, control, treated)}

"""The PetShop root-cause benchmark (Hardt et al., CLeaR 2024) converted to ``attribute``'s inputs, and scored.

PetShop ships, per traffic scenario, a caller -> callee adjacency matrix (``graph.csv``), normal metrics
(``noissue/metrics.csv``) and incidents (``train/issue_N/``) whose metrics files have three header rows
(node, metric, statistic). We reverse the call graph (a slow callee makes its caller slow), take one wide
table per (metric, statistic) with one column per service, and call :func:`rank_root_causes`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from causalsre.causal.rootcause import rank_root_causes
from causalsre.errors import UserError

SCENARIOS = ("low_traffic", "high_traffic")
METRICS = ("latency", "availability")
# Published with the dataset for its anomaly-traversal baseline: (top-1, top-3).
BASELINE = {
    ("low_traffic", "latency"): (0.571, 0.571), ("low_traffic", "availability"): (0.833, 1.000),
    ("high_traffic", "latency"): (0.571, 0.786), ("high_traffic", "availability"): (0.667, 1.000),
}
INTERVAL_S = 300  # one metrics row per 5 minutes
# Rows analysed for an incident: the interval holding the target timestamp and the two after it (an
# injected fault takes a few minutes to show in 5-minute averages).
WINDOW_BEFORE_S, WINDOW_AFTER_S = INTERVAL_S, 2 * INTERVAL_S
SPECIFICITY_STRIDE = 6


@dataclass(frozen=True, slots=True)
class Incident:
    name: str
    target: str
    metric: str
    statistic: str
    timestamp: float
    root_cause: str
    metrics: pd.DataFrame


def read_metrics(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, header=[0, 1, 2], index_col=0)


def wide(metrics: pd.DataFrame, metric: str, statistic: str) -> pd.DataFrame:
    """One column per node for one metric and statistic."""
    return metrics.xs((metric, statistic), axis=1, level=[1, 2])


def causal_graph(scenario_dir: Path) -> nx.DiGraph:
    adjacency = pd.read_csv(scenario_dir / "graph.csv", index_col=0)
    return nx.DiGraph([(callee, caller) for caller in adjacency.index for callee in adjacency.columns
                       if adjacency.loc[caller, callee]])


def incidents(scenario_dir: Path) -> list[Incident]:
    found = []
    for issue in sorted((scenario_dir / "train").glob("issue_*")):
        meta = json.loads((issue / "target.json").read_text())
        target = meta["target"]
        found.append(Incident(issue.name, target["node"], target["metric"], target["agg"],
                              float(target["timestamp"]), meta["root_cause"]["node"],
                              read_metrics(issue / "metrics.csv")))
    return found


def abnormal_rows(frame: pd.DataFrame, timestamp: float) -> pd.DataFrame:
    index = frame.index.to_numpy(float)
    return frame[(index > timestamp - WINDOW_BEFORE_S) & (index <= timestamp + WINDOW_AFTER_S)]


def evaluate(data_dir: str | Path, progress=None) -> dict:
    """Top-1/top-3 per (scenario, metric), specificity on normal data, seconds per incident."""
    data_dir = Path(data_dir)
    if not (data_dir / SCENARIOS[0] / "graph.csv").is_file():
        raise UserError(f"{data_dir} does not look like the PetShop dataset (no {SCENARIOS[0]}/graph.csv)",
                        "pass the folder holding low_traffic/ and high_traffic/")
    cells = []
    for scenario in SCENARIOS:
        scenario_dir = data_dir / scenario
        graph = causal_graph(scenario_dir)
        normal_metrics = read_metrics(scenario_dir / "noissue" / "metrics.csv")
        cases = incidents(scenario_dir)
        for metric in METRICS:
            hits1, hits3, seconds = [], [], []
            for case in (c for c in cases if c.metric == metric):
                normal = wide(normal_metrics, metric, case.statistic)
                abnormal = abnormal_rows(wide(case.metrics, metric, case.statistic), case.timestamp)
                started = time.perf_counter()
                ranked = [c.node for c in rank_root_causes(normal, abnormal, graph, case.target)]
                seconds.append(time.perf_counter() - started)
                hits1.append(case.root_cause in ranked[:1])
                hits3.append(case.root_cause in ranked[:3])
                if progress:
                    progress()
            specificity = _specificity(wide(normal_metrics, metric, "Average"), graph, "PetSite")
            base1, base3 = BASELINE[(scenario, metric)]
            cells.append({"scenario": scenario, "metric": metric, "n_incidents": len(hits1),
                          "top1": float(np.mean(hits1)), "top3": float(np.mean(hits3)),
                          "baseline_top1": base1, "baseline_top3": base3,
                          "specificity": specificity["specificity"], "n_normal_windows": specificity["n"],
                          "seconds_per_incident": float(np.mean(seconds))})
    return {"method": "robust z-scores + linear-SCM share + single-fault footprint (causalsre attribute)",
            "cells": cells}


def _specificity(normal: pd.DataFrame, graph: nx.DiGraph, target: str) -> dict:
    """Fit on the first half of the normal data; on windows of the second half the right answer is
    'nothing anomalous'. Returns the share of windows where no root cause was reported."""
    half = len(normal) // 2
    fit, held_out = normal.iloc[:half], normal.iloc[half:]
    rows = (WINDOW_BEFORE_S + WINDOW_AFTER_S) // INTERVAL_S  # the rows an incident window holds
    starts = range(0, len(held_out) - rows + 1, SPECIFICITY_STRIDE)
    quiet = [not rank_root_causes(fit, held_out.iloc[s:s + rows], graph, target) for s in starts]
    return {"specificity": float(np.mean(quiet)), "n": len(quiet)}


def export(data_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write each incident as normal.csv, abnormal.csv and edges.csv for ``causalsre attribute``."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    written = []
    for scenario in SCENARIOS:
        scenario_dir = data_dir / scenario
        edges = pd.DataFrame(list(causal_graph(scenario_dir).edges()), columns=["cause", "effect"])
        normal_metrics = read_metrics(scenario_dir / "noissue" / "metrics.csv")
        for case in incidents(scenario_dir):
            folder = out_dir / scenario / case.name
            folder.mkdir(parents=True, exist_ok=True)
            edges.to_csv(folder / "edges.csv", index=False)
            wide(normal_metrics, case.metric, case.statistic).to_csv(folder / "normal.csv", index=False)
            abnormal_rows(wide(case.metrics, case.metric, case.statistic), case.timestamp).to_csv(
                folder / "abnormal.csv", index=False)
            written.append(folder)
    return written

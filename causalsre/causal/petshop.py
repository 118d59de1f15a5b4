"""The PetShop root-cause benchmark (Hardt et al., CLeaR 2024) converted to ``attribute``'s inputs, and scored.

PetShop ships, per traffic scenario, a caller -> callee adjacency matrix (``graph.csv``), normal metrics
(``noissue/metrics.csv``) and incidents (``train/issue_N/``) whose metrics files have three header rows
(node, metric, statistic). We reverse the call graph (a slow callee makes its caller slow), take one wide
table per (metric, statistic) with one column per service, and call :func:`~causalsre.causal.rootcause.rank_root_causes`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pandas as pd

from causalsre.errors import UserError
from causalsre.safeio import write_with

SCENARIOS = ("low_traffic", "high_traffic")
METRICS = ("latency", "availability")
# Published with the dataset for its anomaly-traversal baseline: (top-1, top-3).
BASELINE = {
    ("low_traffic", "latency"): (0.571, 0.571), ("low_traffic", "availability"): (0.833, 1.000),
    ("high_traffic", "latency"): (0.571, 0.786), ("high_traffic", "availability"): (0.667, 1.000),
}
INTERVAL_S = 300  # one metrics row per 5 minutes
# Rows analysed for an incident: the interval holding the target timestamp and the three after it (an
# injected fault takes a few minutes to show in 5-minute averages; leave-one-out's choice, loo.Settings).
WINDOW_BEFORE_S, WINDOW_AFTER_S = INTERVAL_S, 3 * INTERVAL_S


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


def abnormal_rows(frame: pd.DataFrame, timestamp: float, after_s: float = WINDOW_AFTER_S) -> pd.DataFrame:
    """The rows in (timestamp - WINDOW_BEFORE_S, timestamp + after_s]."""
    index = frame.index.to_numpy(float)
    return frame[(index > timestamp - WINDOW_BEFORE_S) & (index <= timestamp + after_s)]


def check_dataset(data_dir: str | Path) -> Path:
    data_dir = Path(data_dir)
    if not (data_dir / SCENARIOS[0] / "graph.csv").is_file():
        raise UserError(f"{data_dir} does not look like the PetShop dataset (no {SCENARIOS[0]}/graph.csv)",
                        "pass the folder holding low_traffic/ and high_traffic/")
    return data_dir


def export(data_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write each incident as normal.csv, abnormal.csv and edges.csv for ``causalsre attribute``."""
    data_dir, out_dir = check_dataset(data_dir), Path(out_dir)
    written = []
    for scenario in SCENARIOS:
        scenario_dir = data_dir / scenario
        edges = pd.DataFrame(list(causal_graph(scenario_dir).edges()), columns=["cause", "effect"])
        normal_metrics = read_metrics(scenario_dir / "noissue" / "metrics.csv")
        for case in incidents(scenario_dir):
            folder = out_dir / scenario / case.name
            folder.mkdir(parents=True, exist_ok=True)
            normal = wide(normal_metrics, case.metric, case.statistic)
            abnormal = abnormal_rows(wide(case.metrics, case.metric, case.statistic), case.timestamp)
            for name, frame in (("edges.csv", edges), ("normal.csv", normal), ("abnormal.csv", abnormal)):
                write_with(folder / name, lambda scratch, frame=frame: frame.to_csv(scratch, index=False))
            written.append(folder)
    return written

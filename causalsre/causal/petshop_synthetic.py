"""Semi-synthetic PetShop incidents with known culprits at every service, not only PetSearch.

The 16 real train incidents all have one root cause (PetSearch), so they cannot tell whether ``attribute``
finds other culprits. This generator starts from real normal operation and injects a fault whose answer we
know, in the same layout as the train split (``SCENARIO/graph.csv``, ``SCENARIO/noissue/metrics.csv``,
``SCENARIO/train/issue_N/{metrics.csv,target.json}``), so :func:`causalsre.causal.petshop_eval.load_cases`
reads it unchanged. Ranges and assumptions are documented in docs/evaluation.md; in short:

- **Held out.** The first :data:`FIT_SHARE` of each traffic level's ``noissue`` rows become the synthetic
  ``noissue`` (what a method fits on); every incident perturbs a window of five consecutive later rows, so
  its noise is real and never seen in the fit.
- **Culprit.** Drawn uniformly among the target's causal ancestors (the services ``PetSite`` calls, directly
  or not) whose column has data in at least half the normal rows (availability: whose normal median is
  above the largest drop drawn, so a drop can show).
- **Fault.** Latency: the culprit's 5-minute average latency grows by ``f`` times its normal median, ``f``
  log-uniform in :data:`LATENCY_FACTOR` (the real PetSearch incidents: 1.6-6x). Availability: the culprit
  loses ``e`` percentage points, ``e`` uniform in :data:`ERROR_POINTS` (the real ones: 1-5 points).
- **Propagation**, along the call graph in causal order: a caller's change is the sum over its callees of
  the callee's change times ``n`` (calls to the callee per caller request: the callee's requests over the
  summed requests of all its callers, normal means) times a log-normal factor (sigma :data:`EDGE_SIGMA`)
  for the unknown share of requests that use the call. Latency adds up the call chain; an error in a call
  fails the caller's request (availability drops by ``min(n, 1)`` of the callee's drop times the factor).
  In the real incidents PetSite's change was 1.0-1.6x PetSearch's; ``n`` is 1.2 for that edge.
- **Onset.** Inside the second row; a row averages five minutes, so it carries the covered share of the fault.
- **Kept only if it shows.** The change must reach the target and the target must reach |robust z| >
  :data:`TARGET_MIN_Z` in an analysed row (a real incident is one the target noticed); otherwise the draw
  is repeated and counted (``redraws``).
- **Calls that do not carry a change.** A call whose normal data rule out the call-ratio effect
  (:func:`carries`: the caller does not move with the callee) carries nothing; in the real PetSearch
  incidents, too, ``petlistadoptions`` availability and ``PetSearch_client`` latency did not move.

What it does not model: the load balancers (``servi-*_remote``) that front a service also show its fault in
the real incidents, but the call graph lists them as siblings, not callers; other statistics (p50-p99) and
the request counts are copied unchanged (the loader reads ``Average`` only).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from causalsre.causal.petshop import INTERVAL_S, SCENARIOS, causal_graph, check_dataset, read_metrics, wide
from causalsre.causal.robust import robust_scale
from causalsre.errors import UserError
from causalsre.safeio import copy_file, write_text, write_with

TARGET = "PetSite"
FIT_SHARE = 0.6
ROWS = 5  # rows per incident file, as in the train split
LATENCY_FACTOR = (0.5, 5.0)
ERROR_POINTS = (1.0, 8.0)
EDGE_SIGMA = 0.25
TARGET_MIN_Z = 3.0
MAX_REDRAWS = 200
MAX_INCIDENTS = 500
KINDS = {"latency": "delay", "availability": "errors"}


@dataclass(frozen=True, slots=True)
class Injected:
    culprit: str
    metric: str
    magnitude: float       # latency: factor of the culprit's median; availability: points lost
    onset_share: float     # share of the first faulty row after the onset
    changes: dict          # node -> change added at full strength (raw units)


def call_ratios(graph: nx.DiGraph, requests: pd.Series) -> dict[tuple[str, str], float]:
    """(callee, caller) -> calls to the callee per caller request: the callee's requests over the summed
    requests of its callers (normal means), 1 where the counts say nothing."""
    ratios = {}
    for callee in graph:
        callers = list(graph.successors(callee))
        total = float(sum(requests.get(c, 0.0) for c in callers))
        own = float(requests.get(callee, 0.0))
        for caller in callers:
            ratios[(callee, caller)] = own / total if total > 0 and own > 0 else 1.0
    return ratios


def carries(callee: np.ndarray, caller: np.ndarray, ratio: float) -> bool:
    """Does the call carry a callee's change to its caller? Yes unless the normal data rule it out: the
    OLS slope of the caller on the callee, plus 1.96 standard errors, stays below half the call ratio
    (asynchronous calls, such as the Step Functions state machine PetSite starts, or a caller that retries).
    Too little variation in either column to tell: yes."""
    keep = ~(np.isnan(callee) | np.isnan(caller))
    x, y = callee[keep], caller[keep]
    if len(x) < 10 or np.std(x) == 0:
        return True
    x = x - x.mean()
    slope = float(x @ (y - y.mean()) / (x @ x))
    residual = (y - y.mean()) - slope * x
    se = float(np.sqrt(residual @ residual / max(len(x) - 2, 1) / (x @ x)))
    return slope + 1.96 * se >= ratio / 2


def edge_gains(graph: nx.DiGraph, normal: pd.DataFrame, ratios: dict, metric: str) -> dict[tuple[str, str], float]:
    """(callee, caller) -> how much of the callee's change reaches the caller: the call ratio (capped at 1
    for availability: a request fails at most once), or 0 for a call the normal data say does not carry it."""
    gains = {}
    for callee, caller in graph.edges():
        ratio = ratios.get((callee, caller), 1.0)
        ratio = min(ratio, 1.0) if metric == "availability" else ratio
        if callee in normal.columns and caller in normal.columns:
            sync = carries(normal[callee].to_numpy(float), normal[caller].to_numpy(float), ratio)
        else:
            sync = True
        gains[(callee, caller)] = ratio if sync else 0.0
    return gains


def propagate(graph: nx.DiGraph, culprit: str, change: float, gains: dict, rng: np.random.Generator,
              edge_sigma: float = EDGE_SIGMA) -> dict[str, float]:
    """node -> change: the culprit's own ``change``, carried to its callers (its descendants in the causal
    graph) in topological order: each caller adds ``gain * factor`` of each callee's change (:func:`edge_gains`;
    ``factor`` log-normal). A caller the change does not reach is left out."""
    changes = {culprit: float(change)}
    for node in nx.topological_sort(graph):
        if node == culprit or not any(p in changes for p in graph.predecessors(node)):
            continue
        total = 0.0
        for callee in graph.predecessors(node):
            if callee in changes:
                gain = gains.get((callee, node), 1.0)
                if gain > 0:
                    total += changes[callee] * gain * float(rng.lognormal(0.0, edge_sigma))
        if total != 0.0:
            changes[node] = total
    return changes


def eligible(graph: nx.DiGraph, normal: pd.DataFrame, metric: str, target: str = TARGET) -> list[str]:
    """The culprits a fault can be drawn at: the target's causal ancestors with data in >= half the rows
    (availability: a normal median above the largest drop, so that the drop can show)."""
    found = []
    for node in sorted(nx.ancestors(graph, target)):
        if node not in normal.columns or normal[node].notna().mean() < 0.5:
            continue
        if metric == "availability" and not normal[node].median() > ERROR_POINTS[1]:
            continue
        found.append(node)
    return found


def inject(frame: pd.DataFrame, changes: dict, onset_share: float, metric: str) -> pd.DataFrame:
    """The five rows with the fault: row 0 untouched, row 1 at ``onset_share``, rows 2-4 at full strength.
    The culprit's missing cells count as its normal median (it served traffic while failing); a caller with no
    traffic in a row stays missing. Availability is kept within [0, 100]."""
    out = frame.copy()
    strength = np.array([0.0, onset_share] + [1.0] * (len(frame) - 2))
    for node, change in changes.items():
        if node not in out.columns:
            continue
        values = out[node].to_numpy(float)
        out[node] = values + strength * change
        if metric == "availability":
            out[node] = out[node].clip(0.0, 100.0)
    return out


def draw_incident(graph, fit, held_out, metric: str, gains: dict, culprits: list[str],
                  rng: np.random.Generator, target: str = TARGET):
    """One incident that shows at the target: (Injected, rows of the held-out data, timestamp, redraws)."""
    normal_target = fit[target].to_numpy(float)
    location, scale = robust_scale(np.where(np.isnan(normal_target), np.nanmedian(normal_target), normal_target))
    for redraws in range(MAX_REDRAWS):
        culprit = culprits[int(rng.integers(len(culprits)))]
        if metric == "latency":
            magnitude = float(math.exp(rng.uniform(*np.log(LATENCY_FACTOR))))
            change = magnitude * float(np.nanmedian(fit[culprit]))
        else:
            magnitude = float(rng.uniform(*ERROR_POINTS))
            change = -magnitude
        changes = propagate(graph, culprit, change, gains, rng)
        start = int(rng.integers(len(held_out) - ROWS + 1))
        rows = held_out.iloc[start:start + ROWS].copy()
        rows[culprit] = rows[culprit].fillna(float(np.nanmedian(fit[culprit])))
        onset_share = float(rng.uniform(0.2, 1.0))
        faulty = inject(rows, changes, onset_share, metric)
        z = (faulty[target].to_numpy(float)[1:4] - location) / scale
        if target in changes and np.nanmax(np.abs(z)) > TARGET_MIN_Z:  # the fault, not noise, reached it
            timestamp = float(rows.index[1]) + (1 - onset_share) * INTERVAL_S
            return Injected(culprit, metric, magnitude, onset_share, changes), faulty, timestamp, redraws
    raise UserError(f"no fault drawn in {MAX_REDRAWS} tries showed at {target} ({metric})",
                    "check the normal data: the target's column may be constant")


def generate(data_dir: str | Path, out_dir: str | Path, count: int, seed: int) -> dict:
    """``count`` incidents per (traffic level, metric) into ``out_dir``, seeded; returns a summary."""
    data_dir, out_dir = check_dataset(data_dir), Path(out_dir)
    if not 1 <= count <= MAX_INCIDENTS:
        raise UserError(f"--synthetic {count} is out of range", f"draw 1 to {MAX_INCIDENTS} incidents per cell")
    rng = np.random.default_rng(seed)
    summary = {"seed": seed, "count_per_cell": count, "scenarios": {}}
    for scenario in SCENARIOS:
        src, dst = data_dir / scenario, out_dir / scenario
        graph = causal_graph(src)
        metrics = read_metrics(src / "noissue" / "metrics.csv")
        n_fit = int(len(metrics) * FIT_SHARE)
        (dst / "noissue").mkdir(parents=True, exist_ok=True)
        copy_file(src / "graph.csv", dst / "graph.csv")
        write_with(dst / "noissue" / "metrics.csv", metrics.iloc[:n_fit].to_csv)
        requests = wide(metrics.iloc[:n_fit], "requests", "Sum").mean()
        ratios = call_ratios(graph, requests)
        info = summary["scenarios"][scenario] = {"redraws": 0, "incidents": []}
        number = 0
        for metric in KINDS:
            normal = wide(metrics, metric, "Average")
            fit, held_out = normal.iloc[:n_fit], normal.iloc[n_fit:]
            culprits = eligible(graph, fit, metric)
            gains = edge_gains(graph, fit, ratios, metric)
            for _ in range(count):
                injected, faulty, timestamp, redraws = draw_incident(graph, fit, held_out, metric, gains, culprits, rng)
                info["redraws"] += redraws
                frame = metrics.loc[faulty.index].copy()
                for node in faulty.columns:
                    frame[(node, metric, "Average")] = faulty[node]
                folder = dst / "train" / f"issue_{number}"
                folder.mkdir(parents=True, exist_ok=True)
                write_with(folder / "metrics.csv", frame.to_csv)
                write_text(folder / "target.json", json.dumps({
                    "target": {"node": TARGET, "metric": metric, "agg": "Average", "timestamp": timestamp},
                    "root_cause": {"node": injected.culprit, "metric": metric},
                    "metadata": {"synthetic": {"seed": seed, "kind": KINDS[metric], "magnitude": injected.magnitude,
                                               "onset_share": injected.onset_share,
                                               "changed": sorted(injected.changes)}}}, indent=1))
                info["incidents"].append({"name": folder.name, "metric": metric, "culprit": injected.culprit,
                                          "magnitude": round(injected.magnitude, 4)})
                number += 1
    write_text(out_dir / "synthetic.json", json.dumps(summary, indent=1))
    return summary

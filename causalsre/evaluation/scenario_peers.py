"""Peer root-cause methods on the scenario suites (``eval scenarios --peers``), scored like the postmortem.

Each peer gets what the postmortem gets: the per-request analysis table of the baseline and the incident window
(the same columns, the same graph with its latent projection over unmeasured nodes, target ``is_bad``), through
:func:`causalsre.evaluation.peers.rank` (the same preprocessing as on PetShop). Two choices are made in the
peers' favour and stated in the output:

- a peer's ranking is read over candidate root causes only (knob, hardware and workload nodes, mapped to their
  factor): a peer that ranks a mediator such as ``queue_depth_at_arrival`` first is not charged for it;
- each window is a uniform sample of at most :data:`MAX_ROWS` requests (seeded), so that DoWhy's Shapley
  estimates take seconds per scenario.

No peer abstains, so every peer names a cause on a no-fault control: the false-alarm rate of a peer is 1 by
construction, and is reported as such rather than hidden. Categorical columns (tenant, batching mode) are not
numeric and no peer here ranks them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from causalsre.causal.graph import GraphSpec
from causalsre.errors import UserError
from causalsre.causal.table import build_analysis_table
from causalsre.evaluation import peers as peer_methods
from causalsre.evaluation.case_setup import case_windows, check_suite, suite_slo
from causalsre.evaluation.score import _read_truth, find_datasets, score_case, summarize
from causalsre.telemetry import connect_readonly

MAX_ROWS = 2000
CANDIDATE_ROLES = ("knob", "hardware", "workload")
DEFAULT_PEERS = ("gcm_attribute_anomalies", "gcm_distribution_change", "rcaeval_baro", "rcaeval_nsigma")
NOTES = [f"peer rankings read over candidate root causes only (roles {', '.join(CANDIDATE_ROLES)})",
         f"each window a seeded uniform sample of at most {MAX_ROWS} requests",
         "peers never abstain: a control always counts as a false alarm"]


def as_postmortem_result(ranked_nodes: list[str], graph: GraphSpec) -> dict:
    """A peer's node ranking in the shape :func:`score_case` reads: factors, then families, best first."""
    factors: list[str] = []
    for node in ranked_nodes:
        spec = graph.nodes.get(node)
        if spec is None or spec.role not in CANDIDATE_ROLES:
            continue
        factor = graph.factor_of(node)
        if factor not in factors:
            factors.append(factor)
    families: list[str] = []
    for factor in factors:
        family = graph.family_of(factor) if factor in graph.nodes else next(
            n.family for n in graph.nodes.values() if n.cause == factor)
        if family not in families:
            families.append(family)
    # A peer's rank stands in for a contribution; its "interval" is the point (a peer always names its first).
    rows = [{"factor": f, "role": "cause", "contribution": float(len(factors) - i),
             "ci_low": float(len(factors) - i), "ci_high": float(len(factors) - i)} for i, f in enumerate(factors)]
    return {"attributions": rows,
            "families": [{"family": f} for f in families]}


def _sample(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= MAX_ROWS:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), MAX_ROWS, replace=False))].reset_index(drop=True)


def _suite_rows(folder: Path, slo, graph: GraphSpec, names: list[str], seed: int, progress) -> dict[str, list]:
    truth = _read_truth(folder)
    database = next(iter(sorted(folder.glob("*.duckdb"))))
    rows: dict[str, list] = {name: [] for name in names}
    slo, _ = suite_slo(folder, slo)  # the same SLO and windows as the postmortem's (case_setup)
    con = connect_readonly(database)
    try:
        check_suite(con, folder, truth)
        for scenario, case in sorted(truth.items()):
            rng = np.random.default_rng(seed)
            tables = [build_analysis_table(con, slo, window=window, graph=graph)
                      for window in case_windows(con, folder, scenario, case)]
            base, inc = (_sample(t, rng) for t in tables)
            # Numeric columns only (peers take numbers); the projection keeps a dropped column's paths.
            numeric = [n for n in graph.nodes if n in base.columns and pd.api.types.is_numeric_dtype(base[n])
                       and pd.api.types.is_numeric_dtype(inc[n])]
            present = graph.restricted_to(numeric)
            columns = [c for c in present.nodes if c in base.columns]
            for name in names:
                started = time.perf_counter()
                failure = None
                try:
                    ranked = peer_methods.rank(name, base[columns].astype(float), inc[columns].astype(float),
                                               present.to_networkx(),
                                               graph.target, seed=seed)
                except Exception as error:  # noqa: BLE001  (a peer's failure is a miss, reported with its reason)
                    ranked, failure = [], f"{type(error).__name__}: {str(error)[:200]}"
                row = score_case(scenario, case, as_postmortem_result(ranked, present))
                row.update(dataset=folder.name, seconds=round(time.perf_counter() - started, 2))
                if failure:
                    row["failure"] = failure
                rows[name].append(row)
            if progress:
                progress()
    finally:
        con.close()
    return rows


def score_peers(data_dir: str | Path, slo, graph: GraphSpec, names=DEFAULT_PEERS, *, seed: int = 0,
                progress=None) -> dict:
    """Each peer's top-1 / top-3 / family top-1 / false alarms on every suite under ``data_dir``."""
    names = list(names)
    why_missing = peer_methods.missing(names)
    runnable = [n for n in names if n not in why_missing]
    rows: dict[str, list] = {name: [] for name in runnable}
    for folder in find_datasets(data_dir):
        for name, found in _suite_rows(folder, slo, graph, runnable, seed, progress).items():
            rows[name] += found
    return {"notes": NOTES, "settings": {n: peer_methods.SETTINGS[n] for n in runnable if n in peer_methods.SETTINGS},
            "missing": why_missing, "results": {name: summarize(found) for name, found in rows.items()}}


def peer_names(text: str) -> list[str]:
    """``--peers`` as a list: comma-separated names or ``all``; an unknown name is a one-line error."""
    if text.strip() == "all":
        return [n for n in peer_methods.PEERS if n != "rcaeval_e_diagnosis"]
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in peer_methods.PEERS]
    if unknown or not names:
        raise UserError(f"--peers {text!r}: unknown peer {', '.join(unknown) or '(none given)'}",
                        f"choose from {', '.join(peer_methods.PEERS)}, or 'all'")
    return names


def summary_lines(peers: dict) -> list[str]:
    """One line per peer (and per peer that cannot run, with why), beside the postmortem's own line."""
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"peer {name:<24} factor top-1 {fmt(s['top1'])}  all-true-in-top-3 {fmt(s['top3'])}  family top-1 "
             f"{fmt(s['family_top1'])}  false alarms {fmt(s['false_alarm_rate'])}  {s['seconds']:.0f} s"
             for name, s in peers["results"].items()]
    lines += [f"peer {name:<24} not run: {why}" for name, why in peers["missing"].items()]
    return lines + [f"  ({note})" for note in peers["notes"]]

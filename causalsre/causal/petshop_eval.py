"""``eval petshop``: leave-one-out accuracy of ``attribute`` on the PetShop train incidents, specificity on
the normal data, and (optionally) peer methods on the same incidents with the same scoring.

Every setting of ``attribute`` is chosen by leave-one-out over all 16 incidents (:mod:`causalsre.causal.loo`):
for each held-out incident the grid's winner on the other 15 scores it. Each incident's normal-data fit
(:class:`~causalsre.causal.rootcause.RootCauseModel`) is shared by every setting of the grid, so the
162 x 16 rankings take seconds.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from causalsre.causal import loo
from causalsre.causal.petshop import (
    BASELINE, INTERVAL_S, METRICS, SCENARIOS, WINDOW_BEFORE_S, Incident, abnormal_rows, causal_graph, check_dataset,
    incidents, read_metrics, wide,
)
from causalsre.causal.rootcause import RootCauseModel, rank_root_causes

DEV_SEED = 1  # the development seed of the synthetic incidents (docs/evaluation.md: the fresh one is other)
SPECIFICITY_STRIDE = 6  # every 6th start in the held-out half of the normal data: 49 windows per cell
METHOD = ("robust z-scores + unexplained-by-callees gate + anomalous path to the target + linear-SCM share + "
          "single-fault footprint (causalsre attribute)")


@dataclass(frozen=True, slots=True)
class Case:
    scenario: str
    incident: Incident
    normal: pd.DataFrame  # the scenario's normal data, one column per node, for this incident's metric
    frame: pd.DataFrame   # the incident's rows, same columns
    graph: nx.DiGraph

    @property
    def cell(self) -> tuple[str, str]:
        return self.scenario, self.incident.metric

    def abnormal(self, after_s: float) -> pd.DataFrame:
        return abnormal_rows(self.frame, self.incident.timestamp, after_s)


def load_cases(data_dir: str | Path) -> tuple[list[Case], dict[str, pd.DataFrame], dict[str, nx.DiGraph]]:
    data_dir = check_dataset(data_dir)
    cases, normals, graphs = [], {}, {}
    for scenario in SCENARIOS:
        graphs[scenario] = graph = causal_graph(data_dir / scenario)
        normals[scenario] = metrics = read_metrics(data_dir / scenario / "noissue" / "metrics.csv")
        for incident in incidents(data_dir / scenario):
            if incident.metric in METRICS:
                cases.append(Case(scenario, incident, wide(metrics, incident.metric, incident.statistic),
                                  wide(incident.metrics, incident.metric, incident.statistic), graph))
    return cases, normals, graphs


def hits(cases: list[Case], settings: list[loo.Settings], progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(settings, cases) booleans: the true root cause in the top 1 / the top 3."""
    hits1, hits3 = np.zeros((len(settings), len(cases)), bool), np.zeros((len(settings), len(cases)), bool)
    windows = sorted({s.window_after_s for s in settings})
    for j, case in enumerate(cases):
        target, truth = case.incident.target, case.incident.root_cause
        model = RootCauseModel.fit(case.normal, case.graph, target, case.frame.columns)
        prepared = {w: model.window(case.abnormal(w)) for w in windows}
        for i, s in enumerate(settings):
            ranked = [c.node for c in model.rank_window(prepared[s.window_after_s], **s.rank_options())]
            hits1[i, j], hits3[i, j] = truth in ranked[:1], truth in ranked[:3]
        if progress:
            progress()
    return hits1, hits3


def specificity(normal: pd.DataFrame, graph: nx.DiGraph, target: str, settings: loo.Settings) -> dict:
    """Fit on the first half of the normal data; on windows of the second half (as many rows as an incident
    window holds) the right answer is 'nothing anomalous'. The share of windows with no root cause."""
    half = len(normal) // 2
    fit, held_out = normal.iloc[:half], normal.iloc[half:]
    rows = int((WINDOW_BEFORE_S + settings.window_after_s) // INTERVAL_S)
    model = RootCauseModel.fit(fit, graph, target, held_out.columns)
    starts = range(0, len(held_out) - rows + 1, SPECIFICITY_STRIDE)
    quiet = [not model.rank(held_out.iloc[s:s + rows], **settings.rank_options()) for s in starts]
    return {"specificity": float(np.mean(quiet)), "n": len(quiet)}


def specificity_table(normals: dict, graphs: dict, settings: list[loo.Settings]) -> dict:
    """(scenario, metric) -> array over ``settings`` of :func:`specificity`, one fit and one prepared
    window per start shared by the whole grid; plus the number of windows per cell."""
    table, counts = {}, {}
    for scenario in SCENARIOS:
        for metric in METRICS:
            normal = wide(normals[scenario], metric, "Average")
            half = len(normal) // 2
            fit, held_out = normal.iloc[:half], normal.iloc[half:]
            model = RootCauseModel.fit(fit, graphs[scenario], "PetSite", held_out.columns)
            quiet = np.zeros(len(settings))
            for reach in sorted({s.window_after_s for s in settings}):
                rows = int((WINDOW_BEFORE_S + reach) // INTERVAL_S)
                starts = range(0, len(held_out) - rows + 1, SPECIFICITY_STRIDE)
                windows = [model.window(held_out.iloc[start:start + rows]) for start in starts]
                for i, s in enumerate(settings):
                    if s.window_after_s == reach:
                        quiet[i] = np.mean([not model.rank_window(w, **s.rank_options()) for w in windows])
                counts[(scenario, metric, reach)] = len(windows)
            table[(scenario, metric)] = quiet
    return {"by_cell": table, "n": counts}


def evaluate(data_dir: str | Path, progress=None, peers=None, synthetic: int = 0, seed: int = DEV_SEED,
             synthetic_dir: str | Path | None = None, peer_cap_s: float = 120.0) -> dict:
    """Leave-one-out top-1/top-3 per (source, scenario, metric), specificity, seconds per incident;
    ``synthetic`` > 0 adds that many generated incidents per cell (:mod:`causalsre.causal.petshop_synthetic`,
    seeded by ``seed``) to the pool the settings are chosen on, and scores the shipped defaults (the frozen
    method) on them; ``peers``: a list of peer names (:mod:`causalsre.evaluation.peers`) run on the same
    incidents (each capped at ``peer_cap_s`` seconds per incident: a timeout is a miss), or None."""
    cases, normals, graphs = load_cases(data_dir)
    sources = ["real"] * len(cases)
    generated = None
    if synthetic:
        from causalsre.causal.petshop_synthetic import generate

        folder = Path(synthetic_dir) if synthetic_dir else Path(tempfile.mkdtemp(prefix="petshop-synthetic-"))
        generated = generate(data_dir, folder, synthetic, seed)
        generated["folder"] = str(folder)
        more = load_cases(folder)[0]
        cases, sources = cases + more, sources + ["synthetic"] * len(more)
    settings = loo.grid()
    hits1, hits3 = hits(cases, settings, progress)
    # Specificity on the real normal data (no incident in it) is the second objective, after top-1 hits:
    # a setting that names as many culprits but cries wolf less often wins.
    quiet = specificity_table(normals, graphs, settings)
    mean_quiet = np.mean(list(quiet["by_cell"].values()), axis=0)
    folds = loo.leave_one_out(settings, hits1, hits3, secondary=mean_quiet)
    full = settings[loo.choose(settings, hits1, hits3, secondary=mean_quiet)]
    frozen = settings.index(loo.DEFAULTS)

    def spec(scenario, metric, s):
        return {"specificity": float(quiet["by_cell"][(scenario, metric)][settings.index(s)]),
                "n": quiet["n"][(scenario, metric, s.window_after_s)]}

    cells = []
    for source in ("real", "synthetic"):
        for scenario in SCENARIOS:
            for metric in METRICS:
                members = [j for j, c in enumerate(cases) if c.cell == (scenario, metric) and sources[j] == source]
                if members:
                    cells.append(_cell(source, scenario, metric, members, cases, folds, settings, hits1, hits3,
                                       full, frozen, spec if source == "real" else None))
    train_top1 = hits1.sum(axis=1)
    result = {"method": METHOD, "n_incidents": len(cases), "n_real": sources.count("real"),
              "n_synthetic": sources.count("synthetic"), "synthetic": generated,
              "grid": {"axes": {k: list(v) for k, v in loo.GRID_AXES.items()}, "n_settings": len(settings)},
              "objective": "top-1 hits on the other incidents, then mean specificity on the real normal data, "
                           "then top-3 hits; ties: the defaults, then the fewest fields changed from them, then "
                           "grid order",
              "defaults": loo.DEFAULTS.as_dict(), "full_train_choice": full.as_dict(),
              "defaults_are_full_train_choice": full == loo.DEFAULTS,
              "settings_by_train_top1": {int(k): int((train_top1 == k).sum()) for k in np.unique(train_top1)},
              "cells": cells}
    if peers is not None:
        from causalsre.evaluation.peers import run_peers

        result["peers"] = run_peers(peers, cases, loo.DEFAULTS.window_after_s, sources=sources, cap_s=peer_cap_s)
    return result


def _cell(source, scenario, metric, members, cases, folds, settings, hits1, hits3, full, frozen, spec) -> dict:
    cell_folds = [folds[j] for j in members]
    seconds, failures = [], []
    for f in cell_folds:  # one end-to-end call per incident (fit + rank) with the fold's settings
        case, s = cases[f.held_out], settings[f.chosen]
        started = time.perf_counter()
        rank_root_causes(case.normal, case.abnormal(s.window_after_s), case.graph, case.incident.target,
                         **s.rank_options())
        seconds.append(time.perf_counter() - started)
        if not hits1[frozen, f.held_out]:  # what the frozen method (the shipped defaults) got wrong, and how
            ranked = rank_root_causes(case.normal, case.abnormal(loo.DEFAULTS.window_after_s), case.graph,
                                      case.incident.target, **loo.DEFAULTS.rank_options())
            failures.append({"incident": case.incident.name, "truth": case.incident.root_cause,
                             "ranked": [c.node for c in ranked[:3]]})
    base1, base3 = BASELINE[(scenario, metric)]
    cell = {"source": source, "scenario": scenario, "metric": metric, "n_incidents": len(members),
            "top1": float(np.mean([f.hit1 for f in cell_folds])), "top3": float(np.mean([f.hit3 for f in cell_folds])),
            "frozen_top1": float(hits1[frozen, members].mean()), "frozen_top3": float(hits3[frozen, members].mean()),
            "train_top1": float(hits1[settings.index(full), members].mean()),
            "train_top3": float(hits3[settings.index(full), members].mean()),
            "baseline_top1": base1, "baseline_top3": base3, "specificity": None, "specificity_full_train": None,
            "n_normal_windows": None, "seconds_per_incident": float(np.mean(seconds)), "frozen_failures": failures,
            "folds": [{"incident": cases[f.held_out].incident.name, "settings": settings[f.chosen].as_dict(),
                       "hit1": f.hit1, "hit3": f.hit3} for f in cell_folds]}
    if spec is not None:
        cell["specificity"] = float(np.mean([spec(scenario, metric, settings[f.chosen])["specificity"]
                                             for f in cell_folds]))
        cell["specificity_full_train"] = spec(scenario, metric, full)["specificity"]
        cell["n_normal_windows"] = spec(scenario, metric, full)["n"]
    return cell


def summary_lines(result: dict) -> list[str]:
    """The text report of :func:`evaluate`."""
    full = result["full_train_choice"]
    lines = [f"method: {result['method']}",
             f"leave-one-out over {result['n_incidents']} incidents, {result['grid']['n_settings']} settings; "
             f"full train set picks {_settings(full)}"
             + (" (the shipped defaults)" if result["defaults_are_full_train_choice"] else " (NOT the defaults)"),
             f"{'source':<9} {'scenario':<13} {'metric':<13} {'n':>3} {'LOO1':>6} {'LOO3':>6} {'froz1':>6} "
             f"{'froz3':>6} {'base1':>6} {'base3':>6} {'specif.':>7} {'s/inc':>6}  picks"]
    for c in result["cells"]:
        picks = sorted({_settings(f["settings"]) for f in c["folds"]})
        specif = "-" if c["specificity"] is None else f"{c['specificity']:.3f}"
        lines.append(f"{c['source']:<9} {c['scenario']:<13} {c['metric']:<13} {c['n_incidents']:>3} {c['top1']:>6.3f} "
                     f"{c['top3']:>6.3f} {c['frozen_top1']:>6.3f} {c['frozen_top3']:>6.3f} {c['baseline_top1']:>6.3f} "
                     f"{c['baseline_top3']:>6.3f} {specif:>7} {c['seconds_per_incident']:>6.2f}  {'; '.join(picks)}")
        for miss in c["frozen_failures"]:
            lines.append(f"  miss {miss['incident']}: truth {miss['truth']}, ranked {', '.join(miss['ranked']) or '(none)'}")
    peers = result.get("peers")
    if peers:
        for name, cells in peers["results"].items():
            row = "  ".join(f"{cell} {v['top1']:.2f}/{v['top3']:.2f} {v['seconds_per_incident']:.1f}s"
                            + (f" ({len(v['failures'])} failed)" if v["failures"] else "")
                            + (f" ({len(v.get('timeouts', []))} timed out)" if v.get("timeouts") else "")
                            for cell, v in cells.items())
            lines.append(f"peer {name}: {row}")
        for name, why in peers["missing"].items():
            lines.append(f"peer {name}: not run: {why}")
    return lines


def _settings(s: dict) -> str:
    return (f"|z|>{s['threshold']:g} target>{s['target_threshold']:g} share>{s['min_share']:g} "
            f"footprint={'on' if s['footprint'] else 'off'} window+{s['window_after_s']}s "
            f"unexplained>{s['unexplained']:g} reach={'on' if s['reach'] else 'off'} "
            f"beyond-normal={'on' if s['beyond_normal'] else 'off'}")

"""Peer root-cause methods on ``attribute``'s inputs (normal rows, abnormal rows, a causal graph, a target),
with the same preprocessing and scoring, for ``eval petshop --peers``.

Peers: DoWhy gcm ``attribute_anomalies`` and ``distribution_change`` (dowhy is a core dependency), and
BARO, N-Sigma and CIRCA from the RCAEval package (PyPI ``rcaeval``, the optional extra ``peers``; it
declares no dependencies and uses ones we have). Two RCAEval methods cannot run and are reported as missing
with the reason: epsilon-Diagnosis imports PyRCA (``sfr-pyrca`` needs scikit-learn < 1.2 and javabridge, a
JDK build), and RCD needs its authors' patched causal-learn, not the stock one dowhy installs.

Same inputs for every peer: the columns and graph ``attribute`` keeps (:class:`RootCauseModel`: numeric in
the normal data, graph projected over empty columns), missing cells filled with the normal median. RCAEval's
methods rank "up is worse", so an availability target's columns are negated for them (an outage lowers
availability). Budgets are fixed and reported (:data:`SETTINGS`) so that an incident takes seconds, and
every peer runs on every incident under a time cap (:data:`CAP_S`, in a forked child that is killed when
the cap passes): a timeout is a miss, counted and listed, so a slow peer cannot drop the hard incidents.
Other RCAEval methods need packages we do not install (scikit-network: the PageRank variants; pingouin:
MicroCause, EasyRCA, CausalRCA) and are not offered.
"""

from __future__ import annotations

import importlib
import multiprocessing
import time
import warnings

import networkx as nx
import numpy as np
import pandas as pd

from causalsre.causal.rootcause import RootCauseModel
from causalsre.evaluation.peer_inputs import full_rank, least_squares

GCM_SAMPLES = 100  # num_distribution_samples of attribute_anomalies (distribution_change draws twice as many)
GCM_PERMUTATIONS = 3  # Shapley permutations: each costs one gcm evaluation per node of the target's ancestry
SETTINGS = {
    "gcm_attribute_anomalies": "linear additive-noise mechanisms (least squares), empirical roots, target's "
                               "ancestors only, fitted once per incident; num_distribution_samples=100, "
                               "Shapley by 3 permutations, n_jobs=1; the abnormal row farthest from the "
                               "target's normal median",
    "gcm_distribution_change": "same mechanisms; num_samples=200, Shapley by 3 permutations, n_jobs=1, default "
                               "mechanism-change test (kernel, alpha 0.05, BH)",
    "rcaeval_baro": "RCAEval baro (robust z of each column, max over the abnormal rows)",
    "rcaeval_nsigma": "RCAEval nsigma (z of each column)",
    "rcaeval_rcd": "RCAEval rcd (gamma=5, bins=5, localized, seed 0)",
    "rcaeval_circa": "RCAEval circa (PC graph, regression-based hypothesis testing); columns that are linear "
                     "combinations of earlier ones left out of the PC step, ranked behind their closest twin",
    "rcaeval_pc_randomwalk": "RCAEval pc_randomwalk (PC graph, random walk from the target, n_iter = columns); "
                             "full-rank columns as for circa",
    "rcaeval_e_diagnosis": "RCAEval e_diagnosis (needs PyRCA)",
}
PEERS = tuple(SETTINGS)
# Seconds per peer and incident (the CLI's --peer-cap-s default): gcm took 11-60 s per real incident at this
# machine's load of 8-18 with the budgets above (docs/evaluation.md); 30 s timed it out on every one.
CAP_S = 120.0
_RCAEVAL = {"rcaeval_baro": ("RCAEval.e2e.baro", "baro"), "rcaeval_nsigma": ("RCAEval.e2e", "nsigma"),
            "rcaeval_rcd": ("RCAEval.e2e.rcd", "rcd"), "rcaeval_circa": ("RCAEval.e2e.circa", "circa"),
            "rcaeval_pc_randomwalk": ("RCAEval.e2e.pc_randomwalk", "pc_randomwalk"),
            "rcaeval_e_diagnosis": ("pyrca.analyzers.epsilon_diagnosis", None)}


def missing(names=PEERS) -> dict[str, str]:
    """name -> why it cannot run here, for the peers that cannot."""
    why = {}
    for name in names:
        if name not in SETTINGS:
            why[name] = f"unknown peer (known: {', '.join(PEERS)})"
        elif name in _RCAEVAL:
            module = _RCAEVAL[name][0]
            try:
                importlib.import_module(module)
            except Exception as error:  # noqa: BLE001  (any import failure means "not installed here")
                why[name] = (f"{module} does not import ({type(error).__name__}: {error}); "
                             + ("PyPI sfr-pyrca needs scikit-learn<1.2 and javabridge" if "pyrca" in module
                                else "pip install 'causalsre[peers]'"))
        if name == "rcaeval_rcd" and name not in why:
            from causallearn.utils.PCUtils import SkeletonDiscovery

            if not hasattr(SkeletonDiscovery, "local_skeleton_discovery"):
                why[name] = ("RCD needs its authors' patched causal-learn (SkeletonDiscovery."
                             "local_skeleton_discovery); the installed causal-learn is the stock one dowhy uses")
    return why


def inputs(normal: pd.DataFrame, abnormal: pd.DataFrame, graph: nx.DiGraph, target: str):
    """(normal, abnormal, graph) as every peer gets them: ``attribute``'s columns and graph, no NaN."""
    model = RootCauseModel.fit(normal, graph, target, abnormal.columns)
    fill = dict(zip(model.numeric, model.fill))
    clean = [frame[model.numeric].astype(float).fillna(fill) for frame in (normal, abnormal)]
    return clean[0], clean[1], model.graph


def rank(name: str, normal: pd.DataFrame, abnormal: pd.DataFrame, graph: nx.DiGraph, target: str,
         up_is_worse: bool = True, seed: int = 0) -> list[str]:
    """The peer's ranking of root-cause nodes, best first."""
    normal, abnormal, graph = inputs(normal, abnormal, graph, target)
    if name.startswith("gcm_"):
        return _gcm(name, normal, abnormal, graph, target, seed)
    return _rcaeval(name, normal, abnormal, up_is_worse, seed)


def _gcm(name, normal, abnormal, graph, target, seed) -> list[str]:
    from dowhy import gcm
    from dowhy.gcm.shapley import ShapleyApproximationMethods, ShapleyConfig

    gcm.util.general.set_random_seed(seed)
    gcm.config.disable_progress_bars()
    keep = nx.ancestors(graph, target) | {target}
    sub = nx.DiGraph(graph.subgraph(keep))
    columns = [c for c in normal.columns if c in keep]
    scm = gcm.InvertibleStructuralCausalModel(sub)
    for node in sub.nodes:
        scm.set_causal_mechanism(node, gcm.EmpiricalDistribution() if sub.in_degree(node) == 0 else
                                 gcm.AdditiveNoiseModel(least_squares()))
    # n_jobs=1: with DoWhy's default (-1) joblib starts worker processes for every Shapley evaluation; on
    # this machine waiting for them was 27 of 28 s per incident, the arithmetic under 1 s.
    shapley = ShapleyConfig(approximation_method=ShapleyApproximationMethods.PERMUTATION,
                            num_permutations=GCM_PERMUTATIONS, n_jobs=1)
    jobs = gcm.config.default_n_jobs
    gcm.config.set_default_n_jobs(1)  # the kernel mechanism-change tests of distribution_change, as above
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gcm.fit(scm, normal[columns])
            if name == "gcm_attribute_anomalies":
                peak = int(np.argmax(np.abs(abnormal[target].to_numpy() - normal[target].median())))
                found = gcm.attribute_anomalies(scm, target, anomaly_samples=abnormal[columns].iloc[[peak]],
                                                num_distribution_samples=GCM_SAMPLES, shapley_config=shapley)
                score = {node: float(np.mean(values)) for node, values in found.items()}
            else:
                score = gcm.distribution_change(scm, normal[columns], abnormal[columns], target,
                                                num_samples=2 * GCM_SAMPLES, shapley_config=shapley)
                score = {node: abs(float(v)) for node, v in score.items()}
    finally:
        gcm.config.set_default_n_jobs(jobs)
    return [node for node, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))]


def _rcaeval(name, normal, abnormal, up_is_worse, seed) -> list[str]:
    module, function = _RCAEVAL[name]
    if function is None:
        raise RuntimeError(missing([name]).get(name, "epsilon-Diagnosis needs PyRCA"))
    method = _unwrapped(getattr(importlib.import_module(module), function))
    sign = 1.0 if up_is_worse else -1.0
    data = pd.concat([normal, abnormal], ignore_index=True) * sign
    # RCAEval reads a column name as service_metric (CIRCA splits it on "_"): neutral names, mapped back.
    names = {f"c{i}_value": column for i, column in enumerate(data.columns)}
    data.columns = list(names)
    data.insert(0, "time", np.arange(len(data), dtype=float))
    # Any non-None dataset name makes RCAEval drop the time column and constant columns; "petshop" is not
    # one of its special-cased names.
    kwargs = {"seed": seed} if name == "rcaeval_rcd" else {}
    twins = {}
    if name in _PC_BASED:  # their PC step's Fisher-z test needs a correlation matrix of full rank
        kept, twins = full_rank(data.drop(columns="time"))
        data = data[["time", *kept]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = method(data, inject_time=float(len(normal)), dataset="petshop", **kwargs)
    ranked = [f"{node}_value" if f"{node}_value" in names else str(node) for node in out["ranks"]]
    for column in list(ranked):  # a column left out as a copy of a kept one ties with it: right behind it
        at = ranked.index(column) + 1
        ranked[at:at] = twins.get(column, [])
    return [names.get(column, column) for column in ranked]


_PC_BASED = ("rcaeval_circa", "rcaeval_pc_randomwalk")


def _unwrapped(method):
    """RCAEval's ``@rca`` wrapper turns any failure into the unranked column order; a failure must count as
    a failure here, so call the function it wraps."""
    if method.__name__ == "wrapper" and method.__closure__:
        inner = [c.cell_contents for c in method.__closure__ if callable(c.cell_contents)]
        if inner:
            return inner[0]
    return method


def _child(pipe, args) -> None:
    try:
        pipe.send(("ok", rank(*args)))
    except BaseException as error:  # noqa: BLE001  (reported to the parent as this peer's failure)
        pipe.send(("error", f"{type(error).__name__}: {str(error)[:200]}"))
    finally:
        pipe.close()


def _preload(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name.startswith("gcm_"):
            importlib.import_module("dowhy.gcm")
        elif _RCAEVAL.get(name, (None, None))[1] is not None:
            importlib.import_module(_RCAEVAL[name][0])


def rank_capped(cap_s: float, *args) -> tuple[list[str], str | None]:
    """:func:`rank` in a forked child, killed after ``cap_s`` seconds: (ranking, None), or ([], reason).
    Forked, so the child shares the parent's imports and fit (no start-up cost) and a hung peer leaves
    nothing behind."""
    _preload(args[0])  # imported once here, not in every child (RCAEval's import alone takes seconds)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, args), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(cap_s):
            return [], f"timeout after {cap_s:g} s"
        status, value = receiver.recv()
    except EOFError:  # the child died without a word (killed for memory, a crash in native code)
        return [], f"the peer's process exited with code {child.exitcode}"
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    return (value, None) if status == "ok" else ([], value)


def run_peers(names, cases, window_after_s: float, progress=None, sources=None, cap_s: float = CAP_S) -> dict:
    """Each peer on each PetShop case (``causalsre.causal.petshop_eval.Case``): top-1/top-3 per cell,
    seconds per incident, failures with their reason (a run past ``cap_s`` seconds is a timeout, a miss);
    peers that cannot run are listed with why.
    ``sources`` (one per case, "real" or "synthetic"): synthetic cells are keyed ``synthetic/SCENARIO/METRIC``."""
    sources = ["real"] * len(cases) if sources is None else sources
    names = list(PEERS if names in (None, "all") else names)
    why_missing = missing(names)
    result = {"settings": {n: SETTINGS.get(n, "") for n in names}, "missing": why_missing, "results": {},
              "cap_s": cap_s}
    for name in (n for n in names if n not in why_missing):
        _preload(name)  # outside the timing: an import is not the peer's work on an incident
        cells: dict = {}
        for case, source in zip(cases, sources):
            prefix = "" if source == "real" else f"{source}/"
            cell = cells.setdefault(f"{prefix}{case.scenario}/{case.incident.metric}",
                                    {"hit1": [], "hit3": [], "seconds": [], "failures": [], "timeouts": []})
            started = time.perf_counter()
            ranked, why = rank_capped(cap_s, name, case.normal, case.abnormal(window_after_s), case.graph,
                                      case.incident.target, case.incident.metric != "availability")
            if why is not None:  # a peer's failure or timeout is a miss, reported with its reason
                cell["timeouts" if why.startswith("timeout") else "failures"].append(f"{case.incident.name}: {why}")
            cell["seconds"].append(time.perf_counter() - started)
            cell["hit1"].append(case.incident.root_cause in ranked[:1])
            cell["hit3"].append(case.incident.root_cause in ranked[:3])
            if progress:
                progress()
        result["results"][name] = {
            key: {"top1": float(np.mean(c["hit1"])), "top3": float(np.mean(c["hit3"])), "n": len(c["hit1"]),
                  "seconds_per_incident": float(np.mean(c["seconds"])), "failures": c["failures"],
                  "timeouts": c["timeouts"]}
            for key, c in cells.items()}
    return result

"""The notebook API's verbs: the same library calls the CLI commands make, returning result objects.

Each verb takes what its command takes, as Python values (paths or an open connection, dicts instead of
``KNOB=VALUE`` strings, DataFrames instead of CSV files), checks them at the entry point (a
:class:`~causalsre.errors.UserError` says how to fix a bad one) and wraps the command's JSON-ready result.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from causalsre.api import checks
from causalsre.api.results import Attribution, Postmortem, SloReport, WhatIf
from causalsre.errors import UserError

# In Jupyter, DoWhy's `tqdm.auto` import warns (TqdmWarning, with a link) that ipywidgets is missing: a banner
# in the notebook's output about a progress bar we never show. Only that message is ignored.
warnings.filterwarnings("ignore", message="IProgress not found")


def connect(path: str | Path):
    """Open a telemetry database read-only (a DuckDB connection; the schema version is checked)."""
    from causalsre.telemetry import connect_readonly

    return connect_readonly(_path(path, "database"))


def slo_report(db, spec: str | Path | None = None, *, at: str | None = None, where: Mapping[str, Any] | None = None,
               group_by: Iterable[str] = (), alert_windows: str | Path | None = None, min_events: int = 1,
               resolution: str | None = None, run: str | None = None, timeline: bool = True) -> SloReport:
    """Error budget, burn rate and alerts of each SLO in ``spec`` (default: the shipped llm-serving spec).

    ``where`` filters requests ({"tenant": "acme"}); ``run`` keeps one run's requests; ``group_by`` reports per
    run, tenant, priority, model or phase too; ``timeline=False`` skips the burn-rate timeline that ``.plot()``
    draws (one pass less). Same as ``causalsre slo report --json``."""
    from causalsre.slo import load_slos
    from causalsre.slo.report import build_report
    from causalsre.slo.windows import load_alert_windows

    min_events = checks.whole(min_events, "min_events", 1)
    timeline = checks.flag(timeline, "timeline")
    where = checks.where(where)
    group_by = checks.names(group_by, "group_by")
    alert_windows = checks.path(alert_windows, "alert_windows")
    resolution = checks.text(resolution, "resolution", "1m", optional=True)
    at = _instant(at)
    run = checks.text(run, "run", "rate_surge-s0", optional=True)
    slos = load_slos(_spec(spec))
    windows = load_alert_windows(alert_windows) if alert_windows else None
    timelines: list | None = [] if timeline else None
    with _Database(db) as con:
        where = _with_run(con, dict(where) if where else None, run)
        try:
            reports = build_report(con, slos, at=at, where=where, group_by=tuple(group_by), alert_windows=windows,
                                   min_events=min_events, timelines=timelines, resolution=resolution)
        except duckdb.ConversionException as exc:  # where={"tenant": 3}: a number compared with a text column
            first = str(exc).splitlines()[0][:200]
            raise UserError(f"a where value does not fit its column's type ({first})",
                            "give text for text columns (tenant, model, phase) and numbers for numeric ones") from None
    return SloReport(reports, timelines, windows)


def _instant(at):
    """``at`` as the CLI's text: a datetime, pd.Timestamp or numpy datetime64 (naive = UTC) is written as ISO
    8601, a date as its midnight (UTC). A date and a datetime64 were refused as "not a non-empty string"."""
    from datetime import date, datetime

    if isinstance(at, np.datetime64):
        at = pd.Timestamp(at)  # NaT stays NaT, caught below
    if isinstance(at, datetime) or at is pd.NaT:
        if at != at:  # pd.NaT is a datetime too
            raise UserError("at is NaT, not a time", "pass e.g. at='2026-03-01T10:00:00Z', or leave it out")
        return at.isoformat()
    if isinstance(at, date):
        return datetime(at.year, at.month, at.day).isoformat()
    if at is not None and not isinstance(at, str):
        raise UserError(f"at must be None or a non-empty string (ISO 8601), a datetime or a date, not "
                        f"{checks.brief(at)}",
                        "pass e.g. at='2026-03-01T10:00:00Z', or leave it out")
    return checks.text(at, "at", "2026-03-01T10:00:00Z", optional=True)


def _with_run(con, where: dict | None, run: str | None) -> dict | None:
    """``where`` restricted to ``run`` (checked: an unknown id is refused with the known ones)."""
    if run is None:
        return where
    from causalsre.windows import check_run

    if not isinstance(run, str) or not run.strip():
        raise UserError(f"run must be a run id, not {run!r}", "pass e.g. run='rate_surge-s0'")
    check_run(con, run, "--run")
    if where and "run_id" in where and where["run_id"] != run:
        raise UserError(f"--run {run[:100]!r} and --where run_id={str(where['run_id'])[:100]!r} disagree",
                        "give the run once")
    return {**(where or {}), "run_id": run}


def postmortem(db, spec: str | Path | None = None, *, baseline: str, incident: str, slo_name: str | None = None,
               graph: str | Path | None = None, seed: int = 0, pairs: int = 2000, bayes: bool = False,
               fit: str | Path | None = None, verify: bool = False, verify_top: int = 3, run: str | None = None,
               progress: bool = False) -> Postmortem:
    """Why the budget burned between two windows (``phase:NAME@RUN``, ``run:ID``, ``START/END``): what changed,
    then each factor's share of the change in the bad-event rate. ``run`` restricts both windows to one run;
    ``progress`` draws progress bars on stderr (where it is a terminal). Same as ``causalsre postmortem --json``."""
    from causalsre.progress import step_progress
    from causalsre.causal import DEFAULT_GRAPH, load_graph
    from causalsre.causal.postmortem import postmortem as attribute_change
    from causalsre.whatif.context import pick_slo
    from causalsre.windows import parse_window

    pairs = checks.whole(pairs, "pairs", 100, example=2000)
    verify_top = checks.whole(verify_top, "verify_top", 1, 6, example=3)
    bayes, verify, progress = (checks.flag(bayes, "bayes"), checks.flag(verify, "verify"),
                               checks.flag(progress, "progress"))
    baseline, incident = checks.window(baseline, "baseline"), checks.window(incident, "incident")
    seed = checks.seed(seed)
    slo_name = checks.text(slo_name, "slo_name", "ttft", optional=True)
    graph, fit = checks.path(graph, "graph"), checks.path(fit, "fit")
    run = checks.text(run, "run", "rate_surge-s0", optional=True)
    spec_path = _spec(spec)
    slo = pick_slo(spec_path, slo_name)
    spec_graph = load_graph(graph or DEFAULT_GRAPH)
    with _Database(db) as con:
        db_path = _Database.path_of(db, con)
        # Parsed once: the Bayesian attribution below is given these windows, not their text.
        base_window, inc_window = parse_window(baseline, con, run=run), parse_window(incident, con, run=run)
        with step_progress("postmortem", disable=not progress) as step:  # closed before the sampler's bar
            result = attribute_change(con, slo, base_window, inc_window, spec_graph, seed=seed, n_pairs=pairs,
                                      progress=step, verify_db=db_path if verify else None, verify_top=verify_top)
    result["slo"] = slo.name
    if bayes or fit:
        from causalsre.whatif.run import posterior_attribution

        result["bayes_attribution"] = posterior_attribution(
            db_path, _str(spec_path), base_window, inc_window, slo_name=slo.name, graph_path=_str(graph),
            fit_path=_str(fit), seed=seed, progress=progress)
    return Postmortem(result, spec_graph)


def whatif(db, spec: str | Path | None = None, *, window: str, set: Mapping[str, Any], method: str = "both",
           slo_name: str | None = None, graph: str | Path | None = None, priors: str | Path | None = None,
           fit: str | Path | None = None, verify: bool = False, verify_db: str | Path | None = None,
           latency: str | None = None, seed: int = 0, run: str | None = None) -> WhatIf:
    """The burn of ``window`` had the knobs been ``set`` ({"max_num_seqs": 16}), per method ("gcm", "bayes" or
    "both"), with 90 % intervals; ``verify`` replays it through the engine; ``run`` restricts the window to one
    run. Same as ``causalsre whatif --json``."""
    from causalsre.whatif.run import run_whatif
    from causalsre.windows import scope_window

    if not isinstance(set, Mapping) or not set:
        raise UserError("set must be a non-empty dict of knob -> value", "pass e.g. set={'max_num_seqs': 16}")
    if not isinstance(method, str) or method not in ("gcm", "bayes", "both"):
        raise UserError(f"unknown method {checks.brief(method)}", "use 'gcm', 'bayes' or 'both'")
    # A bool is not a knob's value (True reached the --set parser and came back in the CLI's words).
    bad = next((k for k, v in set.items() if not isinstance(k, str) or not k or isinstance(v, (Mapping, list, tuple))
                or v is None or checks.is_bool(v)), None) if isinstance(set, Mapping) else None
    if bad is not None:
        raise UserError(f"set[{checks.brief(bad)}] = {checks.brief(set[bad])} is not knob -> one value",
                        "pass e.g. set={'max_num_seqs': 16}")
    window = checks.window(window, "window")
    seed = checks.seed(seed)
    verify = checks.flag(verify, "verify")
    slo_name = checks.text(slo_name, "slo_name", "ttft", optional=True)
    latency = checks.text(latency, "latency", "ttft_s", optional=True)
    graph, priors, fit = checks.path(graph, "graph"), checks.path(priors, "priors"), checks.path(fit, "fit")
    verify_db = checks.path(verify_db, "verify_db")
    run = checks.text(run, "run", "rate_surge-s0", optional=True)
    settings = [f"{knob}={value}" for knob, value in set.items()]
    window = scope_window(window, run)
    with _Database(db) as con:
        db_path = _Database.path_of(db, con)
        if run is not None:
            from causalsre.windows import check_run

            check_run(con, run, "--run")
    result = run_whatif(db_path, str(_spec(spec)), window, settings, method=method, slo_name=slo_name,
                        graph_path=_str(graph), priors_path=_str(priors), fit_path=_str(fit), verify=verify,
                        verify_db=_str(verify_db), seed=seed, latency=latency)
    return WhatIf(result, {"indent": 2})


def attribute(normal, abnormal, *, graph, target: str, threshold: float | None = None, top: int = 10) -> Attribution:
    """Rank root-cause candidates of ``target``'s anomaly in a wide table of window-level metrics (one column
    per graph node): ``normal`` rows fit the structural model, ``abnormal`` rows are explained. DataFrames or
    CSV/Parquet paths; ``graph`` is a networkx DiGraph, (cause, effect) pairs, a DataFrame with cause and effect
    columns, or an edge-list CSV. Same as ``causalsre attribute --json``."""
    from causalsre.causal.rootcause import DEFAULT_THRESHOLD, rank_root_causes
    from causalsre.causal.rootcause_input import check_threshold

    threshold = DEFAULT_THRESHOLD if threshold is None else check_threshold(threshold, "threshold")
    top = checks.whole(top, "top", 1, example=10)
    edges = _edges(graph)  # the small input first: its errors come before reading two tables
    ranked = rank_root_causes(_frame(normal, "normal"), _frame(abnormal, "abnormal"), edges, target,
                              threshold=threshold)[:top]
    return Attribution(root_causes_json(target, ranked), {})


def root_causes_json(target: str, ranked) -> dict:
    """``causalsre attribute --json``'s document: candidates best first, rounded as printed."""
    return {"target": target, "root_causes": [
        {"node": c.node, "score": round(c.score, 6), "marginal_z": round(c.marginal_z, 3),
         "residual_z": round(c.residual_z, 3)} for c in ranked]}


# --- argument checks -----------------------------------------------------------------------------------

class _Database:
    """``with _Database(db) as con``: a path is opened read-only and closed after; a connection is borrowed."""

    def __init__(self, db):
        self.db, self.con = db, None

    def __enter__(self):
        if isinstance(self.db, (str, Path)):
            self.con = connect(self.db)
            return self.con
        if hasattr(self.db, "execute"):
            return self.db
        raise UserError(f"db must be a path or a connection from cs.connect, not {type(self.db).__name__}",
                        "pass e.g. cs.connect('telemetry.duckdb') or the path itself")

    def __exit__(self, *exc) -> None:
        if self.con is not None:
            self.con.close()

    @staticmethod
    def path_of(db, con) -> str:
        """The database's path as the caller gave it (the CLI's --db), else the connection's file."""
        return str(db) if isinstance(db, (str, Path)) else _file_of(con)


def _file_of(con) -> str:
    """The file behind a DuckDB connection (what-if and replays reopen the database by path)."""
    rows = con.execute("SELECT file FROM pragma_database_list WHERE name = current_database()").fetchall()
    if not rows or not rows[0][0]:
        raise UserError("this connection has no database file (in-memory)", "open a file with cs.connect(path)")
    return str(rows[0][0])


def _path(value, what: str) -> Path:
    if not isinstance(value, (str, Path)):
        raise UserError(f"the {what} must be a path, not {type(value).__name__}", f"pass the {what} file's path")
    return Path(value)


def _spec(spec) -> Path:
    from causalsre.resources import SLO_SPEC

    return SLO_SPEC if spec is None else _path(spec, "SLO spec")


def _str(value) -> str | None:
    return None if value is None else str(value)


def _frame(value, name: str) -> pd.DataFrame:
    from causalsre.causal.rootcause_input import read_table

    if isinstance(value, pd.DataFrame):
        return checks.frame(value, name)
    if isinstance(value, (str, Path)):
        return read_table(value)
    raise UserError(f"{name} must be a DataFrame or a CSV/Parquet path, not {type(value).__name__}",
                    f"pass {name}=pd.DataFrame(...) with one column per graph node")


def _edges(graph):
    import networkx as nx

    from causalsre.causal.rootcause_input import read_edges

    if isinstance(graph, (str, Path)):
        return read_edges(graph)
    if isinstance(graph, nx.DiGraph):
        out = graph
    elif isinstance(graph, pd.DataFrame) and {"cause", "effect"} <= set(graph.columns):
        out = nx.DiGraph(checks.edge_pairs(graph[["cause", "effect"]].itertuples(index=False, name=None)))
    elif isinstance(graph, Iterable) and not isinstance(graph, (str, bytes, Mapping, pd.DataFrame)):
        out = nx.DiGraph(checks.edge_pairs(graph))
    else:
        raise UserError(f"graph must be edges, not {type(graph).__name__}",
                        "pass a networkx DiGraph, (cause, effect) pairs or an edge-list CSV")
    if not nx.is_directed_acyclic_graph(out):
        raise UserError("the graph has a cycle", "a causal graph must be acyclic")
    return out

"""The analysis table: one row per request, one column per causal-graph node found in the data.

Outcomes come from the ``request_metrics`` view (never recomputed here). Engine-state mediators come from
``steps`` in one SQL statement using ASOF joins on per-run running sums, so the cost is O(n log n) in
requests and steps rather than a range join over every (request, step) pair. The trailing-window arrival
rate and recent lengths count every request of the run (:mod:`causalsre.causal.trailing`, one streamed
pass). Knob and hardware values are the ones in effect at the request's arrival (``run_settings``, falling
back to the ``runs`` row).
The SQL text is fixed; window bounds and names are bound parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import duckdb

from causalsre.causal.graph import GraphSpec
from causalsre.causal.trailing import trailing_aggregates
from causalsre.errors import UserError
from causalsre.telemetry import first_row
from causalsre.windows import Window

META_COLUMNS = ["run_id", "request_id", "phase", "arrival_ts"]
# From the harness's settings table (harness/settings.py), so a new knob reaches the table without an edit here:
# SETTING_FALLBACK: settings read from run_settings -> the runs column holding their t0 value (None: no column);
# CATEGORICAL_SETTINGS: read from value_text; ZERO_WHEN_ABSENT: injected faults (no row means no injection).
from harness.settings import CATEGORICAL_SETTINGS, SETTING_FALLBACK, ZERO_WHEN_ABSENT  # noqa: E402

ARRIVAL_RATE_WINDOW_S = 10.0

_REQUESTS_SQL = """
WITH w AS (
    SELECT run_id, request_id, phase, arrival_ts, arrival_ns, tenant, prompt_tokens,
           COALESCE(target_output_tokens, output_tokens) AS output_tokens, num_preemptions,
           queue_s, ttft_s, tpot_s, e2e_s, is_ok
    FROM request_metrics WHERE {condition}
),
runs_in AS (SELECT DISTINCT run_id FROM w),
st AS (
    SELECT run_id, start_ns, end_ns, num_waiting,
           num_kv_blocks_used::DOUBLE / NULLIF(num_kv_blocks_total, 0) AS kv_utilization,
           sum(num_prefill_seqs + num_decode_seqs) OVER run_order AS cum_batch,
           sum(num_prefill_tokens) OVER run_order AS cum_prefill,
           count(*) OVER run_order AS cum_steps
    FROM steps WHERE run_id IN (SELECT run_id FROM runs_in)
    WINDOW run_order AS (PARTITION BY run_id ORDER BY start_ns, step_id ROWS UNBOUNDED PRECEDING)
),
st_end AS (SELECT run_id, end_ns, num_waiting, kv_utilization FROM st),
r AS (
    SELECT w.*, q.first_scheduled_ns, q.first_token_ns, q.last_token_ns, q.finish_ns
    FROM w JOIN requests q USING (run_id, request_id)
)
SELECT r.run_id, r.request_id, r.phase, r.arrival_ts, r.arrival_ns, r.tenant, r.prompt_tokens, r.output_tokens,
       COALESCE(a.num_waiting, 0) AS queue_depth_at_arrival,
       COALESCE(a.kv_utilization, 0.0) AS kv_utilization_at_arrival,
       CASE WHEN r.first_scheduled_ns IS NOT NULL AND r.finish_ns IS NOT NULL THEN
            (COALESCE(b1.cum_batch, 0) - COALESCE(b0.cum_batch, 0))::DOUBLE
            / NULLIF(COALESCE(b1.cum_steps, 0) - COALESCE(b0.cum_steps, 0), 0) END AS mean_batch_size,
       CASE WHEN r.first_token_ns IS NOT NULL AND r.last_token_ns IS NOT NULL THEN
            COALESCE((COALESCE(d1.cum_prefill, 0) - COALESCE(d0.cum_prefill, 0))::DOUBLE
            / NULLIF(COALESCE(d1.cum_steps, 0) - COALESCE(d0.cum_steps, 0), 0), 0.0) END
            AS prefill_tokens_during_decode,
       r.num_preemptions, r.queue_s, r.ttft_s, r.tpot_s, r.e2e_s, r.is_ok
FROM r
ASOF LEFT JOIN st_end a ON r.run_id = a.run_id AND r.arrival_ns >= a.end_ns
ASOF LEFT JOIN st b0 ON r.run_id = b0.run_id AND r.first_scheduled_ns > b0.start_ns
ASOF LEFT JOIN st b1 ON r.run_id = b1.run_id AND r.finish_ns > b1.start_ns
ASOF LEFT JOIN st d0 ON r.run_id = d0.run_id AND r.first_token_ns > d0.start_ns
ASOF LEFT JOIN st d1 ON r.run_id = d1.run_id AND r.last_token_ns > d1.start_ns
ORDER BY r.run_id, r.arrival_ns, r.request_id
"""


def build_analysis_table(con: duckdb.DuckDBPyConnection, slo=None, *, window: Window,
                         graph: GraphSpec | None = None, keep: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per request of ``window``: run_id, request_id, phase, arrival_ts, then graph-node columns.

    ``slo`` is a :class:`causalsre.slo.SLOSpec` deciding ``is_bad``; ``None`` counts every request that did
    not complete (status other than ok) as bad, the rule of an SLO with no latency objective. ``keep`` (run_id,
    request_id) limits the rows to those requests of the window.
    """
    condition, params = window.where()
    if keep is not None:  # a stratified subsample (causal/subsample.py); trailing rates still count every request
        con.register("_kept_requests", keep[["run_id", "request_id"]])
        condition += " AND (run_id, request_id) IN (SELECT run_id, request_id FROM _kept_requests)"
    sql = _REQUESTS_SQL.format(condition=condition)
    try:
        frame = con.execute(sql, params).df()
    finally:
        if keep is not None:
            con.unregister("_kept_requests")
    if frame.empty:
        raise UserError(f"window {window.label!r} holds no requests", "check the run, phase or time range")
    # Trailing-window aggregates over every request of the run (causal/trailing.py), after output_tokens.
    recent = trailing_aggregates(con, frame["run_id"], frame["arrival_ns"], int(ARRIVAL_RATE_WINDOW_S * 1e9))
    at = frame.columns.get_loc("output_tokens") + 1
    for offset, column in enumerate(recent.columns):
        frame.insert(at + offset, column, recent[column].to_numpy())
    elapsed_s = np.clip(frame["since_first_ns"].to_numpy(dtype=float) / 1e9, 1.0, ARRIVAL_RATE_WINDOW_S)
    frame["arrival_rate"] = frame["n_recent"].to_numpy(dtype=float) / elapsed_s
    frame = _mediators_without_steps(con, frame, window)
    frame = _add_settings(con, frame)
    frame = _add_offered_rate(con, frame)
    frame = _add_governor_shed(con, frame)
    frame["is_bad"] = _bad_flags(con, slo, window, frame) if keep is None else _sampled_bad_flags(con, slo, frame)
    frame = frame.drop(columns=["n_recent", "since_first_ns", "arrival_ns", "is_ok"])
    node_columns = [c for c in frame.columns if c not in META_COLUMNS]
    if graph is not None:
        node_columns = [c for c in graph.nodes if c in frame.columns]
    # A node nobody measured in this window (queue time in an import that has none) is no column: the graph's
    # latent projection bridges it, where an all-missing column would only break the models.
    node_columns = [c for c in node_columns if c == "is_bad" or frame[c].notna().any()]
    frame = frame[META_COLUMNS + node_columns]
    return frame.reset_index(drop=True)


def _add_settings(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> pd.DataFrame:
    run_ids = sorted(frame["run_id"].unique())
    placeholders = ", ".join("?" for _ in run_ids)
    settings = con.execute(
        f"SELECT run_id, setting, start_ns, value, value_text FROM run_settings "
        f"WHERE run_id IN ({placeholders}) ORDER BY start_ns", run_ids).df()
    runs = con.execute(f"SELECT * FROM runs WHERE run_id IN ({placeholders})", run_ids).df().set_index("run_id")
    frame = frame.sort_values("arrival_ns", kind="stable")
    for name, run_column in SETTING_FALLBACK.items():
        rows = settings[settings["setting"] == name]
        value_column = "value_text" if name in CATEGORICAL_SETTINGS else "value"
        if not rows.empty:
            timeline = rows[["run_id", "start_ns", value_column]].rename(
                columns={"start_ns": "arrival_ns", value_column: name}).sort_values("arrival_ns")
            frame = pd.merge_asof(frame, timeline, on="arrival_ns", by="run_id", direction="backward")
        if run_column is not None and run_column in runs.columns:
            fallback = frame["run_id"].map(runs[run_column])
            frame[name] = frame[name].fillna(fallback) if name in frame.columns else fallback
        if name in ZERO_WHEN_ABSENT and name in frame.columns:
            frame[name] = frame[name].fillna(0.0)
        if name in frame.columns and frame[name].isna().all():
            frame = frame.drop(columns=[name])
    return frame.sort_values(["run_id", "arrival_ns", "request_id"], kind="stable")


STEP_MEDIATORS = ("queue_depth_at_arrival", "kv_utilization_at_arrival", "mean_batch_size",
                  "prefill_tokens_during_decode")


def _mediators_without_steps(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Engine state for runs with no per-step telemetry (a real vLLM, an imported deployment): from the
    server's scraped metrics where ``metric_samples`` has them (joined as-of, vLLM's names mapped once in
    :mod:`causalsre.telemetry.importers.mapping`), else unknown (NaN), never the 0 an empty step join gives."""
    run_ids = sorted(frame["run_id"].unique())
    placeholders = ", ".join("?" for _ in run_ids)
    stepped = {r[0] for r in con.execute(f"SELECT DISTINCT run_id FROM steps WHERE run_id IN ({placeholders})",
                                         run_ids).fetchall()}
    bare = frame["run_id"].isin(set(run_ids) - stepped).to_numpy()
    if not bare.any():
        return frame
    frame = frame.copy()
    for column in STEP_MEDIATORS:
        frame[column] = frame[column].astype(float)
        frame.loc[bare, column] = np.nan
    if _has_table(con, "metric_samples"):
        from causalsre.telemetry.importers.mapping import MEDIATORS, metric_mediators

        scraped = metric_mediators(con, window)
        if not scraped.empty:
            merged = frame[["run_id", "request_id"]].merge(scraped, on=["run_id", "request_id"], how="left")
            for column in MEDIATORS:
                if column in frame.columns and column in merged.columns and column != "num_preemptions":
                    values = merged[column].to_numpy(dtype=float)
                    frame.loc[bare, column] = values[bare]
            frame = _scraped_preemptions(frame, merged, bare)
    # A mediator nobody measured is no column at all: the graph's latent projection then bridges it.
    return frame.drop(columns=[c for c in STEP_MEDIATORS if frame[c].isna().all()])


def _scraped_preemptions(frame: pd.DataFrame, scraped: pd.DataFrame, bare: np.ndarray) -> pd.DataFrame:
    """``num_preemptions`` of step-less runs from the server's ``vllm:num_preemptions_total`` (each request's
    share of the preemptions during its life, telemetry/importers/mapping.py) where the run recorded none of
    its own: an importer writes 0 for "not in the file" (the column is NOT NULL), which would hide a KV cache
    that preempts. A run whose file did count preemptions per request keeps its counts."""
    if "num_preemptions" not in frame.columns or "num_preemptions" not in scraped.columns:
        return frame
    values = scraped["num_preemptions"].to_numpy(dtype=float)
    counted = frame.groupby("run_id")["num_preemptions"].transform(lambda s: (s.fillna(0) != 0).any())
    use = bare & ~counted.to_numpy(dtype=bool) & np.isfinite(values)
    frame["num_preemptions"] = frame["num_preemptions"].astype(float)
    frame.loc[use, "num_preemptions"] = values[use]
    return frame


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(first_row(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                            [name]))[0])


def _add_offered_rate(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> pd.DataFrame:
    """The offered (configured) arrival rate in force at each arrival, where the producer recorded one.

    The harness records it in ``run_settings`` as ``arrival_rate``; the measured trailing-window rate
    (``arrival_rate`` in the table) is its child, so a chance fluctuation of the measured rate is not mistaken
    for a change of the offered load, and burstier arrivals act through the measured rate. Imported telemetry
    has no offered rate: then the measured rate is a root of the graph.
    """
    run_ids = sorted(frame["run_id"].unique())
    placeholders = ", ".join("?" for _ in run_ids)
    rows = con.execute(
        f"SELECT run_id, start_ns AS arrival_ns, value AS offered_rate FROM run_settings "
        f"WHERE setting = 'arrival_rate' AND value IS NOT NULL AND run_id IN ({placeholders}) "
        f"ORDER BY start_ns", run_ids).df()
    if rows.empty or not set(frame["run_id"]) <= set(rows["run_id"]):
        return frame  # not every run says what it offered: a partial column would mark runs, not load
    frame = frame.drop(columns=["offered_rate"], errors="ignore")  # the runs row's t0 value: superseded
    frame = pd.merge_asof(frame.sort_values("arrival_ns", kind="stable"), rows.sort_values("arrival_ns"),
                          on="arrival_ns", by="run_id", direction="backward")
    frame["offered_rate"] = frame["offered_rate"].fillna(
        frame.groupby("run_id")["offered_rate"].transform("first"))
    return frame.sort_values(["run_id", "arrival_ns", "request_id"], kind="stable")


def _add_governor_shed(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> pd.DataFrame:
    """``governor_shed``: 1 where the budget governor rejected the request to protect a more critical tier
    (``finish_reason`` shed_page / shed_budget / shed_slack at the door, shed_queue pushed out of a full queue,
    shed_doomed dropped from the queue past its TTFT: every ``shed_*``), 0 for the other requests of a governed run.

    A run is governed when it wrote ``control_actions`` (every run with a ``[governor]`` section does, its
    final counters at least); other runs have no value, and a frame of only such runs gets no column, so the
    analysis of ungoverned telemetry is what it was before the node existed. Deferrals are not per request
    in the telemetry (only the on/off transitions), so they are not in the node.
    """
    if not _has_table(con, "control_actions"):
        return frame
    run_ids = sorted(frame["run_id"].unique())
    placeholders = ", ".join("?" for _ in run_ids)
    governed = [r[0] for r in con.execute(
        f"SELECT DISTINCT run_id FROM control_actions WHERE run_id IN ({placeholders})", run_ids).fetchall()]
    if not governed:
        return frame
    placeholders = ", ".join("?" for _ in governed)
    shed = con.execute(
        f"SELECT run_id, request_id, 1.0 AS governor_shed FROM requests WHERE run_id IN ({placeholders}) "
        "AND starts_with(finish_reason, 'shed_')", governed).df()
    frame = frame.merge(shed, on=["run_id", "request_id"], how="left")
    frame["governor_shed"] = frame["governor_shed"].where(frame["governor_shed"].notna(),
                                                          np.where(frame["run_id"].isin(governed), 0.0, np.nan))
    return frame


def _sampled_bad_flags(con, slo, frame: pd.DataFrame) -> np.ndarray:
    """The SLO's flags of the sampled requests only (the rule of request_outcomes, without listing the window)."""
    from causalsre.causal.subsample import bad_event_sql

    if slo is None:
        return ~frame["is_ok"].fillna(False).to_numpy(dtype=bool)
    bad, params = bad_event_sql(con, slo)
    con.register("_kept_requests", frame[["run_id", "request_id"]])
    try:
        flags = con.execute(f"SELECT run_id, request_id, {bad} AS is_bad FROM request_metrics WHERE (run_id, request_id) "
                            "IN (SELECT run_id, request_id FROM _kept_requests)", params).df()
    finally:
        con.unregister("_kept_requests")
    return frame[["run_id", "request_id"]].merge(flags, on=["run_id", "request_id"], how="left")["is_bad"].to_numpy(
        dtype=bool)


def _bad_flags(con, slo, window: Window, frame: pd.DataFrame) -> np.ndarray:
    if slo is None:
        return ~frame["is_ok"].fillna(False).to_numpy(dtype=bool)
    from causalsre.slo import request_outcomes  # the SLO package decides good and bad events

    outcomes = request_outcomes(con, slo, where=window.as_filter() or None)
    flags = frame[["run_id", "request_id"]].merge(
        outcomes[["run_id", "request_id", "is_bad"]], on=["run_id", "request_id"], how="left")["is_bad"]
    # A request the SLO view does not list is one it cannot judge; count it bad only if it failed.
    return flags.fillna(pd.Series(~frame["is_ok"].fillna(False).to_numpy(dtype=bool))).to_numpy(dtype=bool)

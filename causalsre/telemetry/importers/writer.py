"""One transactional writer for every importer: a command's batches are written together or not at all."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import pandas as pd

from causalsre.errors import UserError
from causalsre.telemetry.importers.checks import NS, to_datetime


@dataclass
class Batch:
    """Rows for one run: a new run (``t0_s`` set) or samples/events for an existing run (``attach``)."""

    run_id: str
    kind: str
    name: str
    t0_s: float | None = None  # epoch seconds of the run's t0 (None when attaching: the run's own t0)
    config: dict = field(default_factory=dict)
    requests: pd.DataFrame | None = None  # REQUEST_COLUMNS, *_ns relative to t0
    samples: pd.DataFrame | None = None  # ts_s (epoch seconds), metric, labels_json, value, source
    events: pd.DataFrame | None = None  # ts_s (epoch seconds), key, value, kind, source
    settings: pd.DataFrame | None = None  # setting, ts_s (epoch seconds), value, value_text
    arrival_rate: float | None = None
    burstiness: float | None = None
    attach: bool = False
    notes: list[str] = field(default_factory=list)  # what the files cannot tell the analysis (importers/coverage.py)

    def counts(self) -> dict[str, int]:
        return {name: 0 if frame is None else len(frame) for name, frame in
                (("requests", self.requests), ("metric_samples", self.samples),
                 ("operator_events", self.events), ("run_settings", self.settings))}


def write_batches(con: duckdb.DuckDBPyConnection, batches: list[Batch]) -> None:
    """Write every batch in one transaction; a run id that exists already is refused before any write."""
    for batch in batches:
        found = next(iter(con.execute("SELECT name FROM runs WHERE run_id = ?", [batch.run_id]).fetchall()), None)
        if batch.attach and not found:
            raise UserError(f"run {batch.run_id!r} is not in the database",
                            "`causalsre db info --db DB` lists the runs; leave out --run to create a new one")
        if not batch.attach and found:
            raise UserError(f"this file was already imported as run {batch.run_id} ({found[0]})",
                            "nothing to do; delete that run first to import it again")
    con.execute("BEGIN TRANSACTION")
    try:
        for batch in batches:
            _write_one(con, batch)
        con.execute("COMMIT")
    except Exception:
        # A full disk fails the COMMIT and DuckDB ends the transaction itself: keep the first error, not
        # "cannot rollback" (the caller names the file: causalsre.telemetry.failures.storage_error).
        from causalsre.telemetry.failures import rollback_quietly

        rollback_quietly(con)
        raise


def _on_clock(frame: pd.DataFrame | None, t0_s: float, column: str = "ts_ns") -> pd.DataFrame | None:
    """Epoch-second ``ts_s`` -> integer nanoseconds on the run's clock."""
    if frame is None:
        return None
    ts_ns = np.round((frame["ts_s"].to_numpy(dtype=float) - t0_s) * NS).astype("int64")
    return frame.drop(columns=["ts_s"]).assign(**{column: ts_ns})


def _write_one(con: duckdb.DuckDBPyConnection, batch: Batch) -> None:
    t0_s = run_clock(con, batch.run_id) if batch.attach else batch.t0_s
    samples, events = _on_clock(batch.samples, t0_s), _on_clock(batch.events, t0_s)
    settings = _on_clock(batch.settings, t0_s, "start_ns")
    if not batch.attach:
        span_ns = 0
        for frame, column in ((batch.requests, "finish_ns"), (samples, "ts_ns"), (events, "ts_ns")):
            if frame is not None and len(frame):
                span_ns = max(span_ns, int(pd.Series(frame[column]).max()))
        started_at = to_datetime(t0_s)
        con.execute(
            "INSERT INTO runs (run_id, kind, name, started_at, finished_at, status, arrival_process, arrival_rate, "
            "burstiness, hardware_json, config_json) VALUES (?, ?, ?, ?, ?, 'complete', 'import', ?, ?, ?, ?)",
            [batch.run_id, batch.kind, batch.name, started_at,
             started_at + timedelta(seconds=span_ns / NS), batch.arrival_rate, batch.burstiness,
             json.dumps({"imported_at": datetime.now(timezone.utc).isoformat()}), json.dumps(batch.config)])
    if batch.attach and batch.config.get("server_config"):
        _merge_server_config(con, batch.run_id, batch.config["server_config"])
    for table, frame in (("requests", batch.requests), ("metric_samples", samples),
                         ("operator_events", events), ("run_settings", settings)):
        if frame is None or not len(frame):
            continue
        rows = frame.assign(run_id=batch.run_id)
        if batch.attach and table == "run_settings":
            rows = _new_settings(con, rows, batch.run_id)
            if not len(rows):
                continue
        names = ", ".join(rows.columns)
        con.register("_import_rows", rows)
        if batch.attach and table in _SAME_ROW:
            _refuse_repeats(con, table, batch.run_id)
        try:
            con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _import_rows")
        except duckdb.ConstraintException as exc:
            # The transaction is aborted now: the caller rolls back (unregistering would fail here).
            raise UserError(f"run {batch.run_id}: {table} already has a row with the same key "
                            f"({str(exc).splitlines()[0]})", "import each change once") from None
        con.unregister("_import_rows")


def _merge_server_config(con: duckdb.DuckDBPyConnection, run_id: str, server: dict) -> None:
    """Scrapes attached to a bench run (``--run``) bring the server's own settings from its info gauges (e.g.
    ``enable_prefix_caching``); the run's config keeps them, so "what changed" can compare two runs' servers."""
    (text,) = next(iter(con.execute("SELECT config_json FROM runs WHERE run_id = ?", [run_id]).fetchall()), (None,))
    try:
        config = json.loads(text) if text else {}
    except ValueError:
        config = {}
    config = config if isinstance(config, dict) else {}
    merged = dict(config.get("server_config") or {})
    for name, values in server.items():
        merged[name] = sorted(set(merged.get(name, [])) | set(values))
    config["server_config"] = merged
    con.execute("UPDATE runs SET config_json = ? WHERE run_id = ?", [json.dumps(config), run_id])


# Rows of an attached batch that an earlier import already wrote (same series and instant, same event).
_SAME_ROW = {
    "metric_samples": "m.ts_ns = r.ts_ns AND m.metric = r.metric AND m.labels_json = r.labels_json",
    "operator_events": "m.ts_ns = r.ts_ns AND m.key = r.key AND m.value IS NOT DISTINCT FROM r.value",
}


def _refuse_repeats(con: duckdb.DuckDBPyConnection, table: str, run_id: str) -> None:
    found = con.execute(f"SELECT count(*) FROM {table} m JOIN _import_rows r ON m.run_id = r.run_id "
                        f"AND {_SAME_ROW[table]}").fetchall()[0][0]
    if found:
        raise UserError(f"run {run_id} already has {found} of these {table.replace('_', ' ')} "
                        "(same series or event at the same instant)",
                        "this file was imported into the run before; nothing to do")


def _new_settings(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """Setting rows the run does not hold yet: the scrapes of one server, imported in two commands, record
    the same configuration from the same process start; the second one adds nothing."""
    held = con.execute("SELECT setting, start_ns, value FROM run_settings WHERE run_id = ?", [run_id]).df()
    if held.empty:
        return rows
    merged = rows.merge(held, on=["setting", "start_ns"], how="left", suffixes=("", "_held"), indicator=True)
    same = (merged["_merge"] == "both") & ((merged["value"] == merged["value_held"])
                                          | (merged["value"].isna() & merged["value_held"].isna()))
    return rows[~same.to_numpy()].reset_index(drop=True)


def run_clock(con: duckdb.DuckDBPyConnection, run_id: str) -> float:
    """Epoch seconds of an existing run's t0 (to put attached samples and events on its clock)."""
    rows = con.execute("SELECT epoch_us(started_at) FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not rows:
        raise UserError(f"run {run_id!r} is not in the database",
                        "`causalsre db info --db DB` lists the runs; leave out --run to create a new one")
    return rows[0][0] / 1e6

"""The telemetry writer: an EngineObserver that buffers in memory and appends to DuckDB in batches.

Observer callbacks run inside the engine loop, so they only append tuples to lists. A background thread
swaps the lists out every ``flush_interval_s`` (0.75 s by default) and appends each as one Arrow batch in one
transaction, so a process killed with SIGKILL loses at most the last interval (plus one flush in progress). The ``runs`` row is inserted
with status ``running`` at start and set to ``complete`` (or ``incomplete``) at the end.

DuckDB lets one process at a time open a file for writing, and a writer holds the file for the whole run.
So a run still marked ``running`` in a database another process can open was left by a dead writer: the
next writer marks such runs ``incomplete`` when it opens the file, and readers should treat ``running`` as
``incomplete`` (:func:`effective_status` does both checks).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pandas  # noqa: F401  (duckdb's from_arrow imports it lazily; import it now, not in the first flush)
import pyarrow as pa

from causalsre.errors import UserError
from causalsre.telemetry.failures import rollback_quietly, storage_error
from harness.engine.observer import RequestRecord, StepRecord
from causalsre.telemetry.schema import first_row

I64, I32, STR, F64 = pa.int64(), pa.int32(), pa.string(), pa.float64()

# table -> (column, arrow type) in the order the buffers hold them (run_id is added at flush time).
TABLE_COLUMNS: dict[str, list[tuple[str, pa.DataType]]] = {
    "tokens": [("request_id", I64), ("token_index", I32), ("step_id", I64), ("emitted_ns", I64)],
    "events": [("request_id", I64), ("event_type", STR), ("ts_ns", I64), ("step_id", I64)],
    "steps": [(name, I64) for name in (
        "step_id", "start_ns", "end_ns", "schedule_ns", "forward_ns", "num_prefill_seqs", "num_prefill_tokens",
        "num_decode_seqs", "num_decode_tokens", "num_waiting", "num_running", "num_kv_blocks_used",
        "num_kv_blocks_total", "num_preemptions")],
    "requests": [("request_id", I64), ("tenant", STR), ("priority", I32), ("prompt_tokens", I32),
                 ("target_output_tokens", I32), ("output_tokens", I32), ("scheduled_arrival_ns", I64),
                 ("enqueue_ns", I64), ("first_scheduled_ns", I64), ("first_token_ns", I64),
                 ("last_token_ns", I64), ("finish_ns", I64), ("status", STR), ("finish_reason", STR),
                 ("num_preemptions", I32), ("attributes", STR)],
    "run_settings": [("setting", STR), ("start_ns", I64), ("value", F64), ("value_text", STR)],
    "faults": [("fault_id", I32), ("kind", STR), ("family", STR), ("factor", STR), ("start_ns", I64),
               ("end_ns", I64), ("params", STR)],
    "phases": [("name", STR), ("start_ns", I64), ("end_ns", I64)],
    "control_actions": [("ts_ns", I64), ("action", STR), ("tier", STR), ("reason", STR), ("short_burn", F64),
                        ("long_burn", F64), ("budget_remaining", F64), ("params_before", STR),
                        ("params_after", STR)],
}

# Runs this process is writing now (several writers may share one process, e.g. tests).
_ACTIVE_RUNS: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


def mark_stale_runs(con: duckdb.DuckDBPyConnection) -> int:
    """Mark ``running`` runs no live writer of this process owns as ``incomplete``; returns how many."""
    with _ACTIVE_LOCK:
        active = sorted(_ACTIVE_RUNS)
    rows = con.execute("SELECT run_id FROM runs WHERE status = 'running'").fetchall()
    stale = [r[0] for r in rows if r[0] not in active]
    for run_id in stale:
        con.execute("UPDATE runs SET status = 'incomplete' WHERE run_id = ?", [run_id])
    return len(stale)


def check_columns(con: duckdb.DuckDBPyConnection) -> None:
    """The writer appends by position: fail loudly if the schema's columns are not ours, in order."""
    for table, spec in TABLE_COLUMNS.items():
        found = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main' "
            "ORDER BY ordinal_position", [table]).fetchall()]
        expected = ["run_id"] + [name for name, _ in spec]
        if found != expected:
            raise RuntimeError(f"telemetry table {table} has columns {found}, the writer writes {expected}")


def effective_status(con: duckdb.DuckDBPyConnection, run_id: str) -> str:
    """A run's status as readers should see it: ``running`` without a live writer here is ``incomplete``."""
    row = first_row(con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]))
    if row is None:
        raise KeyError(run_id)
    with _ACTIVE_LOCK:
        alive = run_id in _ACTIVE_RUNS
    return "incomplete" if row[0] == "running" and not alive else row[0]


class TelemetryWriter:
    """Buffers one run's telemetry and appends it to ``con`` in batches from a background thread."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str, *, flush_interval_s: float = 0.75,
                 path: str | Path | None = None):
        self.con = con
        self.run_id = run_id
        self.path = path  # named in the error when the storage fails
        self.started = False  # the runs row is in: from here on the file holds this run's data
        self.flush_interval_s = flush_interval_s
        self._buffers: dict[str, list[tuple]] = {table: [] for table in TABLE_COLUMNS}
        self._swap_lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scheduled_arrival: dict[int, int] = {}
        self._attributes: dict[int, str] = {}
        self.flush_error: BaseException | None = None
        self.rows_written = 0

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self, runs_row: dict[str, Any]) -> None:
        """Insert the runs row (status ``running``) and start the flush thread."""
        check_columns(self.con)
        mark_stale_runs(self.con)  # before registering ours: a dead run under our id must read incomplete
        with _ACTIVE_LOCK:
            _ACTIVE_RUNS.add(self.run_id)
        row = dict(runs_row, run_id=self.run_id, status="running", finished_at=None)
        for key in ("config_json", "hardware_json"):
            if not isinstance(row.get(key), str):
                row[key] = json.dumps(row.get(key))
        columns = sorted(row)
        placeholders = ", ".join("?" for _ in columns)
        # Column names come from our own dict keys, never from user text.
        try:
            self.con.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({placeholders})",
                             [row[c] for c in columns])
        except BaseException as exc:  # e.g. the run id exists: this run never started, so it is not live
            with _ACTIVE_LOCK:
                _ACTIVE_RUNS.discard(self.run_id)
            if isinstance(exc, duckdb.ConstraintException):
                raise UserError(f"run id {self.run_id!r} is already in the database",
                                "pick another run id, or write to another --db") from None
            failure = storage_error(self.path or "the telemetry database", exc)
            if failure is not None:  # e.g. the disk is already full: nothing of this run was written
                raise failure from None
            raise
        self.started = True
        self._thread = threading.Thread(target=self._flush_loop, name=f"telemetry-{self.run_id}", daemon=True)
        self._thread.start()

    @property
    def failed(self) -> bool:
        """A write failed: the writer no longer touches the connection (DuckDB may have invalidated it)."""
        return self.flush_error is not None

    def close(self, status: str = "complete") -> None:
        """Stop the thread, flush the rest and set the run's final status.

        After a failed write nothing more is written, not even the final status: after a fatal error
        (a full disk) DuckDB has invalidated the database, and every later statement would fail with a
        message that hides the cause. The run then stays ``running``, which readers report as incomplete,
        with every row flushed before the error; a full disk or an I/O error is raised as one UserError.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if not self.failed:
                self.flush()
                self._execute_once("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                                   [status, datetime.now(timezone.utc).replace(tzinfo=None), self.run_id])
        except Exception:
            if not self.failed:
                raise
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE_RUNS.discard(self.run_id)
        if self.flush_error is not None:
            failure = storage_error(self.path or "the telemetry database", self.flush_error)
            if failure is not None:
                raise UserError(failure.problem, f"{failure.fix}; the rows flushed before the error are kept and "
                                "the run reads incomplete") from None
            raise self.flush_error

    def _execute_once(self, sql: str, params: list) -> None:
        try:
            self.con.execute(sql, params)
        except Exception as exc:
            self.flush_error = self.flush_error or exc
            raise

    def _flush_loop(self) -> None:
        cursor = self.con.cursor()  # a connection of its own: DuckDB connections are not shared across threads
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush(cursor)
            except BaseException:  # flush() recorded it; close() raises it and the runner stops the run
                return
        cursor.close()

    def flush(self, con: duckdb.DuckDBPyConnection | None = None) -> int:
        """Append everything buffered so far, in one transaction; returns the rows written.

        After a failed write it writes nothing (the connection may be invalidated) and drops what arrives.
        """
        with self._swap_lock:
            batches, self._buffers = self._buffers, {table: [] for table in TABLE_COLUMNS}
        batches = {t: rows for t, rows in batches.items() if rows}
        if not batches or self.failed:
            return 0
        con = con or self.con
        written = 0
        with self._db_lock:
            con.execute("BEGIN TRANSACTION")
            try:
                for table, rows in batches.items():
                    # The relation API skips SQL parsing: half the CPU of INSERT ... SELECT per flush.
                    # It appends by position; start() checked that our columns are the table's, in order.
                    con.from_arrow(self._arrow_batch(table, rows)).insert_into(table)
                    written += len(rows)
                con.execute("COMMIT")
            except BaseException as exc:
                self.flush_error = self.flush_error or exc
                rollback_quietly(con)  # never mask the first error (a full disk) with "cannot rollback"
                raise
        self.rows_written += written
        return written

    def _arrow_batch(self, table: str, rows: list[tuple]) -> pa.Table:
        spec = TABLE_COLUMNS[table]
        columns = list(zip(*rows))
        arrays = [pa.array([self.run_id] * len(rows), STR)]
        arrays += [pa.array(col, typ) for col, (_, typ) in zip(columns, spec)]
        return pa.Table.from_arrays(arrays, names=["run_id"] + [name for name, _ in spec])

    # -- what the runner reports ---------------------------------------------------------------------
    def register_request(self, request_id: int, scheduled_arrival_ns: int, attributes: dict | None = None) -> None:
        self._scheduled_arrival[request_id] = scheduled_arrival_ns
        if attributes:
            self._attributes[request_id] = json.dumps(attributes)

    def record_setting(self, setting: str, start_ns: int, value: float | None, value_text: str | None = None):
        with self._swap_lock:
            self._buffers["run_settings"].append((setting, start_ns, value, value_text))

    def record_fault(self, fault_id: int, kind: str, family: str, factor: str, start_ns: int,
                     end_ns: int | None, params: dict) -> None:
        with self._swap_lock:
            self._buffers["faults"].append((fault_id, kind, family, factor, start_ns, end_ns, json.dumps(params)))

    def record_control_action(self, action: dict) -> None:
        """One governor decision (harness.engine.governor.Governor.drain_actions)."""
        row = (action["ts_ns"], action["action"], action.get("tier"), action.get("reason"),
               action.get("short_burn"), action.get("long_burn"), action.get("budget_remaining"),
               json.dumps(action.get("params_before") or {}), json.dumps(action.get("params_after") or {}))
        with self._swap_lock:
            self._buffers["control_actions"].append(row)

    def record_phase(self, name: str, start_ns: int, end_ns: int) -> None:
        with self._swap_lock:
            self._buffers["phases"].append((name, start_ns, end_ns))

    # -- EngineObserver ------------------------------------------------------------------------------
    # The lock makes "look up the current list, append" atomic with respect to the flush thread's swap.
    def on_event(self, request_id: int, event_type: str, ts_ns: int, step_id: int | None) -> None:
        with self._swap_lock:
            self._buffers["events"].append((request_id, event_type, ts_ns, step_id))

    def on_token(self, request_id: int, token_index: int, step_id: int, ts_ns: int) -> None:
        with self._swap_lock:
            self._buffers["tokens"].append((request_id, token_index, step_id, ts_ns))

    def on_step(self, step: StepRecord) -> None:
        with self._swap_lock:
            self._buffers["steps"].append(tuple(getattr(step, name) for name, _ in TABLE_COLUMNS["steps"]))

    def on_request_done(self, r: RequestRecord) -> None:
        scheduled = self._scheduled_arrival.pop(r.request_id, None)
        row = (
            r.request_id, r.tenant, r.priority, r.prompt_tokens, r.target_output_tokens, r.output_tokens,
            scheduled, r.enqueue_ns, r.first_scheduled_ns, r.first_token_ns, r.last_token_ns, r.finish_ns,
            r.status, r.finish_reason, r.num_preemptions, self._attributes.pop(r.request_id, None))
        with self._swap_lock:
            self._buffers["requests"].append(row)

"""What every importer shares: reading files, checking numbers and times, and one transactional writer.

An importer is a pure function ``parse(paths, ...) -> list[Batch]`` that reads and validates everything
first; :func:`write_batches` then writes all batches of one command in a single transaction. So a bad
file raises :class:`UserError` before the database is even opened, and a failed write rolls back.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from causalsre.errors import UserError
from causalsre.safeio import regular_file

NS = 1_000_000_000
# Wall-clock times outside [2000, 2200) are unit mistakes (ms or ns read as s) or corrupt files.
MIN_EPOCH_S = 946_684_800.0
MAX_EPOCH_S = 7_258_118_400.0
MAX_LATENCY_S = 7 * 24 * 3600.0  # a request that took longer than a week is a unit mistake
MAX_TOKENS = 100_000_000
STATUSES = ("ok", "timeout", "rejected", "aborted", "error")
REQUEST_COLUMNS = ("request_id", "tenant", "priority", "prompt_tokens", "target_output_tokens", "output_tokens",
                   "scheduled_arrival_ns", "enqueue_ns", "first_scheduled_ns", "first_token_ns", "last_token_ns",
                   "finish_ns", "status", "finish_reason", "num_preemptions", "attributes")


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

    def counts(self) -> dict[str, int]:
        return {name: 0 if frame is None else len(frame) for name, frame in
                (("requests", self.requests), ("metric_samples", self.samples),
                 ("operator_events", self.events), ("run_settings", self.settings))}


def fingerprint(paths: list[Path]) -> str:
    """First 16 hex digits of the SHA-256 of the files' bytes: the same files give the same run id."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"file {path} does not exist", "check the path")
    if path.is_dir():
        raise UserError(f"{path} is a directory", "give a file")
    return regular_file(path, what="file")  # a FIFO or /dev/zero would block the read forever


def read_json(path: Path, what: str) -> object:
    """The parsed JSON of ``path``; a file of one JSON object per line (vLLM --append-result) gives a list."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path.name} is not valid JSON (not UTF-8 text)", f"give {what}") from None
    strict = dict(parse_constant=_refuse_constant, parse_int=_bounded_int, object_pairs_hook=_unique_keys)
    try:
        return json.loads(text, **strict)
    except json.JSONDecodeError as exc:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1:
            try:
                return [json.loads(line, **strict) for line in lines]
            except (json.JSONDecodeError, RecursionError):
                pass
        raise UserError(f"{path.name} is not valid JSON ({exc})", f"give {what}") from None
    except RecursionError:
        raise UserError(f"{path.name} nests deeper than the JSON parser can follow", f"give {what}") from None


def _refuse_constant(name: str) -> float:
    # NaN/Infinity are not JSON; a file that holds them has no usable number there.
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def _bounded_int(text: str) -> int:
    # No field of any tool's file holds more than a 64-bit integer; 400 digits overflowed the float arrays later.
    if len(text.lstrip("-")) > 20:
        raise json.JSONDecodeError(f"an integer of {len(text.lstrip('-'))} digits is out of range", text[:20], 0)
    return int(text)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    # Python keeps the last of a repeated key: the first value would be dropped without a word.
    keys = [key for key, _ in pairs]
    if len(set(keys)) < len(keys):
        repeated = next(key for key in keys if keys.count(key) > 1)
        raise json.JSONDecodeError(f"key {repeated[:60]!r} appears twice in one object", repeated[:60], 0)
    return dict(pairs)


def number(value: object, where: str, *, minimum: float | None = 0.0, maximum: float | None = None,
           allow_none: bool = False) -> float | None:
    """``value`` as a finite float in [minimum, maximum]; UserError naming ``where`` otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where}: {value!r} is not a number", "give an unmodified file from the tool")
    result = float(value)
    if not math.isfinite(result):
        raise UserError(f"{where}: {value!r} is not a finite number", "give an unmodified file from the tool")
    if minimum is not None and result < minimum:
        raise UserError(f"{where}: {value!r} is below {minimum:g}", "values here cannot be negative")
    if maximum is not None and result > maximum:
        raise UserError(f"{where}: {value!r} is above {maximum:g}", "check the unit of the value")
    return result


def epoch_seconds(value: object, where: str) -> float:
    """A wall-clock time in seconds since 1970, refused outside the years 2000-2199."""
    seconds = number(value, where, minimum=None)
    if not MIN_EPOCH_S <= seconds < MAX_EPOCH_S:
        raise UserError(f"{where}: {value!r} is not a time between 2000 and 2200 (epoch seconds)",
                        "give times in seconds since 1970, not milliseconds or nanoseconds")
    return seconds


def parse_time(text: str, where: str) -> float:
    """ISO 8601 (UTC when no offset is given) or epoch seconds -> epoch seconds, range-checked."""
    text = str(text).strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        return epoch_seconds(seconds, where)
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        raise UserError(f"{where}: cannot parse {text!r} as a time",
                        "use ISO 8601 (2026-01-31T12:00:00Z) or epoch seconds") from None
    if stamp is pd.NaT:
        raise UserError(f"{where}: cannot parse {text!r} as a time", "use ISO 8601 or epoch seconds")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return epoch_seconds(stamp.timestamp(), where)


def to_datetime(epoch_s: float) -> datetime:
    """Naive UTC datetime (the schema's TIMESTAMP convention)."""
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).replace(tzinfo=None)


def requests_frame(times: dict[str, np.ndarray], *, base_s: float, prompt_tokens, output_tokens, status,
                   finish_reason, tenant=None, attributes=None, where: str) -> tuple[pd.DataFrame, float]:
    """`requests` rows from per-request times; returns (rows, t0 in epoch seconds).

    ``times`` holds arrays (NaN = unknown) for arrival, enqueue, first_scheduled, first_token, last_token and
    finish, in seconds after ``base_s`` (epoch seconds): small offsets keep sub-microsecond precision that
    epoch-second floats (about 0.2 us apart in 2026) would lose. t0 is the earliest arrival. Every known time must not precede the arrival, and the first token
    must not come after the finish: a file that says otherwise is refused, naming the request.
    """
    arrival = np.asarray(times["arrival"], dtype=float)
    n = len(arrival)
    if n == 0:
        raise UserError(f"{where} holds no requests", "give a file with at least one request")
    if not np.isfinite(arrival).all():
        raise UserError(f"{where}: a request has no arrival time", "give an unmodified file from the tool")
    t0 = float(arrival.min())
    epoch_seconds(base_s + t0, f"{where}: first arrival")
    columns = {}
    for key in ("arrival", "enqueue", "first_scheduled", "first_token", "last_token", "finish"):
        values = np.asarray(times.get(key, np.full(n, np.nan)), dtype=float)
        early = np.isfinite(values) & (values < arrival - 1e-6)
        if early.any():
            row = int(np.flatnonzero(early)[0])
            raise UserError(f"{where}: request {row}: {key} precedes its arrival", "give an unmodified file")
        late = np.isfinite(values) & (values - arrival > MAX_LATENCY_S)
        if late.any():
            row = int(np.flatnonzero(late)[0])
            raise UserError(f"{where}: request {row}: {key} is more than a week after its arrival",
                            "check the unit of the times")
        columns[key] = pd.array(np.where(np.isfinite(values), np.round((values - t0) * NS), np.nan), dtype="Int64")
    reversed_rows = (columns["first_token"] > columns["finish"]).fillna(False).to_numpy(dtype=bool)
    if reversed_rows.any():
        row = int(np.flatnonzero(reversed_rows)[0])
        raise UserError(f"{where}: request {row}: first token after the finish", "give an unmodified file")
    status = pd.Series(status, dtype="string").str.lower()
    status = status.where(status.isin(STATUSES), "error")
    frame = pd.DataFrame({
        "request_id": np.arange(n, dtype="int64"),
        "tenant": pd.Series(tenant if tenant is not None else [None] * n, dtype="string"),
        "priority": pd.Series([None] * n, dtype="Int64"),
        "prompt_tokens": _tokens(prompt_tokens, n, where, "prompt tokens"),
        "target_output_tokens": pd.Series([None] * n, dtype="Int64"),
        "output_tokens": _tokens(output_tokens, n, where, "output tokens"),
        "scheduled_arrival_ns": columns["arrival"],
        "enqueue_ns": columns["enqueue"].fillna(columns["arrival"]),
        "first_scheduled_ns": columns["first_scheduled"],
        "first_token_ns": columns["first_token"],
        "last_token_ns": columns["last_token"],
        "finish_ns": columns["finish"].fillna(columns["arrival"]),  # unknown finish: at arrival, as far as we know
        "status": status,
        "finish_reason": pd.Series(finish_reason, dtype="string").str.slice(0, 200),
        "num_preemptions": np.zeros(n, dtype="int64"),
        "attributes": pd.Series(attributes if attributes is not None else [None] * n, dtype="string"),
    })
    return frame, base_s + t0


def _tokens(values, n: int, where: str, what: str) -> pd.Series:
    array = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    if len(array) != n:
        raise UserError(f"{where}: {what} has {len(array)} entries for {n} requests", "give an unmodified file")
    bad = np.isfinite(array) & ((array < 0) | (array > MAX_TOKENS) | (array != np.round(array)))
    if bad.any() or np.isinf(array).any():
        row = int(np.flatnonzero(bad | np.isinf(array))[0])
        raise UserError(f"{where}: request {row}: {what} {array[row]!r} is not a count", "give an unmodified file")
    return pd.Series(pd.array(np.where(np.isfinite(array), array, 0), dtype="Int64"))


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

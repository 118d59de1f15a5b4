"""Turning per-request latencies into `requests` rows, and writing one import as one transaction."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import pandas as pd

from causalsre.errors import UserError
from causalsre.telemetry import columns
from causalsre.telemetry.failures import rollback_quietly
from causalsre.telemetry.schema import first_row

STATUSES = ("ok", "timeout", "rejected", "aborted", "error")
_NS = 1_000_000_000


def _ns(seconds: pd.Series) -> pd.Series:
    return (seconds * _NS).round().astype("Int64")


def requests_frame_from_latencies(
    *,
    arrivals: pd.Series,
    ttft_s: pd.Series,
    e2e_s: pd.Series,
    tpot_s: pd.Series | None,
    prompt_tokens: pd.Series,
    output_tokens: pd.Series,
    status: pd.Series,
    tenant: pd.Series | None = None,
    priority: pd.Series | None = None,
    attributes: list[str] | None = None,
    finish_reasons: pd.Series | None = None,
    request_ids: pd.Series | None = None,
    target_output_tokens: pd.Series | None = None,
    num_preemptions: pd.Series | None = None,
) -> tuple[pd.DataFrame, datetime]:
    """Build `requests` rows from client-side latencies; returns (rows, wall time of t0).

    Every argument may be raw (text cells of a CSV, a typed Parquet column, a list from JSON): each is parsed
    here by :mod:`causalsre.telemetry.columns` against the documented bounds, so every importer refuses the
    same bad values in the same one line. t0 is the earliest arrival. TTFT and E2E are measured from arrival;
    when TPOT is given the last token is placed at first token + TPOT x (output_tokens - 1), else at the finish
    (so that the view's TPOT equals the vLLM definition (e2e - ttft) / (output_tokens - 1)). Request ids are
    the file's when it has them (refused when not unique), else 0, 1, 2, ... in file order.
    """
    arrivals = columns.times(arrivals)
    n = len(arrivals)
    # t0 is stored as a datetime (microseconds): flooring it keeps every offset below exact in nanoseconds.
    t0 = arrivals.min().floor("us")
    # Exact integer nanoseconds (a double holds only ~104 days of them exactly).
    arrival_ns = (arrivals - t0).to_numpy().astype("timedelta64[ns]").astype("int64")
    raw_status = status.reset_index(drop=True).astype("string").str.lower()
    mapped = raw_status.where(raw_status.isin(STATUSES), "error")
    ok = (mapped == "ok").to_numpy()
    ttft = columns.reals(ttft_s, "ttft_s")
    e2e = columns.reals(e2e_s, "e2e_s")
    prompt = columns.integers(prompt_tokens, "prompt_tokens", required=True)
    out_tokens = columns.integers(output_tokens, "output_tokens", required=True)
    bad_ok = ok & (ttft.isna() | e2e.isna()).to_numpy()
    if bad_ok.any():
        row = int(np.flatnonzero(bad_ok)[0])
        raise UserError(f"row {row + 1}: status ok but ttft_s or e2e_s is missing",
                        "give ttft_s and e2e_s for every successful request")
    reversed_rows = (e2e < ttft).to_numpy() & ~np.isnan(e2e.to_numpy())
    if reversed_rows.any():
        row = int(np.flatnonzero(reversed_rows)[0])
        raise UserError(f"row {row + 1}: e2e_s ({e2e[row]}) is smaller than ttft_s ({ttft[row]})",
                        "e2e_s is the whole request latency and must be >= ttft_s")
    first_token = arrival_ns + _ns(ttft)
    finish = arrival_ns + _ns(e2e)
    last_token = finish.copy()
    if tpot_s is not None:
        tpot = columns.reals(tpot_s, "tpot_s")
        decode_s = tpot * (out_tokens.astype("float64") - 1).clip(lower=0)
        too_late = ((ttft.fillna(0) + decode_s) > columns.MAX_LATENCY_S).to_numpy(dtype=bool)
        if too_late.any():
            row = int(np.flatnonzero(too_late)[0])
            raise UserError(f"row {row + 1}: tpot_s x (output_tokens - 1) puts the last token more than "
                            f"{columns.MAX_LATENCY_S:g} s after the arrival", "give tpot_s in seconds per token")
        last_token = (first_token + _ns(decode_s)).where(tpot.notna().to_numpy(), last_token)
    # A failed request with no timing information still finishes (as far as we know) at its arrival.
    finish = finish.fillna(pd.Series(arrival_ns).astype("Int64"))
    reasons = pd.Series(np.where(ok, "length", raw_status.fillna("error")), dtype="string")
    if finish_reasons is not None:
        given = columns.texts(finish_reasons, "finish_reason")
        reasons = given.where(given.notna(), reasons)
    if request_ids is None:
        ids = pd.Series(np.arange(n, dtype="int64"))
    else:
        ids = columns.integers(request_ids, "request_id", columns.INT64, required=True).astype("int64")
        repeated = ids.duplicated().to_numpy()
        if repeated.any():
            row = int(np.flatnonzero(repeated)[0])
            first = int(np.flatnonzero((ids == ids[row]).to_numpy())[0])
            raise UserError(f"column request_id row {row + 1}: id {ids[row]} repeats row {first + 1}",
                            "give every request its own id, or drop the column to number rows 0, 1, 2, ...")
    frame = pd.DataFrame({
        "request_id": ids,
        "tenant": columns.texts(tenant, "tenant") if tenant is not None else pd.Series([None] * n, dtype="string"),
        "priority": columns.integers(priority, "priority", columns.INT32) if priority is not None
        else pd.Series([None] * n, dtype="Int64"),
        "prompt_tokens": prompt.astype("int64"),
        "target_output_tokens": columns.integers(target_output_tokens, "target_output_tokens")
        if target_output_tokens is not None else pd.Series([None] * n, dtype="Int64"),
        "output_tokens": out_tokens.astype("int64"),
        "scheduled_arrival_ns": arrival_ns,
        "enqueue_ns": arrival_ns,
        "first_scheduled_ns": pd.Series([None] * n, dtype="Int64"),
        "first_token_ns": first_token,
        "last_token_ns": last_token,
        "finish_ns": finish,
        "status": mapped,
        "finish_reason": reasons.astype("string"),
        "num_preemptions": columns.integers(num_preemptions, "num_preemptions").fillna(0).astype("int64")
        if num_preemptions is not None else np.zeros(n, dtype="int64"),
        "attributes": pd.Series(attributes if attributes is not None else [None] * n, dtype="string"),
    })
    return frame, t0.to_pydatetime()


def write_import(
    con: duckdb.DuckDBPyConnection,
    *,
    kind: str,
    name: str,
    fingerprint: str,
    started_at: datetime,
    requests: pd.DataFrame,
    config: dict,
    arrival_rate: float | None = None,
    burstiness: float | None = None,
) -> str:
    """Write one imported batch (a `runs` row and its requests) in a single transaction."""
    run_id = f"{kind}-{fingerprint}"
    existing = first_row(con.execute("SELECT name FROM runs WHERE run_id = ?", [run_id]))
    if existing:
        raise UserError(f"this file was already imported as run {run_id} ({existing[0]})",
                        "nothing to do; delete that run first to import it again")
    span_s = (requests["finish_ns"].max() or 0) / 1e9
    finished_at = started_at + timedelta(seconds=float(span_s))
    if arrival_rate is None and len(requests) > 1:
        arrivals_span = requests["scheduled_arrival_ns"].max() / 1e9
        arrival_rate = (len(requests) - 1) / arrivals_span if arrivals_span > 0 else None
    rows = requests.assign(run_id=run_id)
    columns = ", ".join(rows.columns)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "INSERT INTO runs (run_id, kind, name, started_at, finished_at, status, arrival_process, arrival_rate, "
            "burstiness, hardware_json, config_json) VALUES (?, ?, ?, ?, ?, 'complete', 'import', ?, ?, ?, ?)",
            [run_id, kind, name, started_at, finished_at, arrival_rate, burstiness,
             json.dumps({"imported_at": datetime.now(timezone.utc).isoformat()}), json.dumps(config)],
        )
        con.register("_import_rows", rows)
        con.execute(f"INSERT INTO requests ({columns}) SELECT {columns} FROM _import_rows")
        con.unregister("_import_rows")
        con.execute("COMMIT")
    except Exception:
        rollback_quietly(con)  # a failed COMMIT has already ended the transaction: report the first error
        raise
    return run_id

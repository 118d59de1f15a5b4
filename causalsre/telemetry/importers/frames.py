"""Per-request times -> ``requests`` rows, checked: what the bench, trace and report importers share."""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalsre.errors import UserError
from causalsre.telemetry.importers.checks import MAX_LATENCY_S, MAX_TOKENS, NS, epoch_seconds

STATUSES = ("ok", "timeout", "rejected", "aborted", "error")
REQUEST_COLUMNS = ("request_id", "tenant", "priority", "prompt_tokens", "target_output_tokens", "output_tokens",
                   "scheduled_arrival_ns", "enqueue_ns", "first_scheduled_ns", "first_token_ns", "last_token_ns",
                   "finish_ns", "status", "finish_reason", "num_preemptions", "attributes")


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



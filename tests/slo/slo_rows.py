"""Rows with known outcomes for the SLO tests, shared by conftest.py and the test modules.

A module of its own (not conftest.py): several test folders have a conftest.py, and ``from conftest import``
picks whichever one was imported first, so a test run of a few folders could import the wrong one.
"""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd

T0 = datetime(2026, 1, 1, 0, 0, 0)

REQUEST_DEFAULTS = {"ttft_s": 0.1, "tpot_s": 0.01, "output_tokens": 10, "status": "ok", "tenant": "a",
                    "priority": 0, "model": "m1", "run_id": "run-1", "prompt_tokens": 100}


def add_run(con, run_id: str, started_at: datetime = T0) -> None:
    con.execute(
        "INSERT INTO runs (run_id, kind, name, started_at, finished_at, status, config_json) "
        "VALUES (?, 'harness', ?, ?, NULL, 'complete', '{}')",
        [run_id, run_id, started_at],
    )


def add_requests(con, rows: list[dict]) -> None:
    """Insert requests given arrival_s (seconds after the run's t0) and their known latencies."""
    frame = pd.DataFrame([{**REQUEST_DEFAULTS, **row} for row in rows])
    frame["request_id"] = frame.get("request_id", pd.Series(range(len(frame))))
    ns = 1_000_000_000
    arrival = (frame["arrival_s"] * ns).round().astype("int64")
    first_token = arrival + (frame["ttft_s"] * ns).round().astype("int64")
    last_token = first_token + (frame["tpot_s"] * (frame["output_tokens"] - 1) * ns).round().astype("int64")
    table = pd.DataFrame({
        "run_id": frame["run_id"], "request_id": frame["request_id"].astype("int64"),
        "tenant": frame["tenant"], "priority": frame["priority"].astype("int32"),
        "prompt_tokens": frame["prompt_tokens"].astype("int32"),
        "target_output_tokens": frame["output_tokens"].astype("int32"),
        "output_tokens": frame["output_tokens"].astype("int32"),
        "scheduled_arrival_ns": arrival, "enqueue_ns": arrival, "first_scheduled_ns": arrival,
        "first_token_ns": first_token, "last_token_ns": last_token, "finish_ns": last_token,
        "status": frame["status"], "attributes": [json.dumps({"model": m}) for m in frame["model"]],
    })
    con.register("new_requests", table)
    con.execute(
        "INSERT INTO requests (run_id, request_id, tenant, priority, prompt_tokens, target_output_tokens, "
        "output_tokens, scheduled_arrival_ns, enqueue_ns, first_scheduled_ns, first_token_ns, last_token_ns, "
        "finish_ns, status, attributes) SELECT run_id, request_id, tenant, priority, prompt_tokens, "
        "target_output_tokens, output_tokens, scheduled_arrival_ns, enqueue_ns, first_scheduled_ns, "
        "first_token_ns, last_token_ns, finish_ns, status, attributes::JSON FROM new_requests"
    )
    con.unregister("new_requests")


def add_steady_traffic(con, run_id: str, *, every_s: float, until_s: float, bad_from_s: float | None = None) -> None:
    """One request every ``every_s`` seconds on [0, until_s); all bad (timeout) from ``bad_from_s`` on."""
    bad_from = until_s + 1 if bad_from_s is None else bad_from_s
    con.execute(
        """
        INSERT INTO requests (run_id, request_id, output_tokens, scheduled_arrival_ns, enqueue_ns,
                              first_scheduled_ns, first_token_ns, last_token_ns, finish_ns, status)
        SELECT ?, i, 2, a, a, a, a + 100000000, a + 110000000, a + 110000000,
               CASE WHEN i * ? >= ? THEN 'timeout' ELSE 'ok' END
        FROM (SELECT i, CAST(round(i * ? * 1e9) AS BIGINT) AS a FROM range(CAST(ceil(? / ?) AS BIGINT)) t(i))
        """,
        [run_id, every_s, bad_from, every_s, until_s, every_s],
    )

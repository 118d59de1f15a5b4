"""Real telemetry databases with known request outcomes for the SLO tests."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from causalsre.telemetry import connect_readonly, connect_writable

T0 = datetime(2026, 1, 1, 0, 0, 0)
GOLDEN = (Path(__file__).resolve().parents[2] / ".." / "shared" / "golden").resolve()

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


@pytest.fixture
def make_db(tmp_path):
    """make_db(rows, runs=None) -> path of a fresh telemetry database holding those requests."""
    counter = iter(range(1_000_000))

    def build(rows: list[dict] | None = None, runs: dict[str, datetime] | None = None, steady=None) -> Path:
        path = tmp_path / f"telemetry-{next(counter)}.duckdb"
        con = connect_writable(path)
        run_starts = dict(runs or {})
        for row in rows or []:
            run_starts.setdefault(row.get("run_id", REQUEST_DEFAULTS["run_id"]), T0)
        for spec in steady or []:
            run_starts.setdefault(spec["run_id"], T0)
        for run_id, started in run_starts.items():
            add_run(con, run_id, started)
        if rows:
            add_requests(con, rows)
        for spec in steady or []:
            add_steady_traffic(con, **spec)
        con.close()
        return path

    return build


@pytest.fixture
def open_db():
    opened = []

    def connect(path):
        con = connect_readonly(path)
        opened.append(con)
        return con

    yield connect
    for con in opened:
        con.close()


@pytest.fixture
def golden_dir() -> Path:
    if not GOLDEN.is_dir():
        pytest.skip("../shared/golden is absent")
    return GOLDEN


def write_spec(path: Path, text: str) -> Path:
    path.write_text(text)
    return path

"""Real telemetry databases with known request outcomes for the SLO tests."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from causalsre.telemetry import connect_readonly, connect_writable

from slo_rows import REQUEST_DEFAULTS, T0, add_requests, add_run, add_steady_traffic  # noqa: F401  (tests use them)

GOLDEN = (Path(__file__).resolve().parents[2] / ".." / "shared" / "golden").resolve()


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

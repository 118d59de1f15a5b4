"""Shared fixtures: paths to the repo, its fixtures and (optionally) ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests share 2 cores with each other (pytest -n 2): keep numeric libraries single-threaded.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
SHARED = (REPO_ROOT / ".." / "shared").resolve()


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def shared_dir() -> Path:
    """../shared, or skip: the product never needs it, tests only use it when present."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED


def query_rows(db: Path, sql: str, params=()) -> list[tuple]:
    """Every row of one read-only query against a telemetry database (tests' own SQL, parameters bound)."""
    from causalsre.telemetry import connect_readonly

    con = connect_readonly(db)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()

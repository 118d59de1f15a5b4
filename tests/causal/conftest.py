"""Fixtures: real DuckDB telemetry files written from known structural causal models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

from causalsre.causal.synthetic import SyntheticSpec, write_synthetic  # noqa: E402
from causalsre.telemetry import connect_readonly  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"


@pytest.fixture
def make_db(tmp_path):
    """make_db(fault=..., seed=..., **spec) -> path of a DuckDB file with one synthetic two-phase run."""

    def _make(name: str = "telemetry.duckdb", **spec_kwargs) -> Path:
        path = tmp_path / name
        write_synthetic(path, SyntheticSpec(**spec_kwargs))
        return path

    return _make


@pytest.fixture
def readonly(make_db):
    """A read-only connection to a synthetic database (cpu_contention fault)."""
    con = connect_readonly(make_db())
    yield con
    con.close()


@pytest.fixture
def petshop_dir() -> Path:
    path = SHARED / "datasets" / "petshop"
    if not (path / "low_traffic" / "graph.csv").is_file():
        pytest.skip("the PetShop dataset (../shared/datasets/petshop) is not present")
    return path

"""Fixtures: one synthetic two-phase run (known phases and t0) written through the schema, shared per module."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def synthetic_db(tmp_path_factory):
    """Run ``synthetic`` from 2026-01-01T00:00Z: phase baseline 0..30 s, incident 30..60 s (cpu_contention)."""
    from causalsre.causal.synthetic import SyntheticSpec, write_synthetic

    path = tmp_path_factory.mktemp("cli") / "telemetry.duckdb"
    write_synthetic(path, SyntheticSpec(fault="cpu_contention", phase_s=30.0, seed=0))
    return path


@pytest.fixture
def cli(capsys):
    """cli(*argv) -> (exit code, stdout, stderr), driving the CLI as a user would."""
    from causalsre.cli.main import main

    def _run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]

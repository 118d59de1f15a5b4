"""A database that opens but whose pages are damaged: analysis commands end in one line, exit 2."""

from __future__ import annotations

import shutil

import pytest

from tests.badinput.conftest import run_cli
from tests.conftest import REPO_ROOT

SUITE = REPO_ROOT / "datasets" / "cpu-tiny" / "suite.duckdb"


@pytest.fixture
def damaged(tmp_path):
    path = tmp_path / "damaged.duckdb"
    shutil.copy(SUITE, path)
    size = path.stat().st_size
    with path.open("r+b") as handle:  # overwrite data blocks in the middle; the header and catalog stay
        for offset in range(300_000, size // 2, 200_000):
            handle.seek(offset)
            handle.write(b"\xff" * 64)
    return path


@pytest.mark.parametrize("argv", [
    ["slo", "report", "--slo", "models/slos/llm-serving.yaml"],
    ["postmortem", "--slo", "models/slos/llm-serving.yaml", "--baseline", "phase:baseline@rate_surge-s0",
     "--incident", "phase:incident@rate_surge-s0"],
], ids=["slo-report", "postmortem"])
def test_damaged_pages_give_one_line(damaged, argv, capsys):
    code, out, err = run_cli(argv + ["--db", str(damaged)], capsys)
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "could not be read" in err or "not a readable DuckDB database" in err

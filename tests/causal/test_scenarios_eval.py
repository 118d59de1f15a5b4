"""eval scenarios: scoring against truth.json, on one shipped scenario (skipped when datasets are absent)."""

from __future__ import annotations

import json
import shutil

import pytest

from causalsre.causal import load_graph
from causalsre.causal.scenarios import evaluate_dataset, find_datasets, summarize
from causalsre.errors import UserError

from .conftest import REPO

SUITE = REPO / "datasets" / "cpu-tiny"


def test_one_shipped_scenario_is_scored(tmp_path):
    if not (SUITE / "truth.json").is_file():
        pytest.skip("datasets/cpu-tiny is not built")
    from causalsre.slo import load_slos

    truth = json.loads((SUITE / "truth.json").read_text())
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "truth.json").write_text(json.dumps({"step_delay": truth["step_delay"]}))
    shutil.copy(next(SUITE.glob("*.duckdb")), folder / "suite.duckdb")
    slo = load_slos(REPO / "models" / "slos" / "llm-serving.yaml")[0]
    rows = evaluate_dataset(folder, slo, load_graph())
    summary = summarize(rows)
    assert summary["scenarios"] == 1
    assert rows[0]["ranked"][0] == "step_delay_s" and summary["top1"] == 1.0 and summary["family_top1"] == 1.0


def test_missing_datasets_are_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no scenario datasets"):
        find_datasets(tmp_path)

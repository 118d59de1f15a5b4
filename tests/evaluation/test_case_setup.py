"""eval scenarios: a suite's own SLO (``slo.yaml``) and a scenario's own windows replace the defaults.

Built from a synthetic run whose only change is CPU contention from the incident phase on (a known cause), so
each assertion has one right answer: windows inside the baseline phase see no change (a control that stays
clean), windows with a gap around the change still find the contention, and an SLO that counts every request
bad leaves no change of bad events to attribute. Each fails when the default (the phases, ``--slo``) is used.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import timedelta

import pytest

from causalsre.causal import load_graph
from causalsre.causal.synthetic import SyntheticSpec, write_synthetic
from causalsre.cli.main import main
from causalsre.errors import UserError
from causalsre.evaluation.score import evaluate_dataset
from causalsre.slo import load_slos
from causalsre.telemetry import connect_readonly, first_row

PHASE_S = 30.0
# Every request bad in both windows: its condition can never hold.
ALL_BAD_SLO = """apiVersion: openslo/v1
kind: SLO
metadata: {name: nothing-is-fast}
spec:
  service: llm-serving
  indicator:
    metadata: {name: ttft}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: causalsre, spec: {conditions: [{metric: ttft_s, op: lt, value: 1.0e-9}]}}}
        total: {metricSource: {type: causalsre}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: fast, target: 0.99}]
"""


@pytest.fixture(scope="module")
def synthetic_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("case-setup") / "suite.duckdb"
    write_synthetic(path, SyntheticSpec(fault="cpu_contention", seed=11, phase_s=PHASE_S, run_id="cpu"))
    return path


def _iso_window(db, start_s: float, end_s: float) -> str:
    con = connect_readonly(db)
    try:
        t0 = first_row(con.execute("SELECT started_at FROM runs WHERE run_id = 'cpu'"))[0]
    finally:
        con.close()
    fmt = lambda s: (t0 + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    return f"{fmt(start_s)}/{fmt(end_s)}"


def _suite(tmp_path, db, truth: dict, slo_text: str | None = None):
    folder = tmp_path / "suite"
    folder.mkdir()
    shutil.copy(db, folder / "suite.duckdb")
    (folder / "truth.json").write_text(json.dumps(truth))
    if slo_text is not None:
        (folder / "slo.yaml").write_text(slo_text)
    return folder


def _default_slo():
    from causalsre.resources import SLO_SPEC

    return load_slos(SLO_SPEC)[0]


def test_a_scenarios_own_windows_replace_its_phases(tmp_path, synthetic_db):
    cpu = {"run_id": "cpu", "root_cause_factors": ["cpu_contention"], "families": ["hardware"]}
    calm = {"run_id": "cpu", "root_cause_factors": [], "families": []}
    truth = {
        "phases": cpu,
        # both windows inside the baseline phase: nothing changed between them, so the right answer is no cause
        "calm_in_baseline": dict(calm, windows={"baseline": "+0:+15", "incident": "+15:+30"}),
        # the same run's phases, labelled a control: the default windows see the contention (a false alarm)
        "calm_by_phases": calm,
        # ISO instants with a 10 s gap around the change at 30 s
        "iso_with_gap": dict(cpu, windows={"baseline": _iso_window(synthetic_db, 2, 25),
                                           "incident": _iso_window(synthetic_db, 35, 58)}),
    }
    rows = {r["scenario"]: r for r in evaluate_dataset(_suite(tmp_path, synthetic_db, truth), _default_slo(),
                                                        load_graph())}
    assert rows["phases"]["top1"] and "windows" not in rows["phases"]
    assert rows["calm_by_phases"]["false_alarm"]
    assert not rows["calm_in_baseline"]["false_alarm"] and "error" not in rows["calm_in_baseline"]
    assert rows["calm_in_baseline"]["windows"] == {"baseline": "+0:+15", "incident": "+15:+30"}
    assert rows["iso_with_gap"]["top1"] and rows["iso_with_gap"]["named_top1"]


def test_a_suites_own_slo_replaces_the_default(tmp_path, synthetic_db):
    truth = {"calm": {"run_id": "cpu", "root_cause_factors": [], "families": []}}
    folder = _suite(tmp_path, synthetic_db, truth, ALL_BAD_SLO)
    row = evaluate_dataset(folder, _default_slo(), load_graph())[0]
    assert row["slo_file"] == str(folder / "slo.yaml")
    # every request is bad in both windows: no change of bad events, so nothing is named (not an error)
    assert not row["false_alarm"] and "error" not in row and row["total_change"] == pytest.approx(0.0, abs=1e-9)
    (folder / "slo.yaml").unlink()
    row = evaluate_dataset(folder, _default_slo(), load_graph())[0]
    assert row["false_alarm"] and "slo_file" not in row


@pytest.mark.parametrize("windows, message", [
    ({"baseline": "+0:+15"}, "has windows"),
    ({"baseline": "+0:+15", "incident": 15}, "has windows"),
    ({"baseline": "+0:+15", "incident": "yesterday"}, "windows.incident: window 'yesterday' is not understood"),
    ({"baseline": "run:other", "incident": "+15:+30"}, "windows.baseline"),
])
def test_a_wrong_window_is_refused_before_any_postmortem(tmp_path, synthetic_db, windows, message):
    truth = {"fine": {"run_id": "cpu", "root_cause_factors": [], "families": []},
             "bad": {"run_id": "cpu", "root_cause_factors": [], "families": [], "windows": windows}}
    with pytest.raises(UserError, match=re.escape(message)) as caught:
        # "bad" sorts before "fine", so check_suite must refuse it although "fine" would score
        evaluate_dataset(_suite(tmp_path, synthetic_db, truth), _default_slo(), load_graph())
    assert "'bad'" in str(caught.value)


def test_the_cli_says_a_wrong_window_in_one_line(tmp_path, synthetic_db, capsys):
    truth = {"bad": {"run_id": "cpu", "root_cause_factors": [], "families": [],
                     "windows": {"baseline": "+0:+15", "incident": "yesterday"}}}
    assert main(["eval", "scenarios", "--data", str(_suite(tmp_path, synthetic_db, truth))]) == 2
    err = capsys.readouterr().err
    assert "windows.incident" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1

"""`eval scenarios --peers`: peer methods on the same scenario cases, scored by the same rules."""

from __future__ import annotations

import json
import shutil

import pytest

from causalsre.causal import load_graph
from causalsre.causal.graph import DEFAULT_GRAPH
from causalsre.cli.main import main
from causalsre.evaluation.scenario_peers import as_postmortem_result
from causalsre.evaluation.score import names_a_cause, score_case
from causalsre.resources import DEMO_SUITE


def test_a_peer_ranking_is_read_over_candidate_causes_with_factor_aliases_merged():
    graph = load_graph(DEFAULT_GRAPH)
    ranked = ["queue_depth_at_arrival", "is_bad", "offered_rate", "arrival_rate", "max_num_seqs", "prompt_tokens"]
    result = as_postmortem_result(ranked, graph)
    factors = [row["factor"] for row in result["attributions"]]
    # the mediator and the outcome are skipped; the offered and measured rates are one factor
    assert factors == [graph.factor_of("offered_rate"), "max_num_seqs", graph.factor_of("prompt_tokens")]
    assert graph.factor_of("offered_rate") == graph.factor_of("arrival_rate")
    assert [f["family"] for f in result["families"]] == ["workload", "batching"]
    # a peer always names its first candidate: on a control that is a false alarm
    assert names_a_cause(result) == factors[0]
    control = score_case("c", {"root_cause_factors": [], "families": []}, result)
    assert control["false_alarm"] is True
    hit = score_case("s", {"root_cause_factors": ["max_num_seqs"], "families": ["batching"]}, result)
    assert hit["top1"] is False and hit["top3"] is True and hit["family_top1"] is False
    assert hit["named_top1"] is False
    first = score_case("f", {"root_cause_factors": [factors[0]], "families": ["workload"]}, result)
    assert first["top1"] is True and first["named_top1"] is True
    # a first place whose interval includes 0 is ranked, not named
    result["attributions"][0].update(ci_low=-1.0, ci_high=2.0)
    unnamed = score_case("u", {"root_cause_factors": [factors[0]], "families": ["workload"]}, result)
    assert unnamed["top1"] is True and unnamed["named_top1"] is False


@pytest.fixture()
def two_case_suite(tmp_path):
    """The shipped suite's rate surge (a strong univariate shift of the arrival rate) and its step delay."""
    truth = json.loads((DEMO_SUITE.parent / "truth.json").read_text())
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "truth.json").write_text(json.dumps({k: truth[k] for k in ("rate_surge", "step_delay")}))
    shutil.copy(DEMO_SUITE, folder / "suite.duckdb")
    return folder


@pytest.mark.slow
def test_peers_are_scored_beside_the_postmortem_on_the_same_cases(two_case_suite, capsys):
    code = main(["eval", "scenarios", "--data", str(two_case_suite), "--peers", "rcaeval_baro,rcaeval_nsigma",
                 "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    peers = result["peers"]
    assert set(peers["results"]) == {"rcaeval_baro", "rcaeval_nsigma"} and peers["missing"] == {}
    for summary in peers["results"].values():
        cases = {c["scenario"]: c for c in summary["cases"]}
        assert set(cases) == {"rate_surge", "step_delay"} and summary["fault_scenarios"] == 2
        assert not any("failure" in c for c in cases.values())
        # the surge quadruples the arrival rate: a z-score peer puts it first
        assert cases["rate_surge"]["ranked"][0] == "arrival_rate"
    assert {c["scenario"] for c in result["cases"]} == {"rate_surge", "step_delay"}


def test_an_unknown_peer_is_a_one_line_error(capsys):
    code = main(["eval", "scenarios", "--peers", "baro_typo"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "baro_typo" in err and "rcaeval_baro" in err and len(err.splitlines()) == 1

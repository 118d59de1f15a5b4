"""The postmortem's "what changed" lists the budget governor's decisions and the requests it shed, so a burn
the governor chose (shedding the free tier to protect premium) is reported as such."""

from __future__ import annotations

import json

import pytest

from causalsre.cli.main import main
from causalsre.resources import SLO_SPEC
from harness.config import parse_run_config
from harness.runner import run
from tests.harness.conftest import SLOW_MODELLED_CLOCK

pytestmark = pytest.mark.slow  # one 8 s engine run plus drain

# Premium is most of the traffic, so the surge overloads it even when served first: its burn is what makes
# the governor shed free (with a small premium share, ordering alone protects it and nothing is shed).
TENANTS = [{"name": "premium", "weight": 4}, {"name": "free", "weight": 1}]


def surge_under_the_governor(db) -> None:
    run(parse_run_config({
        "name": "gov-surge", "seed": 3, "duration_s": 8.0, "drain_timeout_s": 4.0,
        "engine": {"model": "tiny", "policy": "budget", "max_num_seqs": 4, "max_num_batched_tokens": 128,
                   "max_queue_len": 400, "request_timeout_s": 30.0},
        "workload": {"arrival": "poisson", "load_fraction": 0.3, "tenants": TENANTS,
                     "prompt": {"dist": "uniform", "low": 16, "high": 96},
                     "output": {"dist": "uniform", "low": 4, "high": 24}},
        # 30 % of the capacity measured at the start, then 3x it whatever the machine's speed: premium's tight TTFT
        # objective burns, so the governor sheds free
        "faults": [{"kind": "rate_surge", "at_s": 4.0, "factor": 10.0}],
        "phases": [{"name": "baseline", "start_s": 0.0, "end_s": 4.0},
                   {"name": "incident", "start_s": 4.0, "end_s": 8.0}],
        "governor": {"short_window_s": 1.0, "long_window_s": 4.0, "tiers": [
            {"name": "premium", "tenants": ["premium"], "criticality": 0, "objective": 0.995, "ttft_s": 0.5,
             "tpot_s": 0.5, "protected": True},
            {"name": "free", "tenants": ["free"], "criticality": 1, "objective": 0.9, "ttft_s": 2.0,
             "tpot_s": 0.5}]},
        # The capacity and the surge on the modelled clock: the burn that makes the governor shed is then the
        # test's, not the machine's of the moment.
        "clock": SLOW_MODELLED_CLOCK,
    }), db)


def test_what_changed_lists_the_governors_shedding_and_whom_it_shed(tmp_path, capsys):
    db = tmp_path / "gov.duckdb"
    surge_under_the_governor(db)
    code = main(["postmortem", "--db", str(db), "--baseline", "phase:baseline", "--incident", "phase:incident",
                 "--slo", str(SLO_SPEC), "--json"])
    assert code == 0, capsys.readouterr().err
    changes = json.loads(capsys.readouterr().out)["changes"]
    control = [c for c in changes if c["kind"] == "control"]
    sheds = [c for c in control if c["name"] == "shed_level"]
    assert sheds and all(c["tier"] == "premium" for c in sheds if c["tier"]), control
    shed = next(c for c in control if c["name"] == "shed_requests")
    assert shed["incident"].get("free", 0) > shed["baseline"].get("free", 0)
    assert "premium" not in shed["incident"]          # a protected tier is never shed
    # the text postmortem prints them in its first section
    assert main(["postmortem", "--db", str(db), "--baseline", "phase:baseline", "--incident", "phase:incident",
                 "--slo", str(SLO_SPEC)]) == 0
    text = capsys.readouterr().out
    assert "governor shed_level (tier premium" in text and "governor shed requests" in text

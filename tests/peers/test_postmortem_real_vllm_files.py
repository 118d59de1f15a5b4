"""The postmortem on files vLLM 0.32.0's own tools wrote (tests/fixtures/vllm_real, recorded by
``python -m harness.peers.realfiles``, which first measured the server's capacity and sized every case from
it; see tests/telemetry/test_importers_real_vllm_files.py), imported with the CLI as a user would, each
incident against its baseline with ``run:`` windows. No vLLM needed.

Each incident has one known cause (cases.json), and its burn is clearly above its baseline's: the postmortem
must rank that cause first among the causes and name it (``names_a_cause``: positive, interval above 0).
Server settings reach the postmortem as recorded settings (``--metadata``, ``vllm:cache_config_info``) and
their effect through what the scrapes record: waiting and running requests and KV usage at each request's
arrival, the server's preemptions over its life (causalsre/telemetry/importers/mapping.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from causalsre.evaluation.score import names_a_cause
from tests.peers.vllm_fixture_cases import import_case, postmortem_of

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_real"
pytestmark = pytest.mark.skipif(not (FOLDER / "cases.json").exists(), reason="fixtures absent")
CASES = json.loads((FOLDER / "cases.json").read_text()) if (FOLDER / "cases.json").exists() else {}
# What "what changed" must list as the recorded setting of each server-side case: (name, baseline, incident).
SETTING = {"fewer_seqs": ("max_num_seqs", 4, 1), "smaller_budget": ("max_num_batched_tokens", 1024, 8),
           "kv_shrink": ("num_kv_blocks", 256, 34)}


# Incidents whose burn is within chance of their baseline's (Fisher's exact test, the postmortem's gate). None
# since the re-recording with 80-150 requests a case: kv_shrink's 5 -> 12 bad of 32 (p = 0.088) is now 4 -> 71
# of 80. Kept so a future case that cannot be told apart is asserted to say so, not to name a cause.
WITHIN_CHANCE: set[str] = set()


def _import(db: Path, case: str, capsys, notes: list | None = None) -> str:
    return import_case(db, FOLDER, case, capsys, notes)


def _postmortem(tmp_path: Path, baseline: str, incident: str, capsys) -> dict:
    return postmortem_of(tmp_path, FOLDER, baseline, incident, capsys)


def _settings(result: dict) -> dict:
    return {c["name"]: (c["baseline"], c["incident"]) for c in result["changes"] if c["kind"] == "setting"}


INCIDENTS = sorted(name for name, case in CASES.items() if case["cause"] is not None)


def test_the_fixtures_hold_every_kind_of_incident():
    assert {"rate_surge", "longer_prompts", "fewer_seqs", "smaller_budget", "kv_shrink"} <= set(INCIDENTS)


@pytest.mark.parametrize("incident", INCIDENTS)
def test_the_true_cause_of_each_real_vllm_incident_is_named(tmp_path, capsys, incident):
    case = CASES[incident]
    result = _postmortem(tmp_path, case["baseline"], incident, capsys)
    burn = result["burn"]
    assert burn["incident"]["bad_rate"] > burn["baseline"]["bad_rate"] + 0.1, burn  # a clear burn to explain
    causes = sorted((a for a in result["attributions"] if a["role"] == "cause"), key=lambda a: -a["contribution"])
    assert causes[0]["factor"] == case["cause"], [(a["factor"], round(a["contribution"], 3)) for a in causes[:3]]
    assert causes[0]["ci_low"] > 0, causes[0]  # the right sign, its interval above 0
    if incident in WITHIN_CHANCE:
        assert result["cannot_tell"], result["burn"]  # honest: the postmortem says so instead of naming it
    else:
        assert names_a_cause(result) == case["cause"]
    settings = _settings(result)
    if incident in SETTING:
        name, before, after = SETTING[incident]
        assert settings[name] == (before, after), result["changes"]
        assert result["changes"][0]["name"] == name  # the one setting that changed comes first
    if incident == "rate_surge":
        assert settings["offered_rate"] == pytest.approx((CASES["baseline"]["load"]["rate"], case["load"]["rate"]))

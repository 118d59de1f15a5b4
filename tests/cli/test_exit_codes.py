"""The exit-code contract (cli/main.py, docs/cli.md): 0 ok, 1 a check or gate failed, 2 a user error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import one_error_line
from tests.slo.slo_specs import latency_slo

# In the synthetic workload the arrival rate and the recent prompt/output lengths move together; the default
# graph has no edges among them, so three implied independences fail on this data. With the edges, none does.
MISSING = [("arrival_rate", "recent_output_tokens"), ("arrival_rate", "recent_prompt_tokens"),
           ("recent_prompt_tokens", "recent_output_tokens")]


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    from causalsre.causal.graph import DEFAULT_GRAPH

    folder = tmp_path_factory.mktemp("graphs")
    text = Path(DEFAULT_GRAPH).read_text()
    assert text.count("edges:\n") == 1
    edges = "".join(f"  - {{from: {a}, to: {b}, why: the synthetic workload couples them}}\n" for a, b in MISSING)
    (folder / "complete.yaml").write_text(text.replace("edges:\n", "edges:\n" + edges))
    return {"default": Path(DEFAULT_GRAPH), "complete": folder / "complete.yaml"}


def test_graph_check_exits_1_when_an_independence_fails_and_0_when_none_does(synthetic_db, graphs, cli):
    code, out, _ = cli("graph", "check", "--db", synthetic_db, "--window", "phase:incident", "--graph",
                       graphs["default"], "--json")
    failed = {frozenset((t["x"], t["y"])) for t in json.loads(out)["failed"]}
    assert code == 1 and failed & {frozenset(pair) for pair in MISSING}
    code, out, _ = cli("graph", "check", "--db", synthetic_db, "--window", "phase:incident", "--graph",
                       graphs["complete"])
    assert code == 0 and "; 0 fail" in out


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slos")
    # strict: 99.9 % under 50 ms, which the synthetic incident breaks; lax: a 90 % budget nothing exhausts
    (folder / "strict.yaml").write_text(latency_slo(target="0.999", conditions=["{metric: ttft_s, op: lte, value: 0.05}"]))
    (folder / "lax.yaml").write_text(latency_slo(target="0.1", conditions=["{metric: ttft_s, op: lte, value: 1000}"]))
    return folder


def test_fail_on_alert_exits_1_only_when_an_alert_fires(synthetic_db, specs, cli):
    code, out, err = cli("slo", "report", "--db", synthetic_db, "--slo", specs / "strict.yaml", "--json")
    firing = [a for a in json.loads(out)[0]["alerts"] if a["firing"]]
    assert code == 0 and firing  # without the flag a firing alert is a report, not a failure
    code, out, err = cli("slo", "report", "--db", synthetic_db, "--slo", specs / "strict.yaml", "--json",
                         "--fail-on-alert")
    assert code == 1 and json.loads(out)[0]["alerts"]  # the report is still printed, as JSON
    assert "alert(s) firing" in err
    code, out, err = cli("slo", "report", "--db", synthetic_db, "--slo", specs / "lax.yaml", "--fail-on-alert")
    assert code == 0 and "firing" not in err


@pytest.mark.parametrize("argv,fragment", [
    (["graph", "check", "--db", "{db}", "--window", "phase:lunch"], "no such phase"),
    (["graph", "check", "--db", "{db}", "--window", "+1:+2@nope"], "not in the database"),
    (["postmortem", "--db", "{db}", "--slo", "{slo}", "--baseline", "phase:baseline", "--incident", "last week"],
     "not understood"),
    (["postmortem", "--db", "{db}", "--slo", "{slo}", "--slo-name", "nope", "--baseline", "phase:baseline",
      "--incident", "phase:incident"], "no SLO named 'nope'"),
    (["slo", "report", "--db", "{db}", "--slo", "{slo}", "--fail-on-alert", "--where", "tenant"], "COLUMN=VALUE"),
])
def test_user_errors_exit_2_with_one_line(synthetic_db, specs, cli, argv, fragment):
    argv = [{"{db}": str(synthetic_db), "{slo}": str(specs / "lax.yaml")}.get(a, a) for a in argv]
    code, out, err = cli(*argv)
    assert code == 2 and out == "" and fragment in one_error_line(err)

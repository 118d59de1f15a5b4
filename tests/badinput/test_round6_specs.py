"""Round 6 of the hostile inputs: SLO specs and graph specs that parse as YAML but say something else.

Before this round: an SLO target of 0 (every request good enough) was accepted and reported a 0 % objective;
0.9999999999999999 left a float-rounding error budget of 1.1e-16 and printed burn rates of 5.8e15; a target
given as text ("0.99", 1e-3 without a dot, which YAML 1.1 reads as text) or a boolean was called "outside
[0, 1)"; target and targetPercent together kept target silently; an SLO or objective name holding a line
break or a right-to-left override split or disguised the report table. In graph specs, `actionable: "false"`
made a node actionable (bool("false") is True), and a node key YAML reads as a number (1:) could not be
found by the edges naming it ("names unknown node '1'").
"""

from __future__ import annotations

import pytest

from causalsre.causal.graph import graph_from_dict
from causalsre.errors import UserError
from causalsre.slo import load_slos
from tests.badinput.conftest import refused

SPEC = """apiVersion: openslo/v1
kind: SLO
metadata: {{name: {name}}}
spec:
  service: llm
  indicator:
    metadata: {{name: ttft}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{type: causalsre, spec: {{conditions: [{{metric: ttft_s, op: lte, value: 1.0}}]}}}}}}
        total: {{metricSource: {{type: causalsre}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{displayName: {label}, {target}}}]
"""


def _spec(tmp_path, *, name="chat", label="fast", target="target: 0.99"):
    path = tmp_path / "slo.yaml"
    path.write_text(SPEC.format(name=name, label=label, target=target))
    return path


@pytest.mark.parametrize(("target", "fragment"), [
    ("target: 0", "target 0 is outside (0, 1)"),
    ("targetPercent: 0", "targetPercent 0 is outside (0, 100)"),
    ("target: 0.0", "is outside (0, 1)"),
    ("target: 0.9999999999999999", "leaves an error budget of 1e-16, below 1e-09"),
    ("targetPercent: 99.99999999999", "below 1e-09"),
    ("target: '0.99'", "target '0.99' is not a number"),
    ("target: 1e-3", "target '1e-3' was read as text"),  # YAML 1.1: no dot, so text (round 9: says so)
    ("target: yes", "target True is not a number"),
    ("target: 0.5, targetPercent: 99", "gives both target 0.5 and targetPercent 99"),
])
def test_slo_targets_that_promise_nothing_or_are_not_numbers_are_refused(tmp_path, target, fragment):
    with pytest.raises(UserError) as caught:
        load_slos(_spec(tmp_path, target=target))
    assert fragment in caught.value.one_line(), caught.value.one_line()


@pytest.mark.parametrize("target", ["target: 0.999999999", "target: 1.0e-3", "targetPercent: 99.5", "target: 1"])
def test_reasonable_targets_still_load(tmp_path, target):
    if target == "target: 1":
        with pytest.raises(UserError, match="outside"):
            load_slos(_spec(tmp_path, target=target))
        return
    (slo,) = load_slos(_spec(tmp_path, target=target))
    assert 0 < slo.objective < 1 and slo.error_budget >= 1e-9


@pytest.mark.parametrize(("name", "label", "code"), [
    ('"chat\\nlatency"', "fast", "U+000A"),
    ('"\\u202eevil"', "fast", "U+202E"),
    ("chat", '"fa\\tst"', "U+0009"),
    ("chat", '"a\\u2028b"', "U+2028"),
])
def test_names_with_control_characters_are_refused(tmp_path, name, label, code):
    with pytest.raises(UserError) as caught:
        load_slos(_spec(tmp_path, name=name, label=label))
    message = caught.value.one_line()
    assert "control character " + code in message and "\n" not in message, message


def test_unicode_names_without_control_characters_load(tmp_path):
    (slo,) = load_slos(_spec(tmp_path, name='"chat-延迟-é-🚀"'))
    assert slo.name == "chat-延迟-é-🚀"


def test_a_zero_target_is_refused_through_the_cli(tmp_path, capsys):
    refused(["slo", "check", str(_spec(tmp_path, target="target: 0"))], "target 0 is outside (0, 1)", capsys)


def _graph(nodes: dict, edges: list) -> dict:
    return {"version": 1, "target": "is_bad", "edges": edges,
            "nodes": {"is_bad": {"role": "outcome", "family": "outcome", "type": "binary"}, **nodes}}


KNOB = {"role": "knob", "family": "batching", "type": "discrete"}


@pytest.mark.parametrize("flag", ["actionable", "trailing"])
@pytest.mark.parametrize("value", ["false", "no", 0, None])
def test_graph_flags_must_be_booleans(flag, value):
    with pytest.raises(UserError, match=f"has {flag} .*not true or false"):
        graph_from_dict(_graph({"k": {**KNOB, flag: value}}, [{"from": "k", "to": "is_bad"}]))


def test_graph_flags_that_are_booleans_are_kept():
    spec = graph_from_dict(_graph({"k": {**KNOB, "actionable": False}, "j": {**KNOB, "actionable": True}},
                                  [{"from": "k", "to": "is_bad"}, {"from": "j", "to": "is_bad"}]))
    assert (spec.nodes["k"].actionable, spec.nodes["j"].actionable) == (False, True)


@pytest.mark.parametrize(("key", "fragment"), [
    (1, "node name 1 is not text"), (None, "node name None is not text"), (True, "node name True is not text"),
    ("a\nb", "U+000A"), ("a\u200fb", "U+200F"),
])
def test_graph_node_names_must_be_printable_text(key, fragment):
    with pytest.raises(UserError) as caught:
        graph_from_dict(_graph({key: KNOB}, [{"from": key, "to": "is_bad"}]))
    assert fragment in caught.value.one_line(), caught.value.one_line()

"""The one-paragraph summaries reports and the demo lead with."""

from causalsre.report.builders import postmortem_summary


def _attribution(factor, family, contribution):
    return {"factor": factor, "family": family, "kind": "distribution", "contribution": contribution,
            "ci_low": contribution - 0.01, "ci_high": contribution + 0.01}


def test_postmortem_summary_names_causes_not_latency_symptoms():
    result = {"burn": {"baseline": {"bad_rate": 0.0, "burn_rate": 0.0}, "incident": {"bad_rate": 0.94, "burn_rate": 94.0}},
              "n_baseline": 100, "n_incident": 120, "total_change": 0.94,
              "attributions": [_attribution("max_num_seqs", "batching", 0.70),
                               _attribution("queue_s", "outcome", 0.18),
                               _attribution("other (undetected changes and sampling)", "other", 0.04),
                               _attribution("arrival_rate", "workload", 0.02)]}
    text = postmortem_summary(result)
    assert "The largest cause is max_num_seqs (batching)" in text
    assert "; then arrival_rate (+2.0 points)." in text and "then queue_s" not in text
    assert "queue_s also behaved differently given its measured causes (+18.0 points)" in text


def test_postmortem_summary_without_causes_says_nothing_to_attribute():
    result = {"burn": {"baseline": {"bad_rate": 0.0}, "incident": {"bad_rate": 0.0}}, "n_baseline": 5,
              "n_incident": 5, "nothing_to_attribute": "no bad events in either window"}
    assert postmortem_summary(result).endswith("Nothing to attribute: no bad events in either window.")

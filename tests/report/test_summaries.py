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


def test_a_burn_that_fell_is_no_burn_to_blame():
    result = {"burn": {"baseline": {"bad_rate": 0.6}, "incident": {"bad_rate": 0.1}}, "n_baseline": 80,
              "n_incident": 80, "total_change": -0.5, "burn_fell": "the bad-event rate fell from 48 of 80 to 8 of 80",
              "attributions": [_attribution("max_num_seqs", "batching", -0.45)]}
    text = postmortem_summary(result)
    assert text.endswith("No burn to blame: the bad-event rate fell from 48 of 80 to 8 of 80.")
    assert "largest cause" not in text


def test_the_report_shows_the_verification_its_joint_replay_and_the_speed_warning():
    from causalsre.report.builders import postmortem_sections
    from causalsre.report.document import Report

    verification = {
        "control": {"bad_rate": 0.955, "requests": 88}, "baseline_bad_rate": 0.05, "top_k": 3, "speed_ratio": 0.2,
        "ranked_by_replay": False, "warning": "the replay ran at 0.20x the recording's speed",
        "causes": [{"factor": "cpu_contention", "verified": True, "reverted_bad_rate": 0.87, "requests": 88,
                    "verified_share": 0.09, "estimated_share": 0.6, "disagrees": True, "why": None},
                   {"factor": "request_timeout_s", "verified": False, "why": "the harness cannot revert it"}],
        "joint": {"factors": ["cpu_contention", "max_num_seqs"], "reverted_bad_rate": 0.06, "requests": 88,
                  "verified_share": 0.99, "sum_of_single_shares": 0.14, "interaction": True,
                  "why": "each alone was enough to keep the incident burning"}}
    result = {"burn": {"baseline": {"bad_rate": 0.05}, "incident": {"bad_rate": 0.95}}, "n_baseline": 80,
              "n_incident": 88, "total_change": 0.9, "verification": verification,
              "attributions": [_attribution("cpu_contention", "hardware", 0.54)], "families": []}
    sections = postmortem_sections(result)
    (section,) = [s for s in sections if s.title == "Verified by replay"]
    rows = section.tables[0].rows
    assert rows[0] == ["cpu_contention", "60 %", "9 %", "87.0%", 88, "yes"]
    assert rows[1][2] == "n/a" and rows[1][5] == "not verified: the harness cannot revert it"
    assert rows[2][:3] == ["cpu_contention + max_num_seqs (together)", "14 % (sum of single)", "99 %"]
    html = Report("t", ["s"], sections).to_html()
    assert "Verified by replay" in html and "the replay ran at 0.20x" in html
    assert section.warnings == ["the replay ran at 0.20x the recording's speed"]
    assert "keep their estimated order" in section.paragraphs[0]

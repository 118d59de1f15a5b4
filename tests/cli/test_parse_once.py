"""postmortem parses each window once: the Bayesian attribution is handed the parsed windows, not their text."""

from __future__ import annotations

import json


def test_postmortem_parses_each_window_once(synthetic_db, cli, monkeypatch, tmp_path):
    import causalsre.whatif.run
    import causalsre.windows
    from causalsre.resources import SLO_SPEC
    from causalsre.windows import Window

    parsed, handed = [], []
    real = causalsre.windows.parse_window

    def counting(text, con, **kwargs):
        parsed.append(text)
        return real(text, con, **kwargs)

    def attribution(db, slo, baseline, incident, **kwargs):
        handed.append((baseline, incident))
        return {"rows": [], "diagnostics": {}, "units": "", "interval": 0.9}

    monkeypatch.setattr(causalsre.windows, "parse_window", counting)
    monkeypatch.setattr(causalsre.whatif.run, "posterior_attribution", attribution)
    code, out, err = cli("postmortem", "--db", synthetic_db, "--slo", SLO_SPEC, "--baseline", "+0:+30@synthetic",
                         "--incident", "phase:incident", "--pairs", "100", "--bayes", "--json")
    assert code == 0, err
    assert sorted(parsed) == ["+0:+30@synthetic", "phase:incident"]  # once each, in one place
    ((baseline, incident),) = handed
    assert isinstance(baseline, Window) and baseline.run_id == "synthetic" and incident.phase == "incident"
    result = json.loads(out)
    assert result["baseline"] == "+0:+30@synthetic" and result["burn"]["incident"]["requests"] > 0

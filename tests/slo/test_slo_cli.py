"""`causalsre slo check` and `causalsre slo report`, end to end through the CLI entry point."""

from __future__ import annotations

import json

from causalsre.cli.main import main
from slo_specs import LATENCY_SLO, latency_slo

ROWS = [{"run_id": "r1", "request_id": i, "arrival_s": 30.0 * i, "ttft_s": 0.9 if i % 4 == 0 else 0.1,
         "tenant": "ab"[i % 2]} for i in range(200)]


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_accepts_a_good_spec_and_lists_thresholds(tmp_path, capsys):
    spec = tmp_path / "slo.yaml"
    spec.write_text(LATENCY_SLO)
    code, out, err = run(capsys, "slo", "check", str(spec))
    assert code == 0 and "ok: fast-first-token" in out and "14.4, 6, 3, 1" in out and err == ""


def test_check_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    spec = tmp_path / "slo.yaml"
    spec.write_text(latency_slo(target="1.5"))
    code, out, err = run(capsys, "slo", "check", str(spec))
    assert code == 2 and err.startswith("error: ") and "outside (0, 1)" in err and len(err.strip().splitlines()) == 1


def test_check_warnings_and_strict_mode(tmp_path, capsys):
    spec = tmp_path / "slo.yaml"
    spec.write_text(latency_slo(duration="1m"))
    code, out, err = run(capsys, "slo", "check", str(spec), "--json")
    warnings = json.loads(out)["warnings"]
    assert code == 0 and any("did you mean 1M" in w for w in warnings)
    try:
        code = main(["slo", "check", str(spec), "--strict"])
    except SystemExit as exc:
        code = exc.code
    assert code == 1


def test_report_json_has_the_documented_fields(tmp_path, capsys, make_db):
    db = make_db(ROWS)
    spec = tmp_path / "slo.yaml"
    spec.write_text(latency_slo(target="0.9"))
    plot = tmp_path / "burn.png"
    code, out, err = run(capsys, "slo", "report", "--db", str(db), "--slo", str(spec), "--json",
                         "--plot", str(plot), "--group-by", "tenant")
    assert code == 0, err
    (report,) = json.loads(out)
    for field in ("name", "objective", "events", "bad_events", "sli", "error_budget", "budget_consumed",
                  "budget_remaining", "burn_rate", "alerts"):
        assert field in report
    assert (report["events"], report["bad_events"]) == (200, 50)
    assert report["budget_consumed"] == 2.5 or abs(report["budget_consumed"] - 2.5) < 1e-9
    for alert in report["alerts"]:
        assert set(alert) >= {"severity", "long_window", "short_window", "threshold", "long_burn_rate",
                              "short_burn_rate", "firing"}
    # tenant a holds the even requests, and every slow one (i % 4 == 0): 50 of 100.
    groups = {g["group"]["tenant"]: g for g in report["groups"]}
    assert groups["a"]["bad_events"] == 50 and groups["b"]["bad_events"] == 0
    assert report["runs"][0]["attainment"] == 0.75
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_report_table_filter_and_bad_inputs(tmp_path, capsys, make_db):
    db = make_db(ROWS)
    spec = tmp_path / "slo.yaml"
    spec.write_text(latency_slo(target="0.9"))
    code, out, err = run(capsys, "slo", "report", "--db", str(db), "--slo", str(spec), "--where", "tenant=b")
    assert code == 0 and "fast-first-token" in out
    code, out, err = run(capsys, "slo", "report", "--db", str(db), "--slo", str(spec), "--where", "nope=1")
    assert code == 2 and "unknown --where column" in err
    code, out, err = run(capsys, "slo", "report", "--db", str(db), "--slo", str(spec), "--at", "yesterday")
    assert code == 2 and "ISO-8601" in err
    code, out, err = run(capsys, "slo", "report", "--db", str(tmp_path / "none.duckdb"), "--slo", str(spec))
    assert code == 2 and "does not exist" in err

"""Files of older vLLM and guidellm versions (tests/fixtures/vllm_versions, README.md there cites the source of
each layout), imported with the CLI as a user would, then used by `slo report` and `postmortem`.

The known answer (make_fixtures.py): the incident's requests wait 1.5-3 s for a first token (all bad under
the 1 s SLO) while its server (V1, two engines, OpenMetrics) reports 12 waiting and a 95 % full KV cache
after a restart with --max-num-seqs 2 and 512 KV blocks; the baseline (V0, Prometheus text) has none of it.
"""

from __future__ import annotations

import json
from pathlib import Path

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from tests.conftest import query_rows as _query

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_versions"
BENCH = FOLDER / "bench"
SLO = str(Path(__file__).resolve().parents[2] / "models" / "slos" / "llm-serving.yaml")


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _import_pair(db: Path, capsys) -> tuple[str, str]:
    code, out, err = _cli(["db", "import", "vllm-bench", str(BENCH / "benchmark_serving_0049e29_baseline.json"),
                           str(BENCH / "benchmark_serving_0049e29_incident.json"), "--db", str(db), "--json"], capsys)
    assert code == 0, err
    base, incident = (r["run_id"] for r in json.loads(out)["runs"])
    code, _, err = _cli(["db", "import", "prometheus", str(FOLDER / "v0_scrapes_baseline.prom"), "--run", base,
                         "--db", str(db)], capsys)
    assert code == 0, err
    code, _, err = _cli(["db", "import", "prometheus", str(FOLDER / "v1_openmetrics_incident"), "--run", incident,
                         "--db", str(db)], capsys)
    assert code == 0, err
    return base, incident


def test_v0_concatenated_text_and_v1_openmetrics_folder_import(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    base, incident = _import_pair(db, capsys)
    scrapes = dict(_query(db, "SELECT run_id, count(DISTINCT ts_ns) FROM metric_samples GROUP BY run_id"))
    assert scrapes == {base: 13, incident: 13}  # 13 `# scrape_time` scrapes; 13 files, half of them gzip
    names = {r[0] for r in _query(db, "SELECT DISTINCT metric FROM metric_samples")}
    assert {"vllm:gpu_cache_usage_perc", "vllm:num_requests_swapped", "vllm_kv_cache_usage_perc"} <= names
    assert not [n for n in names if n.endswith("_created")]
    settings = _query(db, "SELECT run_id, setting, value FROM run_settings WHERE setting IN "
                          "('num_kv_blocks', 'block_size', 'max_num_seqs') ORDER BY run_id, setting")
    assert sorted(settings) == sorted([(base, "block_size", 16.0), (base, "max_num_seqs", 16.0),
                                       (base, "num_kv_blocks", 4096.0), (incident, "block_size", 16.0),
                                       (incident, "max_num_seqs", 2.0), (incident, "num_kv_blocks", 512.0)])
    from causalsre.telemetry.importers.mapping import metric_mediators
    from causalsre.windows import parse_window

    con = connect_readonly(db)
    try:
        before = metric_mediators(con, parse_window(f"run:{base}", con))
        after = metric_mediators(con, parse_window(f"run:{incident}", con))
    finally:
        con.close()
    # The V0 name (gpu_cache_usage_perc) and V1's escaped OpenMetrics names feed the same graph nodes.
    assert (before["kv_utilization_at_arrival"] == 0.2).all() and (before["queue_depth_at_arrival"] == 0).all()
    assert (after["kv_utilization_at_arrival"] == 0.95).all()
    assert (after["queue_depth_at_arrival"] == 12).all()  # 6 + 6 over the two engines


def test_slo_report_and_postmortem_on_imported_older_versions(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    base, incident = _import_pair(db, capsys)
    for run, bad in ((base, 0), (incident, 40)):
        code, out, err = _cli(["slo", "report", "--db", str(db), "--slo", SLO, "--run", run, "--json"], capsys)
        assert code == 0, err
        report = json.loads(out)[0]
        assert (report["events"], report["bad_events"]) == (40, bad)
    code, out, err = _cli(["postmortem", "--db", str(db), "--slo", SLO, "--baseline", f"run:{base}",
                           "--incident", f"run:{incident}", "--seed", "0", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["total_change"] > 0.9  # 0 % bad -> 100 % bad
    changed = {c["name"]: (c["baseline"], c["incident"]) for c in result["changes"] if c["kind"] == "setting"}
    assert changed["max_num_seqs"] == (16.0, 2.0) and changed["num_kv_blocks"] == (4096.0, 512.0)


def test_summary_only_and_all_failed_results_say_what_is_missing(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    code, _, err = _cli(["db", "import", "vllm-bench", str(BENCH / "serve_summary_only.json"), "--db", str(db)], capsys)
    assert code == 2 and "summary-only result" in err and "--save-detailed" in err and err.count("\n") == 1
    code, _, err = _cli(["db", "import", "vllm-bench", str(BENCH / "all_failed.json"), "--db", str(db)], capsys)
    assert code == 2 and "all 40 requests failed" in err and "Cannot connect to host" in err
    assert err.count("\n") == 1 and not db.exists()
    code, _, err = _cli(["db", "import", "vllm-bench", str(BENCH / "all_failed.json"), "--db", str(db),
                         "--keep-failed"], capsys)
    assert code == 0, err
    assert _query(db, "SELECT status, count(*) FROM requests GROUP BY status") == [("error", 40)]


def test_guidellm_0_1_yaml_and_0_2_json_reports(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    guide = FOLDER / "guidellm"
    code, out, err = _cli(["db", "import", "guidellm", str(guide / "guidellm_0.1.0_report.yaml"),
                           str(guide / "guidellm_0.2.0_benchmarks.json"), "--db", str(db), "--json"], capsys)
    assert code == 0, err
    old, new = (r["run_id"] for r in json.loads(out)["runs"])
    config = json.loads(_query(db, "SELECT config_json FROM runs WHERE run_id = ?", [old])[0][0])
    assert config["errors_without_times"] == 1 and config["type_"] == "constant" and config["rate"] == 1.0
    rows = _query(db, "SELECT run_id, status, ttft_s FROM request_metrics ORDER BY run_id, request_id")
    assert [(s, round(t, 3)) for r, s, t in rows if r == old] == [("ok", 0.2)] * 6
    # v0.2: the arrival is scheduler_info.targeted_start_time, 0.05 s before the request went out.
    assert [(s, None if t is None or t != t else round(t, 3)) for r, s, t in rows if r == new] == \
        [("ok", 0.35)] * 4 + [("error", None)]
    totals = json.loads(_query(db, "SELECT config_json FROM runs WHERE run_id = ?", [new])[0][0])
    assert totals["request_totals"]["total"] == 5 and totals["sampled"] is False


def test_yaml_aliases_are_refused(tmp_path, capsys):
    bomb = tmp_path / "report.yaml"
    bomb.write_text("a: &a [1, 1, 1]\nb: &b [*a, *a, *a]\nbenchmarks: [*b, *b]\n")
    code, _, err = _cli(["db", "import", "guidellm", str(bomb), "--db", str(tmp_path / "t.duckdb")], capsys)
    assert code == 2 and "YAML aliases" in err and err.count("\n") == 1


def test_openmetrics_scrapes_concatenated_in_one_gzip_file_and_a_time_given_last(tmp_path, capsys):
    import gzip

    files = sorted((FOLDER / "v1_openmetrics_incident").glob("*.om"))[:3]
    body = "".join(f"# scrape_time {1772362800 + 10 * i}\n" + f.read_text() for i, f in enumerate(files))
    packed = tmp_path / "scrapes.om"  # gzip under a plain name: recognised by its bytes
    packed.write_bytes(gzip.compress(body.encode()))
    last = tmp_path / "one.prom"  # curl > f; echo "# scrape_time ..." >> f
    last.write_text('# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name="m"} 3\n'
                    "# scrape_time 2026-03-01T11:10:00Z\n")
    db = tmp_path / "t.duckdb"
    code, out, err = _cli(["db", "import", "prometheus", str(packed), str(last), "--db", str(db), "--json"], capsys)
    assert code == 0, err
    times = [r[0] for r in _query(db, "SELECT DISTINCT ts_ns FROM metric_samples ORDER BY 1")]
    assert times == [0, 10_000_000_000, 20_000_000_000, 600_000_000_000]
    config = json.loads(_query(db, "SELECT config_json FROM runs")[0][0])
    assert config["scrapes"] == 4 and config["files"] == 2


def test_a_gzipped_bench_result_imports_as_the_plain_one(tmp_path, capsys):
    import gzip

    plain = BENCH / "benchmark_serving_0049e29_baseline.json"
    packed = tmp_path / "result.json.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    rows = []
    for i, path in enumerate((plain, packed)):
        db = tmp_path / f"t{i}.duckdb"
        code, _, err = _cli(["db", "import", "vllm-bench", str(path), "--db", str(db)], capsys)
        assert code == 0, err
        rows.append(_query(db, "SELECT ttft_s, e2e_s, prompt_tokens FROM request_metrics ORDER BY request_id"))
    assert rows[0] == rows[1] and len(rows[0]) == 40


def test_sample_timestamps_are_milliseconds_in_text_and_seconds_in_openmetrics(tmp_path, capsys):
    # Prometheus /federate writes text with a millisecond timestamp per sample; OpenMetrics uses seconds.
    federate = tmp_path / "federate.txt"
    federate.write_text('# TYPE vllm:num_requests_waiting untyped\n'
                        'vllm:num_requests_waiting{instance="a:8000",job="vllm",model_name="m"} 3 1772359200000\n')
    openmetrics = tmp_path / "scrape.om"
    openmetrics.write_text('# TYPE vllm_num_requests_running gauge\n'
                           'vllm_num_requests_running{model_name="m"} 2 1772359200.5\n# EOF\n')
    db = tmp_path / "t.duckdb"
    code, _, err = _cli(["db", "import", "prometheus", str(federate), str(openmetrics), "--db", str(db)], capsys)
    assert code == 0, err
    rows = _query(db, "SELECT epoch_us(started_at) / 1e6 + ts_ns / 1e9, metric, value FROM metric_samples "
                      "JOIN runs USING (run_id) ORDER BY ts_ns")
    assert rows == [(1772359200.0, "vllm:num_requests_waiting", 3.0), (1772359200.5, "vllm_num_requests_running", 2.0)]

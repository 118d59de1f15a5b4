"""`db import prometheus`: prometheus_client text scrapes and a real Prometheus query_range into metric_samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prometheus"
SCRAPES = sorted(FIXTURES.glob("vllm-metrics-*.prom"))
QUERY_RANGE = FIXTURES / "query_range.json"


def _samples(db, where="TRUE"):
    con = connect_readonly(db)
    rows = con.execute(f"SELECT ts_ns, metric, labels_json, value FROM metric_samples WHERE {where} "
                       "ORDER BY ts_ns, metric, labels_json").fetchall()
    con.close()
    return rows


def test_text_scrapes_become_one_run(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "prometheus", *map(str, SCRAPES), "--db", str(db), "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    # Per scrape: waiting x2 engines, running, KV x2, preemptions, TTFT histogram (3 buckets, _count, _sum).
    assert run["kind"] == "import-prometheus" and run["metric_samples"] == 3 * 11
    rows = _samples(db)
    assert sorted({r[0] for r in rows}) == [0, 2_000_000_000, 4_000_000_000]  # names, names, # scrape_time
    assert not [r for r in rows if r[1].endswith("_created")]
    waiting = [(r[0], json.loads(r[2])["engine"], r[3]) for r in rows if r[1] == "vllm:num_requests_waiting"]
    assert waiting == [(0, "0", 0.0), (0, "1", 1.0), (2e9, "0", 1.0), (2e9, "1", 1.0), (4e9, "0", 2.0), (4e9, "1", 1.0)]
    buckets = [(json.loads(r[2])["le"], r[3]) for r in rows
               if r[1] == "vllm:time_to_first_token_seconds_bucket" and r[0] == 4e9]
    assert buckets == [("+Inf", 3.0), ("0.1", 0.0), ("1.0", 3.0)]
    assert [r[3] for r in rows if r[1] == "vllm:num_preemptions_total"] == [0.0, 1.0, 4.0]
    con = connect_readonly(db)
    assert str(con.execute("SELECT started_at FROM runs").fetchone()[0]) == "2026-01-01 00:00:01"
    con.close()


def test_real_prometheus_query_range(tmp_path):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "prometheus", str(QUERY_RANGE), "--db", str(db)]) == 0
    doc = json.loads(QUERY_RANGE.read_text())
    expected = sorted((s["metric"]["__name__"], float(v)) for s in doc["data"]["result"] for _, v in s["values"])
    rows = _samples(db)
    assert sorted((r[1], r[3]) for r in rows) == expected and len(rows) == 108
    labels = json.loads(rows[0][2])
    assert "__name__" not in labels and labels["job"] == "vllm" and labels["model_name"] == "tiny"
    first = min(point[0] for s in doc["data"]["result"] for point in s["values"])
    last = max(point[0] for s in doc["data"]["result"] for point in s["values"])
    assert max(r[0] for r in rows) == round((last - first) * 1e9)


def test_scrape_time_from_at(tmp_path):
    scrape = tmp_path / "metrics.txt"
    scrape.write_text(SCRAPES[0].read_text())
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "prometheus", str(scrape), "--at", "2026-03-01T12:00:00Z", "--db", str(db)]) == 0
    con = connect_readonly(db)
    assert str(con.execute("SELECT started_at FROM runs").fetchone()[0]) == "2026-03-01 12:00:00"
    con.close()


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name,text,extra,expected", [
    ("m.prom", "up 1\n", [], "no scrape time"),
    ("m-1767225601.prom", "this is { not a scrape\n", [], "not a Prometheus text scrape"),
    ("m-1767225601.prom", "# TYPE c_total counter\nc_total -3\n", [], "cannot be negative"),
    ("m-1767225601.prom", "", [], "is empty"),
    ("m.prom", "up 1\n", ["--at", "1767225601000"], "between 2000 and 2200"),
    ("q.json", '{"status": "error", "data": {}}', [], "not a successful"),
    ("q.json", '{"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}}', [], "scalar"),
    ("q.json", '{"status": "success", "data": {"resultType": "matrix", "result": '
               '[{"metric": {"__name__": "x"}, "values": [[1767225601000, "1"]]}]}}', [], "between 2000 and 2200"),
    ("q.json", '{"status": "success", "data": {"resultType": "matrix", "result": '
               '[{"metric": {"__name__": "x"}, "values": [[1767225601, "fast"]]}]}}', [], "not a number"),
    ("q.json", '{"status": ', [], "not valid JSON"),
])
def test_bad_files_change_nothing(tmp_path, capsys, name, text, extra, expected):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "prometheus", str(SCRAPES[0]), "--db", str(db)]) == 0
    before = db.read_bytes()
    capsys.readouterr()
    bad = _write(tmp_path, name, text)
    assert main(["db", "import", "prometheus", str(bad), *extra, "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.startswith("error: ") and err.count("\n") == 1
    assert db.read_bytes() == before


def test_non_finite_samples_are_skipped_and_counted(tmp_path):
    scrape = _write(tmp_path, "m-1767225601.prom", "a 1\nb NaN\nc +Inf\n")
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "prometheus", str(scrape), "--db", str(db)]) == 0
    assert [r[1] for r in _samples(db)] == ["a"]
    con = connect_readonly(db)
    assert con.execute("SELECT json_extract(config_json, '$.skipped_non_finite')::INT FROM runs").fetchone()[0] == 2
    con.close()


def test_at_needs_one_file_and_run_must_exist(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "prometheus", *map(str, SCRAPES[:2]), "--at", "1767225601", "--db", str(db)]) == 2
    assert "one file" in capsys.readouterr().err
    assert main(["db", "import", "prometheus", str(SCRAPES[0]), "--run", "nope", "--db", str(db)]) == 2
    assert "not in the database" in capsys.readouterr().err
    assert not db.exists()


def test_the_same_scrapes_twice_into_a_run_are_refused(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    bench = Path(__file__).resolve().parents[1] / "fixtures" / "vllm" / "bench_detailed_small.json"
    assert main(["db", "import", "vllm-bench", str(bench), "--db", str(db), "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["runs"][0]["run_id"]
    assert main(["db", "import", "prometheus", *map(str, SCRAPES), "--run", run_id, "--db", str(db)]) == 0
    before = db.read_bytes()
    capsys.readouterr()
    assert main(["db", "import", "prometheus", str(SCRAPES[1]), "--run", run_id, "--db", str(db)]) == 2
    assert "already has 11 of these metric samples" in capsys.readouterr().err
    assert db.read_bytes() == before


def _scrape(labels: list[str]) -> str:
    # Labels as vLLM V1 writes them (model_name, engine; vllm/v1/metrics/loggers.py), with the `instance` a
    # Prometheus /federate or query_range export of several targets adds.
    lines = ["# scrape_time 1772362800", "# TYPE vllm:num_requests_waiting gauge"]
    lines += [f"vllm:num_requests_waiting{{{label}}} {i + 1}.0" for i, label in enumerate(labels)]
    lines += ["# TYPE vllm:num_requests_running gauge"]
    lines += [f"vllm:num_requests_running{{{label}}} 2.0" for label in labels]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("labels, servers", [
    (['engine="0",model_name="llama"', 'engine="1",model_name="llama"'], 1),  # data parallel: one server
    (['engine="0",instance="a:8000",model_name="llama"', 'engine="1",instance="a:8000",model_name="llama"',
      'engine="0",instance="b:8000",model_name="llama"'], 2),
    (['engine="0",model_name="llama"', 'engine="0",model_name="qwen"', 'engine="0",model_name="mistral"'], 3),
])
def test_scrapes_of_several_servers_say_their_queues_would_be_added_up(tmp_path, capsys, labels, servers):
    path = tmp_path / "scrape.prom"
    path.write_text(_scrape(labels))
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "prometheus", str(path), "--db", str(db), "--json"]) == 0
    notes = [n for n in json.loads(capsys.readouterr().out)["runs"][0].get("notes", []) if "servers" in n]
    if servers == 1:
        assert notes == []
    else:
        (note,) = notes
        assert note.startswith(f"the scrapes hold {servers} servers") and "its own run" in note
        assert ("instance (2 values)" in note) == (servers == 2) and ("model_name (3 values)" in note) == (servers == 3)
    assert len(_samples(db)) == 2 * len(labels)  # kept as scraped: the note loses nothing


def _go_g(value: float) -> str:
    # Go's %g (shortest digits; exponent form from 1e+06 or below 1e-04, two exponent digits at least).
    import numpy as np

    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-4):
        return np.format_float_scientific(value, unique=True, trim="-", exp_digits=2)  # 1.5e+09, 2e-05
    return np.format_float_positional(value, unique=True, trim="-")


@pytest.mark.parametrize("command", ["dump", "dump-openmetrics"])
def test_a_promtool_tsdb_dump_imports_as_the_scrapes_it_came_from(tmp_path, capsys, command):
    # Real vLLM 0.32 scrapes, then the lines `promtool tsdb dump` prints for the same samples once Prometheus
    # stored them (prometheus/cmd/promtool/tsdb.go formatSeriesSet: `fmt.Printf("%s %g %d\n", lbs, val, ts)`,
    # lbs as labels.Labels.String() with the target's instance and job, ts in epoch ms; series by series), or
    # `dump-openmetrics` (formatSeriesSetOpenMetrics: `name{a="b",...} %g %.3f` seconds, then `# EOF`).
    scrapes = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_real" / "baseline" / "scrapes"
    direct = tmp_path / "direct.duckdb"
    assert main(["db", "import", "prometheus", str(scrapes), "--db", str(direct)]) == 0
    con = connect_readonly(direct)
    t0 = con.execute("SELECT epoch_us(started_at) FROM runs").fetchone()[0] * 1000
    con.close()
    expected = _samples(direct)
    lines = []
    for ts_ns, metric, labels, value in sorted(expected, key=lambda r: (r[1], r[2], r[0])):
        stored = {**json.loads(labels), "instance": "localhost:8000", "job": "vllm"}
        ms = (t0 + ts_ns) // 1_000_000
        if command == "dump":
            text = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted({"__name__": metric, **stored}.items()))
            lines.append(f"{{{text}}} {_go_g(value)} {ms}\n")
        else:
            text = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(stored.items()))
            lines.append(f"{metric}{{{text}}} {_go_g(value)} {ms / 1000:.3f}\n")
    dump = tmp_path / "dump.txt"
    dump.write_text("".join(lines) + ("# EOF\n" if command == "dump-openmetrics" else ""))
    db = tmp_path / "t.duckdb"
    capsys.readouterr()
    assert main(["db", "import", "prometheus", str(dump), "--db", str(db)]) == 0, capsys.readouterr().err
    con = connect_readonly(db)
    t0_dump = con.execute("SELECT epoch_us(started_at) FROM runs").fetchone()[0] * 1000
    con.close()
    got = [(round((t0_dump + ts) / 1e6), m,
            json.dumps({k: v for k, v in json.loads(lab).items() if k not in ("instance", "job")}), v)
           for ts, m, lab, v in _samples(db)]
    # On the wall clock, to the millisecond the TSDB keeps (the scrape times had finer digits).
    assert sorted(got) == sorted(((t0 + ts) // 1_000_000, m, lab, v) for ts, m, lab, v in expected)
    assert len(expected) > 300


def test_a_damaged_tsdb_dump_line_is_named(tmp_path, capsys):
    dump = tmp_path / "dump.txt"
    dump.write_text('{__name__="vllm:num_requests_waiting", engine="0"} 3 1772362800000\n'
                    '{__name__="vllm:x", engine="0"} {count:2, sum:0.5} 1772362801000\n')
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "prometheus", str(dump), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "dump.txt line 2 is not a `promtool tsdb dump` sample" in err and err.count("\n") == 1
    assert not db.exists()

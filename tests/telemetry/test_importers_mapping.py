"""metric_mediators: scraped vLLM metrics joined as-of onto requests, checked against hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from causalsre.telemetry.importers.mapping import MEDIATORS, VLLM_METRIC_NODES, mapping_markdown, metric_mediators
from causalsre.windows import parse_window

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SCRAPES = sorted((FIXTURES / "prometheus").glob("vllm-metrics-*.prom"))
BENCH = FIXTURES / "vllm" / "bench_detailed_small.json"


def _import(db, *args) -> None:
    assert main(["db", "import", *map(str, args), "--db", str(db)]) == 0


def _run_id(db, kind: str) -> str:
    con = connect_readonly(db)
    (run_id,) = con.execute("SELECT run_id FROM runs WHERE kind = ?", [kind]).fetchone()
    con.close()
    return run_id


def _mediators(db, run_id, **options):
    con = connect_readonly(db)
    try:
        return metric_mediators(con, parse_window(f"run:{run_id}", con), **options)
    finally:
        con.close()


def _bench_with_scrapes(tmp_path):
    db = tmp_path / "t.duckdb"
    _import(db, "vllm-bench", BENCH)
    run_id = _run_id(db, "import-vllm-bench")
    _import(db, "prometheus", *SCRAPES, "--run", run_id)
    return db, run_id


def test_as_of_values_at_arrival(tmp_path):
    # Bench arrivals at 0, 2, 3.5, 6, 8 s; scrapes at 1, 3, 5 s with waiting 0+1, 1+1, 2+1 (two engines),
    # KV usage 0, 0.1, 0.2 (mean over engines), running 1, 2, 3 (make_scrapes.py).
    db, run_id = _bench_with_scrapes(tmp_path)
    frame = _mediators(db, run_id)
    assert list(frame.columns) == ["run_id", "request_id", *MEDIATORS, "sample_age_s"]
    assert frame["request_id"].tolist() == [0, 1, 2, 3, 4]
    assert frame["queue_depth_at_arrival"].isna().tolist() == [True, False, False, False, False]  # nothing before 1 s
    assert frame["queue_depth_at_arrival"].tolist()[1:] == [1, 2, 3, 3]
    assert frame["kv_utilization_at_arrival"].tolist()[1:] == pytest.approx([0.0, 0.1, 0.2, 0.2])
    assert frame["mean_batch_size"].tolist()[1:] == pytest.approx([1, 2, 3, 3])  # no scrape inside: at arrival
    assert frame["num_preemptions"].tolist()[1:] == pytest.approx([0, 0, 0, 0])
    assert frame["sample_age_s"].tolist()[1:] == pytest.approx([1.0, 0.5, 1.0, 3.0])
    stale = _mediators(db, run_id, max_age_s=2.0)
    assert math.isnan(stale["queue_depth_at_arrival"].iloc[4]) and stale["queue_depth_at_arrival"].iloc[3] == 3


def test_values_over_a_requests_life(tmp_path):
    # Request A: 0.5 s to 5.5 s spans all three scrapes: mean running (1 + 2 + 3) / 3 = 2; preemptions rose
    # 0 -> 4 during it, shared among 2 running -> 2. Request B: 1.5 s to 4.0 s sees the 3 s scrape only:
    # running 2; preemptions 0 -> 1 -> 0.5 for it.
    csv = tmp_path / "requests.csv"
    csv.write_text("arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\n"
                   "2026-01-01T00:00:00.5Z,0.1,5.0,10,20,ok\n2026-01-01T00:00:01.5Z,0.1,2.5,10,20,ok\n")
    db = tmp_path / "t.duckdb"
    _import(db, "requests", csv)
    run_id = _run_id(db, "import-requests")
    _import(db, "prometheus", *SCRAPES, "--run", run_id)
    frame = _mediators(db, run_id)
    assert frame["mean_batch_size"].tolist() == pytest.approx([2.0, 2.0])
    assert frame["num_preemptions"].tolist() == pytest.approx([2.0, 0.5])
    assert math.isnan(frame["queue_depth_at_arrival"].iloc[0]) and frame["queue_depth_at_arrival"].iloc[1] == 1


def test_escaped_names_and_counter_restarts(tmp_path):
    # An OpenMetrics scrape writes vllm_num_preemptions_total; a drop from 4 to 1 is a restart: +1, not -3.
    folder = tmp_path / "scrapes"
    folder.mkdir()
    for path, value in zip(SCRAPES, (0, 4, 1)):
        (folder / path.name).write_text("".join(
            line for line in path.read_text().splitlines(keepends=True) if not line.startswith("vllm:num_preemptions")
        ) + f"# TYPE vllm_num_preemptions_total counter\nvllm_num_preemptions_total{{engine=\"0\"}} {value}\n")
    csv = tmp_path / "requests.csv"
    csv.write_text("arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\n2026-01-01T00:00:00.5Z,0.1,5.0,10,20,ok\n")
    db = tmp_path / "t.duckdb"
    _import(db, "requests", csv)
    run_id = _run_id(db, "import-requests")
    _import(db, "prometheus", *sorted(folder.iterdir()), "--run", run_id)
    assert _mediators(db, run_id)["num_preemptions"].tolist() == pytest.approx([(4 + 1) / 2.0])


def test_a_run_without_samples_gives_nulls(tmp_path):
    db = tmp_path / "t.duckdb"
    _import(db, "vllm-bench", BENCH)
    frame = _mediators(db, _run_id(db, "import-vllm-bench"))
    assert len(frame) == 5 and frame[list(MEDIATORS)].isna().all().all()


def test_mapping_is_documented_once():
    page = (Path(__file__).resolve().parents[2] / "docs" / "importers" / "vllm-mapping.md").read_text()
    assert mapping_markdown() in page, "docs/importers/vllm-mapping.md drifted: paste mapping_markdown() into it"
    assert {m.node for m in VLLM_METRIC_NODES if m.joined} == set(MEDIATORS)

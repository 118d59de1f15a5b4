"""Preemptions of an imported run come from the server's ``vllm:num_preemptions_total`` when its file counted
none: importers write 0 for "not in the file" (requests.num_preemptions is NOT NULL), which would hide a KV
cache that preempts from the postmortem (causal/table.py ``_scraped_preemptions``). A file that counted them
per request keeps its own counts.

The scrapes are tests/fixtures/prometheus (tests/telemetry/test_importers_mapping.py): preemptions rise
0 -> 1 -> 4 at 1, 3, 5 s with 1, 2, 3 running. Request A (0.5-5.5 s) sees +4 shared among 2 running on average:
2; request B (1.5-4.0 s) sees +1 shared among 2: 0.5.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from causalsre.causal import build_analysis_table, load_graph
from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from causalsre.windows import parse_window

SCRAPES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "prometheus").glob("vllm-metrics-*.prom"))


def _table(tmp_path: Path, capsys, preemptions: str | None) -> list[float]:
    column = ",num_preemptions" if preemptions else ""
    values = preemptions.split(",") if preemptions else ["", ""]
    csv = tmp_path / "requests.csv"
    csv.write_text(f"arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status{column}\n"
                   f"2026-01-01T00:00:00.5Z,0.1,5.0,10,20,ok{',' + values[0] if column else ''}\n"
                   f"2026-01-01T00:00:01.5Z,0.1,2.5,10,20,ok{',' + values[1] if column else ''}\n")
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "requests", str(csv), "--db", str(db), "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["runs"][0]["run_id"]
    assert main(["db", "import", "prometheus", *map(str, SCRAPES), "--run", run_id, "--db", str(db)]) == 0
    con = connect_readonly(db)
    try:
        frame = build_analysis_table(con, None, window=parse_window(f"run:{run_id}", con), graph=load_graph())
    finally:
        con.close()
    return frame["num_preemptions"].tolist()


def test_a_file_without_preemptions_takes_the_servers_counter(tmp_path, capsys):
    assert _table(tmp_path, capsys, None) == pytest.approx([2.0, 0.5])


def test_a_file_that_counted_preemptions_keeps_its_counts(tmp_path, capsys):
    assert _table(tmp_path, capsys, "3,0") == pytest.approx([3.0, 0.0])

"""`db import otel`: OTLP/JSON traces made with the real opentelemetry-sdk become requests with known latencies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly

TRACES = Path(__file__).resolve().parents[1] / "fixtures" / "otel" / "traces.otlp.json"


def test_vllm_and_genai_spans_become_requests(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "otel", str(TRACES), "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"][0]["requests"] == 4
    con = connect_readonly(db)
    rows = con.execute("SELECT arrival_ts, queue_s, ttft_s, tpot_s, e2e_s, prompt_tokens, output_tokens, status, "
                       "finish_reason, attributes FROM request_metrics ORDER BY arrival_ns").fetchall()
    config = json.loads(con.execute("SELECT config_json FROM runs").fetchone()[0])
    con.close()
    assert config["skipped_spans"] == 1  # the HTTP span
    vllm0, vllm1, semconv, failed = rows
    assert str(vllm0[0]) == "2026-01-01 00:00:00"
    assert vllm0[1:5] == pytest.approx((0.2, 0.5, (2.0 - 0.5) / 20, 2.0)) and vllm0[5:7] == (10, 21)
    assert vllm1[1:5] == pytest.approx((0.0, 0.25, 0.1, 1.25)) and vllm1[8] == "stop"
    assert json.loads(vllm1[9]) == {"model": "tiny", "service": "vllm", "span": "llm_request"}
    assert semconv[1] is None and semconv[2] is None and semconv[4] == pytest.approx(1.5)
    assert semconv[5:9] == (7, 4, "ok", "length")
    assert failed[7] == "error" and failed[8] == "timeout" and failed[2] is None


def _mutated(tmp_path, change):
    doc = json.loads(TRACES.read_text())
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    change(spans[0])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


def _set(key, value):
    def change(span):
        for item in span["attributes"]:
            if item["key"] == key:
                item["value"] = value
    return change


@pytest.mark.parametrize("change,expected", [
    (_set("gen_ai.latency.e2e", {"doubleValue": -1.0}), "below 0"),
    (_set("gen_ai.latency.e2e", {"doubleValue": "NaN"}), "not a finite number"),
    (_set("gen_ai.usage.prompt_tokens", {"intValue": "ten"}), "not an integer"),
    (_set("gen_ai.usage.prompt_tokens", {"intValue": "-3"}), "below 0"),
    (lambda s: s.__setitem__("startTimeUnixNano", "1767225600000"), "between 2000 and 2200"),
    (lambda s: s.__setitem__("endTimeUnixNano", "1767225599000000000"), "ends before it starts"),
    (lambda s: s.__setitem__("startTimeUnixNano", "soon"), "not integer nanoseconds"),
])
def test_bad_spans_change_nothing(tmp_path, capsys, change, expected):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "otel", str(TRACES), "--db", str(db)]) == 0
    before = db.read_bytes()
    capsys.readouterr()
    assert main(["db", "import", "otel", str(_mutated(tmp_path, change)), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.startswith("error: ") and err.count("\n") == 1
    assert db.read_bytes() == before


@pytest.mark.parametrize("text,expected", [
    ('{"resourceMetrics": []}', "no resourceSpans"),
    ('{"resourceSpans": []}', "no LLM request spans"),
    ("[1, 2]", "no resourceSpans"),
])
def test_not_traces(tmp_path, capsys, text, expected):
    bad = tmp_path / "x.json"
    bad.write_text(text)
    assert main(["db", "import", "otel", str(bad), "--db", str(tmp_path / "t.duckdb")]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "t.duckdb").exists()


def test_collector_file_exporter_lines(tmp_path):
    # The Collector's file exporter writes one ExportTraceServiceRequest per line.
    doc = json.loads(TRACES.read_text())
    later = json.loads(TRACES.read_text())  # the next batch: other spans (their own ids)
    for resource in later["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                span["spanId"] = "f" + span["spanId"][1:]
    lines = tmp_path / "traces.jsonl"
    lines.write_text(json.dumps(doc) + "\n" + json.dumps(later) + "\n")
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "otel", str(lines), "--db", str(db)]) == 0
    con = connect_readonly(db)
    assert con.execute("SELECT count(*) FROM requests").fetchone()[0] == 8
    con.close()
    # The same batch written twice is one set of requests exported twice: refused, never counted double
    # (before round 5 it imported 8 requests from 4).
    twice = tmp_path / "twice.jsonl"
    twice.write_text(json.dumps(doc) + "\n" + json.dumps(doc) + "\n")
    assert main(["db", "import", "otel", str(twice), "--db", str(tmp_path / "u.duckdb")]) == 2
    assert not (tmp_path / "u.duckdb").exists()

"""`db import vllm-log`: vLLM server logs of every line format (0.4 to 0.32), built from vLLM's own format strings.

The lines below are written the way vLLM's loggers write them (vllm/logger.py's formats; the stats line of
vllm/engine/metrics.py for V0 and vllm/v1/metrics/loggers.py for V1; the start-up lines of the API server
and engine); the real 0.32 log is tests/telemetry/test_importers_vllm_log_real.py.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from causalsre.telemetry.importers import vllm_log

BENCH = Path(__file__).resolve().parents[1] / "fixtures" / "vllm" / "bench_detailed_small.json"  # 2026-01-01T00:00:00Z

V1_032 = "(APIServer pid=7) INFO {d} [{f}] {m}"
V1_08 = "INFO {d} [{f}] {m}"
V0 = "INFO {d} {f}] {m}"


def stats_v1(running, waiting, kv, preemptions=None, engine="Engine 000: ", device="GPU"):
    extra = f"Preemptions: {preemptions}, " if preemptions is not None else ""
    return (f"{engine}Avg prompt throughput: 120.5 tokens/s, Avg generation throughput: 30.0 tokens/s, "
            f"Running: {running} reqs, Waiting: {waiting} reqs, {extra}{device} KV cache usage: {kv:.1f}%, "
            "Prefix cache hit rate: 0.0%")


def stats_v0(running, pending, gpu, swapped=0):
    return (f"Avg prompt throughput: 200.0 tokens/s, Avg generation throughput: 50.1 tokens/s, Running: {running} "
            f"reqs, Swapped: {swapped} reqs, Pending: {pending} reqs, GPU KV cache usage: {gpu:.1f}%, "
            "CPU KV cache usage: 0.0%.")


def start_032(day_time, max_num_seqs):
    return [
        V1_032.format(d=day_time, f="api_utils.py:347", m=" ▄▄ ▄█ █     █     █ ▀▄▀ █  version 0.32.0"),
        V1_032.format(d=day_time, f="api_utils.py:286", m="non-default args: {'model': 'm', 'served_model_name': "
                      f"['chat'], 'max_num_seqs': {max_num_seqs}, 'enable_chunked_prefill': True}}"),
        f"(EngineCore pid=9) INFO {day_time} [core.py:133] Initializing a V1 LLM engine (v0.32.0) with config: "
        "model='m', dtype=torch.bfloat16, max_seq_len=4096, served_model_name=chat, enable_prefix_caching=True, "
        "enable_chunked_prefill=True, compilation_config={'mode': <CompilationMode.NONE: 0>, 'x': [1, 2]}",
        f"(APIServer pid=7) INFO {day_time} [scheduler.py:307] Chunked prefill is enabled with max_num_batched_tokens=2048.",
        f"(EngineCore pid=9) INFO {day_time} [kv_cache_utils.py:2327] GPU KV cache size: 65,536 tokens, Maximum "
        "concurrency for 4,096 tokens per request: 16.00x",
    ]


def write(tmp_path, lines, name="vllm.log", compress=False) -> Path:
    path = tmp_path / name
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_v1_032_stats_become_the_prometheus_series_and_a_restart_a_new_configuration(tmp_path):
    lines = [*start_032("12-03 04:00:00", 8),
             V1_032.format(d="12-03 04:00:10", f="loggers.py:335", m=stats_v1(8, 3, 42.5, preemptions=2)),
             'INFO:     127.0.0.1:5000 - "POST /v1/completions HTTP/1.1" 200 OK',
             'INFO:     127.0.0.1:5000 - "POST /v1/completions HTTP/1.1" 400 Bad Request',
             V1_032.format(d="12-03 04:00:20", f="loggers.py:335", m=stats_v1(8, 5, 50.0)),
             *start_032("12-03 04:05:00", 2),
             V1_032.format(d="12-03 04:05:10", f="loggers.py:335", m=stats_v1(2, 9, 12.0, preemptions=1))]
    batch = vllm_log.parse([write(tmp_path, lines)], year=2026)
    s = batch.samples
    assert set(s["metric"]) == {"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                                "vllm:num_preemptions_total", "vllm:avg_prompt_throughput_toks_per_s",
                                "vllm:avg_generation_throughput_toks_per_s"}
    assert set(s["labels_json"]) == {json.dumps({"engine": "0", "model_name": "chat"})}  # as /metrics labels them
    series = lambda name: s[s["metric"] == name].sort_values("ts_s")["value"].tolist()  # noqa: E731
    assert series("vllm:num_requests_waiting") == [3, 5, 9]
    assert series("vllm:kv_cache_usage_perc") == [0.425, 0.5, 0.12]  # a fraction, as vLLM exposes it
    assert series("vllm:num_preemptions_total") == [2, 2, 1]  # summed per process: the restart resets it
    t0 = s["ts_s"].min()
    assert t0 == pytest.approx(1796270410.0)  # 2026-12-03 04:00:10 UTC
    settings = batch.settings.sort_values(["setting", "ts_s"])
    rows = [(r.setting, r.ts_s - t0, r.value) for r in settings.itertuples()]
    assert ("max_num_seqs", -10.0, 8.0) in rows and ("max_num_seqs", 290.0, 2.0) in rows
    assert ("max_num_batched_tokens", -10.0, 2048.0) in rows and ("enable_chunked_prefill", -10.0, 1.0) in rows
    assert [(r.key, r.kind, r.value) for r in batch.events.itertuples()] == [
        ("restart", "deploy", "max_num_seqs 8 -> 2")]
    assert batch.config["http"] == {"POST /v1/completions 200": 1, "POST /v1/completions 400": 1}
    assert any("1 of 2 responses with status 400" in n for n in batch.notes)
    assert any("every ~10 s" in n for n in batch.notes)  # coarse: the join leaves the gauges unmeasured


def test_v0_lines_of_0_6(tmp_path):
    lines = [
        V0.format(d="10-17 09:00:00", f="api_server.py:528", m="vLLM API server version 0.6.3"),
        V0.format(d="10-17 09:00:00", f="api_server.py:529",
                  m="args: Namespace(host=None, port=8000, model='facebook/opt-125m', served_model_name=None, "
                    "block_size=16, max_num_batched_tokens=None, max_num_seqs=256, enable_chunked_prefill=None, "
                    "num_gpu_blocks_override=None, scheduling_policy='fcfs', middleware=[], tokenizer=None)"),
        V0.format(d="10-17 09:00:01", f="llm_engine.py:237",
                  m="Initializing an LLM engine (v0.6.3) with config: model='facebook/opt-125m', max_seq_len=2048, "
                    "enable_chunked_prefill=False, enable_prefix_caching=False, use_async_output_proc=True"),
        V0.format(d="10-17 09:00:05", f="gpu_executor.py:122", m="# GPU blocks: 2048, # CPU blocks: 512"),
        V0.format(d="10-17 09:01:00", f="metrics.py:349", m=stats_v0(4, 2, 90.0, swapped=1)),
        "WARNING 10-17 09:01:03 scheduler.py:1481] Sequence group 12 is preempted by PreemptionMode.RECOMPUTE mode "
        "because there is not enough KV cache space. This can affect the end-to-end performance. Increase "
        "gpu_memory_utilization or tensor_parallel_size to provide more KV cache memory. "
        "total_num_cumulative_preemption=51",
        V0.format(d="10-17 09:01:05", f="metrics.py:349", m=stats_v0(3, 0, 40.0)),
    ]
    batch = vllm_log.parse([write(tmp_path, lines)], year=2024)
    s = batch.samples
    last = {m: g.sort_values("ts_s")["value"].iloc[0] for m, g in s.groupby("metric")}
    assert last["vllm:num_requests_waiting"] == 2 and last["vllm:num_requests_swapped"] == 1  # Pending -> waiting
    assert last["vllm:gpu_cache_usage_perc"] == 0.9 and last["vllm:cpu_cache_usage_perc"] == 0.0
    assert last["vllm:num_preemptions_total"] == 51  # the warning's cumulative count
    assert set(s["labels_json"]) == {"{}"}  # V0 names no engine; served_model_name=None
    settings = {r.setting: (r.value, None if pd.isna(r.value_text) else r.value_text) for r in batch.settings.itertuples()}
    # Namespace lists every flag, defaults too; the pool is the engine's own count
    assert settings["max_num_seqs"] == (256.0, None) and settings["num_kv_blocks"][0] == 2048.0
    assert settings["block_size"][0] == 16.0 and settings["policy"][1] == "fcfs"
    assert settings["enable_chunked_prefill"][0] == 0.0 and batch.events is None
    assert any("enable_prefix_caching=False" in n for n in batch.notes)


def test_v1_0_8_lines_without_process_prefix_or_preemption_counts(tmp_path):
    lines = [V1_08.format(d="04-10 12:00:00", f="api_server.py:1043", m="vLLM API server version 0.8.4"),
             V1_08.format(d="04-10 12:00:00", f="api_server.py:1044",
                          m="args: Namespace(model='m', max_num_seqs=64, max_num_batched_tokens=8192)"),
             V1_08.format(d="04-10 12:00:10", f="loggers.py:87", m=stats_v1(3, 0, 5.0)),
             V1_08.format(d="04-10 12:00:20", f="loggers.py:87", m=stats_v1(1, 0, 2.0))]
    batch = vllm_log.parse([write(tmp_path, lines, "v.log.gz", compress=True)], year=2025)
    assert "vllm:num_preemptions_total" not in set(batch.samples["metric"])  # 0.8 never says them: unknown, not 0
    settings = {r.setting: r.value for r in batch.settings.itertuples()}
    assert settings == {"max_num_seqs": 64.0, "max_num_batched_tokens": 8192.0}


def test_aggregated_data_parallel_line_and_colours(tmp_path):
    coloured = ("\x1b[0;36m(APIServer pid=7)\x1b[0;0m INFO \x1b[90m12-03 04:00:10\x1b[0m \x1b[90m[loggers.py:335]"
                "\x1b[0m " + stats_v1(16, 4, 30.0, engine="2 Engines Aggregated: "))
    batch = vllm_log.parse([write(tmp_path, ["Dec 03 04:00:10 host vllm[7]: " + coloured])], year=2026)
    assert set(batch.samples["labels_json"]) == {json.dumps({"engine": "all"})}
    assert batch.samples.set_index("metric").loc["vllm:num_requests_running", "value"] == 16
    assert any("no start of the server" in n for n in batch.notes)


def test_year_rolls_over_and_the_offset_moves_the_clock(tmp_path):
    lines = [V1_08.format(d="12-31 23:59:55", f="loggers.py:87", m=stats_v1(1, 0, 1.0)),
             V1_08.format(d="01-01 00:00:05", f="loggers.py:87", m=stats_v1(1, 0, 1.0))]
    batch = vllm_log.parse([write(tmp_path, lines)], year=2025, offset="+02:00")
    times = sorted(set(batch.samples["ts_s"]))
    assert times[1] - times[0] == 10.0
    assert times[0] == pytest.approx(1767225595.0 - 7200)  # 2025-12-31T23:59:55+02:00 (23:59:55Z is 1767225595)


def test_attached_log_takes_the_year_and_clock_of_the_run(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "vllm-bench", str(BENCH), "--db", str(db), "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["runs"][0]["run_id"]
    lines = [*start_032("12-31 23:59:50", 4),  # the run began 2026-01-01 00:00:00: the log is 2025's
             V1_032.format(d="01-01 00:00:02", f="loggers.py:335", m=stats_v1(2, 1, 10.0)),
             *start_032("01-01 00:00:04", 1),
             V1_032.format(d="01-01 00:00:06", f="loggers.py:335", m=stats_v1(1, 3, 10.0))]
    log = write(tmp_path, lines)
    assert main(["db", "import", "vllm-log", str(log), "--db", str(db), "--run", run_id, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["runs"][0]
    assert report["attached"] and report["operator_events"] == 1
    con = connect_readonly(db)
    waiting = con.execute("SELECT ts_ns, value FROM metric_samples WHERE metric = 'vllm:num_requests_waiting' "
                          "ORDER BY ts_ns").fetchall()
    seqs = con.execute("SELECT start_ns, value FROM run_settings WHERE setting = 'max_num_seqs' ORDER BY start_ns").fetchall()
    event = con.execute("SELECT ts_ns, key, value FROM operator_events").fetchall()
    con.close()
    assert waiting == [(2_000_000_000, 1.0), (6_000_000_000, 3.0)]
    assert seqs == [(-10_000_000_000, 4.0), (4_000_000_000, 1.0)]
    assert event == [(4_000_000_000, "restart", "max_num_seqs 4 -> 1")]
    before = db.read_bytes()
    assert main(["db", "import", "vllm-log", str(log), "--db", str(db), "--run", run_id]) == 2  # twice: refused
    assert "already has" in capsys.readouterr().err and db.read_bytes() == before


@pytest.mark.parametrize("lines,args,expected", [
    ([V1_08.format(d="04-10 12:00:10", f="loggers.py:87", m=stats_v1(1, 0, 1.0))], [], "have no year"),
    (start_032("12-03 04:00:00", 4), ["--year", "2026"], "1 start(s) of the server but no stats line"),
    (["Traceback (most recent call last):", "  File x", "KeyError: 1"], ["--year", "2026"], "no line is a vLLM log line"),
    ([V1_08.format(d="04-10 12:00:10", f="loggers.py:87", m=stats_v1(1, 0, 1.0))], ["--utc-offset", "Paris"],
     "is not an offset"),
    ([*start_032("12-03 04:00:00", 0), V1_08.format(d="12-03 04:00:10", f="loggers.py:87", m=stats_v1(1, 0, 1.0))],
     ["--year", "2026"], "outside max_num_seqs's range"),
])
def test_refused_in_one_line_and_nothing_written(tmp_path, capsys, lines, args, expected):
    db = tmp_path / "new.duckdb"
    assert main(["db", "import", "vllm-log", str(write(tmp_path, lines)), "--db", str(db), *args]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not db.exists()


def test_damaged_lines_are_skipped_and_said(tmp_path):
    good = V1_08.format(d="04-10 12:00:10", f="loggers.py:87", m=stats_v1(1, 0, 1.0))
    lines = [good,
             V1_08.format(d="13-45 12:00:20", f="loggers.py:87", m=stats_v1(1, 0, 1.0)),  # no such date
             V1_08.format(d="04-10 12:00:30", f="loggers.py:87", m=stats_v1(1, 0, 180.0)),  # 180 % of the pool
             V1_08.format(d="04-10 12:00:40", f="loggers.py:87", m="Engine 000: Avg prompt throughput: 1.0 tok"),
             "\x00\x00\xff binary garbage",
             V1_08.format(d="04-10 12:00:50", f="loggers.py:87", m=stats_v1(2, 0, 1.0))]
    path = tmp_path / "d.log"
    path.write_bytes("\n".join(lines).encode("utf-8", errors="surrogateescape").replace(b"\xc3\xbf", b"\xff"))
    batch = vllm_log.parse([path], year=2025)
    assert batch.config["stats_lines"] == 2
    text = " | ".join(batch.notes)
    assert "does not exist" in text and "impossible values" in text and "cut short" in text
    assert "d.log line 4" in text


def test_non_default_args_holding_object_reprs_still_give_the_flags(tmp_path):
    lines = [V1_032.format(d="12-03 04:00:00", f="api_utils.py:286",
                           m="non-default args: {'model': 'm', 'max_num_seqs': 32, 'compilation_config': "
                             "{'mode': <CompilationMode.NONE: 0>}, 'num_gpu_blocks_override': 512}"),
             V1_032.format(d="12-03 04:00:10", f="loggers.py:335", m=stats_v1(1, 0, 1.0))]
    batch = vllm_log.parse([write(tmp_path, lines)], year=2026)
    assert {r.setting: r.value for r in batch.settings.itertuples()} == {"max_num_seqs": 32.0, "num_kv_blocks": 512.0}


def test_a_flag_left_out_at_a_restart_is_unknown_from_then_not_kept(tmp_path):
    lines = [*start_032("12-03 04:00:00", 8),
             V1_032.format(d="12-03 04:00:10", f="loggers.py:335", m=stats_v1(1, 0, 1.0)),
             V1_032.format(d="12-03 04:01:00", f="api_utils.py:286", m="non-default args: {'model': 'm'}"),
             V1_032.format(d="12-03 04:01:10", f="loggers.py:335", m=stats_v1(1, 0, 1.0))]
    batch = vllm_log.parse([write(tmp_path, lines)], year=2026)
    seqs = batch.settings[batch.settings["setting"] == "max_num_seqs"].sort_values("ts_s")["value"].tolist()
    assert seqs[0] == 8.0 and seqs[1] != seqs[1]  # NaN: vLLM's default, which the log does not say
    assert any("does not name max_num_seqs" in n for n in batch.notes)

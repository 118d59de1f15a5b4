"""`db import vllm-log` on a real vLLM 0.32.0 CPU server log with two restarts (tests/fixtures/vllm_log/real-0.32).

Recorded by ``python -m harness.peers.reallogs OUT --calibration-from tests/fixtures/vllm_real/cases.json``:
one ``vllm.log`` over three starts of the server (``--max-num-seqs 4``; ``--max-num-seqs 1``;
``--max-num-seqs 4 --num-gpu-blocks-override 34 --enable-log-requests``) and the ``vllm bench serve`` results of
the baseline and of the ``--max-num-seqs 1`` server (cases.json has each case's flags and load). No vLLM needed.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from causalsre.telemetry.importers import vllm_log

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_log" / "real-0.32"
LOG = FOLDER / "vllm.log.gz"
SLO = str(Path(__file__).resolve().parents[2] / "models" / "slos" / "llm-serving.yaml")


def test_the_real_log_gives_each_start_its_settings_and_the_restarts_as_events():
    batch = vllm_log.parse([LOG], year=2026)
    assert [s["version"] for s in batch.config["starts"]] == ["0.32.0"] * 3
    assert batch.config["stats_lines"] == 28 and batch.config["damaged_lines"] == {} and batch.config["errors"] == []
    timeline = {}
    for row in batch.settings.sort_values("ts_s").itertuples():
        timeline.setdefault(row.setting, []).append(row.value if row.value == row.value else row.value_text)
    assert timeline["max_num_seqs"] == [4.0, 1.0, 4.0]
    assert timeline["num_kv_blocks"] == [256.0, 34.0]  # the flag, and 8,192 / 32 tokens of the logged pool
    assert timeline["max_num_batched_tokens"] == [1024.0] and timeline["block_size"] == [32.0]
    assert list(batch.events["value"]) == ["max_num_seqs 4 -> 1", "max_num_seqs 1 -> 4; num_kv_blocks 256 -> 34"]
    assert set(batch.samples["labels_json"]) == {json.dumps({"engine": "0", "model_name": "causalsre"})}
    waiting = batch.samples[batch.samples["metric"] == "vllm:num_requests_waiting"]["value"]
    assert len(waiting) == 28 and waiting.max() >= 1  # the --max-num-seqs 1 server queued
    assert batch.config["http"]["POST /v1/completions 200"] == 460  # uvicorn's access lines, counted
    assert any("every ~10 s" in note for note in batch.notes)


def _bench_without_metadata(tmp_path: Path, case: str) -> Path:
    """The case's result as an operator without `--metadata` has it: the server's flags only in the log."""
    doc = json.loads(gzip.decompress((FOLDER / f"{case}.bench.json.gz").read_bytes()))
    for key in ("max_num_seqs", "max_num_batched_tokens"):
        doc.pop(key)
    path = tmp_path / f"{case}.json"
    path.write_text(json.dumps(doc))
    return path


def test_the_postmortem_names_the_max_num_seqs_restart_from_the_log(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    runs = {}
    for case in ("baseline", "fewer_seqs"):
        assert main(["db", "import", "vllm-bench", str(_bench_without_metadata(tmp_path, case)), "--name", case,
                     "--db", str(db), "--json"]) == 0
        runs[case] = json.loads(capsys.readouterr().out)["runs"][0]["run_id"]
        # the year comes from the run: vLLM's timestamps have none
        assert main(["db", "import", "vllm-log", str(LOG), "--run", runs[case], "--db", str(db), "--json"]) == 0
        capsys.readouterr()
    con = connect_readonly(db)
    restarts = con.execute("SELECT run_id, ts_ns, value FROM operator_events WHERE key = 'restart' "
                           "ORDER BY run_id, ts_ns").fetchall()
    con.close()
    assert len(restarts) == 4  # both restarts, on each run's clock
    code = main(["postmortem", "--db", str(db), "--slo", SLO, "--baseline", f"run:{runs['baseline']}",
                 "--incident", f"run:{runs['fewer_seqs']}", "--seed", "0", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(out)
    settings = {c["name"]: (c["baseline"], c["incident"]) for c in result["changes"] if c["kind"] == "setting"}
    assert settings["max_num_seqs"] == (4, 1), result["changes"]

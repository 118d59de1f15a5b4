"""guidellm (software nobody here wrote) against `causalsre serve`, and the report it made here as a fixture.

The live test needs guidellm's own virtualenv (`make peer-guidellm`, built by `make test` where it can) and
skips, saying so, without it. The fixture test always runs: tests/fixtures/guidellm/serve_constant5.json is a
real guidellm 0.8.1 report of a constant 5 requests/s for 4 s against `causalsre serve` with max_num_seqs 2 and
max_queue_len 2 (docs/serve.md says how it was made); the server recorded 12 ok, 2 aborted (guidellm
cancelled them at the end) and 7 rejected (429) requests, which is what the report must import as.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from tests.serve.conftest import live_server

REPO = Path(__file__).resolve().parents[2]
GUIDELLM = REPO / ".venv-guidellm" / "bin" / "guidellm"
FIXTURE = REPO / "tests" / "fixtures" / "guidellm" / "serve_constant5.json"


def _import(report: Path, db: Path, capsys) -> dict:
    assert main(["db", "import", "guidellm", str(report), "--db", str(db), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_fixture_imports_as_the_server_recorded_it(tmp_path, capsys):
    out = _import(FIXTURE, tmp_path / "g.duckdb", capsys)
    assert [r["requests"] for r in out["runs"]] == [21]
    con = connect_readonly(tmp_path / "g.duckdb")
    rows = dict(con.execute("SELECT status, count(*) FROM requests GROUP BY 1").fetchall())
    ok = con.execute("SELECT min(prompt_tokens), max(prompt_tokens), min(output_tokens), max(output_tokens), "
                     "count(ttft_s) FROM request_metrics WHERE status = 'ok'").fetchone()
    con.close()
    assert rows["ok"] == 12 and rows["aborted"] == 2 and sum(rows.values()) == 21
    assert ok == (15, 15, 8, 8, 12)   # BOS + 14 words each, 8 tokens out, every one with a TTFT


@pytest.mark.slow
def test_guidellm_drives_the_server(tmp_path, capsys):
    if not GUIDELLM.exists():
        pytest.skip(f"guidellm is not installed at {GUIDELLM} (run `make peer-guidellm`)")
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    tok = tmp_path / "tok"
    subprocess.run([str(GUIDELLM.parent / "python"), str(REPO / "tests/serve/guidellm_tokenizer.py"), str(tok)],
                   check=True, env=env, timeout=300)
    report = tmp_path / "benchmarks.json"
    db = tmp_path / "serve.duckdb"
    with live_server(db=str(db)) as srv:
        subprocess.run([str(GUIDELLM), "run", "--backend", f"kind=openai_http,target={srv.url},model={srv.model}",
                        "--profile", "kind=constant,rate=2", "--constraint", "kind=max_duration,seconds=3",
                        "--tokenizer", f"kind=huggingface_auto,model={tok}",
                        "--data", "kind=synthetic_text,prompt_tokens=16,output_tokens=8",
                        "--seed", "kind=static,value=0", "--output", f"kind=json,path={report}",
                        "--disable-console"], check=True, env=env, timeout=300, cwd=tmp_path)
    data = json.loads(report.read_text())
    successful = data["benchmarks"][0]["requests"]["successful"]
    assert successful and not data["benchmarks"][0]["requests"]["errored"]
    assert {(r["prompt_tokens"], r["output_tokens"]) for r in successful} == {(15, 8)}
    con = connect_readonly(db)
    served = con.execute("SELECT count(*) FROM requests WHERE status = 'ok' AND output_tokens = 8").fetchone()[0]
    con.close()
    assert served >= len(successful)   # everything guidellm counted, the server recorded
    assert _import(report, tmp_path / "g.duckdb", capsys)["runs"][0]["requests"] >= len(successful)

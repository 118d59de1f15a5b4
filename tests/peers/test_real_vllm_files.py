"""End to end on the files a vLLM operator has: a real vLLM (`.venv-vllm`), `vllm bench serve --save-result
--save-detailed` with a `/metrics` scrape loop beside it (harness/peers/realfiles.py), then only the CLI a user
runs: `db import vllm-bench`, `db import prometheus --run`, `postmortem --json` with `run:` windows.

The incident is a surge of the offered load on the same server: the recorder first measures the server's
capacity (a short ramp, harness/peers/calibrate.py), then offers the baseline 0.6 and the surge 3 times it, so
the surge overloads vLLM on a quiet machine and a busy one alike. The postmortem must name `arrival_rate`
first with an interval that excludes 0, and show the bench files' request rates as the recorded change.
Slow: one vLLM start (one to three minutes on 2 shared cores), the ramp and two benchmarks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from causalsre.cli.main import main
from causalsre.evaluation.score import names_a_cause
from harness.peers.vllm_server import unavailable_reason

STARTS_A_REAL_VLLM = True  # tests/peers/conftest.py: one real vLLM at a time across workers

REPO = Path(__file__).resolve().parents[2]
SLO = str(REPO / "models" / "slos" / "llm-serving.yaml")
REASON = unavailable_reason()


def _import(db: Path, folder: Path, capsys) -> str:
    assert main(["db", "import", "vllm-bench", str(folder / "bench.json"), "--name", folder.name,
                 "--db", str(db), "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["runs"][0]["run_id"]
    scrapes = sorted(map(str, (folder / "scrapes").glob("metrics-*.prom")))
    assert scrapes, f"no scrapes in {folder}"
    assert main(["db", "import", "prometheus", *scrapes, "--run", run_id, "--db", str(db), "--json"]) == 0
    capsys.readouterr()
    return run_id


@pytest.mark.slow
@pytest.mark.skipif(REASON is not None, reason=f"vLLM peer unavailable: {REASON}")
def test_postmortem_on_real_vllm_files_names_the_rate_surge(tmp_path, capsys):
    from harness.peers.realfiles import record

    cases = record(tmp_path / "files", ["baseline", "rate_surge"], seed=0)
    assert cases["rate_surge"]["cause"] == "arrival_rate"
    db = tmp_path / "t.duckdb"
    base = _import(db, tmp_path / "files" / "baseline", capsys)
    incident = _import(db, tmp_path / "files" / "rate_surge", capsys)
    code = main(["postmortem", "--db", str(db), "--slo", SLO, "--baseline", f"run:{base}",
                 "--incident", f"run:{incident}", "--seed", "0", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(out)
    changed = {c["name"]: (c["baseline"], c["incident"]) for c in result["changes"] if c["kind"] == "setting"}
    offered = (cases["baseline"]["load"]["rate"], cases["rate_surge"]["load"]["rate"])
    assert changed.get("offered_rate") == pytest.approx(offered), result["changes"]
    assert "num_kv_blocks" not in changed  # the same server: vllm:cache_config_info says 256 in both
    # Calibrated: three times the measured capacity overloads it (no skip when the machine happens to be quiet).
    assert result["total_change"] > 0.3, result["burn"]
    causes = sorted((a for a in result["attributions"] if a["role"] == "cause"), key=lambda a: -a["contribution"])
    assert causes and causes[0]["factor"] == "arrival_rate", [(a["factor"], a["contribution"]) for a in causes]
    assert names_a_cause(result) == "arrival_rate"

"""A setting recorded in one window only is listed in "what changed" as unknown on the other side, not dropped.

Two imports of one real vLLM bench file (tests/fixtures/vllm_real/baseline), as a user would: the baseline's
file carries ``--metadata max_num_seqs=4 max_num_batched_tokens=1024``; the incident's copy lost
``max_num_seqs`` (tagged by hand, and forgotten). Before, "what changed" said nothing about max_num_seqs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from causalsre.cli.main import main

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_real"
SLO = str(Path(__file__).resolve().parents[2] / "models" / "slos" / "llm-serving.yaml")
pytestmark = pytest.mark.skipif(not (FOLDER / "baseline" / "bench.json.gz").exists(), reason="fixtures absent")


def _import(db: Path, path: Path, name: str, capsys) -> str:
    assert main(["db", "import", "vllm-bench", str(path), "--name", name, "--db", str(db), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["runs"][0]["run_id"]


def _postmortem(tmp_path: Path, capsys, drop: str) -> dict:
    doc = json.loads(gzip.decompress((FOLDER / "baseline" / "bench.json.gz").read_bytes()))
    doc.pop(drop)
    untagged = tmp_path / "incident.json"
    untagged.write_text(json.dumps(doc))
    db = tmp_path / "t.duckdb"
    base = _import(db, FOLDER / "baseline" / "bench.json.gz", "baseline", capsys)
    inc = _import(db, untagged, "incident", capsys)
    args = ["postmortem", "--db", str(db), "--slo", SLO, "--baseline", f"run:{base}", "--incident", f"run:{inc}",
            "--seed", "0", "--json"]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow  # two imports and a postmortem: 30-60 s on the shared machine
def test_a_knob_tagged_on_the_baseline_only_is_reported_as_unknown_in_the_incident(tmp_path, capsys):
    from causalsre.causal.changes import describe_change

    result = _postmortem(tmp_path, capsys, "max_num_seqs")
    found = [c for c in result["changes"] if c["name"] == "max_num_seqs"]
    assert found == [{"kind": "unknown_setting", "name": "max_num_seqs", "baseline": 4.0, "incident": None,
                      "recorded_in": "baseline", "in_graph": True, "significant": True}], result["changes"]
    assert describe_change(found[0]) == \
        "setting  max_num_seqs: 4 -> unknown  (recorded in the baseline only: may have changed)"
    # the knob both files carry, at the same value, is no change at all
    assert not [c for c in result["changes"] if c["name"] == "max_num_batched_tokens"]

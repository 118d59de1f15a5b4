"""The harness CLI end to end on a real database, and load given as a fraction of calibrated capacity."""

from __future__ import annotations

import json

import duckdb

from causalsre.cli.main import main
from harness.config import parse_run_config
from harness.runner import resolve_rate


def test_cli_run_with_load_fraction_and_an_override(tmp_path, capsys, tiny):
    cfg = tmp_path / "c.toml"
    cfg.write_text('name = "cli"\nduration_s = 1.5\ndrain_timeout_s = 2\n[engine]\nmax_num_seqs = 8\n'
                   '[workload]\nload_fraction = 0.25\nprompt = { dist = "fixed", value = 16 }\n'
                   'output = { dist = "fixed", value = 4 }\n')
    db = tmp_path / "cli.duckdb"
    code = main(["harness", "run", str(cfg), "--db", str(db), "--seed", "3", "--set", "engine.chunk_size=16",
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "complete" and out["run_id"].startswith("cli-s3-")
    con = duckdb.connect(str(db), read_only=True)
    rate, chunk, config_json = con.execute("SELECT arrival_rate, chunk_size, config_json FROM runs").fetchone()
    con.close()
    stored = parse_run_config(json.loads(config_json))
    capacity = stored.calibrated_capacity_rps
    assert capacity > 0 and rate == 0.25 * capacity and chunk == 16
    # The stored config reproduces the run without calibrating again: same rate.
    assert resolve_rate(stored, 3) == (stored, rate)


def test_cli_list_json_names_every_scenario(capsys):
    assert main(["harness", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) >= 8 and all(t["root_cause_factors"] for t in listed)

"""Bounds declared once in the settings table refuse huge, infinite, negative and non-integral inputs with one
line (exit 2) before anything allocates or runs: TOML, ``harness run --set``, ``--seed`` and ``whatif --set``."""

from __future__ import annotations

from pathlib import Path

import pytest

from causalsre.cli.main import main

SMOKE = "harness/configs/smoke.toml"
REPO = Path(__file__).resolve().parents[2]


def _run(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("override, fragment", [
    ("workload.rate=1e9", "workload.rate: Input should be less than or equal to 10000"),
    ("workload.rate=inf", "workload.rate: Input should be a finite number"),
    ("workload.rate=Infinity", "workload.rate: Input should be a finite number"),
    ("workload.rate=NaN", "workload.rate: Input should be a finite number"),
    ("duration_s=1e9", "duration_s: Input should be less than or equal to 86400"),
    ("duration_s=inf", "duration_s: Input should be a finite number"),
    ("engine.num_kv_blocks=1e8", "engine.num_kv_blocks: Input should be less than or equal to 16777216"),
    ("engine.block_size=1e9", "engine.block_size: Input should be less than or equal to 1024"),
    ("engine.max_num_batched_tokens=1e12", "engine.max_num_batched_tokens: Input should be less than or equal"),
    ("engine.max_num_seqs=2.5", "engine.max_num_seqs: Input should be a valid integer"),
    ("engine.request_timeout_s=-1", "engine.request_timeout_s: Input should be greater than 0"),
    ("engine.device=\"tpu\"", "engine.device: String should match pattern"),
    ("seed=100000000000000000000", "seed: Input should be less than or equal to 4294967295"),
    ("seed=-1", "seed: Input should be greater than or equal to 0"),
])
def test_harness_run_refuses_out_of_range_settings(override, fragment, tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    code, err = _run(["harness", "run", SMOKE, "--db", str(db), "--set", override], capsys)
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1
    assert fragment in err
    assert not db.exists()  # refused before the run opened its database


@pytest.mark.parametrize("seed", ["100000000000000000000", "-1"])
def test_the_seed_option_is_bounded(seed, tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    code, err = _run(["harness", "run", SMOKE, "--db", str(db), "--seed", seed], capsys)
    # Refused by the shared --seed option (0..2**32-1, what numpy and PyMC take) before the config is built.
    assert code == 2 and "'--seed'" in err and "not in the range" in err and len(err.splitlines()) == 1
    assert not db.exists()


def test_rate_times_duration_is_bounded(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    code, err = _run(["harness", "run", SMOKE, "--db", str(db), "--set", "workload.rate=5000",
                      "--set", "duration_s=3600"], capsys)
    assert code == 2 and "18,000,000 requests, above the limit of 10,000,000" in err
    code, err = _run(["harness", "run", SMOKE, "--db", str(db), "--set", "workload.rate=100",
                      "--set", 'faults=[{"kind": "rate_surge", "at_s": 1, "factor": 500}]'], capsys)
    assert code == 2 and "peak offered rate 50,000/s is above the limit of 10,000/s" in err
    assert not db.exists()


def test_a_kv_cache_larger_than_the_machine_is_refused_with_a_smaller_value(tmp_path, capsys, monkeypatch):
    from harness.engine import config as engine_config

    # A machine with 8 GiB: the KV cache may take 4 GiB; the tiny model's block holds 16 tokens x 2 KiB.
    monkeypatch.setattr(engine_config, "machine_memory_bytes", lambda: 8 * 2**30)
    db = tmp_path / "t.duckdb"
    code, err = _run(["harness", "run", SMOKE, "--db", str(db), "--set", "engine.num_kv_blocks=200000"], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "needs 6.1 GiB, more than 50% of this machine's 8.0 GiB" in err
    assert "set num_kv_blocks to at most 131072" in err
    # A push that could never be applied fails before the run too, not in its middle.
    push = 'faults=[{"kind": "config_push", "at_s": 1, "knobs": {"num_kv_blocks": 200000}}]'
    code, err = _run(["harness", "run", SMOKE, "--db", str(db), "--set", push], capsys)
    assert code == 2 and "at most 131072" in err
    assert not db.exists()
    assert engine_config.EngineConfig(num_kv_blocks=131072).kv_cache_bytes() == 4 * 2**30


def test_whatif_refuses_a_nan_intervention(capsys):
    suite = REPO / "datasets" / "cpu-tiny" / "suite.duckdb"
    if not suite.is_file():
        pytest.skip("datasets/cpu-tiny/suite.duckdb is absent")
    base = ["whatif", "--db", str(suite), "--slo", str(REPO / "models" / "slos" / "llm-serving.yaml"),
            "--window", "phase:incident@push_max_num_seqs-s0", "--method", "gcm"]
    for value, fragment in (("nan", "--set max_num_seqs=nan is not a finite number"),
                            ("inf", "--set max_num_seqs=inf is not a finite number"),
                            ("2.5", "max_num_seqs must be an integer in [1, 65,536], got 2.5"),
                            ("1e9", "set max_num_seqs to at most 65,536")):
        code, err = _run([*base, "--set", f"max_num_seqs={value}"], capsys)
        assert code == 2 and len(err.splitlines()) == 1 and fragment in err, err

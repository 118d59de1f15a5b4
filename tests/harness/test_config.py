"""Run configs: bad ones fail before anything runs, with one line and exit code 2."""

from __future__ import annotations

import pytest

from causalsre.cli.main import main
from causalsre.errors import UserError
from harness.config import load_run_config, parse_run_config
from harness.runner import prepare

SMOKE = "harness/configs/smoke.toml"


def test_the_shipped_configs_load():
    from pathlib import Path

    for path in sorted(Path("harness/configs").glob("*.toml")):
        if not path.stem.startswith("sweep"):
            assert load_run_config(path).name
    cfg = load_run_config(SMOKE)
    assert cfg.name == "smoke" and cfg.engine.model == "tiny"
    changed = cfg.with_overrides({"engine.max_num_seqs": 8, "workload.rate": 1.5})
    assert (changed.engine.max_num_seqs, changed.workload.rate) == (8, 1.5)
    assert cfg.engine.max_num_seqs == 16  # the original is untouched


@pytest.mark.parametrize("data, fragment", [
    ({"engine": {"max_num_seqz": 4}}, "engine.max_num_seqz: unknown key"),
    ({"workload": {"arrival": "poisson", "rate": -1}}, "workload.rate"),
    ({"engine": {"policy": "random"}}, "engine.policy"),
    ({"workload": {"arrival": "ramp", "rate": 1}}, "needs end_rate"),
    ({"workload": {"arrival": "gamma"}}, "needs rate or load_fraction"),
    ({"workload": {"rate": 1, "prompt": {"dist": "uniform", "low": 9, "high": 3}}}, "low must be <= high"),
    ({"faults": [{"kind": "config_push", "at_s": 1, "knobs": {"dtype": "float16"}}]}, "config_push knobs"),
    ({"faults": [{"kind": "step_delay", "at_s": 1}]}, "needs 'delay_s'"),
    ({"duration_s": 5, "faults": [{"kind": "step_delay", "at_s": 9, "delay_s": 0.1}]}, "after duration_s"),
    ({"duration_s": 5, "phases": [{"name": "a", "start_s": 0, "end_s": 6}]}, "ends after duration_s"),
])
def test_impossible_configs_are_user_errors(data, fragment):
    with pytest.raises(UserError) as info:
        parse_run_config(data)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_surge_on_a_closed_loop_is_rejected_before_the_run():
    cfg = parse_run_config({"workload": {"arrival": "closed"},
                            "faults": [{"kind": "rate_surge", "at_s": 1, "factor": 2}]})
    with pytest.raises(UserError, match="open-loop"):
        prepare(cfg, seed=0)


def _cli(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def test_cli_bad_config_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[engine]\nmax_num_seqs = 4\nturbo = true\n')
    db = tmp_path / "t.duckdb"
    code, err = _cli(["harness", "run", str(bad), "--db", str(db)], capsys)
    assert code == 2 and err.startswith("error: ") and "engine.turbo: unknown key" in err
    assert len(err.splitlines()) == 1
    assert not db.exists()  # failed before the run started


def test_cli_unparseable_trace_exits_2_before_the_run(tmp_path, capsys):
    trace = tmp_path / "trace.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,oops,3\n")
    cfg = tmp_path / "trace.toml"
    cfg.write_text('duration_s = 2\n[workload]\narrival = "trace"\ntrace = { path = "trace.csv" }\n')
    db = tmp_path / "t.duckdb"
    code, err = _cli(["harness", "run", str(cfg), "--db", str(db)], capsys)
    assert code == 2 and "does not parse" in err and len(err.splitlines()) == 1
    assert not db.exists()


def test_cli_unknown_scenario_and_bad_toml(tmp_path, capsys):
    code, err = _cli(["harness", "scenario", "no_such_thing", "--db", str(tmp_path / "x.duckdb")], capsys)
    assert code == 2 and "unknown scenario" in err
    broken = tmp_path / "broken.toml"
    broken.write_text("duration_s = = 3\n")
    code, err = _cli(["harness", "run", str(broken), "--db", str(tmp_path / "x.duckdb")], capsys)
    assert code == 2 and "not valid TOML" in err


def test_a_run_config_extends_a_base_beside_it_and_its_own_keys_win(tmp_path):
    (tmp_path / "base.toml").write_text(
        'duration_s = 3.0\nseed = 5\n[engine]\nmax_num_seqs = 8\nmax_num_batched_tokens = 128\n')
    (tmp_path / "push.toml").write_text('extends = "base"\nseed = 9\n[engine]\nmax_num_seqs = 2\n')
    cfg = load_run_config(tmp_path / "push.toml")
    assert cfg.name == "push" and cfg.duration_s == 3.0 and cfg.seed == 9
    # deep merge: the file's engine keys win, the base's others stay
    assert cfg.engine.max_num_seqs == 2 and cfg.engine.max_num_batched_tokens == 128


@pytest.mark.parametrize("text, fragment", [
    ('extends = "missing"\n', "which does not exist"),
    ('extends = "../etc/base"\n', "bad extends"),
    ('extends = 3\n', "bad extends"),
    ('extends = "cycle"\n', "bad extends"),
])
def test_a_bad_extends_is_a_user_error_naming_it(tmp_path, text, fragment):
    (tmp_path / "cycle.toml").write_text(text)
    with pytest.raises(UserError, match=fragment):
        load_run_config(tmp_path / "cycle.toml")

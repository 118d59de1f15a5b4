"""Round 9 at the harness run config, its `--set` overrides, a sweep file and `db import prometheus --at`.

Before: a run config (and the [engine] of a serve config, a scenario, a config_push's knobs) read
`max_num_seqs = "4"` as 4, `= true` as 1, `seed = true` as 1 and `enable_chunked_prefill = "yes"` or `= 1` as
true, so `--set max_num_seqs='"4"'` ran; a sweep read `runs = "8"` as 8; `db import prometheus --at
2026-11-28T24:00:00Z` got the importer's generic "cannot parse". Now a number must be a TOML/JSON number and a
flag true or false (what `--set max_num_seqs=4` gives still works), and --at gets the next day's 00:00 to write.
"""

from __future__ import annotations

import pytest

from causalsre.cli.options import parse_overrides
from causalsre.errors import UserError
from harness.config import load_run_config, parse_run_config
from harness.serve import load_serve_settings
from harness.sweep import load_sweep
from tests.badinput.conftest import refused

SMOKE = "harness/configs/smoke.toml"


def _one_line(call) -> str:
    with pytest.raises(UserError) as caught:
        call()
    message = caught.value.one_line()
    assert "\n" not in message and "Traceback" not in message, message
    return message


WRONG_TYPES = [  # (id, config table, fragment): each was accepted with a value the user did not write
    ("int-as-text", {"engine": {"max_num_seqs": "4"}}, "engine.max_num_seqs: must be a number, not the text '4'"),
    ("int-as-bool", {"engine": {"max_num_seqs": True}}, "engine.max_num_seqs: must be a number, not true/false"),
    ("seed-as-bool", {"seed": True}, "seed: must be a number, not true/false"),
    ("float-as-text", {"workload": {"rate": "2.5"}}, "workload.rate: must be a number, not the text '2.5'"),
    ("duration-as-text", {"duration_s": "5"}, "duration_s: must be a number"),
    ("bool-as-text", {"engine": {"enable_chunked_prefill": "yes"}},
     "engine.enable_chunked_prefill: must be true or false, not 'yes'"),
    ("bool-as-int", {"engine": {"enable_chunked_prefill": 1}}, "engine.enable_chunked_prefill: must be true or false"),
    ("fault-at-as-text", {"faults": [{"kind": "step_delay", "at_s": "1", "delay_s": 0.01}]},
     "faults.0.at_s: must be a number"),
    ("push-knob-as-text", {"faults": [{"kind": "config_push", "at_s": 1, "knobs": {"max_num_seqs": "2"}}]},
     "must be a number, not the text '2'"),
    ("tier-flag-as-text", {"engine": {"policy": "budget"},
                           "governor": {"tiers": [{"name": "a", "tenants": ["x"], "protected": "no"}]}},
     "governor.tiers.0.protected: must be true or false, not 'no'"),
    ("length-as-text", {"workload": {"rate": 1, "prompt": {"dist": "fixed", "value": "64"}}},
     "workload.prompt.value: must be a number"),
]


@pytest.mark.parametrize("case_id, data, fragment", WRONG_TYPES, ids=[c[0] for c in WRONG_TYPES])
def test_a_run_config_value_of_another_toml_type_is_refused(case_id, data, fragment):
    message = _one_line(lambda: parse_run_config(data))
    assert fragment in message and ("without quotes" in message), message


def test_the_same_in_a_toml_file_and_in_a_serve_config(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('extends = "base"\n[engine]\nmax_num_seqs = "4"\n')
    (tmp_path / "base.toml").write_text("seed = 1\n")
    assert "engine.max_num_seqs: must be a number" in _one_line(lambda: load_run_config(path))
    serve = tmp_path / "serve.toml"
    serve.write_text("seed = true\n[engine]\nmodel = 'tiny'\n")
    assert "seed: must be a number, not true/false" in _one_line(lambda: load_serve_settings(serve))


def test_a_stored_config_still_round_trips():
    """A run stores config_json (tuples become lists, floats stay floats): loading it back gives the same run."""
    import json

    cfg = load_run_config(SMOKE).with_overrides({"workload.requests": [(0.5, 8, 4, "a", 0, 7)]})
    again = parse_run_config(json.loads(json.dumps(cfg.to_json_dict())))
    assert again == cfg and again.workload.requests == [(0.5, 8, 4, "a", 0, 7)]


def test_set_overrides_take_json_numbers_and_refuse_quoted_ones():
    cfg = load_run_config(SMOKE)
    overrides = parse_overrides(["max_num_seqs=4", "workload.rate=2", "engine.enable_chunked_prefill=false",
                                 "engine.device=cpu"])
    changed = cfg.with_overrides(overrides)
    assert (changed.engine.max_num_seqs, changed.workload.rate, changed.engine.enable_chunked_prefill) == (4, 2.0, False)
    message = _one_line(lambda: cfg.with_overrides(parse_overrides(['max_num_seqs="4"'])))
    assert "engine.max_num_seqs: must be a number, not the text '4'" in message, message
    message = _one_line(lambda: cfg.with_overrides(parse_overrides(["seed=true"])))
    assert "seed: must be a number, not true/false" in message, message


def test_the_cli_refuses_a_quoted_set_before_creating_the_database(tmp_path, capsys):
    db = tmp_path / "new.duckdb"
    refused(["harness", "run", SMOKE, "--db", str(db), "--set", 'max_num_seqs="4"'],
            "engine.max_num_seqs: must be a number, not the text '4'", capsys)
    assert not db.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("line, fragment", [
    ('runs = "8"', "runs: Input should be a valid integer"),
    ("seed = true", "seed: Input should be a valid integer"),
], ids=["runs-as-text", "seed-as-bool"])
def test_a_sweep_value_of_another_toml_type_is_refused(tmp_path, line, fragment):
    path = tmp_path / "sweep.toml"
    path.write_text(f'base = "rate_surge"\n{line}\n[factors]\nmax_num_seqs = [4, 8]\n')
    assert fragment in _one_line(lambda: load_sweep(path))


PROM = "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 1\n"


@pytest.mark.parametrize("at, fragment", [
    ("2026-11-28T24:00:00Z", "writes midnight as 24:00, which is not a time of day (write the next day's 00:00: "
                             "2026-11-29T00:00:00Z)"),
    ("2026-11-28T24:00+02:00", "(write the next day's 00:00: 2026-11-29T00:00:00+02:00)"),
    ("2026-13-01T00:00Z", "month must be in 1..12"),
], ids=["midnight-24", "midnight-24-offset", "month-13"])
def test_import_prometheus_at_gets_the_window_options_fix(tmp_path, capsys, at, fragment):
    scrape = tmp_path / "scrape.prom"
    scrape.write_text(PROM)
    db = tmp_path / "new.duckdb"
    refused(["db", "import", "prometheus", str(scrape), "--db", str(db), "--at", at], fragment, capsys)
    assert not db.exists()


def test_import_prometheus_at_still_reads_what_it_read(tmp_path, capsys):
    from tests.badinput.conftest import run_cli

    scrape = tmp_path / "scrape.prom"
    scrape.write_text(PROM)
    for at in ("2026-11-28 12:00", "1764331200"):
        code, out, err = run_cli(["db", "import", "prometheus", str(scrape), "--db", str(tmp_path / f"{at[:4]}.duckdb"),
                                  "--at", at], capsys)
        assert code == 0, err
    code, out, err = run_cli(["db", "import", "prometheus", str(scrape), "--db", str(tmp_path / "x.duckdb"),
                              "--at", "garbage"], capsys)
    assert code == 2 and "ISO 8601 (2026-01-31T12:00:00Z) or epoch seconds" in err, err


@pytest.mark.parametrize("line, fragment", [
    ('criticality = "1"', "tiers.0.criticality: must be a number, not the text '1'; write the number without quotes"),
    ('protected = "no"', "tiers.0.protected: must be true or false, not 'no'"),
], ids=["criticality-as-text", "protected-as-text"])
def test_a_governor_file_takes_toml_types_too(tmp_path, line, fragment):
    """`whatif --governor` / `serve --upstream --governor` read [governor] with the run config's section: "1" was 1."""
    from harness.serve.gateway import load_governor_toml

    path = tmp_path / "governor.toml"
    path.write_text(f'[governor]\n[[governor.tiers]]\nname = "a"\ntenants = ["x"]\n{line}\n')
    message = _one_line(lambda: load_governor_toml(str(path)))
    assert fragment in message and "Value error" not in message, message

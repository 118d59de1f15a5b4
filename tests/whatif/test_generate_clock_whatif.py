"""``eval generate --clock modelled``: suites whose recordings and replays run on one step-cost clock."""

from __future__ import annotations

import json

import pytest

from causalsre.cli.main import main
from causalsre.evaluation.draw import CONTROL, MIX, plan_suite
from causalsre.evaluation.generate_clock import WALL_ONLY_KINDS, kinds_for

# Seconds per step term, of the size fitted on the 2-core machine (clock_model.json of a development suite).
COEFFICIENTS = {"base_s": 0.0032, "prefill_token_s": 0.0007, "decode_seq_s": 0.0, "kv_token_s": 6.2e-06}


def test_the_modelled_plan_never_deals_a_kind_that_acts_through_the_machines_speed():
    pool = kinds_for("modelled")
    assert set(WALL_ONLY_KINDS) & set(kinds_for("wall")) == set(WALL_ONLY_KINDS)
    assert not set(WALL_ONLY_KINDS) & set(pool)
    plan = plan_suite(5, 40, pool)
    dealt = {k for _, kinds in plan for k in kinds}
    assert dealt == set(pool)                      # 40 scenarios deal every kind left, and nothing else
    assert sum(s == CONTROL for s, _ in plan) == 4 and sum(s == MIX for s, _ in plan) == 14
    assert plan_suite(5, 40) != plan               # the wall clock's deck is the old one, unchanged


def test_a_clock_model_needs_the_modelled_clock(tmp_path, capsys):
    model = tmp_path / "clock_model.json"
    model.write_text(json.dumps({"coefficients": COEFFICIENTS}))
    code = main(["eval", "generate", "--seed", "1", "--count", "3", "--out", str(tmp_path / "s"),
                 "--clock-model", str(model)])
    assert code == 2 and "--clock modelled" in capsys.readouterr().err
    assert not (tmp_path / "s" / "suite.duckdb").exists()


@pytest.mark.parametrize("text, fragment", [('{"coefficients": {"base_s": NaN}}', "not valid JSON"),
                                            ("[[[1]]]", "holds a list"), ("{}", "without \"coefficients\"")])
def test_a_bad_clock_model_file_is_refused_before_the_out_folder_is_made(tmp_path, capsys, text, fragment):
    model = tmp_path / "clock_model.json"
    model.write_text(text)
    code = main(["eval", "generate", "--seed", "1", "--count", "3", "--out", str(tmp_path / "s"),
                 "--clock", "modelled", "--clock-model", str(model)])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and "Traceback" not in err, err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow   # three short recordings and two replays (~1-2 min on the loaded 2-core machine)
def test_a_modelled_suite_replays_its_windows_identically(tmp_path):
    from causalsre.resources import SLO_SPEC
    from causalsre.whatif.context import Context
    from causalsre.whatif.verify import replay

    model = tmp_path / "clock_model.json"
    model.write_text(json.dumps({"coefficients": COEFFICIENTS}))
    out = tmp_path / "suite"
    assert main(["eval", "generate", "--seed", "3", "--count", "3", "--out", str(out), "--phase-s", "5", "6",
                 "--clock", "modelled", "--clock-model", str(model)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["clock"]["mode"] == "modelled" and manifest["clock"]["coefficients"] == COEFFICIENTS
    assert manifest["clock"]["left_out_kinds"] == list(WALL_ONLY_KINDS)
    truth = json.loads((out / "truth.json").read_text())
    name = sorted(truth)[0]
    assert manifest["scenarios"][name]["config"]["clock"] == {"mode": "modelled", **COEFFICIENTS}
    ctx = Context.open(out / "suite.duckdb", SLO_SPEC)
    try:
        window = f"phase:incident@{truth[name]['run_id']}"
        same = [replay(ctx, window, lambda cfg, _rid: cfg) for _ in range(2)]
    finally:
        ctx.close()
    # The machine's load moved between the two replays; the modelled clock does not see it.
    assert same[0]["requests"] == same[1]["requests"] > 0
    assert same[0]["bad_rate"] == same[1]["bad_rate"]

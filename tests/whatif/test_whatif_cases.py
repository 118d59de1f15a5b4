"""Cases of `eval whatif --data` built from a tiny generated truth: the known answer is the baseline's value."""

import json

import numpy as np
import pandas as pd
import pytest

from causalsre.cli.main import main
from causalsre.errors import UserError
from causalsre.evaluation.whatif_cases import build_cases, load_suite, model_intervention


def _entry(engine: dict, faults: list) -> dict:
    return {"config": {"engine": {"max_num_seqs": 16, "num_kv_blocks": 256, "policy": "fcfs", **engine},
                       "faults": faults}}


TRUTH = {
    "g00-control": {"run_id": "g00-control-s5", "root_cause_factors": [], "families": []},
    "g01-push_max_num_seqs-rate_surge": {"run_id": "g01-s5", "root_cause_factors": ["arrival_rate", "max_num_seqs"],
                                         "families": ["batching", "workload"]},
    "g02-kv_shrink-step_delay": {"run_id": "g02-s5", "root_cause_factors": ["num_kv_blocks", "step_delay_s"],
                                 "families": ["batching", "hardware"]},
}
MANIFEST = {"generator": "causalsre eval generate", "scenarios": {
    "g00-control": _entry({}, []),
    "g01-push_max_num_seqs-rate_surge": _entry({"max_num_seqs": 12}, [
        {"kind": "rate_surge", "factor": 2.0}, {"kind": "config_push", "knobs": {"max_num_seqs": 2}}]),
    "g02-kv_shrink-step_delay": _entry({}, [{"kind": "kv_shrink", "num_kv_blocks": 20},
                                            {"kind": "step_delay", "delay_s": 0.01}]),
}}


def _table() -> pd.DataFrame:
    # max_num_seqs took 12 (g01's baseline), 2 (its push), 16 and 4 elsewhere; num_kv_blocks 256 and 20 only.
    return pd.DataFrame({"max_num_seqs": [12.0, 2.0, 16.0, 4.0], "num_kv_blocks": [256.0, 20.0, 256.0, 256.0],
                         "step_delay_s": [0.0, 0.01, 0.0, 0.0], "policy": ["fcfs"] * 4})


def test_each_true_cause_is_reverted_to_its_baseline_value_and_pushable_knobs_get_one_more():
    cases = {c.key: c for c in build_cases("s", TRUTH, MANIFEST, _table())}
    assert sorted(cases) == [
        "s/g01-push_max_num_seqs-rate_surge/push:max_num_seqs=4",   # observed, strictly between 2 and 12
        "s/g01-push_max_num_seqs-rate_surge/revert:arrival_rate",
        "s/g01-push_max_num_seqs-rate_surge/revert:max_num_seqs=12",   # this run's baseline, not the default 16
        "s/g02-kv_shrink-step_delay/push:num_kv_blocks=138",   # midpoint of 20 and 256: never observed
        "s/g02-kv_shrink-step_delay/revert:num_kv_blocks=256",
        "s/g02-kv_shrink-step_delay/revert:step_delay_s",
    ]
    assert cases["s/g01-push_max_num_seqs-rate_surge/revert:max_num_seqs=12"].value == 12.0
    assert cases["s/g01-push_max_num_seqs-rate_surge/push:max_num_seqs=4"].value_observed
    assert not cases["s/g02-kv_shrink-step_delay/push:num_kv_blocks=138"].value_observed
    families = {c.cause: c.family for c in cases.values()}
    assert families == {"max_num_seqs": "knob", "arrival_rate": "workload", "num_kv_blocks": "knob",
                        "step_delay_s": "hardware"}
    assert all(c.window == f"phase:incident@{c.run_id}" for c in cases.values())


def test_the_models_get_the_baseline_value_or_the_baseline_requests():
    cases = {c.key: c for c in build_cases("s", TRUTH, MANIFEST, _table())}
    baseline = pd.DataFrame({"arrival_rate": [1.0, 1.5], "offered_rate": [1.2, 1.2]})
    window = pd.DataFrame({"arrival_rate": [4.0] * 5, "offered_rate": [4.1] * 5})
    surge = model_intervention(cases["s/g01-push_max_num_seqs-rate_surge/revert:arrival_rate"], baseline, window)
    assert set(surge) == {"arrival_rate", "offered_rate"} and len(surge["arrival_rate"]) == 5
    assert set(surge["arrival_rate"]) <= {1.0, 1.5} and set(surge["offered_rate"]) == {1.2}
    assert model_intervention(cases["s/g02-kv_shrink-step_delay/revert:step_delay_s"], baseline, window) == \
        {"step_delay_s": 0.0}
    assert model_intervention(cases["s/g01-push_max_num_seqs-rate_surge/revert:max_num_seqs=12"], baseline,
                              window) == {"max_num_seqs": 12.0}


def _write(folder, truth=TRUTH, manifest=MANIFEST, db=True):
    folder.mkdir()
    (folder / "truth.json").write_text(json.dumps(truth))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    if db:
        (folder / "suite.duckdb").write_bytes(b"")
    return folder


def test_load_suite_refuses_a_missing_or_foreign_folder(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        load_suite(tmp_path / "absent")
    with pytest.raises(UserError, match="no suite.duckdb"):
        load_suite(_write(tmp_path / "nodb", db=False))
    with pytest.raises(UserError, match="not made by `causalsre eval generate`"):
        load_suite(_write(tmp_path / "foreign", manifest={"generator": "someone else"}))
    truth, manifest, db = load_suite(_write(tmp_path / "ok"))
    assert truth == TRUTH and db.name == "suite.duckdb"


@pytest.mark.parametrize("make", ["absent", "foreign", "petshop-like"])
def test_eval_whatif_data_on_a_wrong_folder_is_one_line_and_exit_2(tmp_path, capsys, make):
    folder = tmp_path / "x"
    if make == "foreign":
        _write(folder, manifest={"generator": "another tool"})
    elif make == "petshop-like":
        folder.mkdir()
        (folder / "truth.json").write_text("{}")
    code = main(["eval", "whatif", "--data", str(folder), "--methods", "no_change"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err and str(folder) in err


def test_unknown_method_is_refused(tmp_path, capsys):
    code = main(["eval", "whatif", "--data", str(_write(tmp_path / "ok")), "--methods", "gcm,oracle"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "oracle" in err and len(err.splitlines()) == 1


def test_workload_draws_are_seeded():
    cases = [c for c in build_cases("s", TRUTH, MANIFEST, _table()) if c.cause == "arrival_rate"]
    baseline = pd.DataFrame({"arrival_rate": np.arange(50.0), "offered_rate": [1.0] * 50})
    window = pd.DataFrame({"arrival_rate": [9.0] * 20, "offered_rate": [3.0] * 20})
    a = model_intervention(cases[0], baseline, window, seed=3)["arrival_rate"]
    b = model_intervention(cases[0], baseline, window, seed=3)["arrival_rate"]
    c = model_intervention(cases[0], baseline, window, seed=4)["arrival_rate"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)

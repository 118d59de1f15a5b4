"""Sweeps: the design is balanced and random; local and Ray backends write every run."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from causalsre.errors import UserError
from harness.sweep import design_matrix, load_sweep, run_sweep


def test_latin_hypercube_balances_every_factor_and_random_is_seeded():
    m = design_matrix([4, 3, 2], runs=12, design="lhs", seed=0)
    for j, k in enumerate([4, 3, 2]):
        counts = np.bincount(m[:, j], minlength=k)
        assert counts.max() - counts.min() <= 1 and counts.sum() == 12
    assert not np.array_equal(m, design_matrix([4, 3, 2], runs=12, design="lhs", seed=1))
    r = design_matrix([5, 5], runs=4000, design="random", seed=3)
    assert np.array_equal(r, design_matrix([5, 5], runs=4000, design="random", seed=3))
    assert abs(np.corrcoef(r[:, 0], r[:, 1])[0, 1]) < 0.05  # factors assigned independently
    assert np.allclose(np.bincount(r[:, 0]) / 4000, 0.2, atol=0.03)


def _sweep_file(tmp_path, runs=2, factors='max_num_seqs = [1, 4]\ncpu_contention = [0]\n'):
    base = tmp_path / "base.toml"
    base.write_text('duration_s = 1.0\ndrain_timeout_s = 2\n[engine]\nmax_num_seqs = 8\n[workload]\n'
                    'rate = 4.0\nprompt = { dist = "fixed", value = 12 }\noutput = { dist = "fixed", value = 4 }\n')
    sweep = tmp_path / "s.toml"
    sweep.write_text(f'base = "base.toml"\ndesign = "lhs"\nruns = {runs}\nseed = 1\n[factors]\n{factors}')
    return sweep


def test_sweep_factor_names_are_checked(tmp_path):
    with pytest.raises(UserError, match="unknown config key 'warp_speed'"):
        load_sweep(_sweep_file(tmp_path, factors="warp_speed = [1, 2]\n"))
    spec, base = load_sweep(_sweep_file(tmp_path, factors="prompt_tokens = [8, 32]\nstep_delay_s = [0, 0.01]\n"))
    assert spec.runs == 2 and base.workload.prompt.value == 12
    for shipped in ("harness/configs/sweep_small.toml", "harness/configs/sweep_gpu.toml"):
        spec, base = load_sweep(shipped)
        assert spec.runs == 8 and base.duration_s == 10


def _check_runs(db, run_ids):
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT run_id, max_num_seqs, status FROM runs ORDER BY name").fetchall()
    assert sorted(r[0] for r in rows) == sorted(run_ids) and len(rows) == 2
    assert sorted(r[1] for r in rows) == [1, 4] and {r[2] for r in rows} == {"complete"}
    assert con.execute("SELECT count(DISTINCT run_id) FROM requests").fetchone()[0] == 2
    con.close()


def test_local_sweep_runs_each_design_point(tmp_path):
    db = tmp_path / "local.duckdb"
    _check_runs(db, run_sweep(_sweep_file(tmp_path), db))


def test_ray_sweep_against_a_local_ray(tmp_path):
    pytest.importorskip("ray")
    db = tmp_path / "ray.duckdb"
    _check_runs(db, run_sweep(_sweep_file(tmp_path), db, backend="ray"))

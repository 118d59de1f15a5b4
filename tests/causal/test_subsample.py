"""Stratified subsampling of large postmortem windows: shares kept, counts from every request, same ranking."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from causalsre.causal import subsample
from causalsre.causal.subsample import plan_subsample, quotas
from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from causalsre.windows import parse_window
from tests.causal.test_postmortem import SLO_YAML


def test_quotas_keep_every_stratum_and_the_total():
    requests = np.array([1000, 10, 3, 0, 987])
    rows = quotas(requests, 0.01)
    assert rows.tolist() == [10, 1, 1, 0, 10]  # 9.87 -> 10 by the largest remainder; tiny strata keep one row
    assert quotas(requests, 1.0).tolist() == requests.tolist()


def _windows(con):
    return {"baseline": parse_window("phase:baseline", con), "incident": parse_window("phase:incident", con)}


def test_plan_keeps_each_stratums_share_and_is_seeded(make_db):
    # ~40k requests, cap 4k: both windows sampled at the larger window's fraction.
    con = connect_readonly(make_db(fault="cpu_contention", arrival_rate=170.0, max_num_seqs=1400.0))
    try:
        plan = plan_subsample(con, None, _windows(con), cap=4000, seed=3)
        again = plan_subsample(con, None, _windows(con), cap=4000, seed=3)
        other = plan_subsample(con, None, _windows(con), cap=4000, seed=4)
        full = {name: con.execute("SELECT tenant, status <> 'ok' AS bad, count(*) FROM request_metrics "
                                  "WHERE phase = ? GROUP BY ALL", [name]).fetchall() for name in plan.windows}
    finally:
        con.close()
    assert plan is not None and max(len(s.keys) for s in plan.windows.values()) <= 4000 + 6
    for name, sample in plan.windows.items():
        total = sum(n for *_, n in full[name])
        assert sample.requests == total  # counts come from every request, not the sample
        assert sample.bad_events == sum(n for _, bad, n in full[name] if bad)
        for tenant, bad, n in full[name]:
            row = sample.strata[(sample.strata["tenant"] == tenant) & (sample.strata["is_bad"] == bad)].iloc[0]
            assert abs(row["rows"] - n * plan.fraction) <= 1  # the stratum's share, to one row
        assert len(sample.keys) == int(sample.strata["rows"].sum())
        assert not sample.keys.duplicated().any()
    # The same seed keeps the same requests; another seed other ones.
    assert plan.keys("incident").equals(again.keys("incident"))
    assert not plan.keys("incident").equals(other.keys("incident"))
    # Small windows are not sampled at all.
    con = connect_readonly(make_db("small.duckdb", fault="cpu_contention", phase_s=20.0))
    try:
        assert plan_subsample(con, None, _windows(con), cap=4000) is None
    finally:
        con.close()


def _ranked_by_hand(con, window, rows_by_stratum, seed):
    """The definition of the kept keys: every request of the stratum ranked by (seeded hash, run_id,
    request_id), the first ``rows`` kept; read with pandas over all of them."""
    condition, params = window.where()
    frame = con.execute("SELECT run_id, request_id, tenant, status <> 'ok' AS is_bad, "
                        "hash(run_id, request_id, ?::BIGINT) AS h FROM request_metrics WHERE " + condition,
                        [seed] + params).df()
    frame = frame.sort_values(["h", "run_id", "request_id"], kind="stable")
    kept = [part.head(rows_by_stratum[(tenant, bool(bad))])
            for (tenant, bad), part in frame.groupby(["tenant", "is_bad"], dropna=False)]
    return (pd.concat(kept)[["run_id", "request_id"]].sort_values(["run_id", "request_id"])
            .reset_index(drop=True))


@pytest.mark.parametrize("margin_sd", [6.0, -1e6])  # -1e6: every threshold short, so the rerun over every row
def test_kept_keys_are_the_first_by_seeded_hash_in_every_stratum(make_db, monkeypatch, margin_sd):
    # The threshold that prefilters candidates changes how much is sorted, never which requests are kept.
    monkeypatch.setattr(subsample, "MARGIN_SD", margin_sd)
    con = connect_readonly(make_db(fault="cpu_contention", arrival_rate=170.0, max_num_seqs=1400.0))
    try:
        plan = plan_subsample(con, None, _windows(con), cap=4000, seed=5)
        for name, window in _windows(con).items():
            strata = plan.windows[name].strata
            rows = {(t, bool(b)): int(r) for t, b, r in zip(strata["tenant"], strata["is_bad"], strata["rows"])}
            expected = _ranked_by_hand(con, window, rows, seed=5)
            assert len(expected) == len(plan.keys(name)) > 1000
            assert plan.keys(name).equals(expected)
    finally:
        con.close()


def _postmortem(db, slo, capsys) -> dict:
    code = main(["postmortem", "--db", str(db), "--slo", str(slo), "--baseline", "phase:baseline",
                 "--incident", "phase:incident", "--json", "--pairs", "1000"])
    assert code == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_ranking_with_subsampling_equals_the_full_data_ranking(make_db, tmp_path, capsys, monkeypatch):
    # ~300k requests of a known SCM whose incident is CPU contention; the cap is 20k rows per window.
    slo = tmp_path / "slo.yaml"
    slo.write_text(SLO_YAML)
    db = make_db(fault="cpu_contention", arrival_rate=1250.0, max_num_seqs=10_000.0, seed=5)
    monkeypatch.setattr(subsample, "CAP", 0)
    full = _postmortem(db, slo, capsys)
    monkeypatch.setattr(subsample, "CAP", 20_000)
    sampled = _postmortem(db, slo, capsys)

    assert "subsample" not in full and full["n_baseline"] + full["n_incident"] > 280_000
    report = sampled["subsample"]
    assert report["cap"] == 20_000 and 0 < report["fraction"] < 0.2
    assert max(report[w]["rows_used"] for w in ("baseline", "incident")) <= 20_000 + 6
    # Counts and burn are those of every request.
    assert (sampled["n_baseline"], sampled["n_incident"]) == (full["n_baseline"], full["n_incident"])
    assert sampled["burn"] == full["burn"]

    def causes(result):
        return [a["factor"] for a in result["attributions"] if a["role"] == "cause"]

    assert causes(full)[0] == "cpu_contention"
    assert causes(sampled) == causes(full)
    assert sampled["families"][0]["family"] == full["families"][0]["family"] == "hardware"

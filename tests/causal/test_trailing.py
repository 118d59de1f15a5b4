"""Trailing-window aggregates (``causal/trailing.py``) equal the window-function SQL they replaced and a
brute-force reading of the definition, exactly, on seeded data built to hit the edges: ties at an instant,
arrivals exactly one window apart, missing prompt or target lengths, several runs interleaved in the batches;
and the analysis table's arrival rate over a subsample still counts every request of the run."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from causalsre.causal import trailing
from causalsre.causal.table import ARRIVAL_RATE_WINDOW_S, build_analysis_table
from causalsre.causal.trailing import trailing_aggregates
from causalsre.telemetry import migrate
from causalsre.windows import Window
from tests.slo.slo_rows import add_requests, add_run

NS = 1_000_000_000
W = int(ARRIVAL_RATE_WINDOW_S * NS)

# The implementation before causal/trailing.py: running sums over every request of the run, RANGE frame.
_WINDOW_SQL = """
WITH cum AS (
    SELECT run_id, request_id, arrival_ns, min(arrival_ns) OVER (PARTITION BY run_id) AS first_ns,
           count(*) OVER upto AS n, count(prompt_tokens) OVER upto AS n_p, sum(prompt_tokens) OVER upto AS s_p,
           count(out_tokens) OVER upto AS n_o, sum(out_tokens) OVER upto AS s_o
    FROM (SELECT run_id, request_id, prompt_tokens, COALESCE(target_output_tokens, output_tokens) AS out_tokens,
                 COALESCE(scheduled_arrival_ns, enqueue_ns) AS arrival_ns FROM requests)
    WINDOW upto AS (PARTITION BY run_id ORDER BY arrival_ns RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT c.run_id, c.request_id, c.n - COALESCE(e.n, 0) AS n_recent, c.arrival_ns - c.first_ns AS since_first_ns,
       (c.s_p - COALESCE(e.s_p, 0))::DOUBLE / NULLIF(c.n_p - COALESCE(e.n_p, 0), 0) AS recent_prompt_tokens,
       (c.s_o - COALESCE(e.s_o, 0))::DOUBLE / NULLIF(c.n_o - COALESCE(e.n_o, 0), 0) AS recent_output_tokens
FROM cum c ASOF LEFT JOIN cum e ON c.run_id = e.run_id AND c.arrival_ns - ? > e.arrival_ns
"""


def _world(seed: int) -> duckdb.DuckDBPyConnection:
    rng = np.random.default_rng(seed)
    con = duckdb.connect()
    migrate(con)
    rows = []
    for r, run_id in enumerate(["r0", "r1", "r2"]):
        add_run(con, run_id)
        arrivals = rng.uniform(0, 60, 400 + 100 * r)
        arrivals[:40] = np.round(arrivals[:40])  # ties: several requests at the same instant
        arrivals[40:60] = arrivals[60:80] + ARRIVAL_RATE_WINDOW_S  # exactly one window after another arrival
        rows += [{"run_id": run_id, "request_id": i, "arrival_s": float(a), "prompt_tokens": int(rng.integers(1, 4000)),
                  "output_tokens": int(rng.integers(1, 500))} for i, a in enumerate(arrivals)]
    order = rng.permutation(len(rows))  # runs interleaved in the table, so every batch holds several
    add_requests(con, [rows[i] for i in order])
    con.execute("UPDATE requests SET prompt_tokens = NULL WHERE hash(request_id, ?) % 7 = 0", [seed])
    con.execute("UPDATE requests SET target_output_tokens = NULL WHERE hash(request_id, ?) % 5 = 0", [seed])
    con.execute("UPDATE requests SET prompt_tokens = NULL WHERE run_id = 'r2' AND request_id < 30")
    return con


def _brute_force(con, run_id: pd.Series, arrival_ns: pd.Series) -> pd.DataFrame:
    every = con.execute("SELECT run_id, COALESCE(scheduled_arrival_ns, enqueue_ns) AS a, prompt_tokens AS p, "
                        "COALESCE(target_output_tokens, output_tokens) AS o FROM requests").df()
    out = []
    for run, t in zip(run_id, arrival_ns, strict=True):
        mine = every[every["run_id"] == run]
        inside = mine[(mine["a"] >= t - W) & (mine["a"] <= t)]
        p, o = inside["p"].dropna(), inside["o"].dropna()
        out.append({"n_recent": len(inside), "since_first_ns": int(t - mine["a"].min()),
                    "recent_prompt_tokens": float(p.sum()) / len(p) if len(p) else np.nan,
                    "recent_output_tokens": float(o.sum()) / len(o) if len(o) else np.nan})
    return pd.DataFrame(out)


@pytest.mark.parametrize("seed", [0, 1])
def test_trailing_aggregates_equal_the_window_sql_and_the_definition(seed, monkeypatch):
    monkeypatch.setattr(trailing, "BATCH_ROWS", 64)  # many batches, each with requests of several runs
    con = _world(seed)
    reference = con.execute(_WINDOW_SQL, [W]).df().sample(frac=0.5, random_state=seed).reset_index(drop=True)
    arrivals = con.execute("SELECT run_id, request_id, COALESCE(scheduled_arrival_ns, enqueue_ns) AS arrival_ns "
                           "FROM requests").df()
    rows = reference[["run_id", "request_id"]].merge(arrivals, on=["run_id", "request_id"], how="left")
    got = trailing_aggregates(con, rows["run_id"], rows["arrival_ns"], W)
    columns = ["n_recent", "since_first_ns", "recent_prompt_tokens", "recent_output_tokens"]
    assert list(got.columns) == columns
    pd.testing.assert_frame_equal(got, reference[columns], check_exact=True, check_dtype=False)
    pd.testing.assert_frame_equal(got, _brute_force(con, rows["run_id"], rows["arrival_ns"]), check_exact=True,
                                  check_dtype=False)
    assert (got["n_recent"] > 1).any() and got["recent_prompt_tokens"].isna().sum() < len(got)


def test_the_subsampled_table_counts_every_request_of_the_run():
    con = _world(2)
    keep = con.execute("SELECT run_id, request_id FROM requests WHERE run_id = 'r1' AND request_id % 10 = 3").df()
    table = build_analysis_table(con, None, window=Window(label="r1", run_id="r1"), keep=keep)
    assert len(table) == len(keep)
    arrivals = con.execute("SELECT request_id, COALESCE(scheduled_arrival_ns, enqueue_ns) AS arrival_ns "
                           "FROM requests WHERE run_id = 'r1'").df()
    rows = table[["request_id"]].merge(arrivals, on="request_id", how="left")
    truth = _brute_force(con, pd.Series(["r1"] * len(rows)), rows["arrival_ns"])
    elapsed = np.clip(truth["since_first_ns"].to_numpy(float) / 1e9, 1.0, ARRIVAL_RATE_WINDOW_S)
    assert table["arrival_rate"].to_numpy() == pytest.approx(truth["n_recent"].to_numpy() / elapsed, rel=1e-12)
    # a tenth of the requests is kept: a rate over the kept rows only would be about ten times too low
    assert table["arrival_rate"].median() > 5 * len(keep) / 60

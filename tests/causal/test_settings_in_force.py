"""The settings in force at a window's arrivals (``graph.recorded_settings``), computed inside DuckDB, equal a
brute-force reading of the definition on seeded data built to hit every edge: values that start before the
first arrival, in a gap between arrivals, exactly at an arrival, after the last one, and runs without a
timeline (their ``runs`` columns stand in)."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import numpy as np
import pytest

from causalsre.causal.graph import recorded_settings
from causalsre.telemetry import migrate
from causalsre.windows import Window
from tests.slo.slo_rows import T0, add_requests, add_run

NS = 1_000_000_000


def _world(seed: int):
    rng = np.random.default_rng(seed)
    con = duckdb.connect()
    migrate(con)
    settings = []
    for r, run_id in enumerate(["r0", "r1", "r2"]):
        add_run(con, run_id)
        con.execute("UPDATE runs SET max_num_seqs = ?, policy = 'fcfs' WHERE run_id = ?", [8 + r, run_id])
        # arrivals in two bursts with a gap [40, 60) s between them
        arrivals = np.sort(np.concatenate([rng.uniform(0, 40, 300), rng.uniform(60, 100, 300)]))
        add_requests(con, [{"run_id": run_id, "request_id": i, "arrival_s": float(a)} for i, a in enumerate(arrivals)])
        if run_id == "r2":
            continue  # no timeline: the runs row holds its settings
        exact = int(round(arrivals[150] * NS))  # a change exactly at an arrival
        starts = sorted({0, int(45 * NS), int(50 * NS), exact, int(rng.uniform(0, 100) * NS), int(120 * NS)})
        for k, start in enumerate(starts):
            settings.append((run_id, "max_num_seqs", start, float(k + 1), None))
        settings.append((run_id, "policy", int(10 * NS), None, "sjf"))  # nothing in force before 10 s
        settings.append((run_id, "policy", int(55 * NS), None, "priority"))  # only inside the gap, then on
    con.executemany("INSERT INTO run_settings VALUES (?, ?, ?, ?, ?)", settings)
    return con


def _brute_force(con, window: Window) -> dict[str, set]:
    """The definition, read literally: a value holds on [start, next start of that setting) and counts when
    one of the window's arrivals falls there; runs without a timeline for a setting give their runs column."""
    condition, params = window.where()
    arrivals = con.execute(f"SELECT run_id, arrival_ns FROM request_metrics WHERE {condition}", params).fetchall()
    rows = con.execute("SELECT run_id, setting, start_ns, value, value_text FROM run_settings "
                       "ORDER BY run_id, setting, start_ns").fetchall()
    values: dict[str, set] = {}
    timelines = set()
    for i, (run_id, name, start, value, text) in enumerate(rows):
        nxt = rows[i + 1] if i + 1 < len(rows) and rows[i + 1][:2] == (run_id, name) else None
        end = nxt[2] if nxt else float("inf")
        if any(r == run_id and start <= a < end for r, a in arrivals):
            values.setdefault(name, set()).add((value, text))
            timelines.add((run_id, name))
    for run_id in sorted({r for r, _ in arrivals}):
        seqs, policy = con.execute("SELECT max_num_seqs, policy FROM runs WHERE run_id = ?", [run_id]).fetchall()[0]
        for name, value in (("max_num_seqs", (float(seqs), None)), ("policy", (None, policy))):
            if (run_id, name) not in timelines:
                values.setdefault(name, set()).add(value)
    return values


WINDOWS = [
    Window("all"),
    Window("r0", run_id="r0"),
    Window("r1 early", run_id="r1", start=T0, end=T0 + timedelta(seconds=30)),
    Window("first burst", start=T0 + timedelta(seconds=5), end=T0 + timedelta(seconds=40)),
    Window("second burst", start=T0 + timedelta(seconds=40), end=T0 + timedelta(seconds=200)),
    Window("r2", run_id="r2"),
    Window("empty", start=T0 + timedelta(seconds=41), end=T0 + timedelta(seconds=59)),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w.label)
def test_settings_in_force_equal_the_definition(seed, window):
    con = _world(seed)
    expected = _brute_force(con, window)
    got = {name: values for name, values in recorded_settings(con, window).items()
           if name in ("max_num_seqs", "policy")}
    assert got == expected


def test_the_brute_force_sees_the_edges():
    # Guard against a reference that agrees because the data holds no edge: the gap-only "priority" value is
    # in force in the second burst (it holds on from 55 s), "sjf" in the first (r2's runs row adds fcfs).
    con = _world(0)
    assert _brute_force(con, WINDOWS[3])["policy"] == {(None, "sjf"), (None, "fcfs")}
    assert _brute_force(con, WINDOWS[4])["policy"] == {(None, "priority"), (None, "fcfs")}
    # r1 before 10 s has no policy value in force, and its timeline keeps the runs row out
    assert _brute_force(con, WINDOWS[2])["policy"] == {(None, "sjf")}
    assert _brute_force(con, WINDOWS[5])["policy"] == {(None, "fcfs")}
    assert _brute_force(con, WINDOWS[6]) == {}

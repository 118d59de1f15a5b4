"""A cap pushed at the same instant as the real fault: when the telemetry shows the engine never reached it,
it gets no share (causal/binding.py); when it did reach it, the two stay tied, and the result says that their
order is no ranking and that ``--verify`` separates them (issue #19, failure mode "same-instant ties")."""

from __future__ import annotations

import pandas as pd
import pytest

from causalsre.causal.changes import describe_change
from causalsre.causal.postmortem import OTHER
from causalsre.causal.synthetic import SyntheticSpec, generate
from tests.causal.phase_postmortem import postmortem_of_phases


def _cpu_fault_with_a_queue_push(path, queue_len_after: float):
    """CPU contention from the boundary on (the true cause, known model) and, at the same instant, a push of
    max_queue_len 64 -> ``queue_len_after``. The synthetic engine's queue peaks far below 64 but far above 2."""
    tables = generate(SyntheticSpec(fault="cpu_contention", phase_s=40.0, seed=5))
    boundary = int(40.0 * 1e9)
    push = pd.DataFrame([("synthetic", "max_queue_len", 0, 64.0, None),
                         ("synthetic", "max_queue_len", boundary, queue_len_after, None)],
                        columns=["run_id", "setting", "start_ns", "value", "value_text"])
    tables["run_settings"] = pd.concat([tables["run_settings"], push], ignore_index=True)
    peak = int(tables["steps"]["num_waiting"].max())
    assert 2 < peak < 64  # the fixture's premise, not the method
    return postmortem_of_phases(path, tables, n_pairs=1000, n_boot=100), peak


def _share(result, factor):
    return next((a["contribution"] for a in result["attributions"] if a["factor"] == factor), 0.0)


def test_a_queue_limit_raised_but_never_reached_gets_no_share(tmp_path):
    result, peak = _cpu_fault_with_a_queue_push(tmp_path / "idle.duckdb", 512.0)
    assert "max_queue_len" in result["idle_settings"]
    assert _share(result, "max_queue_len") == 0.0
    top = next(a for a in result["attributions"] if a["factor"] != OTHER)
    assert top["factor"] == "cpu_contention" and top["ci_low"] > 0 and "confounded_with" not in top
    assert "tied_causes" not in result
    line = describe_change(next(c for c in result["changes"] if c["name"] == "max_queue_len"))
    assert f"peaked at {peak:g}" in line and "given no share" in line


def test_a_queue_limit_that_binds_stays_tied_and_the_tie_is_said(tmp_path):
    # 64 -> 2: the queue held more than 2 in both windows, so the push could have acted; the data cannot
    # separate it from the contention that started at the same instant.
    result, _ = _cpu_fault_with_a_queue_push(tmp_path / "binds.duckdb", 2.0)
    assert "idle_settings" not in result
    assert result["tied_causes"] == ["cpu_contention", "max_queue_len"]
    assert _share(result, "max_queue_len") == pytest.approx(_share(result, "cpu_contention"))
    row = next(a for a in result["attributions"] if a["factor"] == "max_queue_len")
    assert row["confounded_with"] == ["cpu_contention"] and "not a ranking" in row["tie"] and "--verify" in row["tie"]
    assert "tie:" in describe_change(next(c for c in result["changes"] if c["name"] == "max_queue_len"))

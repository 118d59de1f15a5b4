"""A real telemetry database with a known cause: one synthetic two-phase run whose incident lowered
max_num_seqs from 32 to 6 (causalsre.causal.synthetic), and an SLO on its end-to-end latency."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

SLO_YAML = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: fast}
spec:
  service: test
  indicator:
    metadata: {name: e2e}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: causalsre, spec: {conditions: [{metric: e2e_s, op: lte, value: 1.2}]}}}
        total: {metricSource: {type: causalsre}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
"""


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """(database path, SLO spec path) of the max_num_seqs push."""
    from causalsre.causal.synthetic import SyntheticSpec, write_synthetic

    folder = tmp_path_factory.mktemp("api")
    db, spec = folder / "pushed.duckdb", folder / "slo.yaml"
    write_synthetic(db, SyntheticSpec(fault="max_num_seqs", phase_s=40.0, seed=3))
    spec.write_text(SLO_YAML)
    return db, spec

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "datasets" / "cpu-tiny" / "suite.duckdb"
SLO = REPO / "models" / "slos" / "llm-serving.yaml"


@pytest.fixture(scope="session")
def serving():
    """(full table, graph) of the known structural causal model in causalsre.bayes.synthetic."""
    from causalsre.bayes.synthetic import serving_graph, simulate

    return simulate(8000, seed=4), serving_graph()


@pytest.fixture
def suite_db() -> Path:
    if not SUITE.is_file():
        pytest.skip("datasets/cpu-tiny/suite.duckdb is absent")
    return SUITE


@pytest.fixture(scope="session")
def gcm_model(serving):
    """One small bootstrap ensemble of gcm SCMs over the known SCM's data, shared by the tests."""
    from causalsre.bayes.factors import graph_view
    from causalsre.whatif.gcm_predict import GcmWhatIf

    table, graph = serving
    return GcmWhatIf.fit(table, graph_view(graph), bootstraps=2, max_rows=6000, seed=1)

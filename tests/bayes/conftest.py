import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import warnings

import pytest

warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")


@pytest.fixture(scope="session")
def serving():
    from causalsre.bayes.synthetic import serving_graph, simulate

    return simulate(6000, seed=3), serving_graph()


@pytest.fixture(autouse=True)
def _fit_cache(tmp_path, monkeypatch):
    """Each test caches fits in its own folder, never in the user's ~/.cache."""
    monkeypatch.setenv("CAUSALSRE_CACHE_DIR", str(tmp_path / "cache"))

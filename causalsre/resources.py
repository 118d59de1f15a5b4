"""Files shipped inside the package: the default causal graph, SLO spec and priors, and the demo's telemetry.

In the repository the top-level ``models/`` and ``datasets/cpu-tiny/`` stay the source of truth (they are
what people edit and review); ``causalsre/_models`` and ``causalsre/_datasets/cpu-tiny`` are symlinks to
them, and the wheel build copies the files they point to (``[tool.setuptools.package-data]``). So an editable
checkout and an installed wheel read the same names through :mod:`importlib.resources`, and nothing here
looks for a checkout.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from importlib.resources import as_file, files
from pathlib import Path

_EXTRACTED = ExitStack()  # only used when the package is imported from a zip: files extracted for the process
atexit.register(_EXTRACTED.close)


def packaged(*parts: str) -> Path:
    """A shipped file as a filesystem path (the callers open it by path, e.g. DuckDB and ``load_slos``)."""
    resource = files("causalsre")
    for part in parts:
        resource = resource.joinpath(part)
    if isinstance(resource, Path):
        return resource
    return _EXTRACTED.enter_context(as_file(resource))


GRAPH = packaged("_models", "serving.yaml")
SLO_SPEC = packaged("_models", "slos", "llm-serving.yaml")
BURN_PRIORS = packaged("_models", "priors", "burn_logistic.toml")
LATENCY_PRIORS = packaged("_models", "priors", "latency_lognormal.toml")
DEMO_SUITE = packaged("_datasets", "cpu-tiny", "suite.duckdb")
DEMO_TRUTH = packaged("_datasets", "cpu-tiny", "truth.json")

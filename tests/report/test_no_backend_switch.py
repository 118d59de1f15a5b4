"""Importing and using the report code leaves the user's matplotlib backend alone (a notebook's inline
backend must survive ``import causalsre.report``), and figures render headless without pyplot."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = """
import matplotlib
before = matplotlib.get_backend()
import causalsre, causalsre.report, causalsre.report.plots, causalsre.report.figures, causalsre.causal.structure
from causalsre.report.plots import attribution_bars
fig = attribution_bars([{"factor": "arrival_rate", "family": "workload", "contribution": 0.3,
                         "ci_low": 0.2, "ci_high": 0.4}])
assert fig.png[:4] == b"\\x89PNG"
after = matplotlib.get_backend()
print(before, after, "pyplot" if "matplotlib.pyplot" in sys.modules else "no-pyplot")
"""


@pytest.mark.parametrize("backend", ["module://matplotlib_inline.backend_inline", "svg"])
def test_report_import_keeps_the_backend(backend):
    env = {**os.environ, "MPLBACKEND": backend}
    result = subprocess.run([sys.executable, "-c", "import sys\n" + SCRIPT], capture_output=True, text=True,
                            env=env, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    before, after, pyplot = result.stdout.split()
    assert before == after and backend.endswith(after), result.stdout
    assert pyplot == "no-pyplot"   # rendering never touched the global figure manager

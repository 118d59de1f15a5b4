"""One real vLLM at a time on this machine, across pytest-xdist workers.

Two vLLM CPU servers started together (two test modules on two workers) compete for the same cores, shared
memory and KV-cache space, and the second one fails to start ("Engine core initialization failed"); a module
that starts one sets ``STARTS_A_REAL_VLLM = True`` and holds this machine-wide lock for its whole run (module
scope, so a module-scoped server fixture is inside it).
"""

from __future__ import annotations

import fcntl
import tempfile
from pathlib import Path

import pytest

LOCK = Path(tempfile.gettempdir()) / "causalsre-tests-real-vllm.lock"


@pytest.fixture(scope="module", autouse=True)
def one_real_vllm_at_a_time(request):
    if not getattr(request.module, "STARTS_A_REAL_VLLM", False):
        yield
        return
    with open(LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)   # waits while another worker's module has a server up
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

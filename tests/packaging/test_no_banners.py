"""No library banner reaches a user: ArviZ's once-a-day FutureWarning about its refactor is silenced where
causalsre imports it (causalsre/bayes/__init__.py), and only that message."""

from __future__ import annotations

import os
import subprocess
import sys


def _stderr_of(code: str, cache) -> str:
    # a fresh cache folder: ArviZ stamps the day it last warned there, and would stay quiet on a reused one
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    return subprocess.run([sys.executable, "-W", "default", "-c", code], env=env, capture_output=True,
                          text=True, check=True, timeout=600).stderr


def test_arviz_banner_is_silenced_by_the_bayes_package_and_nothing_else_is(tmp_path):
    assert "ArviZ is undergoing" in _stderr_of("import arviz", tmp_path / "a"), "the banner this test guards against"
    stderr = _stderr_of("import causalsre.bayes, pymc, warnings; warnings.warn('a future change', FutureWarning)",
                        tmp_path / "b")
    assert "ArviZ" not in stderr
    assert "a future change" in stderr, "only ArviZ's banner is filtered, not FutureWarnings in general"

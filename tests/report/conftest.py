"""Headless Chromium for HTML checks: skipped cleanly where it is not installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# The flags that work offline (no background networking, no sandbox as root, no GPU).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--hide-scrollbars"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(self, executable: str, profile: Path) -> None:
        self.executable = executable
        self.profile = profile

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    def dump_dom(self, page: Path) -> str:
        result = self._run("--virtual-time-budget=5000", "--dump-dom", page.as_uri())
        return result.stdout

    def screenshot(self, page: Path, out: Path, size: str = "1200,2400") -> Path:
        self._run(f"--window-size={size}", f"--screenshot={out}", page.as_uri())
        return out


@pytest.fixture
def browser(tmp_path) -> Browser:
    executable = find_chromium()
    if executable is None:
        pytest.skip("headless chromium is not installed (make test installs it where it can)")
    return Browser(executable, tmp_path / "chromium-profile")

"""CPU contention: competing busy processes, started and stopped on demand.

Each worker is a separate Python process spinning in a loop (processes, not threads, so they compete for
cores rather than for our GIL). A worker exits by itself when its parent disappears, so a killed harness does
not leave busy processes behind.
"""

from __future__ import annotations

import subprocess
import sys

_BUSY_LOOP = (
    "import os\n"
    "parent = os.getppid()\n"
    "while os.getppid() == parent:\n"
    "    for _ in range(200000):\n"
    "        pass\n"
)


class CpuContention:
    def __init__(self) -> None:
        self._workers: list[subprocess.Popen] = []

    @property
    def num_workers(self) -> int:
        return len(self._workers)

    def set_workers(self, count: int) -> None:
        """Run exactly ``count`` busy processes."""
        while len(self._workers) < count:
            self._workers.append(subprocess.Popen([sys.executable, "-c", _BUSY_LOOP],
                                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL))
        while len(self._workers) > count:
            self._stop(self._workers.pop())

    def stop_all(self) -> None:
        self.set_workers(0)

    @staticmethod
    def _stop(worker: subprocess.Popen) -> None:
        worker.kill()
        worker.wait(timeout=5)

"""The engine benchmark as a script: the same as ``causalsre bench engine`` (all flags pass through).

    python bench/engine.py --json                      # the default CPU benchmark (small preset, 2 threads)
    python bench/engine.py --preset large --device cuda --dtype bfloat16 --json
"""

from __future__ import annotations

import sys

from causalsre.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "engine", *sys.argv[1:]]))

"""The slo benchmark as a script: the same as `causalsre bench slo` (all flags pass through), e.g. --json."""

import sys

from causalsre.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "slo", *sys.argv[1:]]))

"""The postmortem benchmark as a script: the same as `causalsre bench postmortem` (all flags pass through), e.g. --json."""

import sys

from causalsre.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "postmortem", *sys.argv[1:]]))

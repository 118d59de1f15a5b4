"""The bayes benchmark as a script: the same as `causalsre bench bayes` (all flags pass through), e.g. --json."""

import sys

from causalsre.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "bayes", *sys.argv[1:]]))

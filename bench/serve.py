"""The serve-overhead benchmark as a script: the same as `causalsre bench serve` (all flags pass through), e.g. --json."""

import sys

from causalsre.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "serve", *sys.argv[1:]]))

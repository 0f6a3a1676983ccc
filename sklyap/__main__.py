"""``python -m sklyap``: the command line (:mod:`sklyap.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

"""`python -m llc`: the same command as the installed console script."""

from __future__ import annotations

import sys

from llc.cli import main

if __name__ == "__main__":
    sys.exit(main())

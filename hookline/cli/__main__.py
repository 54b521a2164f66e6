"""`python -m hookline.cli`, as the tests and the bench run the command."""

import sys

from hookline.cli import main

# Guarded: tools that import every module of the package (the layout tests) import this one too.
if __name__ == "__main__":
    sys.exit(main())

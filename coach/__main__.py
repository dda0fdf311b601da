"""`python -m coach COMMAND`: what the Makefile's targets run, for anyone without make."""

import os
import sys

from coach.cli import STOPPED, main

if __name__ == "__main__":
    status = main(sys.argv[1:])
    if status == STOPPED:  # Ctrl-C: leave now; tidying torch away at exit takes a second
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)

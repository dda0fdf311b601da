"""`python -m coach COMMAND`: what the Makefile's targets run, for anyone without make."""

import sys

from coach.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

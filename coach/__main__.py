"""`python -m coach COMMAND`: what the Makefile's targets run, for anyone without make."""

import os
import sys

from coach.cli import main
from coach.core.command import STOPPED


def stopped(status: int) -> bool:
    """Whether the learner pressed Ctrl-C (the status says so, or the run recorded it)."""
    interrupt = sys.modules.get("coach.runtime.interrupt")
    return status == STOPPED or bool(interrupt and interrupt.arrived())


if __name__ == "__main__":
    status = main(sys.argv[1:])
    if stopped(status):  # Ctrl-C: leave now; tidying torch away at exit takes a second
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)

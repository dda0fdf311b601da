"""`make test [K=3]`: the learner's run of the kata tests."""

from __future__ import annotations

import sys

from coach.core import registry
from coach.core.bootstrap import ROOT

LEARNER_FLAGS = ["-q", "--tb=short", "-rN", "-p", "no:cacheprovider"]
# Options of `make test` itself, never passed to pytest. --red-is-ok (the Makefile's): a run
# whose tests fail exits 0, so make adds no "make: *** [...] Error 1" under the report; any
# other status (a usage error, Ctrl-C) is passed on. `python -m coach test` keeps pytest's.
OWN_FLAGS = ("--all", "--red-is-ok")


def test_files(selectors: list[str]) -> list[str]:
    """Test files for the chosen katas (all of them when none is chosen)."""
    katas = [registry.find(s) for s in selectors] if selectors else list(registry.KATAS)
    return [str(ROOT / kata.test_file) for kata in katas]


def split_args(rest: list[str]) -> tuple[list[str], list[str]]:
    """Kata selectors ("3", "k03") first; anything from the first option on goes to pytest."""
    selectors: list[str] = []
    for index, arg in enumerate(rest):
        if arg.startswith("-"):
            return selectors, rest[index:]
        selectors.append(arg)
    return selectors, []


def failure_options(selectors: list[str], everything: bool, pytest_args: list[str]) -> list[str]:
    """All katas: the summary and the first failure of the kata you are on. One kata: its
    failures in the summary's order, repeats collapsed, within one screen. `--all` (ALL=1)
    or -v: every failure, every line."""
    verbose = any(arg in ("-v", "-vv", "--verbose") for arg in pytest_args)
    if not selectors and not everything and not verbose:
        return ["--coach-brief", "-q"]
    return ["--coach-failures", "all" if everything or verbose else "screen"]


def test(rest: list[str]) -> int:
    """All katas: the summary and the first failure of the kata you are on (`--all` prints
    every failure). One kata (`make test K=3`): that kata's failures, within one screen."""
    import pytest

    from coach.runtime import interrupt

    everything = "--all" in rest
    from_make = "--red-is-ok" in rest
    selectors, pytest_args = split_args([arg for arg in rest if arg not in OWN_FLAGS])
    pytest_args = [*failure_options(selectors, everything, pytest_args), *pytest_args]
    try:
        files = test_files(selectors)
    except LookupError as error:
        print(error, file=sys.stderr)
        return 2
    status = interrupt.status(pytest.main([*LEARNER_FLAGS, *files, *pytest_args]))
    if from_make and status == interrupt.STOPPED_STATUS:
        # make got the same Ctrl-C and stops on its own (status 130 for the shell); a 130 from
        # here would only add "make: *** [...] Error 130" under our one line.
        return 0
    return 0 if from_make and status == pytest.ExitCode.TESTS_FAILED else status

"""Check a kata's --coach-json file before an exit-code grader awards its points.

GitHub Classroom's command grader gives a kata its points when the command exits 0. pytest
also exits 0 when a kata ends the run early on purpose (`pytest.exit("bye", returncode=0)`,
or `os._exit(0)`), so the grader's command runs this after pytest:

    python -P coach/verify_results.py .grade-k01.json tests/test_k01_polynomial.py 7

It exits 0 only when the file exists and records exactly EXPECTED tests of that test file,
every one of them passed. EXPECTED is the number of tests pytest collected from the test file
when `make classroom` generated the workflow, so a run that stopped early, or a test file with
tests removed, earns nothing.

Standard library only, and run by its path with `-P`: nothing in the learner's working folder
is imported. (Code running inside the pytest process can still rewrite this file at exit: that
is a residual risk docs/INSTRUCTORS.md names, and `make grade` scans for it.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

USAGE = "usage: python -P coach/verify_results.py RESULTS.json TEST_FILE EXPECTED_COUNT"


def problems(results: Path, test_file: str, expected: int) -> list[str]:
    """Why these results must not earn points; empty when every expected test passed."""
    try:
        records = json.loads(results.read_text(encoding="utf-8"))["tests"]
        if not isinstance(records, list):
            raise TypeError(type(records).__name__)
    except FileNotFoundError:
        return [f"{results} is missing: pytest stopped before it wrote its results."]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [f"{results} is not a results file ({type(error).__name__})."]
    prefix = test_file.replace("\\", "/") + "::"
    mine = [
        record
        for record in records
        if isinstance(record, dict) and str(record.get("nodeid", "")).startswith(prefix)
    ]
    found = []
    if len(mine) != expected:
        found.append(
            f"{len(mine)} of the {expected} tests of {test_file} reported an outcome: the run "
            f"ended early (pytest.exit(), os._exit()?) or the test file changed."
        )
    failed = [r.get("nodeid") for r in mine if r.get("outcome") != "passed"]
    if failed:
        found.append(f"{len(failed)} test(s) did not pass, e.g. {failed[0]}.")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[2].isdigit():
        print(USAGE, file=sys.stderr)
        return 2
    results, test_file, expected = Path(argv[0]), argv[1], int(argv[2])
    found = problems(results, test_file, expected)
    for problem in found:
        print(f"No points: {problem}", file=sys.stderr)
    if not found:
        print(f"All {expected} tests of {test_file} passed.")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

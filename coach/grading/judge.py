"""Turn a grading run into per-test outcomes and points, without running any learner code.

coach/grading/kata_runner.py runs each kata's tests in a process of its own and writes run.json:
per kata, how its process ended and what its report says. This module reads that file and
decides; it is the only judge on every route (`make grade`, the GitHub Classroom workflow,
the Classroom 50 bundle). Standard library only, and run by path with `-I`, so nothing in
the learner's working folder is imported.

The rules, for every kata:
- the tests that count are the EXPECTED ones, recorded from the pristine tests (in
  grading-manifest.json, in the workflow, in the Classroom 50 files); a test the report does
  not list (deselected, skipped at collection, deleted, never reached) counts as failed;
- a kata whose process did not end the way the grader ends it (killed, os._exit(), any exit
  code, interrupted, over its time limit, no report) scores 0, and so does one whose process
  replaced pytest's or the coach's functions while its tests ran; the note says which.

As a command, for GitHub Classroom's command grader (points on exit code 0 alone):

    python -I coach/grading/judge.py RUN.json KATA grading-manifest.json

exits 0 only when KATA's process ended cleanly and every one of KATA's expected tests, as the
manifest lists them, reported and passed (and no other test of KATA ran).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

USAGE = "usage: python -I coach/grading/judge.py RUN.json KATA grading-manifest.json"
COMPLETED = (0, 1)  # pytest's exit codes for a run that went to its end with tests
EXIT_CODES = {
    2: "the run was interrupted (KeyboardInterrupt, or pytest.exit())",
    3: "pytest hit an internal error",
    4: "pytest was called wrongly (a usage error)",
    5: "pytest collected no tests",
}
NEVER_RAN = "No outcome: this test never ran (deselected, skipped at collection, or deleted?)."


@dataclass
class Verdict:
    """One kata's outcome per expected test, and why the kata scored 0 if it did."""

    outcomes: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # id -> status...
    note: str = ""  # set when the whole kata is void
    remarks: list[str] = field(default_factory=list)  # worth saying, costs nothing

    @property
    def passed(self) -> int:
        return sum(status == "passed" for status, _, _ in self.outcomes.values())

    @property
    def total(self) -> int:
        return len(self.outcomes)


def _ending(status: dict, limit: float | None) -> str:
    if status.get("timed_out"):
        return f"its tests were still running after {limit or '?'} s and were stopped"
    if status.get("signal"):
        return f"its test process was killed by signal {status['signal']}"
    code = status.get("exit")
    return (
        f"its test process ended with exit code {code} before writing its report "
        f"(os._exit(), a crash?)"
    )


def _listed(items: list, most: int = 3) -> str:
    shown = ", ".join(str(item) for item in items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def practice_note(run: dict) -> str:
    """Say so when kata code ran as the grader's own OS user: evidence then, not a lock."""
    sandbox = run.get("sandbox") or {}
    if sandbox.get("user"):
        return ""
    why = sandbox.get("why_none") or "no second OS user"
    return (
        f"Practice grade: kata code ran as the grader's own OS user ({why}), so it could "
        f"write what the grader later reads; every change found is put back and voids its "
        f"kata, but only a grade whose kata code ran as another user is a lock."
    )


def void_reason(entry: dict | None, limit: float | None = None) -> str:
    """Why a kata's run cannot be trusted at all, or "" when it can."""
    if entry is None:
        return "its tests did not run (no test file?)"
    status, report = entry.get("status") or {}, entry.get("report")
    if status.get("timed_out") or status.get("signal") or report is None:
        return _ending(status, limit)
    if status.get("exit") != 0:
        return f"its test process ended with exit code {status.get('exit')} after its report"
    if status.get("changed_files"):
        return (
            f"code it ran changed the grading files {_listed(status['changed_files'])} (put "
            f"back before the next kata)"
        )
    if status.get("site_changed"):
        return (
            f"code it ran wrote Python start-up files {_listed(status['site_changed'])} "
            f"(removed before the next kata)"
        )
    if report.get("forged"):
        return (
            f"its report stream holds records the grader's recorder did not send "
            f"({_listed(report['forged'])}): kata code wrote into it"
        )
    if report.get("tampered"):
        names = ", ".join(report["tampered"][:4])
        more = f" and {len(report['tampered']) - 4} more" if len(report["tampered"]) > 4 else ""
        return (
            f"code running in its test process replaced {names}{more}: what pytest reported "
            f"cannot be trusted"
        )
    if report.get("crash"):
        return f"pytest itself failed: {report['crash']}"
    if report.get("interrupted"):
        return f"the run was interrupted ({report['interrupted']})"
    code = report.get("exitstatus")
    if code not in COMPLETED:
        return EXIT_CODES.get(code, f"pytest ended with exit code {code}")
    return ""


def verdict(entry: dict | None, expected: list[str], limit: float | None = None) -> Verdict:
    """Every expected test's (status, message, line), and the note when the kata is void."""
    result = Verdict()
    evidence = ((entry or {}).get("report") or {}).get("evidence") or []
    if evidence:
        result.remarks.append(
            f"Evidence, from inside its test process (kata code reaching the grader's "
            f"machinery; read these lines): {_listed(evidence, 6)}."
        )
    reason = void_reason(entry, limit)
    if reason:
        result.note = " ".join([f"0 points: {reason}.", *result.remarks])
        result.outcomes = {nodeid: ("error", result.note, 0) for nodeid in expected}
        return result
    tests = (entry.get("report") or {}).get("tests") or {}
    missing = 0
    for nodeid in expected:
        record = tests.get(nodeid)
        if isinstance(record, dict):
            status = str(record.get("outcome", "error"))
            result.outcomes[nodeid] = (
                status,
                str(record.get("message", "")),
                record.get("line", 0),
            )
        else:
            missing += 1
            result.outcomes[nodeid] = ("error", NEVER_RAN, 0)
    if missing:
        result.remarks.append(
            f"{missing} of {len(expected)} expected tests never ran (deselected or deleted?); "
            f"they count as failed."
        )
    extra = sorted(set(tests) - set(expected))
    if extra:
        result.remarks.append(f"{len(extra)} test(s) not in the expected list were ignored.")
    return result


def load_run(path: Path) -> dict:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("katas"), dict):
        raise ValueError("not a run.json written by coach/grading/kata_runner.py")
    return data


def expected_from_manifest(path: Path, kata: str) -> list[str] | None:
    """KATA's expected test ids as the manifest records them; None when it records none."""
    try:
        ids = json.loads(Path(path).read_text(encoding="utf-8"))["tests"][kata]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [str(nodeid) for nodeid in ids] if isinstance(ids, list) and ids else None


def problems(run_path: Path, kata: str, expected: list[str] | None) -> list[str]:
    """Why this kata must not earn its points; empty when every expected test passed."""
    if not expected:
        return [f"no expected tests of {kata} are recorded (is grading-manifest.json there?)."]
    try:
        run = load_run(run_path)
    except FileNotFoundError:
        return [f"{run_path} is missing: the grading runner did not finish."]
    except (OSError, ValueError) as error:
        return [f"{run_path} is not a grading run ({type(error).__name__})."]
    found = verdict(run["katas"].get(kata), expected, run.get("limit"))
    if found.note:
        return [f"{kata}: {found.note}"]
    failed = [(n, o) for n, o in found.outcomes.items() if o[0] != "passed"]
    if not failed:
        return []
    nodeid, (status, message, _) = failed[0]
    first = f"{nodeid} ({status}):\n{message.strip()[:500]}"
    return [*found.remarks, f"{len(failed)} of {found.total} tests did not pass, e.g. {first}"]


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(USAGE, file=sys.stderr)
        return 2
    run_path, kata, manifest = Path(argv[0]), argv[1], Path(argv[2])
    expected = expected_from_manifest(manifest, kata)
    found = problems(run_path, kata, expected)
    try:
        note = practice_note(load_run(run_path))
    except (OSError, ValueError):
        note = ""
    if note:
        print(note, file=sys.stderr)
    for problem in found:
        print(f"No points: {problem}", file=sys.stderr)
    if not found:
        print(f"All {len(expected or [])} tests of {kata} passed, in a clean run.")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

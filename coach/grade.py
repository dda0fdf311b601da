"""`make grade`: points per kata, for a grader, in three machine-readable formats.

Runs every kata's tests once, in a separate pytest process, so that nothing a learner's code
does (an endless loop, exit(), a crash) can take the grader down with it. A kata earns its
points (`Kata.points` in coach/registry.py) in proportion to the tests it passes.

Prints a table and writes, into --out (default grading/):
- grade.json: this project's own record, per kata and per test, with the tamper check;
- results.json: Gradescope's autograder format, one entry per kata;
- junit.xml: one testsuite per kata, one testcase per test, for CI test viewers.
All of them come from one `Grade`, so they cannot disagree with the table.

Exits 0 whatever the score: a low grade is a result, not an error. Exits non-zero only when
grading itself broke (no such folder, pytest could not run, no outcomes came back).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from coach import manifest, registry
from coach.paths import display_path
from coach.registry import ROOT

GREEN, RED, BOLD, RESET = "\033[32m", "\033[31m", "\033[1m", "\033[0m"
DEFAULT_MAX_SECONDS = 600  # a last resort: pytest-timeout already stops each slow test
BROKEN = 2  # exit code when grading itself could not be done
# pytest exit codes that still mean "every test ran": 0 all passed, 1 some failed, 5 none found.
COMPLETED_RUN = {0, 1, 5}


@dataclass
class TestResult:
    nodeid: str
    kata: str
    status: str  # passed, failed, error or skipped
    message: str = ""
    line: int = 0

    @property
    def name(self) -> str:
        return self.nodeid.split("::")[-1]

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class KataGrade:
    kata: registry.Kata
    tests: list[TestResult] = field(default_factory=list)
    note: str = ""  # why there are no results, when there are none

    @property
    def passed(self) -> int:
        return sum(test.passed for test in self.tests)

    @property
    def total(self) -> int:
        return len(self.tests)

    @property
    def max_points(self) -> int:
        return self.kata.points

    @property
    def points(self) -> float:
        """Partial credit: the share of tests passed. No tests, no points."""
        return round(self.max_points * self.passed / self.total, 2) if self.total else 0.0

    @property
    def full(self) -> bool:
        return self.total > 0 and self.passed == self.total

    @property
    def failures(self) -> list[TestResult]:
        """The tests that did not pass, in the order the test file teaches them."""
        return sorted((t for t in self.tests if not t.passed), key=lambda t: (t.line, t.nodeid))


@dataclass
class Grade:
    katas: list[KataGrade]
    impl: Path
    mismatches: list[manifest.Mismatch]
    manifest_sha256: str | None = None
    seed: int | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def points(self) -> float:
        return round(sum(kata.points for kata in self.katas), 2)

    @property
    def max_points(self) -> int:
        return sum(kata.max_points for kata in self.katas)

    @property
    def passed(self) -> int:
        return sum(kata.passed for kata in self.katas)

    @property
    def total(self) -> int:
        return sum(kata.total for kata in self.katas)

    @property
    def tamper_status(self) -> str:
        return manifest.status(self.mismatches)


# --- running the tests ---------------------------------------------------------------------


def _randomly_installed() -> bool:
    return importlib.util.find_spec("pytest_randomly") is not None


def run_pytest(
    test_files: list[str], impl: Path, seed: int | None, max_seconds: float, log: list[str]
) -> list[dict] | None:
    """Per-test outcomes of one pytest process, or None if that run did not complete."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "outcomes.json"
        command = [
            *[sys.executable, "-m", "pytest", *test_files],
            *[f"--impl={impl}", "--coach-json", str(target)],
            *["-p", "no:cacheprovider", "-q", "--continue-on-collection-errors"],
        ]
        if seed is not None:
            command.append(f"--randomly-seed={seed}")
        try:
            run = subprocess.run(
                command,
                cwd=ROOT,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=max_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired:
            log.append(f"$ {' '.join(command)}\n(stopped after {max_seconds} s)\n")
            return None
        log.append(f"$ {' '.join(command)}\n{run.stdout}{run.stderr}(exit {run.returncode})\n")
        if run.returncode not in COMPLETED_RUN or not target.is_file():
            return None
        return json.loads(target.read_text(encoding="utf-8"))["tests"]


def _results(records: list[dict]) -> list[TestResult]:
    return [
        TestResult(r["nodeid"], r["kata"], r["outcome"], r.get("message", ""), r.get("line", 0))
        for r in records
        if r.get("kata")
    ]


def collect_results(
    impl: Path, seed: int | None, max_seconds: float, log: list[str], notes: list[str]
) -> list[KataGrade] | None:
    """Every kata's test results; None when pytest could not be made to run at all.

    One run grades everything. If that run dies (a learner's file that calls os._exit, a
    crash inside torch), each kata is run on its own, so only the kata that killed the run
    loses its points.
    """
    grades = {kata.name: KataGrade(kata) for kata in registry.KATAS}
    present = [kata for kata in registry.KATAS if (ROOT / kata.test_file).is_file()]
    for kata in registry.KATAS:
        if kata not in present:
            grades[kata.name].note = f"No tests ran: {kata.test_file} is missing."
    if not present:
        return list(grades.values())
    records = run_pytest([k.test_file for k in present], impl, seed, max_seconds, log)
    if records is None:
        notes.append("The test run stopped before the end; each kata was then graded alone.")
        completed = 0
        for kata in present:
            alone = run_pytest([kata.test_file], impl, seed, max_seconds, log)
            if alone is None:
                crash = _crashed(kata)
                grades[kata.name].tests = [crash]
                grades[kata.name].note = crash.message
            else:
                completed += 1
                grades[kata.name].tests = _results(alone)
        return list(grades.values()) if completed else None
    for result in _results(records):
        if result.kata in grades:
            grades[result.kata].tests.append(result)
    return list(grades.values())


def _crashed(kata: registry.Kata) -> TestResult:
    return TestResult(
        kata.test_file,
        kata.name,
        "error",
        f"The tests of {kata.name} stopped Python before they finished (an exit() call, a "
        f"crash, or code still running after the time limit), so none of them count.",
    )


# --- the table ---------------------------------------------------------------------------


def table(grade: Grade, color: bool = False) -> list[str]:
    """The printed summary; every output file carries the same numbers."""

    def paint(text: str, colour: str) -> str:
        return f"{colour}{text}{RESET}" if color else text

    seed = f", pytest-randomly seed {grade.seed}" if grade.seed is not None else ""
    lines = [paint("Grade", BOLD) + f" for {_shown(grade.impl)}{seed}:"]
    lines.append(f"  {'kata':<20} {'title':<34} {'tests':^7} {'points':>10}")
    for kata in grade.katas:
        row = (
            f"  {kata.kata.name:<20} {kata.kata.title:<34} {kata.passed:>3}/{kata.total:<3} "
            f"{kata.points:>8.2f} / {kata.max_points}"
        )
        lines.append(paint(row, GREEN if kata.full else RED))
    lines.append(
        f"  {'total':<55} {grade.passed:>3}/{grade.total:<3} "
        f"{grade.points:>8.2f} / {grade.max_points}"
    )
    full = sum(kata.full for kata in grade.katas)
    lines.append(f"  {full} of {len(grade.katas)} katas earn full points.")
    lines += [f"  {kata.kata.name}: {kata.note}" for kata in grade.katas if kata.note]
    lines += grade.notes
    lines += manifest.describe(grade.mismatches)
    return lines


def _shown(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix() + "/"
    except ValueError:
        return str(path)


# --- the output files ----------------------------------------------------------------------


def tamper_record(grade: Grade) -> dict:
    return {
        "status": grade.tamper_status,
        "manifest": manifest.MANIFEST_NAME,
        "manifest_sha256": grade.manifest_sha256,
        "mismatches": [
            {"path": m.path, "kind": m.kind, "explanation": manifest.EXPLANATIONS[m.kind]}
            for m in grade.mismatches
        ],
    }


def grade_json(grade: Grade) -> dict:
    """This project's own record of a grade."""
    return {
        "impl": str(grade.impl),
        "seed": grade.seed,
        "katas": [
            {
                "name": kata.kata.name,
                "title": kata.kata.title,
                "passed": kata.passed,
                "total": kata.total,
                "points": kata.points,
                "max_points": kata.max_points,
                "note": kata.note,
            }
            for kata in grade.katas
        ],
        "tests": [
            {"nodeid": t.nodeid, "kata": t.kata, "status": t.status, "message": t.message}
            for kata in grade.katas
            for t in kata.tests
        ],
        "total": {
            "passed": grade.passed,
            "total": grade.total,
            "points": grade.points,
            "max_points": grade.max_points,
        },
        "tamper": tamper_record(grade),
        "notes": grade.notes,
    }


def _kata_output(kata: KataGrade) -> str:
    """What Gradescope shows under a kata: which tests failed, and why."""
    if kata.note:
        return kata.note
    if kata.full:
        return f"All {kata.total} tests pass."
    failures = kata.failures
    parts = [f"{len(failures)} of {kata.total} tests did not pass:"]
    for test in failures:
        message = test.message.strip() or test.status
        parts.append(f"\n{test.name} ({test.status})\n{message}")
    return "\n".join(parts)


def gradescope_json(grade: Grade) -> dict:
    """Gradescope's results.json: https://gradescope-autograders.readthedocs.io/en/latest/specs/"""
    return {
        "score": grade.points,
        "execution_time": round(grade.seconds),
        "output": "\n".join(table(grade)),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"seed": grade.seed, "tamper": tamper_record(grade)},
        "tests": [
            {
                "name": f"{kata.kata.name}: {kata.kata.title}",
                "number": str(kata.kata.number),
                "score": kata.points,
                "max_score": kata.max_points,
                "status": "passed" if kata.full else "failed",
                "output": _kata_output(kata),
                "visibility": "visible",
            }
            for kata in grade.katas
        ],
    }


# XML 1.0 cannot hold most control characters, whatever the escaping.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("?", text)


def _counts(tests: list[TestResult]) -> dict[str, str]:
    return {
        "tests": str(len(tests)),
        "failures": str(sum(t.status == "failed" for t in tests)),
        "errors": str(sum(t.status == "error" for t in tests)),
        "skipped": str(sum(t.status == "skipped" for t in tests)),
    }


def junit_xml(grade: Grade) -> ET.ElementTree:
    """One testsuite per kata; the points and the tamper check ride along as properties."""
    every_test = [t for kata in grade.katas for t in kata.tests]
    suites = ET.Element("testsuites", name="autograd-katas", **_counts(every_test))
    for kata in grade.katas:
        suite = ET.SubElement(suites, "testsuite", name=kata.kata.name, **_counts(kata.tests))
        properties = ET.SubElement(suite, "properties")
        for name, value in [
            ("title", kata.kata.title),
            ("points", f"{kata.points:.2f}"),
            ("max_points", str(kata.max_points)),
            ("tamper", grade.tamper_status),
            *[(f"tamper.{m.kind}", m.path) for m in grade.mismatches if m.is_tampering],
        ]:
            ET.SubElement(properties, "property", name=name, value=_xml_text(value))
        for test in kata.tests:
            classname = test.nodeid.split("::")[0].removesuffix(".py").replace("/", ".")
            case = ET.SubElement(suite, "testcase", classname=classname, name=test.name)
            if test.status in {"failed", "error", "skipped"}:
                tag = {"failed": "failure", "error": "error", "skipped": "skipped"}[test.status]
                message = test.message.strip()
                first_line = message.splitlines()[0] if message else test.status
                element = ET.SubElement(case, tag, message=_xml_text(first_line))
                element.text = _xml_text(message)
        if kata.note:
            ET.SubElement(suite, "system-out").text = _xml_text(kata.note)
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_outputs(grade: Grade, out: Path, log: list[str]) -> list[Path]:
    """The three result files, plus pytest's own output for whoever must debug a grading."""
    out.mkdir(parents=True, exist_ok=True)
    documents = {"grade.json": grade_json(grade), "results.json": gradescope_json(grade)}
    for name, payload in documents.items():
        (out / name).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    junit_xml(grade).write(out / "junit.xml", encoding="utf-8", xml_declaration=True)
    (out / "pytest.log").write_text("\n".join(log), encoding="utf-8")
    return [out / "grade.json", out / "results.json", out / "junit.xml"]


# --- the command ---------------------------------------------------------------------------


def parse_args(rest: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make grade", description=__doc__.splitlines()[0])
    parser.add_argument("--impl", help="the folder to grade (default: $KATAS_IMPL or katas)")
    parser.add_argument("--out", default=str(ROOT / "grading"), help="where results go")
    parser.add_argument("--seed", type=int, help="pytest-randomly seed, to replay a grading")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help="stop a test run that takes longer than this (default: %(default)s)",
    )
    return parser.parse_args(rest)


def resolve_impl(chosen: str | None) -> Path | None:
    """As the plugin does: --impl, else $KATAS_IMPL, else katas; from here, then the root."""
    chosen = chosen or os.environ.get("KATAS_IMPL") or "katas"
    for candidate in (Path(chosen), ROOT / chosen):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def main(rest: list[str]) -> int:
    args = parse_args(rest)
    impl = resolve_impl(args.impl)
    if impl is None:
        print(f"Cannot grade: no folder {args.impl or 'katas'} here or in {ROOT}.", file=sys.stderr)
        return BROKEN
    seed = args.seed
    if seed is None and _randomly_installed():
        seed = random.randrange(10**6)  # recorded in the outputs, so a grade can be replayed
    log: list[str] = []
    notes: list[str] = []
    started = time.monotonic()
    katas = collect_results(impl, seed, args.max_seconds, log, notes)
    if katas is None:
        print("Grading failed: pytest did not run the kata tests. Its last words:", file=sys.stderr)
        for line in "\n".join(log).strip().splitlines()[-15:]:
            print(f"  {line}", file=sys.stderr)
        return BROKEN
    grade = Grade(
        katas,
        impl,
        manifest.verify(ROOT),
        manifest.manifest_hash(ROOT),
        seed,
        time.monotonic() - started,
        notes,
    )
    for line in table(grade, color=sys.stdout.isatty()):
        print(line)
    written = write_outputs(grade, Path(args.out), log)
    print("Wrote " + ", ".join(display_path(path) for path in written) + ".")
    return 0

"""`make grade`: points per kata, for a grader, in three machine-readable formats.

Each kata's tests run in a process of their own (coach/grading/kata_runner.py: a warm parent forks
one child per kata), so nothing a kata's code does (an endless loop, exit(), a crash, patching
pytest) can touch another kata's grade or this process. This process never imports torch,
pytest or learner code: it reads the reports and decides (coach/grading/judge.py). A kata
earns its points (`Kata.points`) in proportion to its EXPECTED tests that pass: the tests
recorded in grading-manifest.json at export (collected now where there is no manifest); a
test without an outcome counts as failed, and a kata whose process ended any other way than
the grader ends it, or replaced pytest's functions, scores 0 with a note saying why.

The runner grades from a fresh tree (coach/grading/tree.py: this repository's tests and
coach, and only the graded folder's `*.py` files). Run as root, kata code runs as an
unprivileged user; otherwise the report says it is a practice grade (kata code ran as you),
and every file it changed that the grader reads is put back and voids its kata.

Prints a table and writes, into --out (default grading/):
- grade.json: this project's own record, per kata and per test, with the tamper check;
- results.json: Gradescope's autograder format, one entry per kata;
- junit.xml: one testsuite per kata, one testcase per test, for CI test viewers.
All of them come from one `Grade`, so they cannot disagree with the table.

Exits 0 whatever the score: a low grade is a result, not an error. Exits non-zero only when
grading itself broke (no such folder, the runner could not run).
"""

from __future__ import annotations

import argparse
import ast
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

from coach.core import registry
from coach.core.paths import display_path
from coach.core.registry import ROOT
from coach.grading import judge, kata_runner, manifest, tree

GREEN, RED, BOLD, RESET = "\033[32m", "\033[31m", "\033[1m", "\033[0m"
DEFAULT_MAX_SECONDS = kata_runner.DEFAULT_LIMIT  # per kata; pytest-timeout stops a test
BROKEN = 2  # exit code when grading itself could not be done


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
    scan: list[Finding] = field(default_factory=list)

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


def run_grading(
    impl: Path,
    seed: int | None,
    limit: float,
    log: list[str],
    *,
    collect: bool,
    fork: bool = True,
    katas: list[registry.Kata] | None = None,
    sandbox: str = "auto",
) -> dict | None:
    """run.json of coach/grading/kata_runner.py: one process per kata; None if it could not run.

    This process never imports torch, pytest or a kata: the runner does the running, its
    children run the tests, and this process only reads what they wrote. The runner runs from
    a fresh grading tree (coach/grading/tree.py): this repository's tests and coach, and only
    the `*.py` files of `impl`, so nothing else in the repository is on any path it searches.
    """
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # the kata user reads the tree inside
        grading = Path(tmp) / "tree"  # fresh: the grader's files, and impl's *.py alone
        tree.build(ROOT, impl, grading)
        out, pytest_log = Path(tmp) / "run.json", Path(tmp) / "pytest.log"
        args = ["run", f"--impl={grading / tree.KATAS}", "--out", str(out), "--limit", str(limit)]
        args += ["--log", str(pytest_log), f"--sandbox={sandbox}"]
        args += ["--seed", str(seed)] if seed is not None else []
        args += ["--collect"] if collect else []
        args += [] if fork else ["--no-fork"]
        chosen = list(katas or registry.KATAS)
        if len(chosen) < len(registry.KATAS):
            args += [f"--kata={kata.name}" for kata in chosen]
        runner = grading / "coach" / "grading" / "kata_runner.py"
        command = [sys.executable, *kata_runner.PYTHON_FLAGS, str(runner), *args]
        budget = limit * (len(chosen) + 2) + 60
        try:
            run = subprocess.run(
                command, cwd=grading, env=kata_runner.clean_env(), capture_output=True,
                text=True, errors="replace", timeout=budget, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            log.append(f"$ {' '.join(command)}\n(stopped after {budget} s)\n")
            return None
        log.append(f"$ {' '.join(command)}\n{run.stdout}{run.stderr}(exit {run.returncode})\n")
        if pytest_log.is_file():
            log.append(pytest_log.read_text(encoding="utf-8", errors="replace"))
        try:
            return judge.load_run(out)
        except (OSError, ValueError):
            return None


def ignored_settings(impl: Path) -> list[str]:
    """What a learner could have meant to change the run with, and the grader ignores."""
    found = (
        [f"PYTEST_ADDOPTS={os.environ['PYTEST_ADDOPTS']!r}"]
        if "PYTEST_ADDOPTS" in os.environ
        else []
    )
    candidates = [ROOT / name for name in ("pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg")]
    candidates += [impl / "conftest.py", *sorted((ROOT / "tests").rglob("conftest.py"))]
    found += [_shown(path).rstrip("/") for path in candidates if path.is_file()]
    return found


def collect_results(
    impl: Path,
    seed: int | None,
    limit: float,
    log: list[str],
    notes: list[str],
    *,
    fork: bool = True,
    only: list[registry.Kata] | None = None,
    sandbox: str = "auto",
) -> list[KataGrade] | None:
    """Every kata's grade over its EXPECTED tests; None when the runner could not run at all.

    The expected tests come from grading-manifest.json (recorded from the pristine tests at
    export); without a manifest (the maintainers' repository), from collecting tests/ now.
    """
    expected = manifest.expected_tests(ROOT)
    katas = list(only or registry.KATAS)
    run = run_grading(
        impl, seed, limit, log, collect=expected is None, fork=fork, katas=katas, sandbox=sandbox
    )
    if run is None:
        return None
    practice = judge.practice_note(run)
    if practice:
        notes.append(practice)
    if expected is None:
        expected = run.get("expected") or {}
        notes.append("Expected tests: collected from tests/ now (no grading-manifest.json).")
    else:
        notes.append(f"Expected tests: the {sum(map(len, expected.values()))} recorded in "
                     f"{manifest.MANIFEST_NAME}.")  # fmt: skip
    ignored = ignored_settings(impl)
    if ignored:
        notes.append(
            "Ignored (the grader runs pytest with its own options and configuration, and "
            "loads no conftest.py): " + ", ".join(ignored) + "."
        )
    grades = []
    for kata in katas:
        ids = list(expected.get(kata.name, []))
        found = judge.verdict(run["katas"].get(kata.name), ids, run.get("limit"))
        tests = [
            TestResult(nodeid, kata.name, status, message, line)
            for nodeid, (status, message, line) in found.outcomes.items()
        ]
        note = found.note or " ".join(found.remarks)
        if not (ROOT / kata.test_file).is_file():
            note = (
                f"No tests ran: {kata.test_file} is missing; its {len(ids)} tests count as failed."
            )
        grades.append(KataGrade(kata, tests, note))
    return grades


# --- the code scan -------------------------------------------------------------------------

# What a kata needs. Anything else is not forbidden, only worth a look: the scan reports, it
# never takes points away.
ALLOWED_IMPORTS = frozenset(
    {"torch", "math", "typing", "__future__", "collections", "functools", "itertools"}
    | {"dataclasses", "random", "re", "operator", "numbers", "statistics", "enum"}
)
# Names that can reach the grader from inside the pytest process: end the run early (and with
# exit code 0), rewrite the results at exit, or patch pytest itself.
SUSPECT_NAMES = frozenset(
    {"atexit", "_pytest", "pytest", "builtins", "__builtins__", "importlib", "subprocess"}
    | {"__import__", "exec", "eval", "compile", "globals", "setattr"}
)
SUSPECT_ATTRIBUTES = frozenset(
    {"os._exit", "sys.exit", "sys.modules", "sys.path", "os.kill", "os.system"}
)
WRITING_METHODS = frozenset({"write_text", "write_bytes"})
# Attributes, on whatever object, that reach the grader's own machinery from inside the
# process: its frames, its objects in memory, its modules, or an exit that skips the report.
SUSPECT_ATTRIBUTE_NAMES = frozenset(
    {"_exit", "f_back", "f_locals", "f_globals", "tb_frame", "__traceback__", "modules"}
    | {"get_objects", "get_referrers", "__subclasses__", "__code__", "__globals__"}
)


@dataclass(frozen=True, order=True)
class Finding:
    path: str  # as shown to the grader: relative to the repository when inside it
    line: int
    what: str

    @property
    def kata(self) -> str:
        return Path(self.path).stem

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _dotted(node: ast.AST) -> str:
    """`os._exit` for the expression os._exit; "" for anything that is not a plain name chain."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _open_mode(call: ast.Call) -> str | None:
    """The mode of an open(...) call: a literal string, "?" when computed, None for reading."""
    mode = call.args[1] if len(call.args) > 1 else None
    mode = next((k.value for k in call.keywords if k.arg == "mode"), mode)
    if mode is None:
        return None
    if not (isinstance(mode, ast.Constant) and isinstance(mode.value, str)):
        return "?"
    return mode.value if set(mode.value) & set("wax+") else None


def _findings_in(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                (node.lineno, f"imports {alias.name} (not in the allow-list)")
                for alias in node.names
                if alias.name.split(".")[0] not in ALLOWED_IMPORTS
            ]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level or module.split(".")[0] not in ALLOWED_IMPORTS:
                found.append((node.lineno, f"imports from {module} (not in the allow-list)"))
        elif isinstance(node, ast.Name) and node.id in SUSPECT_NAMES:
            found.append((node.lineno, f"uses {node.id}"))
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted in SUSPECT_ATTRIBUTES:
                found.append((node.lineno, f"uses {dotted}"))
            elif node.attr in WRITING_METHODS:
                found.append((node.lineno, f"writes a file (.{node.attr})"))
            elif node.attr in SUSPECT_ATTRIBUTE_NAMES:
                found.append((node.lineno, f"uses .{node.attr}"))
        if isinstance(node, ast.Call) and _dotted(node.func) == "open":
            mode = _open_mode(node)
            if mode is not None:
                found.append((node.lineno, f"opens a file for writing (mode {mode!r})"))
    return found


def scan_code(impl: Path) -> list[Finding]:
    """Lines in the graded folder's Python files worth a grader's look, sorted by file and line.

    Code running inside the pytest process can end it early, rewrite the results at exit or
    patch pytest; none of that can be prevented in-process. This cheap scan (ast, no import)
    names where a file could be doing it. A hit is evidence to read, not proof.
    """
    findings: set[Finding] = set()
    for path in sorted(Path(impl).glob("*.py")):
        shown = _shown(path).rstrip("/")
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, ValueError, UnicodeDecodeError, OSError):
            continue  # the tests report a file that does not parse
        findings |= {Finding(shown, line, what) for line, what in _findings_in(tree)}
    return sorted(findings)


def describe_scan(findings: list[Finding]) -> list[str]:
    if not findings:
        return ["Code scan: nothing outside the usual imports and calls in the graded files."]
    lines = [
        f"Code scan: {len(findings)} line(s) in the graded files worth a look (they can reach "
        f"the grader from inside pytest; evidence, not proof):"
    ]
    return lines + [f"  {finding}" for finding in findings]


# --- the table ---------------------------------------------------------------------------


def table(grade: Grade, color: bool = False) -> list[str]:
    """The printed summary; every output file carries the same numbers."""

    def paint(text: str, colour: str) -> str:
        return f"{colour}{text}{RESET}" if color else text

    seed = f", pytest-randomly seed {grade.seed}" if grade.seed is not None else ""
    lines = [paint("Grade", BOLD) + f" for {_shown(grade.impl)}{seed}:"]
    # Column widths from what they hold, so that a long title never shifts a row.
    name_width = max([len("kata"), *(len(kata.kata.name) for kata in grade.katas)])
    title_width = max([len("title"), *(len(kata.kata.title) for kata in grade.katas)])
    counts = [(kata.passed, kata.total) for kata in grade.katas] + [(grade.passed, grade.total)]
    count_width = max(len(str(number)) for pair in counts for number in pair)
    maxima = [kata.max_points for kata in grade.katas] + [grade.max_points]
    max_width = max(len(str(number)) for number in maxima)

    def cells(name: str, title: str, counts: tuple[int, int], points: float, most) -> str:
        tests = f"{counts[0]:>{count_width}}/{counts[1]:<{count_width}}"
        return (
            f"  {name:<{name_width}}  {title:<{title_width}}  {tests}  "
            f"{points:>7.2f} / {most:<{max_width}}"
        ).rstrip()

    tests_width = 2 * count_width + 1
    points_width = 7 + 3 + max_width
    lines.append(
        f"  {'kata':<{name_width}}  {'title':<{title_width}}  {'tests':^{tests_width}}  "
        f"{'points':^{points_width}}".rstrip()
    )
    for kata in grade.katas:
        row = cells(
            kata.kata.name,
            kata.kata.title,
            (kata.passed, kata.total),
            kata.points,
            kata.max_points,
        )
        lines.append(paint(row, GREEN if kata.full else RED))
    lines.append(cells("total", "", (grade.passed, grade.total), grade.points, grade.max_points))
    full = sum(kata.full for kata in grade.katas)
    lines.append(f"  {full} of {len(grade.katas)} katas earn full points.")
    lines += [f"  {kata.kata.name}: {kata.note}" for kata in grade.katas if kata.note]
    lines += grade.notes
    lines += manifest.describe(grade.mismatches)
    lines.append(manifest_line(grade.manifest_sha256))
    lines += describe_scan(grade.scan)
    return lines


def manifest_line(sha256: str | None) -> str:
    if sha256 is None:
        return f"Manifest SHA-256: none ({manifest.MANIFEST_NAME} is absent)."
    return (
        f"Manifest SHA-256: {sha256} (compare with the one `make student-repo` printed; "
        f"docs/INSTRUCTORS.md, section 5)."
    )


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
        "scan": [str(finding) for finding in grade.scan],
    }


def _kata_output(kata: KataGrade, findings: list[Finding]) -> str:
    """What Gradescope shows under a kata: which tests failed and why, and the scan's hits."""
    scan = [f"Code scan: {finding}" for finding in findings if finding.kata == kata.kata.name]
    if kata.note and (kata.passed == 0 or kata.full):
        return "\n".join([kata.note, *scan])
    if kata.full:
        return "\n".join([f"All {kata.total} tests pass.", *scan])
    failures = kata.failures
    parts = [kata.note] if kata.note else []
    parts.append(f"{len(failures)} of {kata.total} tests did not pass:")
    for test in failures:
        message = test.message.strip() or test.status
        parts.append(f"\n{test.name} ({test.status})\n{message}")
    return "\n".join(parts + scan)


def gradescope_json(grade: Grade) -> dict:
    """Gradescope's results.json: https://gradescope-autograders.readthedocs.io/en/latest/specs/"""
    return {
        "score": grade.points,
        "execution_time": round(grade.seconds),
        "output": "\n".join(table(grade)),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {
            "seed": grade.seed,
            "tamper": tamper_record(grade),
            "notes": grade.notes,
            "scan": [str(finding) for finding in grade.scan],
        },
        "tests": [
            {
                "name": f"{kata.kata.name}: {kata.kata.title}",
                "number": str(kata.kata.number),
                "score": kata.points,
                "max_score": kata.max_points,
                "status": "passed" if kata.full else "failed",
                "output": _kata_output(kata, grade.scan),
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
            ("manifest_sha256", grade.manifest_sha256 or "none"),
            *[(f"tamper.{m.kind}", m.path) for m in grade.mismatches if m.is_tampering],
            *[("note", note) for note in grade.notes],
            *[("scan", str(f)) for f in grade.scan if f.kata == kata.kata.name],
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
        help="stop a kata's tests that take longer than this (default: %(default)s)",
    )
    parser.add_argument(
        "--kata",
        action="append",
        default=[],
        help="grade only this kata (repeatable); default: every kata",
    )
    parser.add_argument(
        "--no-fork",
        action="store_true",
        help="a fresh Python per kata instead of a fork (what systems without fork() get)",
    )
    parser.add_argument(
        "--sandbox",
        choices=("auto", "none"),
        default="auto",
        help="auto: kata code runs as an unprivileged user when grading as root; none: as you",
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
    if seed is None and importlib.util.find_spec("pytest_randomly") is not None:
        seed = random.randrange(10**6)  # recorded in the outputs, so a grade can be replayed
    log: list[str] = []
    notes: list[str] = []
    started = time.monotonic()
    try:
        chosen = [registry.find(name) for name in args.kata]
    except LookupError as error:
        print(error, file=sys.stderr)
        return BROKEN
    katas = collect_results(
        impl, seed, args.max_seconds, log, notes, fork=not args.no_fork, only=chosen,
        sandbox=args.sandbox,
    )  # fmt: skip
    if katas is None:
        print("Grading failed: the kata tests did not run. Last words:", file=sys.stderr)
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
        scan_code(impl),
    )
    for line in table(grade, color=sys.stdout.isatty()):
        print(line)
    written = write_outputs(grade, Path(args.out), log)
    print("Wrote " + ", ".join(display_path(path) for path in written) + ".")
    return 0

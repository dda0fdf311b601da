"""`make check`: the project's own test. Every kata's three faces must tell one story.

1. The linters are clean (ruff check, ruff format --check); the generated grading files
   (Classroom workflow, devcontainer) match the registry and pass actionlint; notebooks/ and
   the README's Colab list match the katas (coach/notebook/generate.py).
2. The tooling's own tests pass (selftests/: isolation of broken katas, CLI, reports).
3. Every test FAILS on the pristine stubs in katas/ (a failure, never an error or a skip),
   so each test really tells a stub from a solution.
4. Every test PASSES on solutions/, in random order; this run's pytest summary is printed.

Before all of these, the authoring checks (coach/authoring/units.py): every kata has its four files,
its stub is a stub (NotImplementedError and a # TODO in each function), its lesson has
enough hints and quiz questions; after them, every stub function has a test that fails on it.
`--quick` runs only the authoring checks and the two kata runs.

Ends with one line "check: N passed, M failed" counting the steps; exits non-zero on any failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from coach.authoring import actionlint, platforms
from coach.authoring import units as authoring
from coach.core import registry
from coach.core.bootstrap import ROOT
from coach.grading import classroom50
from coach.grading import workflow as classroom
from coach.notebook import generate as notebook_files


def _pytest(args: list[str], capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=ROOT,
        capture_output=capture,
        text=True,
        check=False,
    )


def run_katas(impl: str, json_path: Path, capture: bool, extra: list[str]) -> tuple[int, dict]:
    files = [kata.test_file for kata in registry.KATAS]
    result = _pytest(
        [*files, f"--impl={impl}", "--coach-json", str(json_path), *extra], capture=capture
    )
    outcomes = {}
    if json_path.exists():
        outcomes = {t["nodeid"]: t for t in json.loads(json_path.read_text())["tests"]}
    return result.returncode, outcomes


def grading_file_problems() -> list[str]:
    """The generated grading files: fresh, acceptable to their platforms, actionlint clean."""
    problems = classroom.check_generated() + classroom50.structural_problems()
    workflow = ROOT / classroom.WORKFLOW_PATH
    if workflow.is_file():
        problems += actionlint.actionlint_problems(workflow)
    return problems


def check_lint() -> list[str]:
    problems = []
    for command in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, check=False)
        if result.returncode != 0:
            problems.append(f"`{' '.join(command)}` found problems (see above)")
    return problems


def check_selftests() -> list[str]:
    # The selftests start pytest in subprocesses: give them more than a kata test's 10 s.
    result = _pytest(["selftests", "-q", "-o", "timeout=300", "--coach-summary", "off"])
    return [] if result.returncode == 0 else ["selftests/ failed (see above)"]


def check_stubs(workdir: Path) -> tuple[list[str], set[str]]:
    code, outcomes = run_katas(
        "katas",
        workdir / "stubs.json",
        capture=True,
        extra=["-q", "--tb=no", "--coach-summary", "off"],
    )
    problems = []
    if not outcomes:
        problems.append(f"the stub run reported no tests (pytest exit {code})")
    for nodeid, test in sorted(outcomes.items()):
        if test["outcome"] != "failed":
            problems.append(
                f"{nodeid} {test['outcome']} on the pristine stubs: a test must fail there, "
                f"or it cannot tell a stub from a solution. {test['message']}".strip()
            )
    failed = sum(t["outcome"] == "failed" for t in outcomes.values())
    print(f"stubs: {failed} of {len(outcomes)} tests fail on katas/, as they should.")
    return problems, outcomes


def check_solutions(workdir: Path, stub_tests: dict) -> tuple[list[str], int, dict]:
    code, outcomes = run_katas("solutions", workdir / "solutions.json", capture=False, extra=[])
    problems = []
    if code != 0:
        problems.append(f"pytest on solutions/ exited {code}")
    for nodeid, test in sorted(outcomes.items()):
        if test["outcome"] != "passed":
            problems.append(f"{nodeid} {test['outcome']} on solutions/: {test['message']}")
    if stub_tests and set(outcomes) != set(stub_tests):
        problems.append("the stub run and the solution run collected different tests")
    per_kata = {}
    for test in outcomes.values():
        per_kata[test["kata"]] = per_kata.get(test["kata"], 0) + 1
    for kata in registry.KATAS:
        if per_kata.get(kata.name, 0) == 0:
            problems.append(f"{kata.name} has no tests")
    return problems, len(outcomes), outcomes


def main(rest: list[str]) -> int:
    quick = "--quick" in rest  # authoring and kata runs only: for a kata author's loop
    steps: list[tuple[str, list[str]]] = []
    steps.append(("every kata whole: four files, stub, lesson", authoring.check_units()))
    if not quick:
        steps.append(("lint", check_lint()))
        steps.append(("grading files up to date", grading_file_problems()))
        steps.append(("CI workflow tests the README's platforms", platforms.check_ci_workflow()))
        steps.append(("notebooks up to date", notebook_files.check_generated()))
        steps.append(("selftests", check_selftests()))
    with tempfile.TemporaryDirectory() as tmp:
        stub_problems, stub_outcomes = check_stubs(Path(tmp))
        steps.append(("stubs red", stub_problems))
        solution_problems, count, solution_outcomes = check_solutions(Path(tmp), stub_outcomes)
        steps.append((f"solutions green ({count} tests)", solution_problems))
        steps.append(
            (
                "every function tested, every test tied to a function",
                authoring.check_tests_cover_functions(stub_outcomes, solution_outcomes),
            )
        )
    failed = [(name, problems) for name, problems in steps if problems]
    print()
    for name, problems in steps:
        print(f"  {'ok  ' if not problems else 'FAIL'}  {name}")
        for problem in problems:
            print(f"          {problem}")
    print(f"check: {len(steps) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0

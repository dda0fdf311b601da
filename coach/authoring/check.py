"""`make check`: the project's own test. Every kata's three faces must tell one story.

First the layout (coach/authoring/units.py): every kata has its four files, each kata number
is taken once, and a misnamed file is named in one line with the name it probably meant. A
broken layout stops the check there, before any pytest run.

`--quick` is the author's whole contract, short of the selftests:
1. each kata is whole: its stub is a stub (NotImplementedError and a # TODO in each function)
   with the reference's functions and parameters; its lesson has enough hints, unique quiz ids;
2. the quiz's rules hold on the installed torch: each stated answer is what the code gives,
   and the explanation starts with it;
3. the generated files (README's course table, Classroom workflow, devcontainer, and the
   notebooks with the README's Colab list where the notebook tools are installed) are fresh,
   else the stale ones are named with the one command that rewrites them (`make generate`);
4. ruff is clean on katas/, solutions/, tests/ and lessons/;
5. every test FAILS on the pristine stubs in katas/ (a failure, never an error or a skip),
   so each test really tells a stub from a solution;
6. every test PASSES on solutions/, in random order; this run's pytest summary is printed;
7. every stub function has a test that fails on it, and every test is charged to a function.
The full check installs the notebook tools for step 3, and adds ruff on everything,
actionlint and the platforms on the generated files, and the tooling's own tests (selftests/).

Ends with one line "check: N passed, M failed" counting the steps; exits non-zero on any failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from coach.authoring import actionlint, generated, platforms, units
from coach.core import registry
from coach.core.bootstrap import ROOT
from coach.grading import classroom50
from coach.grading import workflow as classroom


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


KATA_FOLDERS = ("katas", "solutions", "tests", "lessons")


def check_lint(paths: tuple[str, ...] = (".",)) -> list[str]:
    problems = []
    for command in (["ruff", "check", *paths], ["ruff", "format", "--check", *paths]):
        result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, check=False)
        if result.returncode != 0:
            problems.append(f"`{' '.join(command)}` found problems (see above)")
    return problems


def check_grading_files() -> list[str]:
    """What GitHub or Classroom 50 would reject in the generated files (their freshness is
    the generated-files step's)."""
    workflow = ROOT / classroom.WORKFLOW_PATH
    problems = classroom.structural_problems() + classroom50.structural_problems()
    if workflow.is_file():
        problems += actionlint.actionlint_problems(workflow)
    return problems


# Seconds each selftest file took on a busy 2-core machine (`pytest selftests --durations`);
# a file not named here counts as 5. Only the split into shards uses them.
SELFTEST_SECONDS = {
    "test_grading_forgery.py": 71,
    "test_grading_isolation.py": 39,
    "test_learner_time.py": 36,
    "test_notebook.py": 33,
    "test_platforms.py": 25,
    "test_authoring.py": 21,
    "test_classroom.py": 20,
    "test_export.py": 18,
    "test_server.py": 17,
    "test_isolation.py": 12,
    "test_watch.py": 8,
    "test_predict.py": 7,
}
SELFTEST_SHARDS = 3  # pytest processes side by side: the selftests wait on children a lot


def selftest_shards(files: list[str], shards: int = SELFTEST_SHARDS) -> list[list[str]]:
    """The selftest files split into `shards` groups of about equal time, longest first."""
    groups: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(shards)]
    for file in sorted(files, key=lambda f: -SELFTEST_SECONDS.get(Path(f).name, 5)):
        seconds, group = min(groups, key=lambda g: g[0])
        groups.remove((seconds, group))
        groups.append((seconds + SELFTEST_SECONDS.get(Path(file).name, 5), [*group, file]))
    return [group for _, group in groups if group]


def start_selftests() -> list[tuple[list[str], subprocess.Popen, Path]]:
    """The selftests, started in shards that run beside the rest of the check."""
    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "selftests").glob("test_*.py"))
    started = []
    for shard in selftest_shards(files):
        log = Path(tempfile.mkstemp(prefix="coach-selftests-", suffix=".log")[1])
        # The selftests start pytest in subprocesses: give them more than a kata test's 10 s.
        command = [sys.executable, "-m", "pytest", *shard, "-q", "-o", "timeout=300"]
        command += ["--coach-summary", "off", "-p", "no:cacheprovider"]
        with log.open("w", encoding="utf-8") as out:
            process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        started.append((shard, process, log))
    return started


def finish_selftests(started: list[tuple[list[str], subprocess.Popen, Path]]) -> list[str]:
    """Wait for the shards; print a failing shard's output; one problem per failing shard."""
    problems = []
    for shard, process, log in started:
        code = process.wait()
        output = log.read_text(encoding="utf-8", errors="replace")
        log.unlink(missing_ok=True)
        last = output.strip().splitlines()[-1:] or ["(no output)"]
        print(f"selftests {' '.join(Path(f).stem for f in shard)}: {last[0]}")
        if code != 0:
            print(output)
            problems.append(f"selftests failed in {', '.join(shard)} (see above)")
    return problems


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


def _report(steps: list[tuple[str, list[str]]]) -> None:
    print()
    for name, problems in steps:
        print(f"  {'ok  ' if not problems else 'FAIL'}  {name}")
        for problem in problems:
            print(f"          {problem}")


def _steps(quick: bool, selftests: list) -> list[tuple[str, list[str]]]:
    """Every step after the layout, in order, each with its problems."""
    steps: list[tuple[str, list[str]]] = []
    steps.append(("every kata whole: stub, reference, lesson", units.check_units()))
    quiz = [problem for kata in registry.KATAS for problem in units.check_quiz(kata)]
    steps.append(("every quiz answer is what torch gives, stated first", quiz))
    steps.append(
        ("generated files up to date", generated.stale_files(notebooks=None if quick else True))
    )
    if quick:
        steps.append(("ruff on the katas' files", check_lint(KATA_FOLDERS)))
    else:
        steps.append(("lint", check_lint()))
        steps.append(("grading files valid (actionlint)", check_grading_files()))
        steps.append(("CI workflow tests the README's platforms", platforms.check_ci_workflow()))
    with tempfile.TemporaryDirectory() as tmp:
        stub_problems, stub_outcomes = check_stubs(Path(tmp))
        steps.append(("stubs red", stub_problems))
        solution_problems, count, solution_outcomes = check_solutions(Path(tmp), stub_outcomes)
        steps.append((f"solutions green ({count} tests)", solution_problems))
        steps.append(
            (
                "every function tested, every test tied to a function",
                units.check_tests_cover_functions(stub_outcomes, solution_outcomes),
            )
        )
    if not quick:
        steps.append(("selftests", finish_selftests(selftests)))
    return steps


def main(rest: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="make check", description="the project's own test")
    parser.add_argument("--quick", action="store_true", help="the author's contract, no selftests")
    quick = parser.parse_args(rest).quick
    layout = units.check_four_files()
    if layout:  # a broken layout stops here: pytest on it would only add noise
        _report([("every kata has its four files, one number each", layout)])
        print(f"check: stopped at the layout ({len(layout)} problem(s)); nothing else ran")
        return 1
    selftests = [] if quick else start_selftests()  # beside the rest: they wait on children
    try:
        steps = _steps(quick, selftests)
    finally:  # a crash or Ctrl-C leaves no selftest running
        for _, process, _ in selftests:
            if process.poll() is None:
                process.kill()
    failed = [(name, problems) for name, problems in steps if problems]
    _report(steps)
    print(f"check: {len(steps) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0

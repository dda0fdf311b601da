"""Grades that learner code cannot forge, on every route that runs here.

Two hostile learner repositories, each a real export (`make student-repo`, with its manifest
and workflow) of this one, whose first five katas carry one attack each (the rest stay stubs)
and whose fifth kata is solved, as a control:

- kata code: os._exit(0) inside a call, also behind getattr with built names; KeyboardInterrupt
  inside a call; rewriting pytest's report objects through torch.sys.modules at import;
  sys.exit(0) at import and inside a call;
- the repository: deselecting a kata's tests through PYTEST_ADDOPTS, pyproject.toml's addopts
  and a root pytest.ini; a deleted test file; a conftest.py in katas/ and one in tests/ that
  mark every test passed.

Each route grades them as its platform would: `make grade` (forked children, and the fresh
Python per kata that systems without fork() get), the GitHub Classroom workflow's commands
in a shell with only PATH and HOME, and the Classroom 50 bundle's test files under pytest with
pytest-json-report, scored as Classroom 50's runner scores them. Every attacked kata must
score 0 with a note naming what happened; the control must keep its full points.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from coach.core import registry
from coach.grading import classroom50, judge, student_repo, workflow
from selftests.classroom50_runner import classroom50_points

ROOT = Path(__file__).resolve().parent.parent
K = registry.KATAS[:5]
CONTROL = K[4]
JOBS = max(2, min(4, os.cpu_count() or 2))
pytestmark = pytest.mark.timeout(600)

# --- the attacks, as code appended to a stub ---------------------------------------------------

EVERY_FUNCTION = """
for _name, _value in list(globals().items()):
    _mine = getattr(_value, "__module__", None) == __name__
    if callable(_value) and not _name.startswith("_") and _mine:
        globals()[_name] = {replacement}
"""


def replace_functions(body: str, prelude: str = "") -> str:
    """Every public function of the kata becomes one that does `body`."""
    return f"{prelude}\ndef _attack(*args, **kwargs):\n    {body}\n" + EVERY_FUNCTION.format(
        replacement="_attack"
    )


OS_EXIT_IN_CALL = replace_functions("_os._exit(0)", "import os as _os")
HIDDEN_OS_EXIT_IN_CALL = replace_functions(
    'getattr(_t.sys.modules["o" + "s"], "_" + "exit")(0)', "import torch as _t"
)
KEYBOARD_INTERRUPT_IN_CALL = replace_functions("raise KeyboardInterrupt")
SYS_EXIT_IN_CALL = replace_functions("_s.exit(0)", "import sys as _s")
SYS_EXIT_AT_IMPORT = "\nimport sys as _s\n_s.exit(0)\n"
# Every report from now on says "passed": through torch, with no name the code scan knows.
REWRITE_REPORTS_AT_IMPORT = """
import torch as _t

_reports = _t.sys.modules["_pytest" + ".reports"]
_made = _reports.TestReport.from_item_and_call


def _forged(item, call):
    report = _made(item, call)
    report.outcome, report.longrepr = "passed", None
    return report


_reports.TestReport.from_item_and_call = staticmethod(_forged)
"""
FORGING_CONFTEST = """
import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    report.outcome, report.longrepr = "passed", None
    return report
"""

# kata -> (code appended to its stub, what the note must say)
KATA_ATTACKS = {
    "exits": {
        K[0].name: (OS_EXIT_IN_CALL, "exit code 0 before writing its report"),
        K[1].name: (HIDDEN_OS_EXIT_IN_CALL, "exit code 0 before writing its report"),
        K[2].name: (KEYBOARD_INTERRUPT_IN_CALL, "KeyboardInterrupt"),
        K[3].name: (REWRITE_REPORTS_AT_IMPORT, "_pytest.reports.TestReport.from_item_and_call"),
    },
    "repository": {
        K[0].name: (SYS_EXIT_AT_IMPORT, "SystemExit"),
        K[1].name: (SYS_EXIT_IN_CALL, "SystemExit"),
    },
}
DESELECTED = K[2]  # the repository scenario deselects this kata's tests, three ways
DELETED = K[3]  # ... and deletes this kata's test file


def learner_repo(tmp: Path, scenario: str) -> Path:
    repo = tmp / scenario
    student_repo.write_export(repo)
    shutil.copyfile(
        ROOT / "solutions" / f"{CONTROL.name}.py", repo / "katas" / f"{CONTROL.name}.py"
    )
    for name, (code, _) in KATA_ATTACKS[scenario].items():
        with open(repo / "katas" / f"{name}.py", "a", encoding="utf-8") as stub:
            stub.write(code)
    if scenario == "repository":
        deselect = f"not {DESELECTED.name}"
        (repo / "pytest.ini").write_text(f'[pytest]\naddopts = -k "{deselect}"\n')
        pyproject = (repo / "pyproject.toml").read_text()
        assert re.search(r"^addopts = \[", pyproject, re.M), "pyproject.toml has no addopts"
        pyproject = re.sub(
            r"^addopts = \[", f'addopts = ["-k", "{deselect}", ', pyproject, count=1, flags=re.M
        )
        (repo / "pyproject.toml").write_text(pyproject)
        (repo / DELETED.test_file).unlink()
        (repo / "katas" / "conftest.py").write_text(FORGING_CONFTEST)
        (repo / "tests" / "conftest.py").write_text(FORGING_CONFTEST)
    return repo


def learner_env(scenario: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "KATAS_IMPL"}}
    env.update(COACH_NO_VENV="1", PYTHONDONTWRITEBYTECODE="1")
    if scenario == "repository":
        env["PYTEST_ADDOPTS"] = f"-k 'not {DESELECTED.name}'"
    return env


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("hostile")
    return {scenario: learner_repo(tmp, scenario) for scenario in KATA_ATTACKS}


def expected_points(scenario: str) -> dict[str, int]:
    return {kata.name: (kata.points if kata == CONTROL else 0) for kata in K}


def assert_scores(points: dict[str, float], scenario: str, route: str) -> None:
    assert points == expected_points(scenario), (route, scenario, points)


# --- route 1: make grade ---------------------------------------------------------------------


def make_grade(repo: Path, scenario: str, *extra: str) -> dict:
    out = repo.parent / f"grade-{scenario}-{len(extra)}"
    args = ["grade", "--out", str(out), *extra, *[f"--kata={kata.name}" for kata in K]]
    run = subprocess.run(
        [sys.executable, "-m", "coach", *args],
        cwd=repo,
        env=learner_env(scenario),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads((out / "grade.json").read_text())


@pytest.fixture(scope="module")
def grades(repos) -> dict[tuple[str, str], dict]:
    """`make grade` on both repositories (forked children), and on one with no fork."""
    cases = [(s, "fork") for s in KATA_ATTACKS] + [("exits", "no fork")]
    with ThreadPoolExecutor(JOBS) as pool:
        found = pool.map(
            lambda case: make_grade(
                repos[case[0]], case[0], *(["--no-fork"] if case[1] == "no fork" else [])
            ),
            cases,
        )
        return dict(zip(cases, found))


@pytest.mark.parametrize("case", [("exits", "fork"), ("repository", "fork"), ("exits", "no fork")])
def test_make_grade_scores_each_attacked_kata_0_and_keeps_the_control(grades, case):
    scenario, _ = case
    record = grades[case]
    points = {kata["name"]: kata["points"] for kata in record["katas"]}
    assert_scores(points, scenario, f"make grade ({case[1]})")
    for name, (_, said) in KATA_ATTACKS[scenario].items():
        kata = next(k for k in record["katas"] if k["name"] == name)
        messages = [kata["note"], *(t["message"] for t in record["tests"] if t["kata"] == name)]
        assert any(said in message for message in messages), (name, messages[:2])
    totals = {kata["name"]: kata["total"] for kata in record["katas"]}
    assert all(totals[kata.name] > 0 for kata in K), totals  # every expected test counted


def test_make_grade_counts_deselected_and_deleted_tests_as_failed_and_says_so(grades, repos):
    record = grades[("repository", "fork")]
    manifest = json.loads((repos["repository"] / "grading-manifest.json").read_text())["tests"]
    by_name = {kata["name"]: kata for kata in record["katas"]}
    for kata in (DESELECTED, DELETED):
        assert by_name[kata.name]["total"] == len(manifest[kata.name]) > 0
        assert by_name[kata.name]["passed"] == 0
    assert DELETED.test_file in by_name[DELETED.name]["note"]
    ignored = next(note for note in record["notes"] if note.startswith("Ignored"))
    for what in ("PYTEST_ADDOPTS", "pytest.ini", "katas/conftest.py", "tests/conftest.py"):
        assert what in ignored, ignored
    changed = {(m["path"], m["kind"]) for m in record["tamper"]["mismatches"]}
    assert {("pytest.ini", "added"), ("tests/conftest.py", "added")} <= changed
    assert {("pyproject.toml", "changed"), (DELETED.test_file, "missing")} <= changed
    assert record["tamper"]["manifest_sha256"]


def test_the_fork_and_no_fork_routes_agree(grades):
    fork = {k["name"]: (k["points"], k["passed"]) for k in grades[("exits", "fork")]["katas"]}
    fresh = {k["name"]: (k["points"], k["passed"]) for k in grades[("exits", "no fork")]["katas"]}
    assert fork == fresh


# --- route 2: the GitHub Classroom workflow ------------------------------------------------


def workflow_commands(repo: Path, tree: Path) -> dict[str, tuple[str, int]]:
    """kata -> (command, max-score), read from the exported workflow as GitHub would, after
    its step that builds the grading tree has run (moved to `tree`: the workflow's fixed /tmp
    path would be shared by parallel selftests)."""
    text = (repo / workflow.WORKFLOW_PATH).read_text().replace(workflow.GRADING_TREE, str(tree))
    build = re.search(r"Build the grading tree\n      run: \|\n((?:        .*\n)+)", text)
    script = "\n".join(line[8:] for line in build.group(1).splitlines())
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin", "TEMPLATE_REPO": ""}
    subprocess.run(["bash", "-e", "-c", script], cwd=repo, env=env, check=True, timeout=120)
    found = {}
    for block in text.split("\n    - name: ")[1:]:
        command = re.search(r"^        command: (.*)$", block, re.M)
        score = re.search(r"^        max-score: (\d+)$", block, re.M)
        name = re.search(r"--kata (\S+)", command.group(1)) if command else None
        if command and score and name:
            found[name.group(1)] = (command.group(1), int(score.group(1)))
    return found


def command_grader(repo: Path, command: str, max_score: int) -> tuple[int, str]:
    """As autograding-command-grader runs it: a shell with only PATH and HOME."""
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
        "HOME": str(Path.home()),
    }
    run = subprocess.run(
        ["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True,
        check=False, timeout=300,
    )  # fmt: skip
    return (max_score if run.returncode == 0 else 0), run.stdout + run.stderr


@pytest.mark.parametrize("scenario", list(KATA_ATTACKS))
def test_the_workflow_commands_score_each_attacked_kata_0(repos, scenario):
    repo = repos[scenario]
    commands = workflow_commands(repo, repo.parent / f"tree-{scenario}")
    assert set(commands) == {kata.name for kata in registry.KATAS}
    with ThreadPoolExecutor(JOBS) as pool:
        results = dict(
            zip(
                [kata.name for kata in K],
                pool.map(lambda kata: command_grader(repo, *commands[kata.name]), K),
            )
        )
    assert_scores({name: score for name, (score, _) in results.items()}, scenario, "workflow")
    for name, (_, said) in KATA_ATTACKS[scenario].items():
        assert said in results[name][1], (name, results[name][1][-2000:])


# --- route 3: Classroom 50 ---------------------------------------------------------------------


def classroom50_score(spec: dict, checkout: Path, bundle: Path, tmp: Path) -> tuple[int, str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
        "HOME": str(Path.home()),
        "CLASSROOM50_BUNDLE_DIR": str(bundle),
    }
    report = tmp / f"{spec['name'].split(':')[0]}.json"
    return classroom50_points(spec, checkout, report, env)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return classroom50.write_classroom50(tmp_path_factory.mktemp("c50") / "out")


@pytest.mark.parametrize("scenario", list(KATA_ATTACKS))
def test_the_classroom50_tests_score_each_attacked_kata_0(repos, bundle, scenario, tmp_path):
    specs = {t["name"].split(":")[0]: t for t in json.loads(bundle.read_text())[1:]}
    with ThreadPoolExecutor(JOBS) as pool:
        results = dict(
            zip(
                [kata.name for kata in K],
                pool.map(
                    lambda kata: classroom50_score(
                        specs[kata.name], repos[scenario], bundle.parent / "bundle", tmp_path
                    ),
                    K,
                ),
            )
        )
    assert_scores({name: score for name, (score, _) in results.items()}, scenario, "Classroom 50")
    for name, (_, said) in KATA_ATTACKS[scenario].items():
        assert said in results[name][1], (name, results[name][1][-2000:])


# --- a kata that hangs, and leaves a process behind ---------------------------------------------

HANG_AND_LEAVE_A_DAEMON = replace_functions(
    """if _o.fork() == 0:  # a daemon in a session of its own, that outlives its parent
        _o.setsid()
        if _o.fork() == 0:
            with open(_o.path.join(_o.path.dirname(__file__), "daemon.pid"), "w") as f:
                f.write(str(_o.getpid()))
            _tm.sleep(300)
        _o._exit(0)
    _sg.signal(_sg.SIGALRM, _sg.SIG_IGN)  # pytest-timeout's alarm no longer stops the loop
    while True:
        pass""",
    "import os as _o, signal as _sg, time as _tm",
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the subreaper is Linux's")
def test_a_hanging_kata_is_stopped_with_everything_it_started(tmp_path):
    impl = tmp_path / "impl"
    shutil.copytree(ROOT / "katas", impl, ignore=shutil.ignore_patterns("__pycache__"))
    with open(impl / f"{K[0].name}.py", "a", encoding="utf-8") as stub:
        stub.write(HANG_AND_LEAVE_A_DAEMON)
    out = tmp_path / "run.json"
    run = subprocess.run(
        [sys.executable, "-I", str(ROOT / "coach" / "grading" / "kata_runner.py"), "run",
         f"--kata={K[0].name}", f"--impl={impl}", "--out", str(out), "--limit", "2"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    entry = json.loads(out.read_text())["katas"][K[0].name]
    assert entry["status"]["timed_out"] and entry["status"]["strays_stopped"] >= 1
    pid = int((impl / "daemon.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    found = judge.verdict(entry, ["x::a"], 2)
    assert found.passed == 0 and "still running after 2 s" in found.note

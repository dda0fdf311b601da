"""`make student-repo`: the learner repository, without answers, that proves itself.

The text transformations are tested in-process on small samples; one test writes a real
export and runs its self-check (three coach runs inside it: about 10-20 s).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from coach.core import registry
from coach.grading import manifest, routes, student_repo, workflow

ROOT = Path(__file__).resolve().parent.parent

MAKEFILE = """\
PYTHON ?= python3
COACH = $(PYTHON) -m coach

.PHONY: test grade check bench student-repo classroom
test:     ## run the katas' tests
\t@$(COACH) test $(K)
grade:    ## points per kata
\t@$(COACH) grade

check:    ## the project's own test
\t@$(COACH) check

# Maintainers and instructors (see docs/INSTRUCTORS.md); not part of a learner's export.
student-repo: ## the learner repository
\t@$(COACH) student-repo $(DEST)
classroom: ## regenerate the workflow
\t@$(COACH) classroom
"""

CLI = """\
COMMANDS = {
    "test": ("learner", "coach.learner.run:test", "run the tests"),
    "check": ("dev", "coach.authoring.check:main", "the project's own test"),
    "student-repo": (
        "learner",
        "coach.grading.student_repo:main",
        "write the learner repository",
    ),
    "grade": ("learner", "coach.grading.grade:main", "points per kata"),
}
"""


def test_the_learner_makefile_has_no_maintainer_targets():
    text = student_repo.learner_makefile(MAKEFILE)
    assert ".PHONY: test grade\n" in text
    assert "test:" in text and "@$(COACH) grade" in text
    for gone in ("check", "bench", "student-repo", "classroom"):
        assert f"{gone}:" not in text and f"COACH) {gone}" not in text
    assert "Maintainers and instructors" not in text  # no heading left over nothing
    assert text.startswith("PYTHON ?= python3\n")


def test_the_real_makefile_keeps_every_learner_target():
    text = student_repo.learner_makefile((ROOT / "Makefile").read_text())
    for target in ("test", "progress", "next", "hint", "grade"):
        assert f"\n{target}:" in text
    for target in student_repo.MAINTAINER_TARGETS:
        assert f"\n{target}:" not in text
    assert "Maintainers and instructors" not in text


def test_the_learner_cli_drops_commands_whose_module_is_not_exported():
    text = student_repo.learner_cli(
        CLI, exported_modules={"coach.learner.run", "coach.grading.grade"}
    )
    namespace: dict = {}
    exec(compile(ast.parse(text), "cli", "exec"), namespace)
    assert list(namespace["COMMANDS"]) == ["test", "grade"]  # a multi-line entry went whole


def test_the_learner_readme_drops_the_maintainers_parts():
    readme = student_repo.learner_readme((ROOT / "README.md").read_text())
    assert "## For maintainers" not in readme
    assert "## For instructors" not in readme and "docs/INSTRUCTORS.md" not in readme
    [row] = [line for line in readme.splitlines() if line.startswith("| `make solution")]
    assert "ships `solutions/`" in row and "instructor kept it" in row
    assert "make check`" not in readme and "make bench`" not in readme
    assert "coach check" not in readme
    assert "## Grading" in readme and "make grade" in readme
    assert "solutions/k01" not in readme
    assert readme.startswith("# autograd-katas")


def test_a_destination_with_other_files_is_refused(tmp_path):
    assert student_repo._check_destination(ROOT, force=True) is not None
    assert student_repo._check_destination(ROOT / "katas" / "x", force=False) is not None
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert "not empty" in student_repo._check_destination(busy, force=False)
    assert "not an earlier export" in student_repo._check_destination(busy, force=True)
    assert student_repo._check_destination(tmp_path / "new", force=False) is None


@pytest.mark.timeout(180)  # three coach runs inside the export
def test_an_export_has_no_solutions_and_proves_itself(tmp_path):
    dest = tmp_path / "student"
    files = student_repo.write_export(dest)
    assert not any(f.startswith(("solutions/", "selftests/", ".ci/", "docs/")) for f in files)
    assert not [
        f for f in files for m in student_repo.MAINTAINER_MODULES if f.startswith(f"coach/{m}")
    ]
    assert {
        workflow.WORKFLOW_PATH,
        workflow.DEVCONTAINER_PATH,
        manifest.MANIFEST_NAME,
        "README.md",
        "Makefile",
    } <= set(files)
    assert {f"katas/{k.name}.py" for k in registry.KATAS} <= set(files)
    assert {f"lessons/{k.name}.py" for k in registry.KATAS} <= set(files)  # hints, quizzes
    assert ".github/workflows/ci.yml" not in files  # the maintainers' CI stays here
    assert student_repo.leaks(dest) == []
    assert manifest.verify(dest) == []
    record = json.loads((dest / manifest.MANIFEST_NAME).read_text())
    recorded = record["sha256"]
    assert workflow.WORKFLOW_PATH in recorded and registry.KATAS[0].test_file in recorded
    assert registry.KATAS[0].lesson_file in recorded
    assert record["tests"] == routes.expected_tests()  # from the pristine tests

    result = student_repo.verify_export(dest)
    assert result.problems == []
    assert set(result.seconds) == {
        "make test (stubs)",
        "make grade (stubs)",
        "make grade (reference)",
    }
    assert not (dest / "grading").exists() and not list(dest.rglob("__pycache__"))


def test_a_leaked_reference_is_found(tmp_path):
    dest = tmp_path / "student"
    (dest / "katas").mkdir(parents=True)
    name = registry.KATAS[0].name
    (dest / "katas" / f"{name}.py").write_bytes((ROOT / "solutions" / f"{name}.py").read_bytes())
    (dest / "solutions").mkdir()
    problems = student_repo.leaks(dest)
    assert any("solutions/ folder" in p for p in problems)
    (dest / ".github" / "workflows").mkdir(parents=True)
    (dest / ".github" / "workflows" / "ci.yml").write_text("name: CI\n")
    assert any("ci.yml" in p for p in student_repo.leaks(dest))
    assert any(f"katas/{name}.py is a copy" in p for p in problems)

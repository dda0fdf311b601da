"""Tamper evidence: a manifest of the graded files, and what verifying it reports.

Every test works on a scratch export in tmp_path: a copy of the repository's graded files
plus a classroom workflow, with its manifest written. Nothing here starts a process.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest

from coach.grading import manifest
from coach.grading.manifest import MANIFEST_NAME, Mismatch

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ".github/workflows/classroom.yml"
A_TEST_FILE = "tests/test_k01_polynomial.py"


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A fresh export: the graded files of this repository, a workflow, and the manifest."""
    root = tmp_path / "export"
    for relative in manifest.graded_files(ROOT):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, root / relative)
    (root / WORKFLOW).parent.mkdir(parents=True, exist_ok=True)
    (root / WORKFLOW).write_text("name: Autograding\non: [push]\n")
    (root / "katas").mkdir()
    (root / "katas" / "k01_polynomial.py").write_text("# the learner's work is not graded here\n")
    manifest.write_manifest(root)
    return root


def edit(path: Path, text: str = "\n# an innocent-looking line\n") -> None:
    path.write_text(path.read_text() + text)


def test_an_untouched_export_verifies_clean(export):
    assert manifest.verify(export) == []
    assert manifest.status([]) == "clean"
    assert "clean" in manifest.describe([])[0]


def test_the_manifest_maps_sorted_paths_to_sha256(export):
    recorded = json.loads((export / MANIFEST_NAME).read_text())["sha256"]
    assert list(recorded) == sorted(recorded)
    for relative in (
        A_TEST_FILE,
        "conftest.py",
        "pyproject.toml",
        WORKFLOW,
        "coach/runtime/plugin.py",
    ):
        expected = hashlib.sha256((export / relative).read_bytes()).hexdigest()
        assert recorded[relative] == expected
    assert not any(path.startswith("katas/") for path in recorded)
    assert MANIFEST_NAME not in recorded


@pytest.mark.parametrize(
    "relative", [A_TEST_FILE, "conftest.py", WORKFLOW, "coach/runtime/plugin.py"]
)
def test_an_edited_graded_file_is_reported_by_name(export, relative):
    edit(export / relative)
    mismatches = manifest.verify(export)
    assert mismatches == [Mismatch(relative, "changed")]
    assert manifest.status(mismatches) == "tampered"
    assert any(relative in line for line in manifest.describe(mismatches))


@pytest.mark.parametrize(
    "relative",
    [
        "tests/conftest.py",
        "tests/test_x.py",
        "pytest.ini",
        "pytest_timeout.py",  # python -m puts the root first on sys.path: it shadowed the plugin
        "coach/helper.py",
        "requirements/extra.txt",
    ],
)
def test_a_new_file_that_would_change_grading_is_reported(export, relative):
    (export / relative).write_text("def test_free_points():\n    pass\n")
    assert manifest.verify(export) == [Mismatch(relative, "added")]


def test_a_deleted_test_file_is_reported_missing(export):
    (export / A_TEST_FILE).unlink()
    assert manifest.verify(export) == [Mismatch(A_TEST_FILE, "missing")]


def test_every_mismatch_is_reported_at_once(export):
    edit(export / "conftest.py")
    (export / A_TEST_FILE).unlink()
    (export / "tests" / "conftest.py").write_text("")
    assert manifest.verify(export) == [
        Mismatch("conftest.py", "changed"),
        Mismatch("tests/conftest.py", "added"),
        Mismatch(A_TEST_FILE, "missing"),
    ]


def test_crlf_line_ends_are_not_a_change(export):
    for relative in manifest.graded_files(export):
        path = export / relative
        path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    assert manifest.verify(export) == []


def test_bytecode_caches_are_not_graded_files(export):
    cache = export / "tests" / "__pycache__"
    cache.mkdir()
    (cache / "test_k01_polynomial.cpython-311-pytest-9.2.0.pyc").write_bytes(b"\0")
    (export / ".pytest_cache").mkdir()
    assert manifest.verify(export) == []


def test_the_learners_work_is_not_graded_files(export):
    edit(export / "katas" / "k01_polynomial.py")
    assert manifest.verify(export) == []


def test_without_a_manifest_verification_says_so_and_nothing_else(export):
    (export / MANIFEST_NAME).unlink()
    edit(export / A_TEST_FILE)
    mismatches = manifest.verify(export)
    assert mismatches == [Mismatch(MANIFEST_NAME, "no manifest")]
    assert manifest.status(mismatches) == "no manifest"
    assert manifest.describe(mismatches) == [
        f"Tamper check: no {MANIFEST_NAME}, nothing to compare against "
        f"(normal in the maintainers' repository)."
    ]


def test_the_maintainers_repository_has_no_manifest():
    assert manifest.verify(ROOT) == [Mismatch(MANIFEST_NAME, "no manifest")]


def test_a_manifest_that_is_not_one_is_tampering(export):
    (export / MANIFEST_NAME).write_text("{}")
    assert manifest.verify(export) == [Mismatch(MANIFEST_NAME, "unreadable")]
    assert manifest.status(manifest.verify(export)) == "tampered"


def test_the_manifest_hash_is_reported_for_comparison(export):
    expected = hashlib.sha256((export / MANIFEST_NAME).read_bytes()).hexdigest()
    assert manifest.manifest_hash(export) == expected
    (export / MANIFEST_NAME).unlink()
    assert manifest.manifest_hash(export) is None


def test_the_command_writes_then_verifies(export, monkeypatch, capsys):
    monkeypatch.setattr(manifest, "ROOT", export)
    assert manifest.main(["write"]) == 0
    assert manifest.main(["verify"]) == 0
    edit(export / WORKFLOW)
    assert manifest.main(["verify"]) == 1
    assert WORKFLOW in capsys.readouterr().out


def test_make_test_never_loads_the_manifest():
    """Hashing belongs to grading only: nothing `make test` runs imports it."""
    for relative in (
        "conftest.py",
        "coach/runtime/plugin.py",
        "coach/runtime/loader.py",
        "coach/runtime/testing.py",
    ):
        tree = ast.parse((ROOT / relative).read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert (
            not {"manifest", "grade", "coach.grading.manifest", "coach.grading.grade"} & imported
        ), relative


def test_every_coach_module_is_a_graded_file():
    """coach/core/paths.py, imported by the loader, was once left out of a hand-kept list."""
    graded = set(manifest.graded_files(ROOT))
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "coach").rglob("*.py")}
    assert modules <= graded
    assert {"requirements/learner.txt", "conftest.py"} <= graded


def test_every_coach_module_loaded_by_a_grading_run_is_covered():
    """What this process loaded (grading in-process, the plugin under the selftests) is hashed."""
    from coach.runtime import plugin  # noqa: F401  (the grading process and the pytest run)

    graded = set(manifest.graded_files(ROOT))
    loaded = {
        Path(module.__file__).resolve().relative_to(ROOT).as_posix()
        for name, module in list(sys.modules.items())
        if (name == "coach" or name.startswith("coach.")) and getattr(module, "__file__", None)
    }
    assert "coach/core/paths.py" in loaded
    assert loaded <= graded, loaded - graded


def test_the_workflow_step_reports_each_mismatch_to_github(export, monkeypatch, capsys):
    summary = export / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    edit(export / A_TEST_FILE)
    (export / "pytest_timeout.py").write_text("")
    pristine = export.parent / "pristine-manifest.json"
    shutil.copyfile(export / MANIFEST_NAME, pristine)
    (export / MANIFEST_NAME).write_text("{}")  # the learner's copy is not the one trusted
    code = manifest.main(["verify", "--root", str(export), "--manifest", str(pristine), "--github"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"::warning title=Tamper check::{A_TEST_FILE}: changed since the export" in out
    assert "::warning title=Tamper check::pytest_timeout.py: added since the export" in out
    text = summary.read_text()
    assert "### Tamper check" in text and f"| `{A_TEST_FILE}` |" in text
    assert f"| `{MANIFEST_NAME}` |" not in text  # not a graded file: the trusted one was used


def test_lessons_are_graded_and_the_maintainers_ci_is_not(export):
    (export / "lessons").mkdir(exist_ok=True)
    (export / "lessons" / "k99_new.py").write_text("LESSON = None\n")
    ci = export / ".github" / "workflows" / "ci.yml"
    ci.write_text("name: CI\n")
    assert manifest.verify(export) == [Mismatch("lessons/k99_new.py", "added")]


def test_the_expected_tests_round_trip_and_are_none_without_them(export):
    assert manifest.expected_tests(export) is None  # written without any
    expected = {"k01_x": ["tests/test_k01_x.py::a", "tests/test_k01_x.py::b"]}
    manifest.write_manifest(export, expected)
    assert manifest.expected_tests(export) == expected
    assert manifest.verify(export) == []
    assert manifest.expected_tests(export.parent) is None


def test_the_manifest_hash_reaches_the_log_and_the_step_summary(export, monkeypatch, capsys):
    summary = export / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert manifest.main(["verify", "--root", str(export), "--github"]) == 0
    sha = manifest.manifest_hash(export)
    assert f"Manifest SHA-256: {sha}" in capsys.readouterr().out
    assert sha in summary.read_text()

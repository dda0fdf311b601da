"""`make student-repo DEST=dir`: the repository an instructor hands out.

What goes in is an allow-list (the stubs, the tests, the learner's tooling, the pinned
requirements), so nothing new in this repository can leak into an export by accident; the
answers in solutions/ never do. Four files are generated rather than copied: the Makefile and
coach/cli.py without the maintainers' commands, a README without the maintainers' sections,
and the grading workflow and devcontainer from coach/grading/workflow.py. The tamper manifest is
written last, over the finished tree.

Then the export proves itself, by running its own tooling in DEST with this Python (no second
torch install): `make test` is red for every kata, `make grade` scores 0, and the reference
solutions, graded from a scratch folder, earn full marks. DEST itself is left as written.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from coach.core import registry
from coach.core.registry import ROOT
from coach.grading import manifest, routes, workflow

# Copied as they are (folders whole, minus caches and the modules below). lessons/ holds each
# kata's teaching unit (hints, quiz, points): learners need it, where it exists.
COPIED = (
    "katas",
    "notebooks",
    "tests",
    "lessons",
    "coach",
    "requirements",
    "conftest.py",
    "pyproject.toml",
    ".gitignore",
)
# Never exported, whatever else changes: the answers, and the maintainers' own CI workflow.
NEVER = ("solutions", ".github/workflows/ci.yml")
OPTIONAL = ("LICENSE", "LICENSE.md", "LICENSE.txt")
# Tooling that needs solutions/ or builds exports: of no use to a learner.
# Paths below coach/: the authors' package whole, and the grading modules that build exports.
MAINTAINER_MODULES = frozenset(
    {"authoring", "grading/workflow.py", "grading/classroom50.py", "grading/routes.py"}
    | {"grading/student_repo.py"}
)
MAINTAINER_TARGETS = frozenset(
    {"check", "generate", "bench", "manifest", "student-repo", "classroom", "classroom50"}
)
# README sections for the people who hold solutions/ and docs/, neither of which is exported.
MAINTAINER_SECTIONS = ("For maintainers", "For instructors")
# The README's commands table, row by row, where a learner's copy behaves differently.
LEARNER_ROWS = {
    "| `make solution K=3` |": (
        "| `make solution K=3` | the reference next to your code, once the kata is green, "
        "where your course ships `solutions/` (this copy says your instructor kept it) |"
    ),
}
CACHES = {"__pycache__", ".pytest_cache", ".ruff_cache"}

AFTER_GREEN = """\
### After green

Your instructor keeps the reference solutions: `make solution K=1` says so in this copy. Go on
to the next kata, or compare your code with a classmate's once you are both green.
"""

GRADING_SECTION = """\
## Grading

`make grade` shows the points your instructor's grader gives: per kata, in proportion to the
tests that pass. Grading runs each kata's tests in a process of its own, with its own pytest
options: every test listed in `grading-manifest.json` counts, and one that does not run
counts as failed. Changing a test file, `conftest.py`, `pyproject.toml`, `lessons/`, `coach/`,
`requirements/`, a `.py` file at the top of this folder or the workflow in `.github/` is
reported by name in every grade. On your machine the grade says it is a practice grade: your
instructor's grader runs your kata code as another user, from a fresh copy of the tests.

Opening this repository in GitHub Codespaces installs everything: run `make test` at once.
"""


# --- the files ---------------------------------------------------------------------------


def _copy_tree(source: Path, target: Path) -> None:
    def ignored(folder: str, names: list[str]) -> set[str]:
        skip = {name for name in names if name in CACHES or name.endswith((".pyc", ".pyo"))}
        below_coach = Path(os.path.relpath(folder, ROOT / "coach"))
        skip |= {name for name in names if (below_coach / name).as_posix() in MAINTAINER_MODULES}
        return skip

    shutil.copytree(source, target, ignore=ignored)


def learner_makefile(text: str) -> str:
    """The Makefile without the maintainers' targets, their recipes and their .PHONY names.

    A comment block right above a dropped target goes with it ("# Maintainers and instructors
    ..."), so no heading is left over a section that is no longer there.
    """
    kept: list[str] = []
    comments: list[str] = []  # comment lines waiting to see what they sit above
    skipping = False
    for line in text.splitlines():
        if line.startswith("#"):
            comments.append(line)
            continue
        if line.startswith(".PHONY:"):
            names = [n for n in line.split(":", 1)[1].split() if n not in MAINTAINER_TARGETS]
            kept += [*comments, ".PHONY: " + " ".join(names)]
            comments = []
            continue
        target = re.match(r"^([A-Za-z0-9_-]+)\s*:(?!=)", line)
        if target:
            skipping = target.group(1) in MAINTAINER_TARGETS
        elif not line.startswith("\t"):
            skipping = False
        if not skipping:
            kept += [*comments, line]
        comments = []
    kept += comments
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip() + "\n"


def learner_cli(text: str, exported_modules: set[str]) -> str:
    """coach/cli.py without the commands whose module is not exported.

    Found with ast, so an entry written over several lines goes as a whole.
    """
    tree = ast.parse(text)
    drop: list[tuple[int, int]] = []
    for node in ast.walk(tree):
        is_commands = (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "COMMANDS" for t in node.targets)
            and isinstance(node.value, ast.Dict)
        )
        if not is_commands:
            continue
        for key, value in zip(node.value.keys, node.value.values):
            target = ast.literal_eval(value)[1]  # ("profile", "coach.module:function", help)
            if target.split(":")[0] not in exported_modules:
                drop.append((key.lineno, value.end_lineno))
    lines = text.splitlines(keepends=True)
    for first, last in sorted(drop, reverse=True):
        del lines[first - 1 : last]
    return "".join(lines)


def _without_sections(text: str, titles: tuple[str, ...]) -> str:
    """Drop each `## title` section, up to the next heading of the same level."""
    for title in titles:
        text = re.sub(rf"(?ms)^## {re.escape(title)}\n.*?(?=^## |\Z)", "", text)
    return text


def learner_readme(text: str) -> str:
    """README.md for learners: no maintainers' section or commands; grading explained."""
    text = _without_sections(text, MAINTAINER_SECTIONS)
    text = re.sub(r"(?ms)^### After green\n.*?(?=^##)", AFTER_GREEN + "\n", text)
    kept = [
        next((row for start, row in LEARNER_ROWS.items() if line.startswith(start)), line)
        for line in text.splitlines()
        if not any(f"make {target}`" in line for target in MAINTAINER_TARGETS)
        and not any(f"coach {target} " in line for target in MAINTAINER_TARGETS)
    ]
    text = "\n".join(kept).rstrip() + "\n"
    if "## Grading" not in text:
        text += "\n" + GRADING_SECTION
    return text


def write_export(dest: Path, with_workflow: bool = True, repo: str | None = None) -> list[str]:
    """Write the learner repository into `dest` (empty or absent); returns its files.
    `repo` (owner/name) is where learners will open it from: its notebooks and README's
    Colab links are rewritten to name it (coach/notebook/generate.py)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in (*COPIED, *OPTIONAL):
        source = ROOT / name
        if source.is_dir():
            _copy_tree(source, dest / name)
        elif source.is_file():
            shutil.copyfile(source, dest / name)
    exported = {
        ".".join(p.relative_to(dest).with_suffix("").parts) for p in dest.rglob("coach/**/*.py")
    }
    generated = {
        "Makefile": learner_makefile((ROOT / "Makefile").read_text(encoding="utf-8")),
        "README.md": learner_readme((ROOT / "README.md").read_text(encoding="utf-8")),
        "coach/cli.py": learner_cli((ROOT / "coach/cli.py").read_text(encoding="utf-8"), exported),
        workflow.DEVCONTAINER_PATH: workflow.render_devcontainer(),
    }
    if with_workflow:
        generated[workflow.WORKFLOW_PATH] = workflow.render_workflow()
    for relative, text in generated.items():
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        (dest / relative).write_text(text, encoding="utf-8", newline="\n")
    if repo:
        from coach.notebook import generate

        generate.point_at(dest, repo)
    # Last: it hashes the finished tree, and records the expected tests of the pristine ones.
    manifest.write_manifest(dest, routes.expected_tests())
    return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())


# --- the proof ---------------------------------------------------------------------------


@dataclass
class Verification:
    problems: list[str]
    seconds: dict[str, float]


def leaks(dest: Path) -> list[str]:
    """Anything of solutions/ in the export: the folder, or a file with a reference's text."""
    problems = []
    if (dest / "solutions").exists():
        problems.append("the export has a solutions/ folder")
    for never in NEVER[1:]:
        if (dest / never).exists():
            problems.append(f"the export has {never}, which is the maintainers' own")
    references = {
        (ROOT / "solutions" / f"{kata.name}.py").read_bytes()
        for kata in registry.KATAS
        if (ROOT / "solutions" / f"{kata.name}.py").is_file()
    }
    for path in dest.rglob("*.py"):
        if path.read_bytes() in references:
            problems.append(f"{path.relative_to(dest)} is a copy of a reference solution")
    for module in sorted(MAINTAINER_MODULES):
        if (dest / "coach" / module).exists():
            problems.append(f"coach/{module} is maintainer tooling")
    return problems


def _env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "KATAS_IMPL"}}
    env.update(COACH_NO_VENV="1", PYTHONDONTWRITEBYTECODE="1", COACH_STATE_DIR=str(state_dir))
    return env


def _coach(dest: Path, args: list[str], scratch: Path) -> subprocess.CompletedProcess:
    """`python -m coach ARGS` inside the export, on this Python: its own code, not ours."""
    return subprocess.run(
        [sys.executable, "-m", "coach", *args],
        cwd=dest,
        env=_env(scratch / "state"),
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def _stubs_red(dest: Path, scratch: Path) -> list[str]:
    """`make test` in the export: every kata has tests, and none of them is green."""
    outcomes_file = scratch / "stubs.json"
    run = _coach(dest, ["test", "--coach-json", str(outcomes_file), "-p", "no:randomly"], scratch)
    if not outcomes_file.is_file():
        return [f"`make test` in the export did not run (exit {run.returncode}):\n{run.stderr}"]
    tests = json.loads(outcomes_file.read_text())["tests"]
    problems = [] if run.returncode != 0 else ["`make test` in the export exited 0 on the stubs"]
    for kata in registry.KATAS:
        outcomes = [t["outcome"] for t in tests if t.get("kata") == kata.name]
        if not outcomes:
            problems.append(f"{kata.name}: no tests ran in the export")
        elif all(outcome == "passed" for outcome in outcomes):
            problems.append(f"{kata.name}: green on the stubs in the export")
    return problems


def _graded(dest: Path, scratch: Path, label: str, impl: Path | None) -> tuple[dict, list[str]]:
    out = scratch / label
    args = ["grade", "--out", str(out), *(["--impl", str(impl)] if impl else [])]
    run = _coach(dest, args, scratch)
    if run.returncode != 0 or not (out / "grade.json").is_file():
        return {}, [
            f"`make grade` ({label}) failed in the export (exit {run.returncode}):\n"
            f"{run.stdout[-1500:]}{run.stderr[-1500:]}"
        ]
    grade = json.loads((out / "grade.json").read_text())
    problems = []
    if grade["tamper"]["status"] != "clean":
        problems.append(
            f"{label}: tamper check says {grade['tamper']['status']}: "
            f"{grade['tamper']['mismatches']}"
        )
    return grade, problems


def verify_export(dest: Path) -> Verification:
    """Stubs red, stubs score 0, the reference scores full marks; all inside `dest`."""
    problems = leaks(dest)
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="student-repo-") as tmp:
        scratch = Path(tmp)
        started = time.monotonic()
        problems += _stubs_red(dest, scratch)
        seconds["make test (stubs)"] = time.monotonic() - started

        started = time.monotonic()
        stubs, found = _graded(dest, scratch, "stubs", None)
        problems += found
        if stubs and stubs["total"]["points"] != 0:
            problems.append(f"the stubs score {stubs['total']['points']}, not 0")
        seconds["make grade (stubs)"] = time.monotonic() - started

        reference = scratch / "reference"
        shutil.copytree(ROOT / "solutions", reference, ignore=shutil.ignore_patterns(*CACHES))
        started = time.monotonic()
        full, found = _graded(dest, scratch, "reference", reference)
        problems += found
        if full and full["total"]["points"] != full["total"]["max_points"]:
            problems.append(
                f"the reference scores {full['total']['points']} of "
                f"{full['total']['max_points']}, not full marks"
            )
        seconds["make grade (reference)"] = time.monotonic() - started
    _remove_caches(dest)
    if manifest.verify(dest):
        problems.append(f"the export changed while it was verified: {manifest.verify(dest)}")
    return Verification(problems, seconds)


def _remove_caches(dest: Path) -> None:
    for path in sorted(dest.rglob("*"), reverse=True):
        if path.is_dir() and path.name in CACHES:
            shutil.rmtree(path, ignore_errors=True)


# --- the command -------------------------------------------------------------------------


def _check_destination(dest: Path, force: bool) -> str | None:
    """Why `dest` must not be written, or None when it may."""
    if dest == ROOT or ROOT.is_relative_to(dest):
        return f"{dest} holds this repository; choose a folder outside it, or under build/."
    for name in COPIED:
        if dest.is_relative_to(ROOT / name):
            return f"{dest} is inside {name}/, which the export copies."
    if dest.exists() and any(dest.iterdir()):
        if not force:
            return f"{dest} is not empty. Choose an empty folder, or add --force to replace it."
        if not (dest / manifest.MANIFEST_NAME).is_file():
            return f"{dest} is not an earlier export (no {manifest.MANIFEST_NAME}); not replacing."
    return None


def main(rest: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make student-repo", description=__doc__.splitlines()[0])
    parser.add_argument("dest", help="the folder to write (make student-repo DEST=dir)")
    parser.add_argument("--force", action="store_true", help="replace an earlier export there")
    parser.add_argument("--no-verify", action="store_true", help="skip the self-check")
    parser.add_argument(
        "--repo",
        default=None,
        help="owner/name of the GitHub repository learners open it from (notebooks, Colab)",
    )
    parser.add_argument(
        "--without-workflow",
        action="store_true",
        help="leave out the GitHub Classroom workflow (for Classroom 50, which brings its own)",
    )
    args = parser.parse_args(rest)
    dest = Path(args.dest).resolve()
    refusal = _check_destination(dest, args.force)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if dest.exists() and args.force:
        shutil.rmtree(dest)
    files = write_export(dest, with_workflow=not args.without_workflow, repo=args.repo)
    print(f"Wrote {len(files)} files to {dest} (no solutions/; {manifest.MANIFEST_NAME} last).")
    if not args.repo:
        print(
            "Its notebooks' Colab set-up cells and links name this repository's [tool.coach] "
            "repository; add REPO=owner/name (--repo) to name the one learners will clone."
        )
    print(
        f"Keep this to compare with the manifest hash every grade reports: sha256 "
        f"{manifest.manifest_hash(dest)}"
    )
    if args.no_verify:
        return 0
    print("Verifying it with its own tooling (stubs red, stubs 0 points, reference full) ...")
    result = verify_export(dest)
    for step, seconds in result.seconds.items():
        print(f"  {step:<24} {seconds:5.1f} s")
    if result.problems:
        print("The export is NOT ready:", file=sys.stderr)
        for problem in result.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("Ready: every kata red, stubs score 0, the reference earns full marks, tamper clean.")
    print(
        f"Next: cd {dest} && git init && git add -A && git commit -m 'Katas', then push it as "
        f"a template repository (docs/INSTRUCTORS.md)."
    )
    return 0

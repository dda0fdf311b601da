"""The files generated from the kata units, and `make generate`, the one command that rewrites
them all.

lessons/ (with the registry) is the one source of truth. From it come the README's course
table (between two marker comments), the GitHub Classroom workflow and the devcontainer
(their text comes from coach/grading/workflow.py), and the notebooks with the README's Colab
list (coach/notebook/generate.py, which needs the notebook tools). `check --quick` names every
stale one and this command; nothing here is edited by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from coach.core import registry
from coach.core.bootstrap import ROOT
from coach.grading import workflow
from coach.notebook import generate, setup

COMMAND = "make generate"  # or `python -m coach generate` where make is missing
README = "README.md"
TABLE_START = "<!-- the course table: written by `make generate` from lessons/; do not edit -->"
TABLE_END = "<!-- end of the course table -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def course_table() -> str:
    """The README's table of katas, one row per kata in course order, from each unit."""
    rows = [
        "| # | kata | what it teaches | source |",
        "|---|------|-----------------|--------|",
    ]
    rows += [
        f"| {kata.number} | `{kata.name}` | {_cell(kata.concept)} | {_cell(kata.source)} |"
        for kata in registry.KATAS
    ]
    return "\n".join(rows)


def render_readme(current: str) -> str:
    """`current` with its course table rewritten; ValueError when it has no markers."""
    head, start, rest = current.partition(TABLE_START)
    _, end, tail = rest.partition(TABLE_END)
    if not (start and end):
        raise ValueError(
            f"{README} has no course table between the marker lines {TABLE_START!r} and "
            f"{TABLE_END!r}: put them back where the table goes"
        )
    return f"{head}{TABLE_START}\n{course_table()}\n{TABLE_END}{tail}"


def _renderers() -> dict[str, Callable[[str], str]]:
    """Each generated file, relative to the root, and how its new text follows from the old."""
    files = {README: render_readme}
    for relative, render in workflow.GENERATED_FILES.items():
        files[relative] = lambda _old, render=render: render()
    return files


def stale_files(root: Path = ROOT, notebooks: bool | None = None) -> list[str]:
    """One sentence per generated file that is missing or differs from what it would be.

    The notebooks are compared when `notebooks` is True (their tools are installed first) or,
    when it is None, if the tools are already there."""
    stale, problems = [], []
    for relative, render in _renderers().items():
        path = Path(root) / relative
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        try:
            if render(old) != old:
                stale.append(relative)
        except ValueError as error:
            problems.append(str(error))
    if notebooks is None:
        notebooks = not setup.missing()
    if notebooks:
        if setup.ensure("checking the notebooks"):
            stale += [name for name in generate.stale(Path(root)) if name not in stale]
        else:
            problems.append("the notebook tools (requirements/notebook.txt) could not be installed")
    if stale:
        problems.append(
            f"stale generated file(s): {', '.join(stale)} (the katas changed): run "
            f"`{COMMAND}` (or `python -m coach generate`)"
        )
    return problems


def write_all(root: Path = ROOT) -> list[str]:
    """Rewrite every generated file that differs; the ones written, relative to the root.

    The notebooks come last, as they are written after the README's course table."""
    written = []
    for relative, render in _renderers().items():
        path = Path(root) / relative
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        new = render(old)
        if new != old:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new, encoding="utf-8", newline="\n")
            written.append(relative)
    if not setup.ensure("make generate (the notebooks)"):
        raise RuntimeError("the notebook tools (requirements/notebook.txt) could not be installed")
    for path in generate.write(Path(root)):
        relative = Path(path).relative_to(root).as_posix()
        if relative not in written:
            written.append(relative)
    return written


def main(rest: list[str]) -> int:
    """`make generate`: rewrite every file generated from the kata units."""
    if rest:
        print("usage: make generate (python -m coach generate): no options")
        return 2
    try:
        written = write_all()
    except (ValueError, RuntimeError) as error:
        print(error)
        return 1
    for relative in written:
        print(f"Wrote {relative}.")
    print(f"Generated files match the {len(registry.KATAS)} katas in lessons/.")
    return 0

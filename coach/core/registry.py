"""The katas, in course order, read from their teaching units in lessons/.

A kata named kNN_topic (two digits, then a word or two) has four files and nothing else:
  katas/kNN_topic.py            the stub the learner edits
  solutions/kNN_topic.py        the reference
  tests/test_kNN_topic.py       its tests
  lessons/kNN_topic.py          its teaching unit: LESSON = Lesson(...) (see coach/core/lesson.py)
The number sets the course order. Adding a kata means adding those four files; the tooling
finds it here and names no kata itself.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from coach.core.lesson import BadLesson, Lesson

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ROOT / "lessons"
KATA_NAME = re.compile(r"k(\d\d)_\w+")  # the naming scheme: k, two digits, _, a topic


@dataclass(frozen=True)
class Kata:
    name: str  # module name: katas/<name>.py, solutions/<name>.py, tests/test_<name>.py
    lesson: Lesson

    @property
    def number(self) -> int:
        return int(self.name[1:3])

    @property
    def title(self) -> str:
        return self.lesson.title

    @property
    def concept(self) -> str:
        return self.lesson.concept

    @property
    def source(self) -> str:
        return self.lesson.source

    @property
    def points(self) -> int:
        return self.lesson.points

    @property
    def test_file(self) -> str:
        return f"tests/test_{self.name}.py"

    @property
    def stub_file(self) -> str:
        return f"katas/{self.name}.py"

    @property
    def lesson_file(self) -> str:
        return f"lessons/{self.name}.py"


def lesson_names(folder: Path = LESSONS) -> list[str]:
    """The kata names that have a unit in `folder`, in course order."""
    names = [p.stem for p in folder.glob("k*.py") if KATA_NAME.fullmatch(p.stem)]
    return sorted(names, key=lambda name: (int(name[1:3]), name))


def load_lesson(name: str) -> Lesson:
    """The LESSON of lessons/<name>.py, loaded from its file (no sys.path needed)."""
    path = LESSONS / f"{name}.py"
    try:
        spec = importlib.util.spec_from_file_location(f"lessons.{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as error:
        message = f"lessons/{name}.py does not import: {type(error).__name__}: {error}"
        raise BadLesson(message) from error
    lesson = getattr(module, "LESSON", None)
    if not isinstance(lesson, Lesson):
        raise BadLesson(f"lessons/{name}.py has no `LESSON = Lesson(...)`")
    return lesson


def shared_numbers(names: list[str]) -> dict[int, list[str]]:
    """The kata numbers that more than one of `names` carries, each with those names."""
    by_number: dict[int, list[str]] = {}
    for name in names:
        by_number.setdefault(int(name[1:3]), []).append(name)
    return {number: sorted(found) for number, found in by_number.items() if len(found) > 1}


def discover() -> tuple[Kata, ...]:
    return tuple(Kata(name, load_lesson(name)) for name in lesson_names())


KATAS: tuple[Kata, ...] = discover()
BY_NAME = {kata.name: kata for kata in KATAS}


def find(selector: str) -> Kata:
    """Resolve what a learner types ("3", "03", "k03", "k03_<topic>") to a kata."""
    text = selector.strip().lower()
    match = re.fullmatch(r"k?0*(\d+)(_\w*)?", text)
    if match:
        number = int(match.group(1))
        found = [
            kata
            for kata in KATAS
            if kata.number == number and (match.group(2) is None or kata.name == text)
        ]
        if len(found) > 1:  # `make check` refuses this layout; never pick one silently
            names = " and ".join(kata.name for kata in found)
            raise LookupError(f"Kata number {number} is taken twice ({names}): name one in full.")
        if found:
            return found[0]
    if text in BY_NAME:
        return BY_NAME[text]
    known = ", ".join(f"{k.number} ({k.name})" for k in KATAS)
    raise LookupError(f"No kata called {selector!r}. Known katas: {known}.")


def kata_of_test_path(path: str) -> Kata | None:
    """The kata a test file belongs to, from its file name test_<name>.py."""
    match = re.search(r"test_(k\d\d_\w+)\.py$", str(path).replace("\\", "/"))
    return BY_NAME.get(match.group(1)) if match else None


def public_definitions(tree: ast.Module) -> dict[str, ast.AST]:
    """A module's public top-level functions and classes, by name, in source order."""
    defined = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, defined) and not node.name.startswith("_")
    }


@functools.cache
def functions(name: str) -> tuple[str, ...]:
    """The public functions and classes of kata `name`'s stub, in the order the stub gives
    them: the order a learner works in. Read with ast from katas/ (else solutions/)."""
    for folder in ("katas", "solutions"):
        try:
            tree = ast.parse((ROOT / folder / f"{name}.py").read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        return tuple(public_definitions(tree))
    return ()


def after(kata: Kata) -> Kata | None:
    """The kata that comes next in the course, or None after the last."""
    index = KATAS.index(kata)
    return KATAS[index + 1] if index + 1 < len(KATAS) else None


def raises_not_implemented(node: ast.AST) -> bool:
    """Whether a definition raises NotImplementedError somewhere: the mark of a stub."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Raise) and inner.exc is not None:
            target = inner.exc.func if isinstance(inner.exc, ast.Call) else inner.exc
            if isinstance(target, ast.Name) and target.id == "NotImplementedError":
                return True
    return False

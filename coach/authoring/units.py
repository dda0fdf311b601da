"""Authoring checks for `make check`: every kata is whole, in the spirit of `rustlings dev check`.

Each check returns problems as sentences that say what to fix. Nothing here imports a kata:
stubs and references are read with ast, teaching units through the registry.
"""

from __future__ import annotations

import ast
from pathlib import Path

from coach.core import registry
from coach.core.lesson import ASPECTS

MIN_HINTS, MIN_QUESTIONS = 3, 2
FOLDERS = {"katas": "{}.py", "solutions": "{}.py", "tests": "test_{}.py", "lessons": "{}.py"}


def _names(folder: Path, pattern: str) -> set[str]:
    """Kata names with a file in `folder` (pattern "{}.py" or "test_{}.py")."""
    prefix = pattern.split("{}", maxsplit=1)[0]
    found = set()
    for path in folder.glob(pattern.format("*")):
        name = path.stem[len(prefix) :]
        if registry.KATA_NAME.fullmatch(name):
            found.add(name)
    return found


def check_four_files(root: Path = registry.ROOT) -> list[str]:
    """Every kata has its four files, and no file belongs to no kata."""
    katas = set(registry.lesson_names(root / "lessons"))
    problems = []
    for folder, pattern in FOLDERS.items():
        have = _names(root / folder, pattern)
        for name in sorted(katas - have):
            problems.append(f"{name}: {folder}/{pattern.format(name)} is missing")
        for name in sorted(have - katas):
            problems.append(
                f"{folder}/{pattern.format(name)} belongs to no kata: a kata needs its teaching "
                f"unit lessons/{name}.py (see coach/core/lesson.py), or remove the file"
            )
    extra = sorted(
        p.name
        for p in (root / "katas").iterdir()
        if p.name != "__pycache__" and not (p.suffix == ".py" and p.stem in katas)
    )
    if extra:
        problems.append(f"katas/ must hold only the stubs; it also has: {', '.join(extra)}")
    return problems


def _signature(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ClassDef):
        return []
    args = node.args
    return [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]


def check_stub(name: str, root: Path = registry.ROOT) -> list[str]:
    """The stub is a stub: each public function raises NotImplementedError and has a # TODO,
    and it offers the same functions, with the same parameters, as the reference."""
    stub_path, solution_path = root / "katas" / f"{name}.py", root / "solutions" / f"{name}.py"
    try:
        stub_source = stub_path.read_text(encoding="utf-8")
        stub = ast.parse(stub_source)
        reference = ast.parse(solution_path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError) as error:
        return [f"{name}: cannot read the stub or the reference ({error})"]
    lines = stub_source.splitlines()
    problems = []
    stub_public, reference_public = (
        registry.public_definitions(stub),
        registry.public_definitions(reference),
    )
    if not stub_public:
        problems.append(f"katas/{name}.py has no public function for the learner to write")
    for function, node in stub_public.items():
        where = f"katas/{name}.py:{node.lineno} {function}"
        if not registry.raises_not_implemented(node):
            problems.append(f"{where} must end in `raise NotImplementedError(...)` in the stub")
        body = lines[node.lineno - 1 : node.end_lineno]
        if not any("# TODO" in line for line in body):
            problems.append(f"{where} needs a `# TODO` comment where the learner writes")
    for function in sorted(set(stub_public) ^ set(reference_public)):
        side = "the stub" if function in stub_public else "the reference"
        problems.append(
            f"{name}: `{function}` is only in {side}: katas/ and solutions/ must offer the same "
            f"public functions"
        )
    for function in sorted(set(stub_public) & set(reference_public)):
        if _signature(stub_public[function]) != _signature(reference_public[function]):
            problems.append(
                f"{name}: {function}() takes ({', '.join(_signature(stub_public[function]))}) "
                f"in the stub but ({', '.join(_signature(reference_public[function]))}) in the "
                f"reference"
            )
    return problems


def check_lesson(kata: registry.Kata) -> list[str]:
    lesson, where = kata.lesson, kata.lesson_file
    problems = []
    if len(lesson.hints) < MIN_HINTS:
        problems.append(f"{where}: {len(lesson.hints)} hint(s); give at least {MIN_HINTS}")
    if any(not hint.strip() for hint in lesson.hints):
        problems.append(f"{where}: a hint is empty")
    ids = [question.id for question in lesson.quiz.questions]
    if len(ids) < MIN_QUESTIONS:
        problems.append(f"{where}: {len(ids)} quiz question(s); give at least {MIN_QUESTIONS}")
    twice = sorted({qid for qid in ids if ids.count(qid) > 1})
    if twice:
        problems.append(f"{where}: quiz ids used twice: {', '.join(twice)} (ids key the tally)")
    if not (isinstance(lesson.points, int) and lesson.points > 0):
        problems.append(f"{where}: points must be a positive whole number, not {lesson.points!r}")
    functions = registry.functions(kata.name)
    declared = [*lesson.changes_inputs, *lesson.returns_gradients, *lesson.keeps_graph]
    for function in declared:
        if function not in functions:
            problems.append(f"{where}: a declaration names {function}(), which the stub lacks")
    for function, changes in lesson.changes_inputs.items():
        for aspects in changes.values() if isinstance(changes, dict) else ():
            unknown = sorted(set(aspects) - set(ASPECTS))
            if unknown:
                problems.append(f"{where}: {function}() may change unknown aspects {unknown}")
    both = set(lesson.returns_gradients) & set(lesson.keeps_graph)
    if both:
        problems.append(f"{where}: {sorted(both)} both return plain gradients and keep a graph")
    return problems


def check_units(root: Path = registry.ROOT) -> list[str]:
    problems = check_four_files(root)
    for kata in registry.KATAS:
        problems += check_stub(kata.name, root)
        problems += check_lesson(kata)
    return problems


def check_tests_cover_functions(stub_outcomes: dict, solution_outcomes: dict) -> list[str]:
    """Each test is charged to a kata function, and each public function of each stub has a
    test charged to it that fails on the stub (outcomes as `pytest --coach-json` writes)."""
    problems = []
    for nodeid, test in sorted(solution_outcomes.items()):
        if test.get("kata") and not test.get("function"):
            problems.append(
                f"{nodeid} calls no function of its kata (through `kata = load_kata(...)`), so "
                f"no function can be charged with it"
            )
    failing = {(t.get("kata"), t.get("function")) for t in stub_outcomes.values()}
    failing = {pair for pair in failing if pair[1]}
    for kata in registry.KATAS:
        for function in registry.functions(kata.name):
            if (kata.name, function) not in failing:
                problems.append(
                    f"{kata.stub_file}: {function} is exercised by no test that fails on the "
                    f"stub; add one to {kata.test_file}"
                )
    return problems

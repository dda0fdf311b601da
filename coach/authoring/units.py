"""Authoring checks for `make check`: every kata is whole, in the spirit of `rustlings dev check`.

Each check returns problems as sentences that say what to fix. Nothing here imports a kata:
stubs and references are read with ast, teaching units through the registry.
"""

from __future__ import annotations

import ast
import difflib
import math
import re
from pathlib import Path

from coach.core import registry
from coach.core.lesson import ASPECTS

MIN_HINTS, MIN_QUESTIONS = 3, 2
FOLDERS = {"katas": "{}.py", "solutions": "{}.py", "tests": "test_{}.py", "lessons": "{}.py"}


IGNORED = {"__init__.py", "conftest.py"}  # files a folder may hold besides the katas'


def _kata_name(file: str, pattern: str) -> str | None:
    """The kata a file name belongs to under `pattern` ("{}.py", "test_{}.py"), else None."""
    prefix, suffix = pattern.split("{}")
    if not (file.startswith(prefix) and file.endswith(suffix)):
        return None
    name = file[len(prefix) : len(file) - len(suffix)]
    return name if registry.KATA_NAME.fullmatch(name) else None


def _near_miss(expected: str, candidates: list[str]) -> str | None:
    """The candidate file most like `expected`: a close spelling, or else the same number."""
    close = difflib.get_close_matches(expected, candidates, n=1, cutoff=0.6)
    if close:
        return close[0]
    number = re.search(r"k\d\d", expected).group()
    same_number = [file for file in candidates if number in file]
    return same_number[0] if len(same_number) == 1 else None


def _misnamed(
    files: dict[str, list[str]], owner: dict, where: dict[str, set[str]]
) -> tuple[list[str], set[tuple[str, str]]]:
    """Files that are near misses of a kata's missing file, one line each, and which they are.

    A kata with files in two or more folders claims, in each folder where it lacks its file,
    the file most like the missing name that belongs to no kata or to one with fewer files.
    """
    problems, renamed = [], set()  # renamed: the (folder, file) pairs claimed
    for name in sorted(where, key=lambda n: (-len(where[n]), n)):
        for folder, pattern in FOLDERS.items():
            if folder in where[name] or len(where[name]) < 2:
                continue
            candidates = [
                file
                for file in files[folder]
                if (folder, file) not in renamed
                and (
                    owner[folder, file] is None
                    or len(where[owner[folder, file]]) < len(where[name])
                )
            ]
            match = _near_miss(pattern.format(name), candidates)
            if match:
                renamed.add((folder, match))
                where[name].add(folder)
                problems.append(
                    f"{folder}/{match} is misnamed: the kata's other files are named {name}, so "
                    f"rename it {folder}/{pattern.format(name)}"
                )
    return problems, renamed


def check_four_files(root: Path = registry.ROOT) -> list[str]:
    """Every kata has its four files, no file belongs to no kata, and no number is taken
    twice. A file named a little off from a kata's other three is reported once, as the
    rename it needs (not as a missing file plus an orphan)."""
    files = {
        folder: sorted(p.name for p in (root / folder).glob("*.py") if p.name not in IGNORED)
        if (root / folder).is_dir()
        else []
        for folder in FOLDERS
    }
    owner = {
        (folder, file): _kata_name(file, pattern)
        for folder, pattern in FOLDERS.items()
        for file in files[folder]
    }
    where: dict[str, set[str]] = {}  # kata name -> the folders with its file
    for (folder, _), name in owner.items():
        if name:
            where.setdefault(name, set()).add(folder)
    problems, renamed = _misnamed(files, owner, where)
    lessons = {name for name in where if "lessons" in where[name]}
    katas = {n for n in lessons if ("lessons", FOLDERS["lessons"].format(n)) not in renamed}
    for number, names in registry.shared_numbers(sorted(katas)).items():
        problems.append(
            f"kata number {number:02d} is taken twice: {' and '.join(names)}; the number sets "
            f"the course order and `make test K={number}` must name one kata, so renumber one"
        )
    for folder, pattern in FOLDERS.items():
        for name in sorted(katas):
            if folder not in where[name]:
                problems.append(f"{name}: {folder}/{pattern.format(name)} is missing")
        for file in files[folder]:
            name = owner[folder, file]
            if (folder, file) in renamed or name is None or name in katas:
                continue
            problems.append(
                f"{folder}/{file} belongs to no kata: a kata needs its teaching "
                f"unit lessons/{name}.py (see coach/core/lesson.py), or remove the file"
            )
    extra = (
        sorted(
            file
            for file in (p.name for p in (root / "katas").iterdir())
            if file != "__pycache__"
            and ("katas", file) not in renamed
            and not (file.endswith(".py") and file[:-3] in katas)
        )
        if (root / "katas").is_dir()
        else []
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


# --- the quiz's rules -----------------------------------------------------------------------


def stated_answer(question) -> str:
    """What a learner who knows torch types for `question`, read from its `claim`."""
    claim = question.claim
    if isinstance(claim, type) and issubclass(claim, BaseException):
        return "raises"
    if claim is None:
        return "None"
    if isinstance(claim, bool):
        return "yes" if claim else "no"
    return str(claim)


def _answer_text_start(claim, outcome) -> str:
    """How the explanation (`why`) must begin for this claim: with the value itself."""
    from coach.learner import predict

    if isinstance(claim, type):
        return f"It raises {claim.__name__}"
    if claim is None:
        return "None"
    if isinstance(claim, bool):
        return "Yes" if claim else "No"
    if isinstance(claim, str):
        return claim
    return predict.describe(outcome)


def _claim_holds(claim, outcome) -> bool:
    if isinstance(claim, type):
        return isinstance(outcome.error, claim)
    if outcome.error is not None:
        return False
    if claim is None or isinstance(claim, bool):
        return outcome.value is claim
    if isinstance(claim, str):
        return outcome.value == claim
    return isinstance(outcome.value, (int, float)) and math.isclose(
        outcome.value, claim, abs_tol=1e-4
    )


def check_question(kata: registry.Kata, question) -> list[str]:
    """The quiz's three rules, held against the installed torch by running the code:
    1. the stated answer (`claim`) is what the code gives;
    2. the explanation (`why`) starts with that value ("It raises RuntimeError", "None",
       "Yes"/"No", the choice, or the number as `make predict` prints it);
    3. a learner who types the stated answer is judged right by `make predict`."""
    from coach.learner import predict

    where = f"{kata.lesson_file}: quiz question {question.id!r}"
    outcome = predict.run(kata.lesson.quiz, question)
    claim = question.claim
    if not _claim_holds(claim, outcome):
        return [
            f"{where} states the answer {stated_answer(question)!r} (its claim={claim!r}), but "
            f"its code gives {predict.describe(outcome)!r} on torch {_torch_version()}: correct "
            f"the claim and the explanation, or the code"
        ]
    problems = []
    start = _answer_text_start(claim, outcome)
    if not question.why.startswith(start):
        problems.append(
            f"{where}: its explanation must start with the answer, {start!r} (so a learner "
            f"reads the value first), but starts {question.why[: len(start) + 12]!r}"
        )
    if not predict.judge(predict.parse(stated_answer(question), question), outcome, question):
        problems.append(
            f"{where}: a learner who types the stated answer {stated_answer(question)!r} is "
            f"judged wrong by `make predict`; check the question's kind and options"
        )
    return problems


def _torch_version() -> str:
    import torch

    return torch.__version__


def check_quiz(kata: registry.Kata) -> list[str]:
    return [problem for q in kata.lesson.quiz.questions for problem in check_question(kata, q)]

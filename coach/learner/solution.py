"""`make solution K=3`: the reference next to the learner's code, once the kata is green.

Before that it points to `make hint`: seeing the answer first spoils the kata.
"""

from __future__ import annotations

import ast
import shutil

from coach.core import registry
from coach.core.paths import display_path, resolve_impl_path
from coach.learner import standing
from coach.learner.hints import named_kata

WIDE = 140  # columns needed to show the two side by side


def functions(source: str) -> dict[str, list[str]]:
    """Each top-level function's source lines, without its docstring."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    lines = source.splitlines()
    found = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        body = lines[node.lineno - 1 : node.end_lineno]
        first = node.body[0]
        is_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        if is_docstring and isinstance(first.value.value, str) and len(node.body) > 1:
            cut_from, cut_to = first.lineno - node.lineno, first.end_lineno - node.lineno + 1
            body = body[:cut_from] + body[cut_to:]
        found[node.name] = body
    return found


def side_by_side(left: list[str], right: list[str], width: int) -> list[str]:
    column = (width - 3) // 2
    rows = max(len(left), len(right))
    left = left + [""] * (rows - len(left))
    right = right + [""] * (rows - len(right))
    return [f"{a[:column]:<{column}} | {b[:column]}" for a, b in zip(left, right)]


def compare(mine: str, reference: str, width: int) -> list[str]:
    """The two files function by function: side by side when the terminal is wide."""
    yours, theirs = functions(mine), functions(reference)
    out = []
    for name, reference_lines in theirs.items():
        mine_lines = yours.get(name, ["(no such function in your file)"])
        out.append(f"== {name} " + "=" * max(0, min(width, 100) - len(name) - 4))
        if width >= WIDE:
            out += side_by_side(["YOURS", *mine_lines], ["REFERENCE", *reference_lines], width)
        else:
            out += ["-- yours:", *mine_lines, "-- reference:", *reference_lines]
        out.append("")
    return out


def main(rest: list[str]) -> int:
    kata = named_kata(rest[:1], "solution")
    if kata is None:
        return 2
    impl = resolve_impl_path(rest[1] if len(rest) > 1 else None, registry.ROOT)
    progress = standing.collect([kata], impl=str(impl))
    result = next(r for r in progress.results if r.kata == kata)
    if not result.green:
        print(
            f"Kata {kata.number} ({kata.name}) is not green yet: {result.passed}/{result.total}"
            f" tests pass. The reference opens once it is.\n"
            f"Stuck? `make hint K={kata.number}` gives one more hint each time you ask."
        )
        return 0  # an answer, not an error: make should not print "Error 1"
    mine_path = impl / f"{kata.name}.py"
    reference_path = registry.ROOT / "solutions" / f"{kata.name}.py"
    if not reference_path.is_file():
        print("This copy of the course has no solutions/ folder (your instructor kept it).")
        return 0
    mine = mine_path.read_text(encoding="utf-8")
    reference = reference_path.read_text(encoding="utf-8")
    width = shutil.get_terminal_size((100, 40)).columns
    print(
        f"Kata {kata.number} is green. Your {display_path(mine_path)} and the reference,"
        f" function by function (docstrings left out):\n"
    )
    print("\n".join(compare(mine, reference, width)))
    return 0

"""`make solution K=3`: the reference next to the learner's code, once the kata is green.

Before that it points to `make hint`: seeing the answer first spoils the kata.
"""

from __future__ import annotations

import shutil
import sys

from coach import outcomes, registry
from coach.paths import display_path
from coach.plugin import resolve_impl_path


def side_by_side(left: list[str], right: list[str], width: int) -> list[str]:
    column = (width - 3) // 2
    rows = max(len(left), len(right))
    left += [""] * (rows - len(left))
    right += [""] * (rows - len(right))
    return [f"{a[:column]:<{column}} | {b[:column]}" for a, b in zip(left, right)]


def main(rest: list[str]) -> int:
    if not rest:
        print("Which kata? For example: make solution K=3", file=sys.stderr)
        return 2
    try:
        kata = registry.find(rest[0])
    except LookupError as error:
        print(error, file=sys.stderr)
        return 2
    impl = resolve_impl_path(rest[1] if len(rest) > 1 else None, registry.ROOT)
    progress = outcomes.collect([kata], impl=str(impl))
    result = next(r for r in progress.results if r.kata == kata)
    if not result.green:
        print(
            f"Kata {kata.number} ({kata.name}) is not green yet: {result.passed}/{result.total}"
            f" tests pass. The reference opens once it is.\n"
            f"Stuck? `make hint K={kata.number}` gives one more hint each time you ask."
        )
        return 1
    mine_path = impl / f"{kata.name}.py"
    reference_path = registry.ROOT / "solutions" / f"{kata.name}.py"
    if not reference_path.is_file():
        print("This copy of the course has no solutions/ folder (your instructor kept it).")
        return 1
    mine = mine_path.read_text(encoding="utf-8").splitlines()
    reference = reference_path.read_text(encoding="utf-8").splitlines()
    width = shutil.get_terminal_size((160, 40)).columns
    print(f"Kata {kata.number} is green. Yours ({display_path(mine_path)}) and the reference:")
    if width >= 140:
        header = side_by_side(["YOURS"], ["REFERENCE"], width)
        body = side_by_side(mine, reference, width)
        print("\n".join([*header, "-" * width, *body]))
    else:
        print(f"--- yours: {display_path(mine_path)}")
        print("\n".join(mine))
        print(f"--- reference: {display_path(reference_path)}")
        print("\n".join(reference))
    return 0

"""`make progress` and `make next`: where the learner stands, and what to do next."""

from __future__ import annotations

import sys

from coach.core import registry
from coach.core.paths import display_path
from coach.learner import standing
from coach.runtime import summary


def _color() -> bool:
    return sys.stdout.isatty()


def _impl_argument(rest: list[str], command: str) -> list[str]:
    """The optional folder under test (`make progress` takes none; `python -m coach progress
    DIR` judges another folder), as a list of at most one word. --help and a mistake exit."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"make {command}")
    parser.add_argument("impl", nargs="?", help="the folder under test (default: katas/)")
    impl = parser.parse_args(rest).impl
    return [impl] if impl else []


def progress(rest: list[str]) -> int:
    rest = _impl_argument(rest, "progress")
    current = standing.collect(impl=rest[0] if rest else None)
    impl = _impl_dir(rest)
    for line in summary.render(current, impl=impl, color=_color()):
        print(line)
    return 0


def next_kata(rest: list[str]) -> int:
    rest = _impl_argument(rest, "next")
    current = standing.collect(impl=rest[0] if rest else None)
    red = current.next_red()
    if red is None:
        print("Every kata is green. Run `make solution K=N` to compare with the reference.")
        return 0
    _, test_id, message = summary.first_failure(red)
    stub = display_path(_impl_dir(rest) / f"{red.kata.name}.py")
    print(f"Next kata: {red.kata.number} {red.kata.name}: {red.kata.title}")
    print(f"  ({red.passed}/{red.total} tests pass)")
    print(f"First failing test: {test_id.split('::')[-1]}")
    for text in message.strip().splitlines()[:12]:
        print(f"  {text}")
    print(f"Edit: {stub}{_where(message, stub)}")
    print(f"Then: make test K={red.kata.number}   (stuck? make hint K={red.kata.number})")
    return 0


def _where(message: str, stub: str) -> str:
    """The function named in a 'not written yet' message, if there is one."""
    marker = "() is not written yet"
    if marker in message:
        function = message.split(marker, maxsplit=1)[0].rsplit(maxsplit=1)[-1]
        return f", function {function}()"
    return ""


def _impl_dir(rest: list[str]):
    from coach.core.paths import resolve_impl_path

    return resolve_impl_path(rest[0] if rest else None, registry.ROOT)

"""`make graph K=2`: a kata's backward graph, printed as text, from the learner's own code.

The walk itself (coach/runtime/graphs.py) is shared with the tests' helpers and `make plots`;
this module only chooses the kata, renders the trees and says what to do when there is none.
"""

from __future__ import annotations

import argparse
import sys

from coach.core import registry
from coach.core.paths import resolve_impl_path
from coach.runtime.graphs import GraphView, KataBroken, KataNotWritten, build_views, tree_lines


def render(kata: registry.Kata, views: list[GraphView], color: bool = False) -> list[str]:
    def paint(text: str) -> str:
        return f"\033[31m{text}\033[0m" if color else text

    lines = [f"Backward graph of kata {kata.number} ({kata.name}), from your code:"]
    for view in views:
        lines += ["", view.heading, *("  " + t for t in tree_lines(view.root, paint))]
        lines += ["", *view.notes]
    return lines


def parse(rest: list[str], prog: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("kata", nargs="?", help="the kata number or name, e.g. 2")
    parser.add_argument("--impl", default=None, help="the kata folder (default: katas)")
    return parser.parse_args(rest)


def graph_katas() -> list[registry.Kata]:
    """The katas whose teaching unit has a graph to show."""
    return [kata for kata in registry.KATAS if kata.lesson.graph is not None]


def _known() -> str:
    return ", ".join(str(kata.number) for kata in graph_katas())


def main(rest: list[str]) -> int:
    args = parse(rest, "make graph K=N")
    if not args.kata:
        print(f"Which kata? For example: make graph K=2 (graphs for katas {_known()}).")
        return 2
    try:
        kata = registry.find(args.kata)
        impl = resolve_impl_path(args.impl, registry.ROOT)
    except LookupError as error:  # no such kata, or no such folder
        print(error)
        return 2
    try:
        views = build_views(kata, impl)
    except LookupError:  # an answer, not an error: make must not report a failure
        print(
            f"Kata {kata.number} ({kata.title}) has nothing to draw: its lesson shows no graph. "
            f"Graphs exist for katas {_known()}."
        )
        return 0
    except KataNotWritten:
        print(f"kata {kata.number} is not written yet -- make test K={kata.number}")
        return 0  # not an error: the learner simply has not got there yet
    except KataBroken as error:
        print(f"Cannot draw kata {kata.number}'s graph yet: {error}")
        print(f"`make test K={kata.number}` says more.")
        return 1
    for line in render(kata, views, color=sys.stdout.isatty()):
        print(line)
    return 0

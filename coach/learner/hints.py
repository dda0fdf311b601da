"""`make hint K=3`: one more hint for a kata each time you ask.

Hints come in increasing strength: the first only points at the idea, the last is nearly the
code (never the whole file). Every call shows the hints unlocked so far plus one more, so the
learner takes only as much help as they need. The level reached is remembered per kata in
the learner's state file; `--reset` forgets it.
"""

from __future__ import annotations

import sys
import textwrap

from coach.core import registry
from coach.learner import state

# The same styles as coach.runtime.summary, which is not imported here: it pulls in torch (~1.5 s),
# and a hint should appear at once.
BOLD, DIM, RESET = "\033[1m", "\033[2m", "\033[0m"


def hints_for(kata: registry.Kata) -> list[str]:
    """The kata's hints as clean paragraphs (indentation and outer blank lines removed)."""
    return [textwrap.dedent(text).strip() for text in kata.lesson.hints]


def named_kata(selectors: list[str], command: str) -> registry.Kata | None:
    """The kata the learner named (K=3, K=k03), for the commands that need one (reset,
    solution). Prints why when there is none or no such kata, and then returns None."""
    if not selectors:
        print(f"Which kata? For example: make {command} K=3", file=sys.stderr)
        return None
    if selectors[0].startswith("-"):  # --help, or an option this command does not take
        print(f"Usage: make {command} K=3 (or python -m coach {command} 3)", file=sys.stderr)
        return None
    try:
        return registry.find(selectors[0])
    except LookupError as error:
        print(error, file=sys.stderr)
        return None


def choose_kata(selectors: list[str], command: str) -> registry.Kata | None:
    """The kata the learner named, else the first one that is not green yet.

    Shared with `make predict`. Prints why when it cannot choose, and then returns None.
    """
    if selectors:
        return named_kata(selectors, command)
    from coach.learner import (
        standing as outcomes,  # runs the kata tests: only needed when no K is given
    )

    red = outcomes.collect().next_red()
    if red is None:
        print(f"Which kata? Nothing is red to pick for you. For example: make {command} K=3")
        return None
    print(f"(No K given: kata {red.kata.number} is the first one that is not green yet.)")
    return red.kata


def main(rest: list[str]) -> int:
    flags = [word for word in rest if word.startswith("-")]
    unknown = [flag for flag in flags if flag != "--reset"]
    if unknown:
        print(f"Unknown option {unknown[0]}. Usage: make hint K=3 [--reset]", file=sys.stderr)
        return 2
    kata = choose_kata([word for word in rest if not word.startswith("-")], "hint")
    if kata is None:
        return 2
    if "--reset" in flags:
        return reset(kata)
    return show_next(kata)


def reset(kata: registry.Kata) -> int:
    learner = state.load()
    learner.get("hints", {}).pop(kata.name, None)
    state.save(learner)
    print(f"Hints for kata {kata.number} forgotten. `make hint K={kata.number}` starts again.")
    return 0


def show_next(kata: registry.Kata) -> int:
    """Unlock one more hint (if any are left), then show every hint unlocked so far."""
    hints = hints_for(kata)
    learner = state.load()
    levels = learner.setdefault("hints", {})
    seen_before = min(levels.get(kata.name, 0), len(hints))
    level = min(seen_before + 1, len(hints))
    levels[kata.name] = level
    state.save(learner)
    lines = render(kata, hints[:level], len(hints), color=sys.stdout.isatty())
    lines += next_step(kata, level, len(hints), unlocked_now=level > seen_before)
    print("\n".join(lines))
    return 0


def render(kata: registry.Kata, shown: list[str], total: int, color: bool) -> list[str]:
    """The unlocked hints, the newest last and highlighted."""

    def paint(text: str, style: str) -> str:
        return f"{style}{text}{RESET}" if color else text

    level = len(shown)
    lines = [paint(f"Kata {kata.number}: {kata.title}. Hint {level} of {total}.", BOLD)]
    for number, text in enumerate(shown, start=1):
        style = BOLD if number == level else DIM
        lines.append("")
        lines.append(paint(f"Hint {number}:", style))
        lines.extend(paint(f"  {line}", style) if line else "" for line in text.splitlines())
    return lines


def next_step(kata: registry.Kata, level: int, total: int, unlocked_now: bool) -> list[str]:
    number = kata.number
    if level < total:
        return ["", f"Still stuck? `make hint K={number}` again for hint {level + 1}."]
    first = "That was the last hint." if unlocked_now else f"That is all {total} hints."
    return [
        "",
        f"{first} Once `make test K={number}` is green,",
        f"`make solution K={number}` shows the reference next to your code.",
        f'(`make hint K="{number} --reset"` hides the hints again.)',
    ]

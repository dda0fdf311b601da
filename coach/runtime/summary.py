"""Where the learner stands: one line per kata, a progress bar and the next step.

Built from per-test outcomes (kata name, outcome, message), so the end of `make test`,
`make progress`, `make next` and the graders all tell the same story.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from coach.core import registry
from coach.core.paths import display_path

ALL_GREEN = (
    "The whole course is green: every kata passes. Well done!",
    "`make solution K=N` shows the reference next to your code (where the course ships it).",
    "Read next, in PyTorch's own words:",
    "  Autograd mechanics        https://pytorch.org/docs/stable/notes/autograd.html",
    "  Extending PyTorch         https://pytorch.org/docs/stable/notes/extending.html",
    "  torch.func (grad, vmap)   https://pytorch.org/docs/stable/func.html",
)

AS_ABOVE = "(as above) "  # starts the short repeats of a message shown in full once (loader)
SHOWN_LINES = 4  # of the first failure's message, in the summary

GREEN, RED, DIM, BOLD, RESET = "\033[32m", "\033[31m", "\033[2m", "\033[1m", "\033[0m"


@dataclass
class KataResult:
    kata: registry.Kata
    passed: int = 0
    total: int = 0
    failures: list[tuple[int, str, str]] = field(default_factory=list)  # (line, test id, message)
    # kata function -> [tests passed, tests run], for the tests charged to that function
    functions: dict[str, list[int]] = field(default_factory=dict)
    _order: list[tuple[int, int]] = field(default_factory=list)  # failures' sort keys

    @property
    def ran(self) -> bool:
        return self.total > 0

    @property
    def green(self) -> bool:
        return self.ran and self.passed == self.total

    def add(self, test_id: str, outcome: str, message: str, line: int, function: str) -> None:
        self.total += 1
        counts = self.functions.setdefault(function, [0, 0]) if function else [0, 0]
        counts[1] += 1
        if outcome == "passed":
            self.passed += 1
            counts[0] += 1
        else:
            order = registry.functions(self.kata.name)
            rank = order.index(function) if function in order else len(order)
            self._order.append((rank, line))
            self.failures.append((line, test_id, message))

    def sort_failures(self) -> None:
        """The first failure is the one a learner working down the stub meets first: by the
        stub's function order, then by the order of the test file (not the run's order)."""
        keyed = sorted(zip(self._order, self.failures), key=lambda pair: (pair[0], pair[1]))
        self.failures = [failure for _, failure in keyed]
        self._order = [key for key, _ in keyed]

    def functions_green(self) -> tuple[int, int]:
        """(functions whose every test passes, functions of the stub that have tests)."""
        order = registry.functions(self.kata.name)
        known = [self.functions[name] for name in order if name in self.functions]
        return sum(passed == run for passed, run in known), len(known)


@dataclass
class Progress:
    results: list[KataResult]

    @classmethod
    def from_outcomes(cls, outcomes) -> Progress:
        """outcomes: iterable of (test id, (kata name, outcome, message, line in test file[,
        the kata function the test checks]))."""
        by_name = {kata.name: KataResult(kata) for kata in registry.KATAS}
        for test_id, (kata_name, outcome, message, line, *function) in outcomes:
            result = by_name.get(kata_name)
            if result is not None:
                result.add(test_id, outcome, message, line, function[0] if function else "")
        for result in by_name.values():
            result.sort_failures()
        return cls([by_name[kata.name] for kata in registry.KATAS])

    @classmethod
    def from_json(cls, payload: dict) -> Progress:
        """From the file that `pytest --coach-json FILE` writes."""
        return cls.from_outcomes(
            (
                t["nodeid"],
                (t["kata"], t["outcome"], t["message"], t.get("line", 0), t.get("function", "")),
            )
            for t in payload["tests"]
        )

    @property
    def ran(self) -> list[KataResult]:
        return [result for result in self.results if result.ran]

    def next_red(self) -> KataResult | None:
        return next((result for result in self.ran if not result.green), None)


def first_failure(result: KataResult) -> tuple[int, str, str]:
    """The failure to show first: the first in the stub's order, unless it only repeats a
    message another test shows in full (a file that cannot load, a function that hung)."""
    full = [failure for failure in result.failures if not failure[2].startswith(AS_ABOVE)]
    return (full or result.failures)[0]


def _paint(text: str, colour: str, color: bool) -> str:
    return f"{colour}{text}{RESET}" if color else text


def bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / total) if total else 0
    return "[" + "#" * filled + "." * (width - filled) + "]"


def render(progress: Progress, impl: Path, color: bool = False, brief: bool = False) -> list[str]:
    """The summary: a line per kata that ran, a bar, and the next step. `brief` is for a run
    whose failures were not printed above it: the first failure is then shown in full."""
    ran = progress.ran
    if not ran:
        return []
    lines = [_paint("Katas", BOLD, color) + f" ({_relative(impl)}):"]
    name_width = max(len(result.kata.name) for result in ran)
    title_width = max(len(result.kata.title) for result in ran)
    for result in ran:
        kata = result.kata
        state = _paint("green", GREEN, color) if result.green else _paint("red  ", RED, color)
        done, of = result.functions_green()
        partly = 0 < result.passed < result.total  # "0 of 3 functions" on a fresh stub is noise
        functions = f", {done} of {of} functions green" if of > 1 and partly else ""
        lines.append(
            f"  {state}  {kata.name:<{name_width}}  {kata.title:<{title_width}}  "
            f"{result.passed:>2}/{result.total} tests"
            f"{functions}"
        )
    green = sum(result.green for result in ran)
    lines.append(f"  {bar(green, len(ran))} {green}/{len(ran)} katas green")
    lines.extend(next_step(progress, impl, brief))
    return lines


def next_step(progress: Progress, impl: Path, brief: bool = False) -> list[str]:
    red = progress.next_red()
    if red is None:
        if len(progress.ran) == len(registry.KATAS):
            return list(ALL_GREEN)
        return after_green(progress.ran[-1].kata)
    _, test_id, message = first_failure(red)
    lines = message.strip().splitlines() or ["failed"]
    limit = len(lines) if brief else SHOWN_LINES
    shown = [f"  {line}" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"  ... (the full message is above, under {test_id.split('::')[-1]})")
    number = red.kata.number
    steps = [
        f"Next: {red.kata.name} ({red.kata.title}). Edit {_relative(impl / red.kata.name)}.py,"
        f" then run `make test K={number}`.",
        f"  First failing test: {test_id.split('::')[-1]}",
        *shown,
    ]
    if brief:
        steps.append(
            f"  (Only this failure is shown. `make test K={number}` shows every failure of kata "
            f"{number}; `make test ALL=1` every failure of every kata.)"
        )
    return steps


def after_green(kata: registry.Kata) -> list[str]:
    """What to do once `kata`, the last one that ran, is green."""
    following = registry.after(kata)
    if following is None:
        return [
            f"Kata {kata.number} is green, and it is the last of the course. `make progress` "
            f"shows whether every kata is green."
        ]
    return [
        f"Kata {kata.number} is green. Next in the course: kata {following.number}, "
        f"{following.name} ({following.title}): `make test K={following.number}`."
    ]


def _relative(path: Path) -> str:
    return display_path(path)

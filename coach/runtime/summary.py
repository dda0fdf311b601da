"""Where the learner stands: one line per kata, a progress bar and the next step.

Built from per-test outcomes (kata name, outcome, message), so the end of `make test`,
`make progress`, `make next` and the graders all tell the same story.
"""

from __future__ import annotations

import re
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
SCREEN_ROWS = 40  # `make test K=N` prints at most this many rows (at the terminal's width)
SAME_CAUSE = "(same cause as above)"
REPEAT_MIN = 30  # a message line at least this long, shown before, is a repeated paragraph

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


def rows(lines: list[str], width: int) -> int:
    """How many terminal rows `lines` fill at `width` columns (long lines wrap)."""
    return sum(max(1, -(-len(line) // max(width, 1))) for line in lines)


@dataclass
class _Block:
    test: str
    lines: list[str]
    same: list[str] = field(default_factory=list)  # later tests that failed the same way


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d*)?(?:e[+-]?\d+)?(?![\w])")


def _numbers_masked(text: str) -> str:
    """`text` with each number, and each run of numbers (a list, a tensor's values), as #."""
    return re.sub(r"#(?:,\s*#)+", "#", _NUMBER.sub("#", text))


def _blocks(progress: Progress, collapse: bool) -> list[_Block]:
    """Each failure in the summary's order; with `collapse`, a message seen before becomes one
    more name under its first report, and a long line seen before in another message becomes
    one SAME_CAUSE line."""
    blocks: list[_Block] = []
    by_message: dict[str, _Block] = {}
    seen: set[str] = set()
    for result in progress.ran:
        if not result.failures:
            continue
        first = first_failure(result)  # the full report before its "(as above)" repeats
        rest = [failure for failure in result.failures if failure is not first]
        for _, test_id, message in [first, *rest]:
            name = test_id.split("::")[-1]
            text = message.strip() or "failed"
            # One kata's message that differs from an earlier one only in its numbers (the
            # random inputs, a count) tells the same misunderstanding: shown once.
            shape = f"{result.kata.name}\0{_numbers_masked(text)}"
            earlier = by_message.get(text) or by_message.get(shape)
            if collapse and earlier:
                earlier.same.append(name)
                continue
            lines: list[str] = []
            for index, line in enumerate(text.splitlines()):
                repeated = index > 0 and len(line.strip()) >= REPEAT_MIN and line in seen
                if collapse and repeated:
                    if not lines or lines[-1] != SAME_CAUSE:
                        lines.append(SAME_CAUSE)
                else:
                    lines.append(line)
                seen.add(line)
            block = _Block(name, lines)
            by_message[text] = by_message[shape] = block
            blocks.append(block)
    return blocks


def _block_lines(block: _Block, width: int) -> list[str]:
    title = f" {block.test} "
    header = title.center(width, "_") if len(title) < width - 2 else f"__{title}__"
    lines = [header, *block.lines]
    if block.same:
        names = ", ".join(block.same)
        more = len(block.same)
        line = f"(and {more} more test{'s' if more > 1 else ''}, same cause: {names})"
        if len(line) > width:
            line = line[: width - 2] + "…)"
        lines.append(line)
    return lines


def failure_report(
    progress: Progress, width: int = 80, budget: int | None = None, collapse: bool = True
) -> list[str]:
    """The failures, in the order of the summary below them (the stub's order, whatever the
    random seed), each a title line and its message. `budget`: at most that many rows at
    `width` columns; the first failure is always shown whole."""
    shown: list[str] = []
    blocks = _blocks(progress, collapse)
    for index, block in enumerate(blocks):
        lines = _block_lines(block, width)
        if budget is not None and index > 0 and rows(shown + lines, width) > budget - 1:
            left = sum(1 + len(rest.same) for rest in blocks[index:])
            red = progress.next_red()
            again = f"make test K={red.kata.number} ALL=1" if red else "make test ALL=1"
            tests = "test" if left == 1 else "tests"
            shown.append(f"({left} more failing {tests} not shown: `{again}` shows every one.)")
            break
        shown.extend(lines)
    return shown


def _paint(text: str, colour: str, color: bool) -> str:
    return f"{colour}{text}{RESET}" if color else text


def bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / total) if total else 0
    return "[" + "#" * filled + "." * (width - filled) + "]"


def render(
    progress: Progress,
    impl: Path,
    color: bool = False,
    brief: bool = False,
    shown_above: bool = False,
) -> list[str]:
    """The summary: a line per kata that ran, a bar, and the next step. `brief` is for a run
    whose failures were not printed above it: the first failure is then shown in full.
    `shown_above`: the failures are printed just above, the first one first; not again."""
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
    lines.extend(next_step(progress, impl, brief, shown_above))
    return lines


def next_step(
    progress: Progress, impl: Path, brief: bool = False, shown_above: bool = False
) -> list[str]:
    red = progress.next_red()
    if red is None:
        if len(progress.ran) == len(registry.KATAS):
            return list(ALL_GREEN)
        return after_green(progress.ran[-1].kata)
    _, test_id, message = first_failure(red)
    lines = message.strip().splitlines() or ["failed"]
    limit = len(lines) if brief else 0 if shown_above else SHOWN_LINES
    shown = [f"  {line}" for line in lines[:limit]]
    if shown_above:
        pass  # the report above starts with this failure
    elif len(lines) > limit:
        shown.append(f"  ... (the full message is above, under {test_id.split('::')[-1]})")
    number = red.kata.number
    steps = [
        f"Next: {red.kata.name} ({red.kata.title}). Edit {_relative(impl / red.kata.name)}.py,"
        f" then run `make test K={number}`.",
        f"  First failing test: {test_id.split('::')[-1]}"
        + (" (the first report above)" if shown_above else ""),
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

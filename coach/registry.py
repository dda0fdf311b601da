"""The ordered list of katas: the single source of their order, titles and points.

Adding a kata means adding its stub (katas/), its reference (solutions/), its tests
(tests/test_<name>.py) and one entry here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Kata:
    name: str  # module name: katas/<name>.py, solutions/<name>.py, tests/test_<name>.py
    title: str
    concept: str  # what it teaches, in a few words
    seed: str  # where it comes from in the seed notebook
    points: int = 10  # for graders: full marks for this kata

    @property
    def number(self) -> int:
        return int(self.name[1:3])

    @property
    def test_file(self) -> str:
        return f"tests/test_{self.name}.py"


KATAS: tuple[Kata, ...] = (
    Kata(
        "k01_polynomial",
        "Polynomial gradient",
        "requires_grad, backward() and .grad",
        "Exercise 1",
    ),
    Kata(
        "k02_backprop",
        "Backprop by hand and by autograd",
        "the chain rule, node by node",
        "Exercise 2",
    ),
    Kata(
        "k03_accumulation",
        "The accumulation trap",
        "gradients add up until you clear them",
        "Exercise 3",
    ),
    Kata(
        "k04_training_step",
        "A training step by hand",
        "forward, loss, backward, update, clear",
        "Exercise 4",
    ),
    Kata(
        "k05_detach",
        "Stopping gradients with detach()",
        "cutting the graph on purpose",
        "Exercise 5",
    ),
)

BY_NAME = {kata.name: kata for kata in KATAS}


def find(selector: str) -> Kata:
    """Resolve what a learner types ("3", "03", "k03", "k03_accumulation") to a kata."""
    text = selector.strip().lower()
    match = re.fullmatch(r"k?0*(\d+)(_\w*)?", text)
    if match:
        number = int(match.group(1))
        for kata in KATAS:
            if kata.number == number and (match.group(2) is None or kata.name == text):
                return kata
    if text in BY_NAME:
        return BY_NAME[text]
    known = ", ".join(f"{k.number} ({k.name})" for k in KATAS)
    raise LookupError(f"No kata called {selector!r}. Known katas: {known}.")


def kata_of_test_path(path: str) -> Kata | None:
    """The kata a test file belongs to, from its file name test_<name>.py."""
    match = re.search(r"test_(k\d\d_\w+)\.py$", path.replace("\\", "/"))
    return BY_NAME.get(match.group(1)) if match else None

"""What a kata's teaching unit holds: the shape of every `lessons/kNN_name.py`.

Each kata has one unit beside the others in lessons/, named like its stub, holding a single
`LESSON = Lesson(...)`: its title, what it teaches, where it comes from, its points, its hints
(weakest first), its "predict, then run" quiz, and the facts about torch its prose and
messages rely on (selftests/test_facts.py runs each one). A kata with a graph to show also gives
`graph`, a function that builds the views `make graph` prints and `make plots` draws, from the
learner's own module; a kata with a picture of its own (a training curve) gives `picture`.

Standard library only: `make hint` reads units without importing torch, so a unit imports
torch (and coach.runtime.graphs) only inside its graph or picture functions.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

NUMBER, YES_NO, CHOICE = "number", "yes/no", "choice"


def code(text: str) -> str:
    """A block of quiz code written indented inside a unit, as it should run."""
    return textwrap.dedent(text).strip()


class BadLesson(Exception):
    """A teaching unit that cannot be read; says which file and why."""


@dataclass(frozen=True)
class Question:
    id: str  # the key in the learner's state; never rename one that learners have answered
    ask: str
    code: str  # runs after the quiz's setup and must set `result` (or raise)
    why: str
    # What `why` says torch gives: a float, None, a bool, a choice, or an exception class.
    # Only the selftests read it, to hold the code and the explanation to each other; the
    # learner is always judged against what the code really does.
    claim: object
    kind: str = NUMBER  # what a readable answer looks like, besides None and "raises"
    options: tuple[str, ...] = ()  # for CHOICE
    tolerance: float = 1e-3


@dataclass(frozen=True)
class Quiz:
    setup: str  # shown once, run before every question's code
    questions: tuple[Question, ...]


# What of an argument a kata function may change (see Lesson.changes_inputs).
VALUES = "values"  # the tensor's values, in place (its version counter moves with them)
GRAD = "grad"  # the values of its .grad, in place: the same .grad tensor, still there
NEW_GRAD = "new grad"  # its .grad written, replaced by another tensor or set to None
REQUIRES_GRAD = "requires_grad"  # its requires_grad flag (freezing a layer)
TRAINING = "training"  # a module's train()/eval() flag
ASPECTS = (VALUES, GRAD, NEW_GRAD, REQUIRES_GRAD, TRAINING)
TRAINING_STEP = (VALUES, GRAD, NEW_GRAD)  # what a parameter name alone allows


def allowed_changes(lesson: Lesson, function: str) -> dict[str, tuple[str, ...]]:
    """{parameter: aspects it may change} for one function of the lesson's kata."""
    declared = lesson.changes_inputs.get(function, ())
    if isinstance(declared, dict):
        return dict(declared)
    return {name: TRAINING_STEP for name in declared}


@dataclass(frozen=True)
class Fact:
    """A claim about torch that the kata's stub, lesson or test messages make, with code that
    shows it. selftests/test_facts.py runs the code on the installed torch, the way `make
    predict` runs a quiz question, so a sentence that stops being true fails the selftests."""

    statement: str  # the claim, as the prose makes it
    code: str  # runs in a fresh namespace holding `torch`; sets `result` (or raises)
    # What the code gives, as for Question.claim: a float (within `tolerance`), None, a bool,
    # an exception class, or any other plain value compared with == (a str, a tuple, a list).
    outcome: object
    message: str = ""  # when `outcome` is an exception class: a piece of its text
    tolerance: float = 1e-4


@dataclass(frozen=True)
class Lesson:
    title: str
    concept: str  # what it teaches, in a few words
    source: str  # where it comes from: the seed notebook's exercise, or the docs it follows
    hints: tuple[str, ...]  # weakest first; the last is nearly the code, never all of it
    quiz: Quiz
    points: int = 10  # for graders: full marks for this kata
    # function name -> what of its arguments it may change, as its docstring promises (a
    # training step updates its weights). Either a tuple of parameter names, each of which may
    # change as a training step changes a tensor (TRAINING_STEP: values in place, .grad written,
    # replaced or cleared), or {parameter: aspects} naming the ASPECTS that may change. Every
    # other argument, and every other aspect, must come back as it was, whether the function
    # returns or raises. Hooks and the entries of lists and dicts are never exempt.
    changes_inputs: dict[str, tuple[str, ...] | dict[str, tuple[str, ...]]] = field(
        default_factory=dict
    )
    # functions whose result is gradients: every tensor in what they return must be plain (no
    # grad_fn, requires_grad False), as torch.autograd.grad and .grad give them
    returns_gradients: tuple[str, ...] = ()
    # functions that return gradients a formula computes from the caller's tensors, which
    # carry a graph when those tensors require grad, as their stub says: the law above is off
    keeps_graph: tuple[str, ...] = ()
    # learner module -> list of coach.runtime.graphs.GraphView: `make graph` prints them and
    # `make plots` draws them
    graph: Callable[[object], list] | None = None
    # (learner module, PNG path) -> None: a picture of its own for `make plots`
    picture: Callable[[object, object], None] | None = None
    # the technical claims the stub, this unit and the test messages rely on, each one run
    facts: tuple[Fact, ...] = ()

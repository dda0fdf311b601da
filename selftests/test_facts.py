"""Every fact a teaching unit states about torch still holds on the installed torch.

A unit's `facts` (coach/core/lesson.py) are the claims its stub, hints, quiz explanations and test
messages rely on, each with a snippet that shows it. The snippets run here through the same
executor as `make predict`'s questions (coach.learner.predict.run_code), and must give the outcome
the fact states: a torch release that changes one fails here, naming the unit and the claim.
"""

from __future__ import annotations

import math

import pytest

from coach.core import registry
from coach.core.lesson import Fact
from coach.learner import predict

EVERY_FACT = [(kata, fact) for kata in registry.KATAS for fact in kata.lesson.facts]


def broken(fact: Fact, outcome: predict.Outcome) -> str | None:
    """Why `outcome` is not what `fact` states, or None when it is."""
    expected = fact.outcome
    if isinstance(expected, type) and issubclass(expected, BaseException):
        if not isinstance(outcome.error, expected):
            got = predict.describe(outcome)
            return f"expected it to raise {expected.__name__}, but it gave {got}"
        if fact.message not in str(outcome.error):
            return f"it raised, but without {fact.message!r}: {outcome.error}"
        return None
    if outcome.error is not None:
        return (
            f"expected {expected!r}, but it raised {type(outcome.error).__name__}: "
            + str(outcome.error).strip().splitlines()[0]
        )
    value = outcome.value
    if isinstance(expected, float) and isinstance(value, int | float):
        if not isinstance(value, bool) and math.isclose(
            value, expected, rel_tol=fact.tolerance, abs_tol=fact.tolerance
        ):
            return None
    elif type(value) is type(expected) and value == expected:
        return None
    return f"expected {expected!r}, but `result` was {value!r}"


def test_facts_are_well_formed():
    """A fact's code sets `result` or raises; a message goes only with an exception."""
    for kata, fact in EVERY_FACT:
        where = f"{kata.lesson_file}: {fact.statement!r}"
        assert fact.statement.strip() and fact.code.strip(), where
        raises = isinstance(fact.outcome, type) and issubclass(fact.outcome, BaseException)
        assert raises or "result" in fact.code, f"{where}: the code never sets `result`"
        assert raises or not fact.message, f"{where}: `message` is for an exception only"


def test_there_are_facts_to_run():
    assert EVERY_FACT, "no unit states a fact: the test below would pass without running any"


@pytest.mark.parametrize(
    ("kata", "fact"),
    EVERY_FACT,
    ids=[f"{kata.name}-{i}" for kata in registry.KATAS for i, _ in enumerate(kata.lesson.facts)],
)
def test_each_fact_holds_on_the_installed_torch(kata, fact):
    outcome = predict.run_code(fact.code, f"{kata.name} fact")
    why = broken(fact, outcome)
    assert why is None, (
        f"{kata.lesson_file} states: {fact.statement!r}\nbut on torch {_torch_version()} its "
        f"code no longer shows it: {why}.\nCorrect the sentence (and the fact) where it is "
        f"used."
    )


def test_a_fact_that_no_longer_holds_is_caught():
    """The check itself: a wrong value, a wrong type, a missing error, a reworded error."""
    wrong = [
        Fact("one plus one", "result = 1 + 1", outcome=3),
        Fact("a float", "result = 2.0", outcome=2.5),
        Fact("a bool is no number", "result = True", outcome=1.0),
        Fact("it raises", "result = None", outcome=ValueError),
        Fact("its text", "raise ValueError('other')", outcome=ValueError, message="this"),
        Fact("no error", "raise ValueError('x')", outcome=None),
    ]
    for fact in wrong:
        assert broken(fact, predict.run_code(fact.code, "wrong")) is not None, fact.statement
    right = Fact("its text", "raise ValueError('this one')", outcome=ValueError, message="this")
    assert broken(right, predict.run_code(right.code, "right")) is None


def _torch_version() -> str:
    import torch

    return torch.__version__

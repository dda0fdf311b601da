"""The small pieces every report is made of: kata lookup, summaries, plain-words errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from coach.core import registry
from coach.learner import solution
from coach.runtime import explain, summary
from coach.runtime.testing import expect_float, fmt


@pytest.mark.parametrize("typed", ["3", "03", "k03", "K3", "k03_accumulation"])
def test_a_kata_is_found_however_the_learner_types_it(typed):
    assert registry.find(typed).name == "k03_accumulation"


def test_an_unknown_kata_lists_the_known_ones():
    with pytest.raises(LookupError, match="Known katas: 1 \\(k01_polynomial\\)"):
        registry.find("42")


def outcome(kata, result, message="", line=1):
    return (f"tests/test_{kata}.py::test_{line}", (kata, result, message, line))


def test_the_summary_names_the_first_red_kata_and_its_first_failure_in_file_order():
    progress = summary.Progress.from_outcomes(
        [
            outcome("k01_polynomial", "passed"),
            outcome("k02_backprop", "failed", "second in the file", line=20),
            outcome("k02_backprop", "failed", "first in the file\nwhy it failed", line=10),
            outcome("k03_accumulation", "failed", "later kata", line=5),
        ]
    )
    lines = summary.render(progress, impl=Path("katas"))
    assert any("green" in line and "k01_polynomial" in line for line in lines)
    assert "1/3 katas green" in "\n".join(lines)
    text = "\n".join(summary.next_step(progress, Path("katas")))
    assert "Next: k02_backprop" in text and "make test K=2" in text
    assert "first in the file" in text and "why it failed" in text
    assert "second in the file" not in text


def test_all_green_says_so():
    progress = summary.Progress.from_outcomes(
        [outcome(kata.name, "passed") for kata in registry.KATAS]
    )
    assert summary.next_step(progress, Path("katas")) == list(summary.ALL_GREEN)


def test_torch_errors_learners_meet_get_plain_words():
    x = torch.tensor(1.0, requires_grad=True)
    with pytest.raises(RuntimeError) as in_place:
        x -= 1
    assert "torch.no_grad()" in explain.explain(in_place.value)
    with pytest.raises(RuntimeError) as integer:
        torch.tensor(3, requires_grad=True)
    assert "float(" in explain.explain(integer.value)
    y = x * 2
    y.backward()
    with pytest.raises(RuntimeError) as twice:
        y.backward()
    assert "frees the graph" in explain.explain(twice.value)
    with pytest.raises(RuntimeError) as no_path:
        x.detach().backward()
    assert "requires_grad" in explain.explain(no_path.value)
    with pytest.raises(AttributeError) as none_grad:
        torch.tensor(1.0, requires_grad=True).grad.zero_()
    assert "is None until a backward()" in explain.explain(none_grad.value)
    assert explain.explain(ValueError("something else")) is None


def test_numbers_read_the_way_a_learner_writes_them():
    assert [fmt(6.0), fmt(-2.5), fmt(0.123456789), fmt(3)] == ["6.0", "-2.5", "0.1234568", "3"]


@pytest.mark.parametrize(
    ("value", "hint"),
    [(torch.tensor(1.0), ".item()"), (3, "float(...)"), (None, "is None until a backward()")],
)
def test_a_value_that_is_not_a_float_fails_with_the_fix(value, hint):
    with pytest.raises(pytest.fail.Exception, match=hint.replace("(", "\\(").replace(")", "\\)")):
        expect_float(value, "f(1.0)", "the answer")


def test_the_solution_view_pairs_functions_and_leaves_docstrings_out():
    mine = 'def f(x):\n    """Task text."""\n    return x + 1\n\n\ndef g():\n    pass\n'
    reference = "def f(x):\n    return 1 + x\n"
    narrow = "\n".join(solution.compare(mine, reference, width=80))
    assert "Task text" not in narrow
    assert "return x + 1" in narrow and "return 1 + x" in narrow
    assert "def g" not in narrow  # only what the reference has is compared
    wide = solution.compare(mine, reference, width=160)
    assert any("return x + 1" in line and "return 1 + x" in line for line in wide)


def test_a_message_repeated_with_other_numbers_is_shown_once():
    """The same diagnosis for other random inputs (a count, a list of values) is one cause:
    one report, and the other tests named under it; another diagnosis keeps its own."""
    from coach.core import registry
    from coach.runtime import summary

    kata = registry.KATAS[0]
    test = f"{kata.test_file}::test_"
    live = "The list holds the live x.grad {n} times: store x.grad.item().\nIt reads {values}."
    outcomes = [
        (f"{test}a", (kata.name, "failed", live.format(n=2, values="[12.0, 12.0]"), 1)),
        (f"{test}b", (kata.name, "failed", live.format(n=3, values="[-1.5, -1.5, -1.5]"), 2)),
        (f"{test}c", (kata.name, "failed", "It returned tensor(6.), expected a float.", 3)),
    ]
    report = "\n".join(summary.failure_report(summary.Progress.from_outcomes(outcomes)))
    assert report.count("The list holds the live x.grad") == 1, report
    assert "(and 1 more test, same cause: test_b)" in report, report
    assert "It returned tensor(6.), expected a float." in report, report

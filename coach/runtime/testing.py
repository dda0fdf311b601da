"""What the kata tests share: loading the kata, watching autograd, checking returned values.

Diagnosis is data. A test states the law (`check_value(got, expected, ...)`) and lists the
known wrong answers beside it: `Wrong(value, why)` is what a learner with one particular
misunderstanding returns, computed independently in the test, and the sentence that names
it. When the learner's answer is off, the message names the first wrong answer it matches.

Two laws hold for every kata without a test asking: a kata function leaves its arguments as
the caller passed them (coach/runtime/loader.py checks every call), and a test that a kata function
fails is charged to that function (so progress is told function by function).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import pytest
import torch
from torch.autograd.variable import Variable

from coach.runtime.fmt import fmt
from coach.runtime.graphs import leaves_below
from coach.runtime.loader import load_kata

__all__ = [
    "Wrong",
    "backward_passes",
    "check_shape_like",
    "check_value",
    "close",
    "expect_float",
    "fmt",
    "load_kata",
    "matches",
    "require",
]


class _CountingEngine:
    """Wraps the autograd engine: counts its backward passes and notes the leaves each reaches."""

    def __init__(self, engine):
        self._engine = engine
        self.passes = 0
        self.leaves: list[list[torch.Tensor]] = []  # per pass, the leaves its graph ends in

    def run_backward(self, outputs, *args, **kwargs):
        self.passes += 1
        self.leaves.append(_leaves_of(outputs))
        return self._engine.run_backward(outputs, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._engine, name)


def _leaves_of(outputs) -> list[torch.Tensor]:
    """The leaf tensors (AccumulateGrad nodes) that a backward pass from `outputs` reaches."""
    tensors = [t for t in outputs if isinstance(t, torch.Tensor)]
    below = [leaf for t in tensors if t.grad_fn is not None for leaf in leaves_below(t.grad_fn)]
    return below + [t for t in tensors if t.grad_fn is None]


@contextlib.contextmanager
def backward_passes():
    """Count how often autograd's engine runs a backward pass inside the block.

    Every route into autograd ends in the engine: `y.backward()`, `torch.autograd.backward`,
    `torch.autograd.grad` (however it was imported) and torch.func all do. So the count says
    whether gradients really came from autograd, and how many times it was asked.
    `engine.leaves[k]` holds the leaf tensors the k-th pass reached (the same tensor objects
    the learner made), so a test can tell one x cleared between passes from a new x each time.
    """
    engine = Variable._execution_engine
    counter = _CountingEngine(engine)
    Variable._execution_engine = counter
    try:
        yield counter
    finally:
        Variable._execution_engine = engine


def expect_float(value, call: str, what: str):
    """Fail unless `value` is a plain Python float; return it."""
    if not isinstance(value, float):
        kind = type(value).__name__
        if value is None:
            hint = (
                " A .grad is None until a backward() has reached the tensor: read it after"
                " backward()."
            )
        elif kind in {"Tensor", "Parameter"}:
            hint = " Call .item() on a one-element tensor to get its value as a float."
        elif isinstance(value, int) and not isinstance(value, bool):
            hint = " Wrap it in float(...) so callers get a float whatever they pass in."
        else:
            hint = ""
        pytest.fail(
            f"{call} returned {value!r} ({kind}) for {what}; expected a plain Python float.{hint}",
            pytrace=False,
        )
    return value


def close(actual: float, expected: float, rel: float = 1e-5, abs_: float = 1e-5) -> bool:
    """Equal up to float32 rounding: the katas compute in float32, the tests in float64."""
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_)


@dataclass(frozen=True)
class Wrong:
    """A known wrong answer: what a learner with one misunderstanding gets, and why.

    `value` is that learner's result, computed independently in the test (a float, None, a
    bool, a tensor, a list or tuple of those), or a predicate `got -> bool` for anything
    that is easier to recognise than to compute. `why` names the misunderstanding and says
    what to do instead.
    """

    value: object
    why: str


def matches(got, expected, rel: float = 1e-5, abs_: float = 1e-5) -> bool:
    """Whether `got` is `expected`: None only as None, numbers and tensors up to rounding."""
    if expected is None or got is None:
        return got is None and expected is None
    if isinstance(expected, bool) or isinstance(got, bool):
        return isinstance(got, bool) and isinstance(expected, bool) and got == expected
    if isinstance(expected, torch.Tensor) or isinstance(got, torch.Tensor):
        if not (isinstance(got, torch.Tensor) and isinstance(expected, torch.Tensor)):
            return False
        if got.shape != expected.shape:
            return False
        a, b = got.detach().to(torch.float64), expected.detach().to(torch.float64)
        return bool(torch.allclose(a, b, rtol=rel, atol=abs_, equal_nan=True))
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(got, (list, tuple))
            and len(got) == len(expected)
            and all(matches(g, e, rel, abs_) for g, e in zip(got, expected))
        )
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        if math.isnan(expected) or math.isnan(got):
            return math.isnan(expected) and math.isnan(got)
        return math.isclose(got, expected, rel_tol=rel, abs_tol=abs_)
    return got == expected


def _is(got, wrong: Wrong, rel: float, abs_: float) -> bool:
    if callable(wrong.value) and not isinstance(wrong.value, torch.Tensor):
        try:
            return bool(wrong.value(got))
        except Exception:
            return False
    return matches(got, wrong.value, rel, abs_)


def check_value(
    got,
    expected,
    *,
    call: str,
    what: str,
    wrong: tuple[Wrong, ...] | list[Wrong] = (),
    rel: float = 1e-5,
    abs_: float = 1e-5,
) -> None:
    """The law `what == expected`, with the misunderstandings that break it named.

    Fails with "Called {call}. {what} is {got}, expected {expected}: {why}", where `why`
    belongs to the first of `wrong` that `got` matches (and is left out when none does).
    """
    if matches(got, expected, rel, abs_):
        return
    if what.startswith(("the ", "a ", "an ")):  # it starts a sentence
        what = what[0].upper() + what[1:]
    shown_got, shown_expected = fmt(got), fmt(expected)
    if shown_got == shown_expected:  # too big, or too close, to tell apart as printed
        shown_got += _first_difference(got, expected, rel, abs_)
    message = f"Called {call}. {what} is {shown_got}, expected {shown_expected}"
    why = next((w.why for w in wrong if _is(got, w, rel, abs_)), None)
    pytest.fail(f"{message}: {why}" if why else f"{message}.", pytrace=False)


def _first_difference(got, expected, rel: float = 1e-5, abs_: float = 1e-5) -> str:
    """' (at [1, 0]: 0.25 where 0.5 was expected)' for two same-shaped tensors, else ''."""
    if not (isinstance(got, torch.Tensor) and isinstance(expected, torch.Tensor)):
        return ""
    if got.shape != expected.shape:
        return ""
    a, b = got.detach().double(), expected.detach().double()
    off = ~torch.isclose(a, b, rtol=rel, atol=abs_, equal_nan=True)
    if not off.any():
        return ""
    index = [int(i) for i in off.nonzero()[0]]
    here = tuple(index)
    return (
        f" whose values differ (at {index}: {a[here].item()!r} ({got.dtype}) where "
        f"{b[here].item()!r} was expected, to a relative {rel:g})"
    )


def check_shape_like(result, like: torch.Tensor, *, call: str, what: str = "the result") -> None:
    """The law of an elementwise or any-shape function: the input's shape and dtype back.

    A 0-d input gives a 0-d result and an (n,) input an (n,) result, in the input's dtype.
    """
    if not isinstance(result, torch.Tensor):
        why = " (a function with no `return` gives None)" if result is None else ""
        pytest.fail(
            f"Called {call}. It returned {fmt(result)}, expected a tensor{why}.",
            pytrace=False,
        )
    if result.shape != like.shape:
        grew = result.dim() > like.dim()
        why = (
            "a broadcast against a tensor of another shape (a [1] or a (1, n) constant, or a "
            "torch.tensor([...]) wrapper) changed it. Work on the input itself, elementwise."
            if grew
            else "something reduced it (a sum, mean, item() or indexing). Keep every element."
        )
        pytest.fail(
            f"Called {call} with an input of shape {tuple(like.shape)}. {what} has shape "
            f"{tuple(result.shape)}, expected {tuple(like.shape)}: {why}",
            pytrace=False,
        )
    if result.dtype != like.dtype:
        pytest.fail(
            f"Called {call} with a {like.dtype} input. {what} is {result.dtype}, expected "
            f"{like.dtype}: a constant built with another dtype (torch.tensor(..., "
            f"dtype=...), .float(), .double()) changed it. Keep the input's dtype.",
            pytrace=False,
        )


def require(condition: bool, message: str) -> None:
    """Fail with `message` alone (no assertion introspection) unless `condition` holds."""
    if not condition:
        pytest.fail(message, pytrace=False)

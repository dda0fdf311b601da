"""What the kata tests share: loading the kata, watching autograd, checking returned values."""

from __future__ import annotations

import contextlib
import math

import pytest
from torch.autograd.variable import Variable

from coach.loader import load_kata

__all__ = ["backward_passes", "close", "expect_float", "fmt", "load_kata", "require"]


class _CountingEngine:
    """Wraps the autograd engine and counts its backward passes."""

    def __init__(self, engine):
        self._engine = engine
        self.passes = 0

    def run_backward(self, *args, **kwargs):
        self.passes += 1
        return self._engine.run_backward(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._engine, name)


@contextlib.contextmanager
def backward_passes():
    """Count how often autograd's engine runs a backward pass inside the block.

    Every route into autograd ends in the engine: `y.backward()`, `torch.autograd.backward`,
    `torch.autograd.grad` (however it was imported) and torch.func all do. So the count says
    whether gradients really came from autograd, and how many times it was asked.
    """
    engine = Variable._execution_engine
    counter = _CountingEngine(engine)
    Variable._execution_engine = counter
    try:
        yield counter
    finally:
        Variable._execution_engine = engine


def fmt(value) -> str:
    """A number as a learner would write it: 6.0, -2.5, 0.1234568."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        text = f"{value:.7g}"
        return text if any(c in text for c in ".e") else text + ".0"
    return repr(value)


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


def require(condition: bool, message: str) -> None:
    """Fail with `message` alone (no assertion introspection) unless `condition` holds."""
    if not condition:
        pytest.fail(message, pytrace=False)

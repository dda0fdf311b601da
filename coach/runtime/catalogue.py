"""Functions for a test to differentiate, each with its derivatives in closed form.

A kata that differentiates "some f" (a VJP, a Jacobian, a forward pass whose graph is
walked twice, a second derivative) takes its f from here instead of defining its own, so
every kata checks against the same exact answers. Each `Function` is callable as the kata
calls it, prints as its source (what a message shows the learner), and knows its Jacobian
in float64, computed without autograd: an expected value never comes from the code under
test.

Elementwise functions (`ELEMENTWISE`) also give their first and second derivatives as
tensor functions; mixing functions (`MIXING`: an output depends on other inputs, so J is
not diagonal) give their whole Jacobian. `matrix_times_tanh(A)` is a non-square one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from coach.runtime.fmt import fmt

Tensor = torch.Tensor


@dataclass(frozen=True, eq=False)
class Function:
    """f, with its exact Jacobian; for an elementwise f, also f' and f''.

    `jacobian(x)` is the closed form for a 1-D float64 x; `mixes` says whether an output
    depends on more than its own input (J is not diagonal); `derivative` and `second` are
    f' and f'' elementwise (None for a mixing f).
    """

    source: str
    f: Callable[[Tensor], Tensor]
    jacobian: Callable[[Tensor], Tensor]
    mixes: bool
    derivative: Callable[[Tensor], Tensor] | None = None
    second: Callable[[Tensor], Tensor] | None = None

    def __call__(self, x):
        return self.f(x)

    def __repr__(self) -> str:
        return self.source

    def exact(self, x: Tensor) -> Tensor:
        """J at x, in float64."""
        return self.jacobian(x.detach().to(torch.float64))


def elementwise(source: str, f, derivative, second=None) -> Function:
    """An f applied to each element alone: J = diag(f'(x))."""
    return Function(source, f, lambda x: torch.diag(derivative(x)), False, derivative, second)


def _softmax_jacobian(x: Tensor) -> Tensor:
    s = torch.softmax(x, 0)
    return torch.diag(s) - torch.outer(s, s)


SIN = elementwise("torch.sin", torch.sin, torch.cos, lambda x: -torch.sin(x))
SQUARE = elementwise("lambda x: x**2", lambda x: x**2, lambda x: 2 * x, lambda x: 2 + 0 * x)
X_SIN_X = elementwise(
    "lambda x: x * torch.sin(x)",
    lambda x: x * torch.sin(x),
    lambda x: torch.sin(x) + x * torch.cos(x),
    lambda x: 2 * torch.cos(x) - x * torch.sin(x),
)
CUBIC = elementwise(
    "lambda x: x**3 - 2 * x", lambda x: x**3 - 2 * x, lambda x: 3 * x**2 - 2, lambda x: 6 * x
)
EXP_HALF_TIMES_X = elementwise(
    "lambda x: torch.exp(x / 2) * x",
    lambda x: torch.exp(x / 2) * x,
    lambda x: torch.exp(x / 2) * (1 + x / 2),
    lambda x: torch.exp(x / 2) * (1 + x / 4),
)
CUMSUM = Function(
    "lambda x: torch.cumsum(x, 0)",
    lambda x: torch.cumsum(x, 0),
    lambda x: torch.tril(torch.ones(len(x), len(x), dtype=x.dtype)),
    mixes=True,
)
SOFTMAX = Function(
    "lambda x: torch.softmax(x, 0)", lambda x: torch.softmax(x, 0), _softmax_jacobian, mixes=True
)
# J[i, j] = (i == j) * sum(x) + x[i]
TIMES_SUM = Function(
    "lambda x: x * x.sum()",
    lambda x: x * x.sum(),
    lambda x: torch.eye(len(x), dtype=x.dtype) * x.sum() + x[:, None],
    mixes=True,
)

ELEMENTWISE = (SIN, SQUARE, X_SIN_X, CUBIC, EXP_HALF_TIMES_X)
MIXING = (CUMSUM, SOFTMAX, TIMES_SUM)


def matrix_times_tanh(A: Tensor) -> Function:
    """x -> A @ tanh(x): an (m, n) Jacobian, A scaled column by column by 1 - tanh(x)**2."""
    A64 = A.to(torch.float64)
    return Function(
        f"lambda x: A @ torch.tanh(x), A = {fmt(A)}",
        lambda x: A.to(x.dtype) @ torch.tanh(x),
        lambda x: A64 * (1 - torch.tanh(x) ** 2)[None, :],
        mixes=True,
    )

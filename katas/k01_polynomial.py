"""Kata 1: the gradient of a polynomial.

Autograd records every operation on a tensor created with `requires_grad=True`. Calling
`.backward()` on a result walks that record backwards, applies the chain rule at each step,
and leaves d(result)/d(input) in the input's `.grad`.

You will build y = x**3 + 2*x**2 - 5*x + 1 and let autograd differentiate it. By hand,
dy/dx = 3*x**2 + 4*x - 5, so at x = 3 you can check autograd against your own algebra.

Predict before you run: at x = 3, what are y and x.grad?
"""

import torch
from torch import Tensor


def polynomial(x: Tensor) -> Tensor:
    """Return y = x**3 + 2*x**2 - 5*x + 1, elementwise.

    Use tensor arithmetic (`**`, `*`, `+`, `-`) so autograd can record each step: the result
    must keep its link to `x` (a `grad_fn`) when `x` requires grad. Works for a tensor of
    any shape.
    """
    # TODO: one line of tensor arithmetic.
    raise NotImplementedError("write the polynomial with tensor operations on x")


def value_and_grad(x0: float) -> tuple[float, float]:
    """Return (y, dy/dx) at x = x0, both as plain Python floats.

    Get dy/dx from autograd, not from the formula above: make x a tensor that requires
    grad, compute y with `polynomial`, call `y.backward()` (or `torch.autograd.grad`) and
    read the gradient. `.item()` turns a one-element tensor into a float.

    x0 may arrive as an int (value_and_grad(3)). Only floating-point (and complex) tensors
    can require grad, so build x from float(x0).

    Example: value_and_grad(3.0) == (31.0, 34.0)
    """
    # TODO: create x, compute y, backpropagate, return (y, x.grad) as floats.
    raise NotImplementedError("return p(x0) and dp/dx at x0 as floats, dp/dx from autograd")

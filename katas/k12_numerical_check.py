"""Kata 12: checking a gradient numerically.

How do you know a gradient is right, say the backward of a custom layer you wrote? Compare it
with the slope you can measure without any calculus: nudge the input a little and watch the
output move. This is what `torch.autograd.gradcheck` does, and here you write it yourself.

The central difference measures the slope at x with one step to each side:

    f'(x) ~ (f(x + eps) - f(x - eps)) / (2 * eps)

Its error shrinks like eps**2. The one-sided difference (f(x + eps) - f(x)) / eps is off by
about eps * f''(x) / 2, which shrinks only like eps. So why not take a tiny eps? Because every
number is rounded to the digits its dtype keeps, x + eps and x - eps included. With a tiny
eps, f(x + eps) and f(x - eps) agree in almost every digit, and their difference keeps only
the few digits where they differ: round-off grows like (machine precision) / eps. float32
keeps about 7 significant digits: 1 + 1e-6 and 1 - 1e-6 are not float32 numbers and round
to 1.00000095 and 0.99999899, so the step really taken is 1.967e-6, not the 2e-6 the formula
divides by, and the slope of x**3 at 1 comes out as 2.95 instead of 3. float64 keeps about 16
digits: there eps = 1e-6 gets it right to better than 1e-10. That is why gradcheck wants
float64 inputs and uses eps = 1e-6.

For a tensor x, the gradient has one entry per element: move one element at a time, both
ways, and leave the others where they are.

Two numbers never agree exactly, so "agree" needs a tolerance, and a purely absolute one
fails twice. At large magnitudes it rejects correct gradients: for f(x) = 1e5 * x**3 at
x = 1.3 the gradient is 507000, and autograd and the central difference differ by 4.6e-5 from
round-off alone. At small magnitudes it passes anything: 1e-7 and 2e-7 are 100% apart yet
within 1e-5 of each other. gradcheck uses torch.allclose's rule, a relative tolerance plus
a small absolute floor:

    |analytic - numerical| <= atol + rtol * |numerical|     (rtol = 1e-3, atol = 1e-5)

Predict before you run: take f(x) = x**3 at x = 1, where f'(1) = 3. What does the one-sided
difference give with eps = 1e-3? The central difference? And the central difference in
float32 with eps = 1e-6?
"""

import torch
from torch import Tensor


def numerical_grad(f, x: Tensor, eps: float = 1e-6) -> Tensor:
    """The gradient of f at x by central differences, in float64, one element at a time.

    f takes a tensor shaped like x and returns a one-element tensor (a scalar). Return a
    float64 tensor of x's shape (any shape, 0-d included) whose element i is

        (f(x with element i raised by eps) - f(x with element i lowered by eps)) / (2 * eps)

    - Compute in float64 whatever x's dtype is: make a float64 copy of x and perturb the copy.
    - Leave the caller's x as it was. Careful: x.double() and x.to(torch.float64) return x
      itself when x is float64 already, and x.detach() shares x's memory, so changing
      their elements in place changes x. `.clone()` makes a real copy.
    - Put each element back before you move the next one: only one element moves at a time.
    - x may be non-contiguous (a transposed x.T, a slice). A clone keeps that layout, so
      .view(-1) of it raises, and .reshape(-1) of it is a copy whose edits never reach the
      point you evaluate f at. x.detach().clone(memory_format=torch.contiguous_format) is
      contiguous.
    """
    # TODO: a float64 copy; for each element: +eps, f, -eps, f, restore; the slope into grad.
    raise NotImplementedError("return f's gradient at x by central differences, in float64")


def gradients_match(
    analytic: Tensor, numerical: Tensor, rtol: float = 1e-3, atol: float = 1e-5
) -> bool:
    """Whether two gradients of the same shape agree, by gradcheck's rule.

    True when EVERY element satisfies |analytic - numerical| <= atol + rtol * |numerical|,
    else False. Return a Python bool.

    This is torch.allclose(analytic, numerical, rtol, atol) exactly, at its edges too: an
    element where both are the same infinity agrees (inf - inf is nan, so test equality
    first); opposite infinities and a nan never agree. The two may differ in dtype (a
    float32 analytic, a float64 numerical): compare in float64.

    rtol scales with the gradient's size, so the check is as strict at 10000 as at 1;
    atol is a floor for gradients near zero, where a relative error means nothing (a true 0
    comes out of central differences as something like 1e-11).
    """
    # TODO: compare element by element, relative tolerance plus absolute floor.
    raise NotImplementedError("return True when every element agrees within the tolerances")


def check_gradient(f, x: Tensor, eps: float = 1e-6, rtol: float = 1e-3, atol: float = 1e-5) -> bool:
    """A small gradcheck of your own: does autograd's gradient of f at x match the numbers?

    1. The analytic gradient: f at a float64 copy of x that requires grad, then
       torch.autograd.grad with respect to that copy. This runs whatever backward f's
       operations have, including a custom one that may be wrong: that is what is being
       checked. f may use leaves of its own (a model's weights), whose .grad must stay as
       it was: backward() would write into it, torch.autograd.grad does not.
    2. The numerical gradient: numerical_grad(f, x, eps).
    3. gradients_match(analytic, numerical, rtol, atol).

    Leave the caller's x as it was: it must not start requiring grad or get a .grad.
    """
    # TODO: analytic gradient on a float64 copy, numerical gradient, compare.
    raise NotImplementedError("return whether autograd's gradient of f at x is right")

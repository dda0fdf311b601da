"""Kata 17: gradient clipping.

One bad batch can produce a huge gradient, and one huge step can throw a model's weights far
from anywhere useful. Clipping caps the step. Two ways are common:

- Clipping by the global norm, what `torch.nn.utils.clip_grad_norm_` does. Put every
  parameter's gradient together as one long vector and take its length (its L2 norm). If that
  total norm is above `max_norm`, multiply every gradient by the same factor
  max_norm / total_norm, so that the whole vector has length max_norm. The direction of the
  step is kept; only its length shrinks. Below the limit nothing changes: clipping never makes
  a gradient bigger.
- Clipping by value, what `torch.nn.utils.clip_grad_value_` does: clamp every element into
  [-clip_value, clip_value]. Simpler, but the large elements shrink while the small ones stay,
  so the step points in another direction.

Clipping works on the gradients, so it belongs between backward() (which writes them) and the
update (which uses them).

Predict before you run. Two parameters have the gradients [3, 4] and [12]. Clip by the global
norm with max_norm = 6.5. What is the total norm, and what are the two gradients afterwards?
And if each parameter were clipped by its own norm instead?
"""

import math
from collections.abc import Callable

import torch
from torch import Tensor


def clip_grad_norm(parameters: list[Tensor], max_norm: float) -> float:
    """Clip the gradients of `parameters` in place by their global norm; return that norm.

    The total norm is the L2 norm of all gradients together: the square root of the sum of
    every element squared, over every parameter. Parameters whose .grad is None are skipped
    (when none has a gradient, the total norm is 0.0). If the total norm is above max_norm,
    multiply every gradient in place by max_norm / total_norm (torch adds 1e-6 to the
    denominator; either is fine). Otherwise leave the gradients exactly as they are: a total
    norm equal to max_norm is not above it.

    Return the total norm measured BEFORE clipping, as a float: that is the number worth
    logging (how large did the gradients get?). clip_grad_norm_ returns the same number, as a
    0-d tensor; float() of it is what you return.

    If the total norm is inf or nan, raise RuntimeError and leave the gradients untouched (that
    is clip_grad_norm_(..., error_if_nonfinite=True)). Scaling by max_norm / inf would set every
    gradient to 0 and an infinite one to nan, and training would go on as if nothing happened.

    Write it by hand; the tests compare it with torch.nn.utils.clip_grad_norm_.
    """
    # TODO: the total norm over all .grad; raise if not finite; scale down only above max_norm.
    raise NotImplementedError("clip the gradients in place by their global norm; return that norm")


def clip_grad_value(parameters: list[Tensor], clip_value: float) -> None:
    """Clip the gradients of `parameters` in place by value; return nothing.

    Clamp every element of every .grad into [-clip_value, clip_value]; skip parameters whose
    .grad is None. This is what torch.nn.utils.clip_grad_value_ does. The gradients must change
    in place: the optimizer reads p.grad, not a copy you made.

    Predict first: the gradient [3, 4] clipped by value at 2 becomes what? Does it still point
    the same way?
    """
    # TODO: clamp each existing .grad in place.
    raise NotImplementedError("clamp every element of each .grad, in place")


def clipped_sgd_step(
    parameters: list[Tensor], loss_fn: Callable[[], Tensor], max_norm: float, lr: float
) -> float:
    """One training step with clipping; the parameters are updated in place.

    `loss_fn()` builds the loss from the parameters. Clear the old gradients, compute the new
    ones with backward(), clip them with your clip_grad_norm (or torch's clip_grad_norm_), then
    update each parameter in place under torch.no_grad(): p.sub_(lr * p.grad) (or
    p -= lr * p.grad). Return the total norm before clipping, as a float. A parameter the
    loss does not use has no .grad after backward(): skip it, as torch's optimizers do.

    Predict first: what does clipping do if it runs before backward()?
    """
    # TODO: clear, backward, clip, update; return the norm before clipping.
    raise NotImplementedError("take one clipped SGD step in place; return the norm before clipping")

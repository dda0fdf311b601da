"""Kata 18: NaN gradients from values nobody used.

`torch.where(condition, a, b)` picks from a where the condition holds and from b elsewhere. But
a and b are both computed, everywhere, before where picks. Mask log(x) with where and log is
still taken of every x, the zeros and negatives included: -inf and nan that nobody uses.

The values you keep are fine. The gradient is not. In backward, where sends the incoming
gradient to the branch it picked and a gradient of 0 to the other one, and the untaken branch
still runs its own backward on that 0. log's backward divides its incoming gradient by x; at
x = 0 that is 0 / 0, which is nan. (0 * inf is nan too: a zero gradient does not cancel an
infinite derivative.) The nan flows down into x.grad; an update with it makes that weight nan,
and from then on every output computed from that weight is nan too.

The fix is the "double where": first replace the inputs the branch must not see by a harmless
value, then compute, then pick:

    safe_x = torch.where(x > 0, x, 1.0)                 # log never sees x <= 0
    y = torch.where(x > 0, torch.log(safe_x), 0.0)

Now the untaken branch computes log(1), and its backward divides the 0 by 1: a clean 0.

When a nan shows up somewhere in a big model, `torch.autograd.detect_anomaly()` finds the
backward function that made it.

Predict before you run. x = torch.tensor([0.0, 2.0], requires_grad=True) and
y = torch.where(x > 0, torch.log(x), 0.0). What is y? After y.sum().backward(), what is x.grad?
"""

import re
from collections.abc import Callable

import torch
from torch import Tensor


def safe_log(x: Tensor) -> Tensor:
    """log(x) where x > 0 and 0 where x <= 0, elementwise, with a finite gradient everywhere.

    The gradient must be 1/x where x > 0 (however small x is) and 0 elsewhere: never nan, not
    even at x = 0. The result has x's shape and dtype (a 0-d x gives a 0-d result).

    Predict first: why does torch.where(x > 0, torch.log(x), 0.0) have the right values but
    not the right gradient? And what does torch.log(x) * (x > 0) give at x = 0?
    """
    # TODO: log where x > 0, 0 elsewhere, and no nan in the gradient anywhere.
    raise NotImplementedError("return log(x) where x > 0 and 0 elsewhere, with a finite gradient")


def safe_norm(v: Tensor) -> Tensor:
    """The L2 norm of v over its last dimension, with gradient 0 (not nan) where v is all zero.

    The norm is sqrt(sum of squares). At v = 0 its value is exactly 0, but sqrt's derivative
    there is 1 / (2 * sqrt(0)) = inf, and the chain rule then multiplies that inf by 2 * v = 0:
    nan. Away from 0 the gradient is v / norm; at v = 0 return the gradient 0. A v of shape
    (n, d) gives n norms; a v of shape (d,) gives a 0-d norm; the dtype is v's. A row
    holding nan has the norm nan, as in vector_norm: a nan must not be hidden as a 0.

    Build it from sqrt and sum yourself. (torch.linalg.vector_norm treats 0 specially and gives
    the gradient 0 there: the tests compare with it.)

    Predict first: which tensor must the first where make safe, v or its sum of squares?
    """
    # TODO: the norm, with a gradient of 0 (not nan) where v is all zero.
    raise NotImplementedError("return the L2 norm over the last dim, with gradient 0 at a zero v")


def nan_source(loss_fn: Callable[[Tensor], Tensor], x: Tensor) -> str | None:
    """The name of the backward function that first produced a nan, or None if none did.

    Make your own leaf from x (x.detach().clone().requires_grad_(): the caller's x must stay as
    it is), compute loss_fn(leaf) and call backward() inside
    `with torch.autograd.detect_anomaly():`. In that mode autograd checks what every backward
    function returns, and the first nan makes backward() raise a RuntimeError such as
    "Function 'LogBackward0' returned nan values in its 0th output." Catch it and return the
    name between the quotes, "LogBackward0". Return None when backward() finishes cleanly.
    Any other error, from loss_fn or from backward(), is no answer: let it through.

    Anomaly mode slows everything down and warns that it is on: use it while hunting a nan,
    then take it out.

    Predict first: for loss_fn = lambda x: (x**2).sum().sqrt() at x = 0, which function is
    named: SqrtBackward0, PowBackward0 or SumBackward0?
    """
    # TODO: own leaf; backward() under detect_anomaly; the name from the error, or None.
    raise NotImplementedError("return the backward function that first made a nan, or None")

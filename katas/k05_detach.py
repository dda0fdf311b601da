"""Kata 5: cutting the graph with detach().

Autograd remembers how every tensor that requires grad was made, so backward() can walk from a
result back to its inputs. Sometimes you want a value in the forward pass but not its history in
the backward pass. `t.detach()` gives exactly that: a new tensor that holds the same numbers (it
even shares t's memory, nothing is copied) but has no grad_fn and does not require grad. For
autograd it is a fresh constant, so the chain rule stops there.

Where that is useful:
- frozen layers: a pretrained part of a network keeps its weights while you train the rest;
- reinforcement learning: the target network's estimate is a fixed goal to move towards, so no
  gradient should flow into it;
- stop-gradient tricks: compute one thing in the forward pass and pretend, in the backward pass,
  it was something else (you will build the straight-through estimator below).

You will build the chain a -> b = 3a -> c = b**2 twice: once as is and once with b detached.
Without detach, dc/da = dc/db * db/da = 2b * 3 = 18a, which is 36 at a = 2.

Predict before you run: at a = 2, with b detached, what is a.grad after you ask for
c.backward()? Does c.backward() even run?
"""

import torch
from torch import Tensor


def chain(a0: float, detach: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Build a -> b -> c and return (a, b, c). Do not call backward() here.

    a is a 0-d float32 tensor holding a0 that requires grad; b = a * 3; c = b ** 2.
    When `detach` is True, replace b by b.detach() before computing c, so that c is built
    from the detached b. The values do not change (b = 3*a0, c = 9*a0**2 either way); only
    the record of how they were made does.

    a0 may arrive as an int (chain(2, False)): build a from float(a0).
    """
    # TODO: create a, compute b (detach it when asked), compute c, return all three.
    raise NotImplementedError("return (a, b, c) for c = (3a)**2, cut at b when detach is True")


def grad_of_a(a0: float, detach: bool) -> float | None:
    """Return dc/da at a = a0 as autograd sees it: a.grad as a float, or None.

    Build the chain with `chain(a0, detach)` and backpropagate from c. Without detach this
    gives 18 * a0. With detach, c has no path back to a: find out what backward() does then
    (try it!) and make this function return a.grad, which stays None, instead of crashing.
    `c.requires_grad` tells you whether c has a path to anything that needs a gradient.

    The answer is what autograd observed, never one assumed from `detach`: a test puts a
    chain of its own in place of this module's `chain` (called by that name), one that
    keeps the path to a even when detach is True, and expects the a.grad that then arrives.

    Example: grad_of_a(2.0, detach=False) == 36.0
    """
    # TODO: call chain, backpropagate from c only where that is possible, return a.grad.
    raise NotImplementedError("return dc/da as autograd sees it: a float, or None")


def straight_through_round(x: Tensor) -> Tensor:
    """Round x in the forward pass, but let the gradient through as if nothing happened.

    torch.round is flat between its jumps, and autograd gives it a derivative of 0
    everywhere: a network with a rounding step in it learns nothing through that step.
    The straight-through estimator fixes that with detach(): return x plus a correction
    that equals round(x) - x in value but is invisible to autograd. The forward value is
    then round(x) (halves go to the even neighbour, like torch.round), exactly, to the last
    bit, and the backward pass sees only `x`, the identity, whose derivative is 1.

    Works elementwise on a tensor of any shape, of finite numbers of any size (1e6 rounds to
    itself). At +-inf the correction inf - inf is nan, so the result is nan there; the tests
    pass finite x only.
    """
    # TODO: one line: round(x)'s values, with x's gradient.
    raise NotImplementedError("return round(x)'s values, the gradient passing straight to x")

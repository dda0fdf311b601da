"""Kata 6: leaves, and who gets a .grad.

Autograd sorts tensors into two kinds. A *non-leaf* is the result of an operation autograd
recorded because an input requires grad: it has a grad_fn, the node that backward() calls to
pass the gradient on. Every other tensor is a *leaf*: one made directly (torch.tensor(...),
torch.randn(...), torch.zeros(...)), and also the result of an operation on tensors that do not
require grad, or of one run under torch.no_grad().
requires_grad is inherited: when any input of an operation requires grad, so does its result,
unless the result cannot carry a gradient (the bool or integer results of x > 0, x.argmax(),
x.long() never require grad).

backward() stores a gradient only in the leaves that require grad, because that is where the
parameters live. Through a non-leaf it passes the gradient on and keeps nothing: its .grad stays
None, unless you asked for it with t.retain_grad() before backward().

That makes a classic trap. `w = torch.randn(3, requires_grad=True) * 0.01` looks like a small
parameter, but w is the result of `* 0.01`, so it is not a leaf. backward() stores the gradient
in the tensor torch.randn made, which nobody holds, and w.grad stays None. torch's optimizers
refuse such a w outright (torch.optim.SGD([w]) raises "can't optimize a non-leaf Tensor"), and
an update written by hand fails on the None. Converting with `.to(dtype)` or `.double()` is an
operation too whenever the dtype changes (a float32 w.to(torch.float32) gives back w itself,
still a leaf).

Predict before you run:
    w = torch.randn(3, requires_grad=True) * 0.01
    (w * 2).sum().backward()
Is w a leaf? Does w require grad? What is w.grad?
"""

import torch
from torch import Tensor


def make_parameter(
    shape: tuple[int, ...], scale: float, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Make a model's weight: standard normal random values times `scale`, in `dtype`.

    `shape` is a tuple: (2, 3), (3,), or () for a single number.

    It must be a leaf that requires grad, so that backward() stores the weight's gradient in
    its own .grad, where an optimizer looks for it. Mind that every operation on a tensor that
    requires grad (the `* scale`, or a `.to(dtype)` or `.double()` that changes its dtype)
    gives a new tensor that is not a leaf.

    Example: make_parameter((2, 3), 0.01, torch.float64) is a (2, 3) float64 leaf that
    requires grad, with values of about +-0.01.
    """
    # TODO: the random values, scaled, in dtype; the tensor you return must be a leaf.
    raise NotImplementedError("return scale times random values, in dtype, as a leaf needing grad")


def fresh_leaf(t: Tensor) -> Tensor:
    """A new leaf that requires grad and holds a copy of t's values: a fresh graph starts here.

    Sometimes a value that earlier code computed becomes the thing you optimise: an input image
    you adjust to excite a trained network, or a pretrained weight that starts a new model. t
    may be a non-leaf (the result of operations, with a grad_fn) or a plain tensor. Return a
    leaf with t's values, shape and dtype that requires grad, such that

    - backward() stops at it and never reaches the history t came from;
    - it shares no memory with t, so updating it in place (as an optimizer does) leaves t as
      it was;
    - t itself is left alone: its requires_grad, its values and its history.

    Predict first: what does `t.requires_grad = True` do when t is a non-leaf?
    """
    # TODO: one line: the new leaf.
    raise NotImplementedError("return a leaf of t's values that requires grad, apart from t")


def hidden_grads(x0: float) -> tuple[Tensor, Tensor]:
    """The gradients of y with respect to the hidden value h and to the input x.

    Make x = x0, a 0-d float leaf that requires grad; then h = x * 3 and y = h ** 2.
    Backpropagate from y once and return (h.grad, x.grad), the tensors themselves:
    dy/dh = 2h and dy/dx = 2h * 3 = 18 * x0.

    h is not a leaf, so backward() keeps no gradient for it unless you ask for one in time.
    Does h need requires_grad set? Check h.requires_grad before you decide.

    Example: hidden_grads(2.0) returns (tensor(12.), tensor(36.)).
    """
    # TODO: build x, h and y; backpropagate from y once; return (h.grad, x.grad).
    raise NotImplementedError("return (dy/dh, dy/dx), both read from .grad after one backward()")

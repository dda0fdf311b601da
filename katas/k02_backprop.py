"""Kata 2: backprop by hand and by autograd.

A tiny two-layer computation:

    h     = x * w1        (hidden value)
    h_act = h + b         (add a bias)
    y     = h_act * w2    (output)

Autograd finds dy/d(input) for every input by walking this chain backwards from y. At each
node it multiplies the gradient that has arrived from above by that node's local
derivative: the chain rule, one step at a time. You will get the four gradients twice, once
from autograd and once by doing that walk yourself, and see that they agree. Once you can do
the bookkeeping by hand, autograd stops being magic: it is the same bookkeeping, done for
millions of parameters.

Predict before you run, at x = 2, w1 = 3, w2 = -1, b = 0.5:
- the forward pass: h, h_act and y;
- after y.backward(): x.grad, w1.grad, w2.grad and b.grad;
- and the gradients that pass through the two intermediate nodes, dy/dh_act and dy/dh.
  (Autograd computes them on the way, but h.grad stays None: only leaves keep .grad.)
"""

import torch
from torch import Tensor


def forward(x: Tensor, w1: Tensor, w2: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Run the forward pass and return (h, h_act, y), the three tensors it makes.

    h = x * w1, then h_act = h + b, then y = h_act * w2. Build each from the one before it
    with tensor arithmetic, so that autograd records the chain x, w1 -> h -> h_act -> y and
    can walk it back. Return the intermediates themselves (not copies): they are the nodes
    the gradient flows through.

    Example, at x = 2, w1 = 3, w2 = -1, b = 0.5: h = 6, h_act = 6.5, y = -6.5.
    """
    # TODO: three lines of tensor arithmetic, then return the three results.
    raise NotImplementedError("compute h, then h_act from h, then y from h_act")


def autograd_grads(x: float, w1: float, w2: float, b: float) -> dict[str, float]:
    """Return {"x": dy/dx, "w1": dy/dw1, "w2": dy/dw2, "b": dy/db}, found by autograd.

    Make each of the four inputs a 0-d float32 tensor that requires grad, run `forward`,
    backpropagate from y (`y.backward()` or `torch.autograd.grad`) and read the four
    gradients as plain Python floats (`.item()`).

    The arguments may arrive as ints (autograd_grads(2, 3, -1, 1)); only floating-point (and
    complex) tensors can require grad, so build the tensors from float(...).

    Predict before you run: at (2, 3, -1, 0.5), what does each .grad hold?
    """
    # TODO: build four leaf tensors, run forward, backpropagate, collect the .grad values.
    raise NotImplementedError("return the four gradients of y, found by autograd")


def manual_grads(x: float, w1: float, w2: float, b: float) -> dict[str, float]:
    """Return the same dict as `autograd_grads`, but work out every gradient yourself.

    No tensors needed and no autograd allowed: this is the chain rule by hand, in plain
    Python arithmetic. (The tests call it with autograd switched off.)

    Walk the graph backwards, from y down to the inputs, carrying the "upstream" gradient:
    how much y moves per unit change of the node you are standing on. At y it is 1.
    At each node, for each of its inputs:

        gradient for that input = upstream gradient * local derivative

    where the local derivative asks only how that one node's output moves when the input
    moves (the node's other inputs held fixed). That gradient becomes the upstream gradient
    for the next node down.

    - y = h_act * w2: for a product, how does it move with each factor?
    - h_act = h + b: what does a sum do to the gradient that reaches it?
    - h = x * w1: a product again; what is the upstream gradient by now?

    You will need the forward values too (some local derivatives are values from the
    forward pass), so compute h and h_act first. Return floats even when given ints.
    """
    # TODO: forward values first, then one chain-rule step per node, from y back to the inputs.
    raise NotImplementedError("return the same four gradients, worked out by hand")

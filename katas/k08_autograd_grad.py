"""Kata 8: torch.autograd.grad and the graph's lifetime.

So far you have asked for gradients with `loss.backward()`, which adds them into the `.grad` of
every leaf the loss depends on. `torch.autograd.grad(output, inputs)` walks the same graph but
hands the gradients back to you instead: a tuple with one gradient per input, in order. It never
writes `.grad`, so it is the tool for a helper that must not disturb the gradients a caller is
collecting (kata 3), and for a gradient you only want to look at.

Both calls free what the graph saved as they walk it. The forward pass saved values for the
backward pass (x, to differentiate x * x; sin's input, for its cos); once they have been used,
autograd throws them away, and a second walk through the same graph raises RuntimeError ("Trying
to backward through the graph a second time"). (A graph that saved nothing, such as x + 1's, can
be walked again.) Pass `retain_graph=True` to keep them, but only to a call
that someone will follow with another walk through the same graph: kept values stay in memory
for as long as the graph's outputs live.

And when an input is not in the graph at all, autograd.grad raises RuntimeError, unless you pass
`allow_unused=True`: then that input's gradient comes back as None. None means "no path leads
there"; a tensor of zeros means "a path leads there, and the slope along it is 0".

Predict before you run. x = torch.tensor(2.0, requires_grad=True), y = x ** 3.
  1. g = torch.autograd.grad(y, x). What is g, and what is x.grad afterwards?
  2. Then torch.autograd.grad(y, x) again. What happens?
"""

from collections.abc import Callable

import torch
from torch import Tensor


def cube_sum_grad(x: Tensor) -> Tensor:
    """Return the gradient of (x ** 3).sum() with respect to x, and leave x.grad alone.

    x is a leaf that requires grad, of any shape and floating dtype, and its .grad may already
    hold gradients the caller is collecting: it must come out exactly as it went in (the same
    tensor, or still None). So ask torch.autograd.grad, not backward().

    The result has x's shape and dtype: 3 * x ** 2, elementwise, found by autograd. It is a
    plain tensor, as every gradient a kata function returns: no grad_fn, requires_grad False.
    """
    # TODO: one autograd.grad call; it returns a tuple.
    raise NotImplementedError("return the gradient of (x ** 3).sum() and leave x.grad as it was")


def two_losses_one_forward(forward: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """Return the gradients of two losses with respect to x, from ONE forward pass.

    A model with two losses on the same output (say a main loss and a penalty) often needs
    each loss's gradient on its own: to log them, or to weigh them against each other. The
    forward pass is the expensive part, so run `h = forward(x)` exactly once, then build

        loss_a = h.sum()
        loss_b = (h ** 2).sum()

    and return (d loss_a / dx, d loss_b / dx), each with x's shape. Both walks go through
    forward's part of the graph, so the first walk must keep it and the last must not: after
    this function returns, nothing should hold on to the graph's saved values. x.grad must be
    left as the caller passed it.
    """
    # TODO: one forward; two autograd.grad calls, and only the first keeps the graph.
    raise NotImplementedError("return both losses' gradients for x, from one forward pass")


def unused_parameters(loss: Tensor, params: list[Tensor]) -> list[bool]:
    """Say, for each parameter, whether the loss's graph never reaches it.

    A parameter the loss does not depend on will get no gradient and never train: a layer
    left out of forward(), a branch not taken. Return one bool per parameter, in order: True
    where no path leads from the loss back to that parameter. A parameter that the loss does
    use, but whose gradient happens to be exactly 0 (a relu that is off, a factor that is 0),
    is reached: False.

    The caller will call loss.backward() afterwards, so the graph must still be whole when this
    function returns, and every parameter's .grad must be as it was.

    A parameter that does not require grad gets no gradient from any loss: True. An empty
    params gives []. (torch.autograd.grad refuses both a tensor that does not require grad
    and an empty list of inputs: ask it only about the parameters that require grad.)
    """
    # TODO: one autograd.grad call that tolerates unused inputs; keep the graph for the caller.
    raise NotImplementedError("return, per parameter, whether the loss's graph never reaches it")

"""Kata 16: hooks, code that runs inside backward().

A hook is a function you hand to autograd to call during the backward pass:

- `t.register_hook(fn)`: when the gradient with respect to t has been computed, autograd
  calls fn(grad). If fn returns a tensor, that tensor replaces the gradient from there on,
  down to everything t was made from. fn must not modify `grad` in place: the same tensor
  may also be on its way to other inputs, or be a broadcast view in which many elements
  share one memory location.
- `p.register_post_accumulate_grad_hook(fn)` (leaves only): autograd calls fn(p) right after
  it has added the new gradient into p.grad. That is the moment to update p and drop its
  gradient, an optimizer step inside backward(), so that a big model never holds all its
  gradients at once.

A hook changes only gradients that flow through the tensor it is on: a leaf whose gradient
does not pass through that tensor never sees it. And a hook stays registered until you remove
it: both calls return a handle, and `handle.remove()` takes the hook off again. A hook left on
a tensor that lives on (a parameter) runs again at every later backward(), and a second one
registered next time runs beside it.

Predict before you run: x = 3 requires grad, y = x * 2 gets the hook `lambda g: g * 10`, and
z = y + x. What is x.grad after z.backward()?
"""

from collections.abc import Callable

import torch
from torch import Tensor


def reverse_gradient(x: Tensor, scale: float) -> Tensor:
    """The gradient reversal layer: the identity going forward, times -scale going back.

    Return a new tensor equal to x (same values, any shape) that a loss can use in place of
    x. Whatever gradient reaches that tensor in the backward pass must arrive at x multiplied
    by -scale. Domain-adversarial training puts this between a feature extractor and a
    classifier that tries to tell two domains apart: the classifier learns to tell them apart,
    while the features below the reversal learn to make that harder.

    x requires grad. Register the hook on the new tensor, not on x: paths that use x directly
    must keep their gradient, and the caller's x must not keep a hook. The hook returns a new
    gradient; it does not edit the one it is given.
    """
    # TODO: a new tensor equal to x, a hook on it that returns the reversed gradient.
    raise NotImplementedError("return x's values, with the gradient through them times -scale")


def step_in_backward(params: list[Tensor], loss_fn: Callable[[], Tensor], lr: float) -> float:
    """One step of gradient descent done inside backward(), by post-accumulate-grad hooks.

    Register on each parameter a post-accumulate-grad hook that, as soon as p.grad is ready,
    moves p by -lr * p.grad (without autograd recording it) and then sets p.grad to None.
    Then compute loss = loss_fn(), call loss.backward() (which runs the hooks), remove the
    hooks with their handles, and return the loss as a float.

    Each parameter ends up updated in place, with its .grad None. The caller calls this
    once per training step on the same parameters: hooks left registered by one call would
    update the parameters again at the next call's backward().

    A parameter may arrive with a stale .grad from elsewhere: set it to None before
    backward(), so that the step uses this loss's gradient alone. If loss_fn() or backward()
    raises, remove the hooks all the same (try/finally) and let the error through.
    """
    # TODO: register a hook per parameter, keep the handles, backward(), remove them.
    raise NotImplementedError("take one descent step inside backward(); return the loss as a float")

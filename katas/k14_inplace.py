"""Kata 14: in-place edits and the version counter.

To run backward(), many operations keep a tensor from the forward pass. `torch.exp` keeps its
output, because the derivative of exp(x) is exp(x) itself; `torch.sin` keeps its input, because
its derivative cos(x) needs x; `x + 1` keeps nothing, because its derivative is 1 whatever x is.
An in-place edit (`y.add_(1)`, `y /= s`, `y[0] = 0`) overwrites a tensor's memory. If autograd
saved that tensor, backward() would compute with the wrong numbers.

Autograd guards against that with a version counter: every tensor counts its in-place edits,
each saved tensor remembers the count it was saved at, and backward() raises RuntimeError
("one of the variables needed for gradient computation has been modified by an inplace
operation") when the two differ. In-place edits of tensors nobody saved are fine, and
`nn.ReLU(inplace=True)` relies on that.

Two ways around the check behave very differently:
- `y.detach()` shares y's memory AND its version counter: an edit through it is still caught.
- `y.data` shares y's memory but not its version counter: an edit through it is invisible to
  autograd, so backward() runs without complaint and returns a wrong gradient.

And a leaf that requires grad (a weight) refuses in-place edits outright, at the edit itself:
"a leaf Variable that requires grad is being used in an in-place operation." (An optimizer
updates weights in place only with autograd switched off, under `torch.no_grad()`.)

Predict before you run: x requires grad, h = x * 2, y = torch.exp(h). Which of these makes
y.sum().backward() raise: h.add_(1), or y.add_(1)? And y.data.add_(1)?
"""

from collections.abc import Callable

import torch
from torch import Tensor


def edit_breaks_backward(op: Callable[[Tensor], Tensor], x: Tensor, edit: str) -> bool:
    """Find out whether an in-place edit of op's input or output breaks backward().

    Run the experiment for real:
    - make a leaf `a` that requires grad and holds x's values (a copy: leave the caller's x
      alone);
    - make the input `inp = a.clone()`, a non-leaf, since a leaf that requires grad cannot
      be edited in place at all;
    - compute `out = op(inp)`;
    - edit in place with add_(1): `inp` when edit == "input", `out` when edit == "output";
    - walk back from out.sum() to a: torch.autograd.grad(out.sum(), a). op may use leaves
      of its own (a weight it closes over), whose .grad must stay as it was; a backward()
      would write into it.

    Return True if that walk raised the "modified by an inplace operation" RuntimeError,
    False if it ran. Let any other error through: re-raise it, since it is a bug somewhere,
    not an answer about the edit. edit is "input" or "output"; any other value raises
    ValueError.

    Example: edit_breaks_backward(torch.exp, torch.tensor([1.0, 2.0]), "output") is True,
    and with "input" it is False: exp saved its output, not its input.
    """
    # TODO: a, inp, out, the edit, then backward() inside try/except RuntimeError: return
    # True if the error's message says "modified by an inplace operation", else `raise` it.
    raise NotImplementedError("return whether the edit makes backward() raise, by running it")


def softmax(x: Tensor) -> Tensor:
    """Softmax of a 1-d tensor, by hand: exp(x - max(x)) / sum(exp(x - max(x))).

    The result must be differentiable with respect to x, and x is usually a leaf that
    requires grad. Subtracting the largest element first changes nothing in the result, but
    it keeps exp() from overflowing to inf for large inputs (exp(100.0) is inf in float32).

    The memory-saving version, `e = torch.exp(...)` and then `e /= e.sum()`, gives the right
    numbers, and backward() through it raises. Work out why from what exp saves, and do
    not "fix" it with `e.data`: that makes the error go away and the gradient wrong.
    Likewise `x -= x.max()` is an in-place edit of a leaf that requires grad.
    """
    # TODO: shift by the max, exponentiate, normalise, all without editing anything in place.
    raise NotImplementedError("return softmax(x), editing nothing in place")

"""Kata 3: the accumulation trap.

`backward()` does not overwrite `.grad`: it adds the new gradient to whatever `.grad` already
holds. The first call finds `.grad` empty (None) and fills it; every later call adds on top.

Why would PyTorch do that? Because one parameter update is often built from several backward
calls. A batch too big for memory is split into micro-batches, each gets its own backward(),
and the update uses the sum. A model trained on several losses, each with its own backward()
(to save memory, or because they come at different times), likewise sends gradient into the
same weights more than once before one update. Adding up is what all of these need, so it is
the default. The price: in an ordinary training loop you must clear the
gradients yourself before each step (`optimizer.zero_grad()` does it for you), or every update
also carries all the old gradients.

Predict before you run. Take x = 3 and y = x**2, so dy/dx = 2x = 6.
  1. Call y.backward(). What is x.grad?
  2. Build y = x**2 again and call y.backward() again, without clearing. What is x.grad now?
  3. Clear x.grad, build y once more and call backward(). What is x.grad?
"""

import torch
from torch import Tensor


def grads_without_zeroing(x0: float, n: int) -> list[float]:
    """Watch gradients pile up: x.grad after each of n backward() calls, never cleared.

    Make one x = x0 that requires grad. Then, n times: build y = x**2 anew, call y.backward()
    and write down x.grad's value. (Why anew? To differentiate x**2, the graph saved x; backward()
    frees what the graph saved once it has used it, so a second backward() through the same y
    raises.)

    Write down a plain float (`x.grad.item()`), not the tensor `x.grad` itself: backward()
    updates that tensor in place, so a list holding it would show only its latest value.

    Predict first: what does the list look like for x0 = 3 and n = 3?
    """
    # TODO: one x; in a loop build y, call backward(), record x.grad as a float.
    raise NotImplementedError("return x.grad after each of n backward() calls, never cleared")


def grads_with_zeroing(x0: float, n: int) -> list[float]:
    """The same n backward() calls, but with x.grad cleared before each one.

    Two idioms clear a gradient, and both are fine here: `x.grad = None` (what
    `optimizer.zero_grad()` does by default) or `x.grad.zero_()`, which fills the existing
    tensor with zeros. Mind that x.grad is None until the first backward().

    Predict first: what does the list look like for x0 = 3 and n = 3?
    """
    # TODO: like grads_without_zeroing, but clear x.grad before each backward().
    raise NotImplementedError("return x.grad after each of n backward() calls, cleared before each")


def accumulated_batch_grad(w0: float, X: Tensor, y: Tensor, chunks: int) -> float:
    """Gradient accumulation done right: micro-batches that add up to the full batch.

    The model is y_pred = w * X with one weight w = w0, and the loss is the mean squared
    error over the whole batch, mean((w*X - y)**2). Get d(loss)/dw without ever running the
    whole batch at once:

    - split X and y into `chunks` micro-batches with `torch.tensor_split` (when len(X) does
      not divide evenly, the pieces have different sizes);
    - for each micro-batch compute its own loss and call backward(), never clearing w.grad
      in between, so that the gradients add up;
    - weight each micro-batch's loss so that the sum in w.grad is the full-batch gradient.

    A micro-batch's mean only averages over its own samples, while the full-batch mean
    averages over all len(X). Work out the weight that turns one into its share of the
    other, and check it against pieces of different sizes.

    Return w.grad's value as a float.

    Example: accumulated_batch_grad(0.0, torch.tensor([1.0, 2, 3, 4, 5]),
    torch.tensor([2.0, 4, 6, 8, 10]), 2) == -44.0, the same as with chunks=1.
    """
    # TODO: make w; for each (X, y) micro-batch: weighted loss, backward(); return w.grad.
    raise NotImplementedError("return the batch's gradient, built up one micro-batch at a time")

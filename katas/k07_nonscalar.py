"""Kata 7: non-scalar outputs and vector-Jacobian products.

Until now every backward() started from a single number, a loss. When y = f(x) is a vector
there is no single derivative but a Jacobian J, an m x n matrix with J[i, j] = dy_i/dx_j
(m outputs, n inputs). backward() never builds J. What it computes is a vector-Jacobian
product: given v, one weight per output, y.backward(v) leaves in x.grad

    x.grad[j] = sum over i of v[i] * dy_i/dx_j,    that is, v^T J,

in one backward pass, without ever forming J. That is why y.backward() with no argument refuses
a vector y: it cannot guess your v. For a scalar loss, v is the single number 1 and v^T J is the
familiar gradient.

Two consequences:
- y.sum().backward() is y.backward(v) with v all ones: it gives 1^T J, the column sums of J.
  Only when f works elementwise (y_i depends on x_i alone, so J is diagonal) is that the
  derivative of each output with respect to its own input.
- A whole Jacobian takes one VJP per row: the one-hot v = e_i (1 at i, 0 elsewhere) gives row
  i. backward() frees the values the graph saved for it (x**2 keeps x, softmax its result)
  once it has used them, so walking such a graph m times needs retain_graph=True, or a fresh
  y = f(x) for each row.

Predict before you run: x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True) and
y = torch.cumsum(x, 0), so y = [x0, x0 + x1, x0 + x1 + x2]. After y.sum().backward(), what is
x.grad? And what is dy_i/dx_i, each output's derivative with respect to its own input?
"""

from collections.abc import Callable

import torch
from torch import Tensor


def vjp(f: Callable[[Tensor], Tensor], x: Tensor, v: Tensor) -> Tensor:
    """v^T J, the vector-Jacobian product of f at x, from one backward pass.

    f maps a 1-D tensor of n numbers to a 1-D tensor of m numbers, and v holds m weights, one
    per output. Return v^T J: n numbers, in x's dtype. Use one backward pass and never form J;
    that is the whole point of a VJP.

    x belongs to the caller: it may not require grad, and if it does, its .grad must stay as it
    is. Differentiate a leaf of your own that holds x's values.

    Example: vjp(torch.sin, torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0])) is
    [2 * cos(0), 3 * cos(1)] = tensor([2.0000, 1.6209]).
    """
    # TODO: your own leaf from x; y = f(leaf); backpropagate from y weighted by v; return.
    raise NotImplementedError("return v^T J, n numbers in x's dtype, from one backward pass")


def jacobian(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """The whole m x n Jacobian of f at x, one VJP per row.

    Row i holds dy_i/dx_j for every input j: it is the VJP with v = e_i, the one-hot vector
    that picks output i. You may build y = f(x) once and walk its graph m times, or build a
    fresh y for each row; either way row i must hold row i alone (remember what backward()
    does to a .grad that already holds something).

    Return a tensor of shape (m, n) in x's dtype; leave the caller's x as it was.

    Example: jacobian(lambda x: torch.cumsum(x, 0), torch.tensor([1.0, 2.0, 3.0])) is
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]].
    """
    # TODO: one leaf, y = f(leaf); for each output i, the VJP with e_i is row i; stack them.
    raise NotImplementedError("return the m x n Jacobian of f at x, one backward walk per row")


def jacobian_diagonal(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """dy_i/dx_i for every i: each output's derivative with respect to its own input.

    f maps n numbers to n numbers, and it may mix them: in softmax or cumsum each output
    depends on several inputs. Return the n numbers in x's dtype. Such diagonals matter: their
    sum, the trace of J, is the divergence of f, which score matching and continuous
    normalising flows compute.

    Predict first: for an f that mixes elements, does x.grad after f(x).sum().backward() hold
    this diagonal?
    """
    # TODO: a few lines, or one with what you wrote above.
    raise NotImplementedError("return dy_i/dx_i for every i: the diagonal of the Jacobian")

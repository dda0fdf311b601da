"""Kata 13: gradients of gradients.

A gradient is computed by the backward pass, and normally that computation leaves no trace:
the gradient comes out as a plain tensor, with no grad_fn, a constant as far as autograd is
concerned. Pass create_graph=True to torch.autograd.grad (or to backward) and autograd records
the backward pass itself as a graph, so the gradient gets a grad_fn and can be differentiated
in turn. (It gets one whenever the backward formulas used a tensor that requires grad: x**3's
uses x, to make 3 * x**2; 3 * x's only multiplies by the constant 3, so its gradient gets
none.) Three things need that:

- second derivatives: differentiate f'(x) once more;
- Hessian-vector products H v, in optimisers and in analyses of curvature. H, the matrix of
  second derivatives, has n * n entries for n parameters, too many to build for a network.
  But H v is the gradient of (gradient . v): two backward passes, whatever n is;
- gradient penalties: a loss term built from a gradient, such as WGAN-GP's, which pushes the
  norm of a critic's input gradient towards 1. Training on it means backpropagating through
  that gradient into the critic's weights.

Whatever cuts the first gradient off from its graph spoils all three: leaving out
create_graph, calling .item() or .detach() on it, or rebuilding it with torch.tensor(...). And
.grad is no shortcut: backward() adds each gradient into .grad, so a second backward() adds
the second derivative onto the first derivative already there. .grad holds the second
derivative alone only if it was cleared between the two passes (g = x.grad, x.grad = None,
then g.backward()).

Predict before you run. Take x = 1 and y = x**3, so dy/dx = 3x**2 = 3 and d2y/dx2 = 6x = 6.
  1. y.backward(create_graph=True), then x.grad.backward(). What is x.grad now?
  2. (g,) = torch.autograd.grad(y, x) (no create_graph), then torch.autograd.grad(g, x).
     What happens?
"""

from collections.abc import Callable

import torch
from torch import Tensor


def second_derivative(f: Callable[[Tensor], Tensor], x0: float) -> float:
    """Return f''(x0) as a float, computed by autograd: the derivative of the derivative.

    f maps a 0-d tensor to a 0-d tensor (torch.sin, lambda x: x**3, ...). Make x = x0 as a
    tensor that requires grad, take the first derivative with torch.autograd.grad and
    create_graph=True, so that it keeps a graph of its own, then differentiate that.

    For f = lambda x: 3 * x + 1 the backward of 3 * x multiplies by the constant 3 and uses
    no tensor that requires grad, so the first derivative comes with no graph of its own
    (first.requires_grad is False), and autograd.grad refuses to differentiate it:
    return 0.0 then, its second derivative. x may be float32 or float64: the tests allow
    float32's round-off (a relative 1e-4).

    Predict first: for f = lambda x: x**3 and x0 = 1, what would you get if the first
    gradient were taken without create_graph?
    """
    # TODO: x; first = d f/dx; second = d first/dx; return the second as a float.
    raise NotImplementedError("return d2f/dx2 at x0 as a float, from autograd")


def hessian_vector_product(f: Callable[[Tensor], Tensor], x: Tensor, v: Tensor) -> Tensor:
    """Return H v, where H is the Hessian of the scalar f at x, without ever building H.

    x and v have shape (n,). H v is the gradient of the scalar (gradient of f . v) with
    respect to x: one backward pass for the gradient (with create_graph=True), a second one
    for H v. Building the whole n-by-n H first (torch.autograd.functional.hessian, or one
    backward pass per row) costs about n passes and n * n numbers, which no network can
    afford.

    Leave the caller's x as it is: differentiate with respect to your own copy,
    x.detach().requires_grad_(). x and v are float32 or float64; H v has x's dtype and is a
    plain tensor (no grad_fn): the second pass needs no create_graph.
    """
    # TODO: your own x; the gradient g of f; return the gradient of (g . v).
    raise NotImplementedError("return H v, the Hessian of f at x times v, without forming H")


def gradient_penalty(critic: torch.nn.Module, x: Tensor) -> Tensor:
    """Return WGAN-GP's gradient penalty: the mean over the batch of (||d critic / d x_i|| - 1)**2.

    critic maps a batch x of shape (n, d) to scores of shape (n,). For each sample x_i, take
    the gradient of its score with respect to x_i, a vector of d numbers, and its Euclidean
    norm; the penalty is the mean over the batch of (norm - 1)**2, a 0-d tensor.

    Sample i's score depends on x_i alone, so one torch.autograd.grad of scores.sum() gives
    all n per-sample gradients at once, as the rows of an (n, d) tensor. Take it with
    create_graph=True: the penalty is a loss term, and the caller will call backward() on it
    to train the critic's weights, through the gradient. Leave the critic's .grad and the
    caller's x alone: torch.autograd.grad returns gradients without writing any .grad.
    """
    # TODO: your own x that requires grad; each sample's gradient, kept differentiable;
    # TODO: their norms along dim 1; return the mean of (norm - 1)**2.
    raise NotImplementedError("return the mean of (||d critic / d x_i|| - 1)**2 over the batch")

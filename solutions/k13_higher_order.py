"""Kata 13, reference solution: gradients of gradients."""

from collections.abc import Callable

import torch
from torch import Tensor


def second_derivative(f: Callable[[Tensor], Tensor], x0: float) -> float:
    x = torch.tensor(float(x0), requires_grad=True)
    # create_graph=True records how the first derivative is computed, so it can be
    # differentiated in turn.
    (first,) = torch.autograd.grad(f(x), x, create_graph=True)
    if not first.requires_grad:  # a linear f: its derivative is a constant, with no graph
        return 0.0
    (second,) = torch.autograd.grad(first, x)
    return second.item()


def hessian_vector_product(f: Callable[[Tensor], Tensor], x: Tensor, v: Tensor) -> Tensor:
    x = x.detach().requires_grad_()
    (gradient,) = torch.autograd.grad(f(x), x, create_graph=True)
    # d(gradient . v)/dx = H v, since H is symmetric: two backward passes, and no n-by-n H.
    (product,) = torch.autograd.grad((gradient * v).sum(), x)
    return product


def gradient_penalty(critic: torch.nn.Module, x: Tensor) -> Tensor:
    x = x.detach().requires_grad_()
    scores = critic(x)
    # Sample i's score depends on row i alone, so the gradient of the sum holds, row by row,
    # each sample's own gradient.
    (gradients,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return ((gradients.norm(dim=1) - 1) ** 2).mean()

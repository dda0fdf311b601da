"""Kata 8, reference solution: torch.autograd.grad and the graph's lifetime."""

from collections.abc import Callable

import torch
from torch import Tensor


def cube_sum_grad(x: Tensor) -> Tensor:
    (grad,) = torch.autograd.grad((x**3).sum(), x)
    return grad


def two_losses_one_forward(forward: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    h = forward(x)
    loss_a = h.sum()
    loss_b = (h**2).sum()
    # loss_b's walk goes through forward's graph again, so the first walk must keep it.
    (grad_a,) = torch.autograd.grad(loss_a, x, retain_graph=True)
    (grad_b,) = torch.autograd.grad(loss_b, x)
    return grad_a, grad_b


def unused_parameters(loss: Tensor, params: list[Tensor]) -> list[bool]:
    asked = [p for p in params if p.requires_grad]  # autograd.grad refuses the others
    if not asked:
        return [True] * len(params)
    # The caller's loss.backward() walks this graph again: keep it.
    grads = iter(torch.autograd.grad(loss, asked, retain_graph=True, allow_unused=True))
    return [next(grads) is None if p.requires_grad else True for p in params]

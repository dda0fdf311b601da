"""Kata 6, reference solution: leaves, and who gets a .grad."""

import torch
from torch import Tensor


def make_parameter(
    shape: tuple[int, ...], scale: float, dtype: torch.dtype = torch.float32
) -> Tensor:
    # Every operation first, on tensors that do not require grad; the flag goes on last.
    return (torch.randn(shape, dtype=dtype) * scale).requires_grad_()


def fresh_leaf(t: Tensor) -> Tensor:
    return t.detach().clone().requires_grad_()


def hidden_grads(x0: float) -> tuple[Tensor, Tensor]:
    x = torch.tensor(float(x0), requires_grad=True)
    h = x * 3
    h.retain_grad()  # h is no leaf: without this, backward() keeps no .grad for it
    y = h**2
    y.backward()
    return h.grad, x.grad

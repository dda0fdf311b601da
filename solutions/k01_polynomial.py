"""Kata 1, reference solution: the gradient of a polynomial."""

import torch
from torch import Tensor


def polynomial(x: Tensor) -> Tensor:
    return x**3 + 2 * x**2 - 5 * x + 1


def value_and_grad(x0: float) -> tuple[float, float]:
    x = torch.tensor(float(x0), requires_grad=True)
    y = polynomial(x)
    y.backward()
    return y.item(), x.grad.item()

"""Kata 7, reference solution: non-scalar outputs and vector-Jacobian products."""

from collections.abc import Callable

import torch
from torch import Tensor


def vjp(f: Callable[[Tensor], Tensor], x: Tensor, v: Tensor) -> Tensor:
    leaf = x.detach().requires_grad_()  # the caller's x keeps its flag and its .grad
    f(leaf).backward(v)
    return leaf.grad


def jacobian(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    leaf = x.detach().requires_grad_()
    y = f(leaf)
    rows = []
    for one_hot in torch.eye(len(y), dtype=y.dtype):
        leaf.grad = None  # row i alone, not the sum of the rows so far
        y.backward(one_hot, retain_graph=True)  # the same graph is walked once per row
        rows.append(leaf.grad)
    return torch.stack(rows)


def jacobian_diagonal(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    return jacobian(f, x).diagonal()

"""Kata 3, reference solution: the accumulation trap."""

import torch
from torch import Tensor


def grads_without_zeroing(x0: float, n: int) -> list[float]:
    x = torch.tensor(float(x0), requires_grad=True)
    grads = []
    for _ in range(n):
        y = x**2
        y.backward()
        grads.append(x.grad.item())
    return grads


def grads_with_zeroing(x0: float, n: int) -> list[float]:
    x = torch.tensor(float(x0), requires_grad=True)
    grads = []
    for _ in range(n):
        x.grad = None
        y = x**2
        y.backward()
        grads.append(x.grad.item())
    return grads


def accumulated_batch_grad(w0: float, X: Tensor, y: Tensor, chunks: int) -> float:
    w = torch.tensor(float(w0), requires_grad=True)
    for X_part, y_part in zip(torch.tensor_split(X, chunks), torch.tensor_split(y, chunks)):
        part_loss = ((w * X_part - y_part) ** 2).mean()
        # The part's mean averages over len(X_part) samples; the full batch's over len(X).
        (part_loss * len(X_part) / len(X)).backward()
    return w.grad.item()

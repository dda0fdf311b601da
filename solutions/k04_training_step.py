"""Kata 4, reference solution: a training step by hand."""

import torch
from torch import Tensor


def make_data(n: int = 20, noise: float = 0.3, seed: int = 42) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    X = torch.linspace(-3, 3, n)
    y = 2 * X + 1 + noise * torch.randn(n, generator=generator)
    return X, y


def train_step(w: Tensor, b: Tensor, X: Tensor, y: Tensor, lr: float) -> float:
    y_pred = w * X + b  # 1. forward
    loss = ((y - y_pred) ** 2).mean()  # 2. loss
    loss.backward()  # 3. backward
    with torch.no_grad():  # 4. update, untracked
        w -= lr * w.grad
        b -= lr * b.grad
    w.grad.zero_()  # 5. clear
    b.grad.zero_()
    return loss.item()


def train(
    X: Tensor, y: Tensor, lr: float = 0.01, steps: int = 200
) -> tuple[Tensor, Tensor, list[float]]:
    w = torch.tensor(0.0, requires_grad=True)
    b = torch.tensor(0.0, requires_grad=True)
    losses = [train_step(w, b, X, y, lr) for _ in range(steps)]
    return w, b, losses

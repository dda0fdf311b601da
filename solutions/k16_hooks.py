"""Kata 16, reference solution: hooks."""

from collections.abc import Callable

import torch
from torch import Tensor


def reverse_gradient(x: Tensor, scale: float) -> Tensor:
    reversed_x = x.clone()  # a tensor of its own: only paths through it are reversed
    reversed_x.register_hook(lambda grad: -scale * grad)
    return reversed_x


def step_in_backward(params: list[Tensor], loss_fn: Callable[[], Tensor], lr: float) -> float:
    def update(param: Tensor) -> None:
        with torch.no_grad():
            param -= lr * param.grad
        param.grad = None

    for param in params:
        param.grad = None  # a stale gradient must not join this step's
    handles = [param.register_post_accumulate_grad_hook(update) for param in params]
    try:
        loss = loss_fn()
        loss.backward()
    finally:
        for handle in handles:
            handle.remove()
    return loss.item()

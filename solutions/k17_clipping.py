"""Kata 17, reference solution: gradient clipping."""

import math
from collections.abc import Callable

import torch
from torch import Tensor


def clip_grad_norm(parameters: list[Tensor], max_norm: float) -> float:
    grads = [p.grad for p in parameters if p.grad is not None]
    # All gradients as one long vector: its length is the square root of all squares summed.
    total_norm = math.sqrt(sum(grad.pow(2).sum().item() for grad in grads))
    if not math.isfinite(total_norm):
        raise RuntimeError(f"the total gradient norm is {total_norm}: refusing to clip")
    if total_norm > max_norm:
        scale = max_norm / (total_norm + 1e-6)
        for grad in grads:
            grad.mul_(scale)
    return total_norm


def clip_grad_value(parameters: list[Tensor], clip_value: float) -> None:
    for p in parameters:
        if p.grad is not None:
            p.grad.clamp_(-clip_value, clip_value)


def clipped_sgd_step(
    parameters: list[Tensor], loss_fn: Callable[[], Tensor], max_norm: float, lr: float
) -> float:
    for p in parameters:
        p.grad = None
    loss_fn().backward()
    total_norm = clip_grad_norm(parameters, max_norm)  # after backward(): now there are grads
    with torch.no_grad():
        for p in parameters:
            if p.grad is not None:  # a parameter the loss does not use: skipped, as in torch
                p.sub_(lr * p.grad)
    return total_norm

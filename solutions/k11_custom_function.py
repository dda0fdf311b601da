"""Kata 11, reference solution: a custom torch.autograd.Function."""

import torch
from torch import Tensor


class Softplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.log1p(torch.exp(x))

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_output * torch.sigmoid(x)


class ScaledProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(a, b)
        ctx.scale = scale  # a float, not a tensor: a plain attribute
        return scale * a * b

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, Tensor, None]:
        a, b = ctx.saved_tensors
        # One gradient per input of forward, in order; the float scale gets None.
        return grad_output * ctx.scale * b, grad_output * ctx.scale * a, None

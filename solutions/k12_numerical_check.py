"""Kata 12, reference solution: checking a gradient numerically."""

import torch
from torch import Tensor


def numerical_grad(f, x: Tensor, eps: float = 1e-6) -> Tensor:
    # A copy (never perturb the caller's x), laid out row by row so view(-1) works for a W.T.
    point = x.detach().to(torch.float64).clone(memory_format=torch.contiguous_format)
    grad = torch.zeros_like(point)
    flat_point, flat_grad = point.view(-1), grad.view(-1)
    for i in range(flat_point.numel()):
        original = flat_point[i].item()
        with torch.no_grad():  # f's values only; f may use leaves that require grad
            flat_point[i] = original + eps
            above = float(f(point))
            flat_point[i] = original - eps
            below = float(f(point))
        flat_point[i] = original
        flat_grad[i] = (above - below) / (2 * eps)
    return grad


def gradients_match(
    analytic: Tensor, numerical: Tensor, rtol: float = 1e-3, atol: float = 1e-5
) -> bool:
    analytic, numerical = analytic.double(), numerical.double()
    allowed = atol + rtol * numerical.abs()
    # torch.allclose's rule: equal values (the same infinity) agree; nan never does.
    error = (analytic - numerical).abs()
    agree = (analytic == numerical) | (error.isfinite() & (error <= allowed))
    return bool(agree.all())


def check_gradient(f, x: Tensor, eps: float = 1e-6, rtol: float = 1e-3, atol: float = 1e-5) -> bool:
    point = x.detach().to(torch.float64).clone().requires_grad_()
    (analytic,) = torch.autograd.grad(f(point), point)
    return gradients_match(analytic, numerical_grad(f, x, eps), rtol, atol)

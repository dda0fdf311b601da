"""Kata 9, reference solution: gradients have the shape of what they differentiate."""

from torch import Tensor


def sum_to_shape(grad: Tensor, shape: tuple[int, ...]) -> Tensor:
    leading = grad.dim() - len(shape)
    if leading:
        grad = grad.sum(dim=tuple(range(leading)))
    stretched = tuple(d for d, size in enumerate(shape) if size == 1 and grad.shape[d] != 1)
    if stretched:  # sum(dim=()) would sum over everything
        grad = grad.sum(dim=stretched, keepdim=True)
    return grad


def linear_backward(
    x: Tensor, W: Tensor, b: Tensor, grad_out: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    grad_x = grad_out @ W  # (N, out) @ (out, in) -> (N, in)
    grad_W = grad_out.T @ x  # (out, N) @ (N, in) -> (out, in): summed over the batch
    grad_b = sum_to_shape(grad_out, b.shape)  # b was broadcast over the N rows
    return grad_x, grad_W, grad_b


def layer_twice_backward(
    x: Tensor, W: Tensor, b: Tensor, grad_out: Tensor
) -> tuple[Tensor, Tensor]:
    h = x @ W.T + b
    grad_h, grad_W_second, grad_b_second = linear_backward(h, W, b, grad_out)
    _, grad_W_first, grad_b_first = linear_backward(x, W, b, grad_h)
    # Fan-out: W and b were used by both applications, so their contributions add up.
    return grad_W_first + grad_W_second, grad_b_first + grad_b_second

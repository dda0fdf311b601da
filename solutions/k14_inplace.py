"""Kata 14, reference solution: in-place edits and the version counter."""

from collections.abc import Callable

import torch
from torch import Tensor


def edit_breaks_backward(op: Callable[[Tensor], Tensor], x: Tensor, edit: str) -> bool:
    if edit not in ("input", "output"):
        raise ValueError(f"edit must be 'input' or 'output', not {edit!r}")
    a = x.detach().clone().requires_grad_(True)
    inp = a.clone()  # a non-leaf: a leaf that requires grad refuses in-place edits
    out = op(inp)
    (inp if edit == "input" else out).add_(1)
    try:
        torch.autograd.grad(out.sum(), a)  # writes no .grad of a leaf op closes over
    except RuntimeError as error:
        if "modified by an inplace operation" not in str(error):
            raise
        return True
    return False


def softmax(x: Tensor) -> Tensor:
    exps = torch.exp(x - x.max())
    return exps / exps.sum()

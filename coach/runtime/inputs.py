"""The law "a kata function leaves its arguments alone", checked around every call.

A caller who passes a tensor to a function expects it back as it was: same values, same
.grad, same requires_grad, same shape. A function that edits it in place (`x += 1`,
`x.requires_grad_()`, a backward() that fills the caller's .grad) silently changes what the
caller computes next. Only a function whose docstring promises it (a training step updates
its weights) may do that, and its lesson says so in `changes_inputs`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

MAX_DEPTH = 3  # how far into lists, tuples, dicts and modules to look


@dataclass
class Seen:
    """One tensor the caller passed, and what it was like before the call."""

    where: str  # "x", "params[1]", "model.weight"
    tensor: torch.Tensor
    shape: tuple
    dtype: torch.dtype
    requires_grad: bool
    values: torch.Tensor | None
    grad: torch.Tensor | None


def _copy(tensor: torch.Tensor | None) -> torch.Tensor | None:
    if tensor is None:
        return None
    try:
        with torch.no_grad():
            return tensor.detach().clone()
    except RuntimeError:  # a tensor that cannot be copied (meta, sparse...): not checked
        return None


def _tensors(value, where: str, depth: int = 0):
    if isinstance(value, torch.Tensor):
        yield where, value
    elif depth >= MAX_DEPTH:
        return
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{where}[{key!r}]", depth + 1)
    elif isinstance(value, torch.nn.Module):
        for name, parameter in value.named_parameters():
            yield f"{where}.{name}", parameter


def snapshot(function, args, kwargs, skip=()) -> list[Seen]:
    """What each tensor argument of `function` is like now (parameters in `skip` excepted)."""
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return []  # a call that does not fit the signature fails by itself
    seen = []
    for name, value in bound.arguments.items():
        if name in skip:
            continue
        for where, tensor in _tensors(value, name):
            seen.append(
                Seen(
                    where,
                    tensor,
                    tuple(tensor.shape),
                    tensor.dtype,
                    tensor.requires_grad,
                    _copy(tensor),
                    _copy(tensor.grad) if tensor.is_leaf else None,
                )
            )
    return seen


def _same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(((a == b) | (a.isnan() & b.isnan())).all()) if a.numel() else True


def first_change(before: list[Seen]) -> tuple[Seen, str, str, str] | None:
    """(the tensor, what changed, before, after) for the first argument that changed."""
    from coach.runtime.fmt import fmt

    for seen in before:
        tensor = seen.tensor
        if tuple(tensor.shape) != seen.shape:
            return seen, "shape", str(seen.shape), str(tuple(tensor.shape))
        if tensor.requires_grad != seen.requires_grad:
            return seen, "requires_grad", str(seen.requires_grad), str(tensor.requires_grad)
        now = _copy(tensor)
        if seen.values is not None and not _same(seen.values, now):
            old, new = fmt(seen.values), fmt(now)
            if old == new:  # a change below the digits shown
                gap = (now.double() - seen.values.double()).abs().max().item()
                new += f" (a change of up to {gap:.3g}, below the digits shown)"
            return seen, "values", old, new
        if tensor.is_leaf and not _same(seen.grad, _copy(tensor.grad)):
            return seen, ".grad", fmt(seen.grad), fmt(tensor.grad)
    return None


WHY = {
    "values": (
        "an in-place operation (x += ..., x.mul_(...), x[...] = ..., x.data = ...) wrote into "
        "the caller's tensor. Compute a new tensor instead (y = x + ...), or copy first "
        "(x.clone())."
    ),
    ".grad": (
        "a backward() (or a hook or a clip) reached the caller's tensor and wrote its .grad. "
        "Differentiate your own copy (x.detach().clone().requires_grad_()), or use "
        "torch.autograd.grad, which returns gradients without touching .grad."
    ),
    "requires_grad on": (
        "requires_grad_() (or .requires_grad = True) switched it on for the caller's tensor. "
        "Make your own tensor that requires grad (x.detach().clone().requires_grad_())."
    ),
    "requires_grad off": (
        "requires_grad_(False) (or .requires_grad = False) switched it off for the caller's "
        "tensor, which freezes it for good. To compute without recording a graph, run the "
        "code under torch.no_grad(), or detach() the result; leave the caller's flags alone."
    ),
    "shape": (
        "an in-place reshape (unsqueeze_, squeeze_, resize_, t_) changed it. Use the "
        "out-of-place versions (x.unsqueeze(0), x.reshape(...)), which return a new view."
    ),
}


def describe(name: str, change: tuple[Seen, str, str, str]) -> str:
    seen, what, old, new = change
    why = (
        WHY[f"requires_grad {'on' if new == 'True' else 'off'}"]
        if what == "requires_grad"
        else WHY[what]
    )
    field = seen.where if what == "values" else f"{seen.where}.{what.lstrip('.')}"
    return (
        f"{name}() changed its argument `{seen.where}`: {field} was {old} before the call and "
        f"is {new} after it. A kata function must leave the caller's tensors as they were; the "
        f"caller goes on using them and would silently get different results. Here "
        f"{why}"
    )

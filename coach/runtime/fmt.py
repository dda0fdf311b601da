"""Values written as a learner would write them, for every message the runtime prints."""

from __future__ import annotations

import math

import torch


def fmt(value) -> str:
    """A value as a learner would write it: 6.0, -2.5, 0.1234568, tensor([1.0, 2.5])."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        text = f"{value:.7g}"
        return text if any(c in text for c in ".e") else text + ".0"
    if isinstance(value, torch.Tensor):
        return _fmt_tensor(value)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        inner = ", ".join(fmt(item) for item in value)
        return (
            f"[{inner}]"
            if isinstance(value, list)
            else f"({inner}{',' if len(value) == 1 else ''})"
        )
    return repr(value)


def _fmt_tensor(tensor: torch.Tensor) -> str:
    data = tensor.detach()
    if data.is_complex() or data.numel() > 12:
        return f"a tensor of shape {tuple(data.shape)}"
    if data.dim() == 0:
        return (
            f"tensor({fmt(data.item())})" if data.is_floating_point() else f"tensor({data.item()})"
        )

    def nested(t):
        if t.dim() == 0:
            return fmt(t.item()) if t.is_floating_point() else str(t.item())
        return "[" + ", ".join(nested(row) for row in t) + "]"

    return f"tensor({nested(data)})"

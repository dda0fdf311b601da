"""Kata 2, reference solution: backprop by hand and by autograd."""

import torch
from torch import Tensor


def forward(x: Tensor, w1: Tensor, w2: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    h = x * w1
    h_act = h + b
    y = h_act * w2
    return h, h_act, y


def autograd_grads(x: float, w1: float, w2: float, b: float) -> dict[str, float]:
    inputs = {
        name: torch.tensor(float(value), requires_grad=True)
        for name, value in {"x": x, "w1": w1, "w2": w2, "b": b}.items()
    }
    _, _, y = forward(**inputs)
    y.backward()
    return {name: tensor.grad.item() for name, tensor in inputs.items()}


def manual_grads(x: float, w1: float, w2: float, b: float) -> dict[str, float]:
    x, w1, w2, b = float(x), float(w1), float(w2), float(b)
    h = x * w1
    h_act = h + b

    dy_dy = 1.0
    # y = h_act * w2
    dy_dh_act = dy_dy * w2
    dy_dw2 = dy_dy * h_act
    # h_act = h + b: a sum passes the upstream gradient on unchanged
    dy_dh = dy_dh_act * 1.0
    dy_db = dy_dh_act * 1.0
    # h = x * w1
    dy_dx = dy_dh * w1
    dy_dw1 = dy_dh * x

    return {"x": dy_dx, "w1": dy_dw1, "w2": dy_dw2, "b": dy_db}

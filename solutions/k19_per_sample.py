"""Kata 19, reference solution: per-sample gradients with torch.func."""

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap


def per_sample_grads_loop(model: nn.Module, X: Tensor, y: Tensor) -> dict[str, Tensor]:
    names = [name for name, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    per_sample = {name: [] for name in names}
    for x_i, y_i in zip(X, y):
        loss = ((model(x_i) - y_i) ** 2).mean()  # a fresh graph for every sample
        for name, g in zip(names, torch.autograd.grad(loss, params)):
            per_sample[name].append(g)
    return {name: torch.stack(grads) for name, grads in per_sample.items()}


def per_sample_grads(model: nn.Module, X: Tensor, y: Tensor) -> dict[str, Tensor]:
    params = {name: p.detach() for name, p in model.named_parameters()}

    def sample_loss(params, x_i, y_i):
        return ((functional_call(model, params, (x_i,)) - y_i) ** 2).mean()

    # grad: d(sample_loss)/d(params); vmap: once per row of X and y, the same params for all.
    return vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)


def batch_grad(per_sample: dict[str, Tensor]) -> dict[str, Tensor]:
    return {name: grads.mean(dim=0) for name, grads in per_sample.items()}

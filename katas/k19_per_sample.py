"""Kata 19: per-sample gradients with torch.func.

An ordinary backward() gives the gradient of the batch loss: one number per weight, for all
samples together. Sometimes you need one gradient per sample: to clip each sample's
contribution (differentially private training), to find the examples that pull hardest, or to
measure how much the samples disagree. The batch gradient cannot be split back up into them.

The plain way is a Python loop: one forward and one gradient per sample. It is right, and slow
for big batches. torch.func does the same in one call, by transforming functions:

- `functional_call(model, params, (x,))` runs the model with the weights taken from the dict
  `params` instead of its own, so the loss becomes a function of params;
- `grad(f)` is a new function that returns the gradient of f (a scalar) with respect to its
  first argument, with the same structure (a dict of params gives a dict of gradients);
- `vmap(f, in_dims=(0, None))` runs f once per row of its 1st argument, sharing the 2nd, and
  stacks the results along a new first dimension (one entry of in_dims per argument: the
  dimension to map over, or None to share it).

So grad of a one-sample loss, mapped by vmap over the rows of X and y with params shared,
gives, for every parameter, a tensor of shape (batch size, *parameter shape). Their mean over
the samples is the batch gradient. vmap runs the function on whole batches behind the scenes,
so it must be pure: no .item(), no writing into tensors from outside.

Every loss here is the mean squared error: for one sample, ((model(x_i) - y_i) ** 2).mean();
for the batch, ((model(X) - y) ** 2).mean(), the mean of the samples' losses.

Predict before you run. A batch of 4 samples and a model nn.Linear(3, 2). What shape do the
per-sample gradients of weight have? And the batch gradient of weight?
"""

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap


def per_sample_grads_loop(model: nn.Module, X: Tensor, y: Tensor) -> dict[str, Tensor]:
    """Each sample's gradient, one sample at a time: {parameter name: stacked gradients}.

    For each row x_i, y_i of X, y: compute that sample's loss with a fresh forward pass,
    ((model(x_i) - y_i) ** 2).mean(), and its gradient with respect to every parameter. Return
    a dict keyed like model.named_parameters(), each value the sample gradients stacked along a
    new first dimension: shape (len(X), *parameter.shape).

    torch.autograd.grad(loss, params) returns the gradients and leaves model's .grad alone,
    as this function must: the caller may be collecting gradients there. (backward() would
    write into model's .grad, and zero_grad() would wipe what the caller had.)

    Predict first: what goes wrong if each loss.backward() adds into the same .grad?
    """
    # TODO: loop over the samples; one loss and one gradient each; stack per parameter.
    raise NotImplementedError("return every sample's gradient per parameter, with a loop")


def per_sample_grads(model: nn.Module, X: Tensor, y: Tensor) -> dict[str, Tensor]:
    """The same per-sample gradients in one call, with torch.func; no Python loop.

    Take the parameters as a dict, {name: p.detach() for name, p in model.named_parameters()}.
    Write sample_loss(params, x_i, y_i): one sample's loss, with the model run by
    functional_call(model, params, (x_i,)). Then let vmap run grad(sample_loss) over the rows
    of X and y, with params shared: which in_dims says that?

    Predict first: what would grad give if sample_loss called model(x_i) directly, ignoring
    params?
    """
    # TODO: params dict; one sample's loss as a function of params; its gradient, batched.
    raise NotImplementedError("return the same per-sample gradients, in one vectorised call")


def batch_grad(per_sample: dict[str, Tensor]) -> dict[str, Tensor]:
    """The batch gradient from the per-sample gradients: {parameter name: gradient}.

    The batch loss is the mean of the samples' losses, so its gradient is the mean of their
    gradients. Each value of per_sample has the samples along its first dimension. Do not
    change per_sample.
    """
    # TODO: one mean per parameter, over the samples.
    raise NotImplementedError("the mean over the samples' dimension, per parameter")

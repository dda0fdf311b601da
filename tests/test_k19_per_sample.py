"""Kata 19: per-sample gradients, by a loop and by torch.func; their mean is the batch gradient.

torch.func is imported by the kata, not here: the first torch.func.grad call of a process
costs as much as importing torch again (it imports torch._dynamo), and a red stub never pays it.
"""

import copy

import pytest
import torch
from torch import nn

from coach.runtime.testing import Wrong, check_value, fmt, load_kata, require

kata = load_kata("k19_per_sample")


class Batch:
    """A small regression batch for a model; its per-sample gradients worked out in the test."""

    def __init__(self, rng, model: nn.Module | None = None):
        self.size = rng.choice([4, 5])  # never 2 or 3, the sizes of Linear(3, 2)'s dimensions
        self.model = model if model is not None else nn.Linear(3, 2)
        self.X, self.y = torch.randn(self.size, 3), torch.randn(self.size, 2)
        self.described = "nn.Linear(3, 2)" if model is None else "a two-layer nn.Sequential"

    def call(self, function: str) -> str:
        return f"{function}(model, X, y) with model = {self.described} and {self.size} samples"

    def expected(self) -> dict[str, torch.Tensor]:
        """Each sample's gradient of ((model(x_i) - y_i) ** 2).mean(), in float64."""
        if isinstance(self.model, nn.Linear):
            W, b = self.model.weight.detach().double(), self.model.bias.detach().double()
            X, y = self.X.double(), self.y.double()
            residuals = X @ W.T + b - y  # (samples, outputs)
            scale = 2 / residuals.shape[1]  # d/dr of mean(r**2) is 2r / len(r)
            return {
                "weight": scale * residuals[:, :, None] * X[:, None, :],
                "bias": scale * residuals,
            }
        model = copy.deepcopy(self.model).double()  # any other model: autograd, sample by sample
        names, params = zip(*model.named_parameters())
        grads = [
            torch.autograd.grad(((model(x_i) - y_i) ** 2).mean(), params)
            for x_i, y_i in zip(self.X.double(), self.y.double())
        ]
        return {name: torch.stack([g[k] for g in grads]) for k, name in enumerate(names)}


def wrongs(expected: torch.Tensor) -> tuple[Wrong, ...]:
    """What the usual mistakes return for one parameter, given its true per-sample gradients."""
    size = len(expected)
    batch = expected.mean(dim=0)
    return (
        Wrong(
            batch,
            "that is the batch gradient: one gradient for all samples together, with no "
            "samples' dimension. Each sample needs its own: shape (samples, *parameter shape).",
        ),
        Wrong(
            batch.expand_as(expected),
            "every sample got the same gradient, the batch's. Take each gradient of one "
            "sample's own loss.",
        ),
        Wrong(
            expected.cumsum(dim=0),
            "each entry is the sum of the gradients of all samples so far: backward() added "
            "each sample's gradient into the same .grad. Clear .grad before each sample (or "
            "use torch.autograd.grad, which does not touch .grad).",
        ),
        Wrong(
            expected.sum(dim=0).expand_as(expected),
            "every entry is the sum over all samples: the list holds the same live .grad "
            "tensor again and again while backward() adds into it. Store a copy, "
            "p.grad.clone(), and clear .grad between samples.",
        ),
        Wrong(
            expected[-1].expand_as(expected),
            "every entry is the last sample's gradient: the list holds the same .grad tensor "
            "each time, and each backward() overwrote it in place. Store a copy, "
            "p.grad.clone(), or use torch.autograd.grad.",
        ),
        Wrong(
            expected / size,
            f"each gradient is {size} times too small: that is the sample's share of the "
            f"batch-mean loss. A per-sample gradient is that of the sample's own loss.",
        ),
        Wrong(
            torch.zeros_like(expected),
            "yours is all zero: the loss did not depend on the parameters given to it. With "
            "torch.func, run the model through functional_call(model, params, (x_i,)), not "
            "model(x_i).",
        ),
    )


def shown(result) -> str:
    return f"a dict with the keys {list(result)}" if isinstance(result, dict) else fmt(result)


def check_per_sample(result, batch: Batch, function: str) -> None:
    call = batch.call(function)
    expected = batch.expected()
    names = list(expected)
    require(
        isinstance(result, dict) and sorted(result) == sorted(names),
        f"Called {call}. It returned {shown(result)}; expected a dict keyed by parameter "
        f"name, {names}, as model.named_parameters() names them.",
    )
    for name in names:
        check_value(
            result[name],
            expected[name],
            call=call,
            what=f"result[{name!r}]",
            wrong=wrongs(expected[name]),
            rel=1e-4,
        )


def two_layer_model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


# --- per_sample_grads_loop ------------------------------------------------------------------


def call_loop(batch: Batch):
    shared_graph = None
    try:
        return kata.per_sample_grads_loop(batch.model, batch.X, batch.y)
    except NotImplementedError:
        raise
    except RuntimeError as error:
        if "backward through the graph a second time" not in str(error):
            raise
        shared_graph = str(error).split(".")[0]
    pytest.fail(
        f"Called {batch.call('per_sample_grads_loop')}. It raised RuntimeError "
        f"({shared_graph}): the samples shared one graph. The first backward freed what it "
        f"saved, so the second sample had nothing to walk back through. Run a fresh forward "
        f"pass, model(x_i), for every sample.",
        pytrace=False,
    )


def test_loop_gives_each_sample_its_own_gradient(rng):
    batch = Batch(rng)
    check_per_sample(call_loop(batch), batch, "per_sample_grads_loop")


def test_loop_works_for_any_model(rng):
    batch = Batch(rng, two_layer_model())
    check_per_sample(call_loop(batch), batch, "per_sample_grads_loop")


# --- per_sample_grads -----------------------------------------------------------------------

SIDE_EFFECTS = {
    "vmap: It looks like you're either (1) calling .item()": (
        "the function inside vmap asked for a plain number (.item(), float(), or an `if` on "
        "a tensor). vmap runs it on the whole batch at once, so there is no single number to "
        "give. Keep sample_loss pure: tensors in, a loss tensor out."
    ),
    "mutate a captured Tensor": (
        "the function inside grad wrote in place into a tensor from outside it. A transformed "
        "function must be pure: return what it computes instead of storing it."
    ),
}


def call_vmap(batch: Batch):
    side_effect = None
    try:
        return kata.per_sample_grads(batch.model, batch.X, batch.y)
    except NotImplementedError:
        raise
    except RuntimeError as error:
        side_effect = next((why for key, why in SIDE_EFFECTS.items() if key in str(error)), None)
        if side_effect is None:
            raise
    pytest.fail(
        f"Called {batch.call('per_sample_grads')}. It raised RuntimeError: {side_effect}",
        pytrace=False,
    )


def test_vmap_gives_each_sample_its_own_gradient(rng):
    batch = Batch(rng)
    check_per_sample(call_vmap(batch), batch, "per_sample_grads")


def test_vmap_works_for_any_model(rng):
    batch = Batch(rng, two_layer_model())
    check_per_sample(call_vmap(batch), batch, "per_sample_grads")


# --- batch_grad -----------------------------------------------------------------------------


def check_batch_grad(per_sample: dict, expected: dict, call: str) -> None:
    result = kata.batch_grad(per_sample)
    require(
        isinstance(result, dict) and sorted(result) == sorted(expected),
        f"Called {call}. It returned {type(result).__name__}; expected a dict with the keys "
        f"{list(expected)}, one batch gradient per parameter.",
    )
    for name, grads in per_sample.items():
        check_value(
            result[name],
            expected[name],
            call=call,
            what=f"result[{name!r}]",
            wrong=(
                Wrong(
                    grads.sum(dim=0),
                    f"that is the sum over the {len(grads)} samples. The batch loss is the "
                    f"mean of the samples' losses, so its gradient is the mean of theirs.",
                ),
                Wrong(
                    lambda got, grads=grads: (
                        isinstance(got, torch.Tensor) and got.shape != grads.shape[1:]
                    ),
                    f"the shape should be the parameter's, {tuple(grads.shape[1:])}: average "
                    f"over the samples, the first dimension (dim=0), and only over it.",
                ),
            ),
        )


def test_batch_grad_is_the_mean_over_the_samples(rng):
    size = rng.choice([4, 5])
    per_sample = {"weight": torch.randn(size, 2, 3), "bias": torch.randn(size, 2)}
    expected = {
        name: sum(grads[k].double() for k in range(size)) / size
        for name, grads in per_sample.items()
    }
    check_batch_grad(per_sample, expected, f"batch_grad(per_sample) with {size} samples")


def test_batch_grad_is_the_gradient_of_the_batch_loss(rng):
    batch = Batch(rng)
    per_sample = {name: grads.float() for name, grads in batch.expected().items()}
    model = batch.model
    batch_loss = ((model(batch.X) - batch.y) ** 2).mean()
    grads = torch.autograd.grad(batch_loss, list(model.parameters()))
    expected = {name: g for (name, _), g in zip(model.named_parameters(), grads)}
    call = (
        f"batch_grad(per_sample) with the per-sample gradients of nn.Linear(3, 2) on "
        f"{batch.size} samples"
    )
    check_batch_grad(per_sample, expected, call)

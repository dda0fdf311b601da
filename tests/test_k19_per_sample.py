"""Kata 19: per-sample gradients, by a loop and by torch.func; their mean is the batch gradient.

torch.func is imported by the kata, not here: the first torch.func.grad call of a process
costs as much as importing torch again (it imports torch._dynamo), and a red stub never pays it.
"""

import copy

import torch
from torch import nn

from coach.runtime.testing import Wrong, check_value, explained, fmt, load_kata, require

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
            "each time, which each sample zeroed in place (zero_()) before its backward() "
            "added into it. Store a copy, p.grad.clone(), or use torch.autograd.grad.",
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
    def shared_graph(error):
        return (
            f"Called {batch.call('per_sample_grads_loop')}. It raised RuntimeError "
            f"({str(error).split('.')[0]}): the samples shared one graph. The first backward "
            f"freed what it saved, so the second sample had nothing to walk back through. Run "
            f"a fresh forward pass, model(x_i), for every sample."
        )

    with explained({"backward through the graph a second time": shared_graph}):
        return kata.per_sample_grads_loop(batch.model, batch.X, batch.y)


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
    called = f"Called {batch.call('per_sample_grads')}. It raised RuntimeError: "
    with explained({key: called + why for key, why in SIDE_EFFECTS.items()}):
        return kata.per_sample_grads(batch.model, batch.X, batch.y)


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


# --- contracts and methods the stub states (issue 16) -----------------------------------------


class ForwardCalls:
    """A spy on model's forward calls: how many, and how many numbers each one's input held."""

    def __init__(self, model: nn.Module):
        self.model, self.sizes = model, []

    def __enter__(self):
        def seen(module, args):
            self.sizes.append(args[0].numel() if args and torch.is_tensor(args[0]) else None)

        self.handle = self.model.register_forward_pre_hook(seen)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_loop_leaves_the_callers_gradients_alone(rng):
    batch = Batch(rng)
    ((batch.model(batch.X) - batch.y) ** 2).mean().backward()  # the caller's own gradients
    # The inputs law checks model's .grad around the call: there, the same tensors, unchanged.
    check_per_sample(call_loop(batch), batch, "per_sample_grads_loop")


def test_loop_runs_a_fresh_forward_pass_per_sample(rng):
    batch = Batch(rng)
    with ForwardCalls(batch.model) as spy:
        result = call_loop(batch)
    one_sample = batch.X[0].numel()
    require(
        len(spy.sizes) == batch.size and all(size == one_sample for size in spy.sizes),
        f"Called {batch.call('per_sample_grads_loop')}. The model ran {len(spy.sizes)} "
        f"forward pass(es), on inputs of {spy.sizes} numbers; expected {batch.size}, one per "
        f"sample, each on one sample ({one_sample} numbers). The stub asks for a fresh "
        f"forward pass per sample, model(x_i): one batched model(X) shares one graph among "
        f"all the samples (and a batch norm layer would mix them).",
    )
    check_per_sample(result, batch, "per_sample_grads_loop")


def test_vmap_runs_no_python_loop_over_the_samples(rng):
    batch = Batch(rng)
    with ForwardCalls(batch.model) as spy:
        result = call_vmap(batch)
    require(
        len(spy.sizes) < batch.size,
        f"Called {batch.call('per_sample_grads')}. The model ran {len(spy.sizes)} forward "
        f"passes for {batch.size} samples: a Python loop over the samples, each with its own "
        f"torch.func.grad call. vmap runs sample_loss once for the whole batch: return "
        f"vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y), with no loop.",
    )
    check_per_sample(result, batch, "per_sample_grads")


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_a_float64_model_and_a_batch_of_one(rng):
    batch = Batch(rng)
    batch.model = batch.model.double()
    batch.X, batch.y = batch.X[:1].double(), batch.y[:1].double()
    batch.size = 1
    for function, call in (("per_sample_grads_loop", call_loop), ("per_sample_grads", call_vmap)):
        result = call(batch)
        check_per_sample(result, batch, function)
        require(
            all(grads.dtype == torch.float64 for grads in result.values()),
            f"Called {batch.call(function)} with a float64 model; the gradients came back as "
            f"{[g.dtype for g in result.values()]}, expected float64.",
        )

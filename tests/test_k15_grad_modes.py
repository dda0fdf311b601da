"""Kata 15: no_grad, inference_mode and requires_grad_(False) stop autograd; eval() does not."""

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from coach.runtime.testing import (
    Wrong,
    backward_passes,
    check_value,
    expect_tensor,
    explained,
    fail,
    fmt,
    load_kata,
    require,
)

kata = load_kata("k15_grad_modes")

INFERENCE_ERROR = "Inference tensors cannot be saved for backward"
NO_GRAD_FN_ERROR = "does not require grad and does not have a grad_fn"

EVAL_WHY = (
    "model.eval() does not stop autograd. It switches layers such as dropout and batch norm to "
    "their inference behaviour, nothing more: the graph is still recorded, and backward() "
    "still reaches every parameter."
)
NO_GRAD_FIX = (
    "Switch autograd off with torch.no_grad() around the forward pass (torch.inference_mode() "
    "switches it off too, but makes inference tensors, and these features are fed to autograd "
    "later)."
)
INFERENCE_WHY = (
    "tensors made under torch.inference_mode() are inference tensors, and autograd refuses to "
    "save one for backward ('Inference tensors cannot be saved for backward'): a linear layer "
    "fed with them cannot be trained. Use torch.no_grad() for values that will meet autograd "
    "later."
)


def random_model(rng) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor, str]:
    """A small body-activation-head model (torch's per-test seed), inputs and targets."""
    inputs, hidden, samples = rng.randint(2, 4), rng.randint(2, 5), rng.randint(3, 6)
    model = nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, 1))
    x, y = torch.randn(samples, inputs), torch.randn(samples, 1)
    shown = f"Sequential(Linear({inputs}, {hidden}), Tanh(), Linear({hidden}, 1))"
    return model, x, y, shown


def body_features(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """tanh(x W^T + b) of a body with this weight and bias, in float64."""
    return torch.tanh(x.double() @ weight.detach().double().T + bias.detach().double())


def in_eval_mode(model: nn.Module) -> bool:
    return any(not module.training for module in model.modules())


@contextlib.contextmanager
def eval_mode_seen(model: nn.Module):
    """Notes whether `model` (or a module in it) was in eval mode at a forward pass inside the
    block: a learner who calls eval() and puts the flag back afterwards is still seen."""
    seen: list[bool] = []
    handle = model.register_forward_pre_hook(lambda module, _: seen.append(in_eval_mode(module)))
    try:
        yield seen
    finally:
        handle.remove()


EVAL_INSIDE = "The model ran in eval mode during the call (model.eval() inside it)"
EVAL_BY_CALLER = "The caller's model was in eval mode"


def graph_message(
    call: str, result: torch.Tensor, in_eval: str = "", reaches: str = "the model"
) -> str:
    """Why a result that should carry no graph carries one. `in_eval`, when the model ran in
    eval mode, says so (EVAL_INSIDE, EVAL_BY_CALLER): then eval() is told first."""
    seen = (
        f"the result has grad_fn {type(result.grad_fn).__name__} and requires_grad="
        f"{result.requires_grad}, expected no grad_fn and False"
    )
    if in_eval:
        return (
            f"Called {call}. {in_eval}, and still {seen}: {EVAL_WHY} So a loss built on "
            f"these features would backpropagate into {reaches}. {NO_GRAD_FIX}"
        )
    return (
        f"Called {call}. T{seen[1:]}: autograd recorded the forward pass, so a loss built on "
        f"these features would backpropagate into {reaches}. Run the forward pass under "
        f"torch.no_grad() (or detach() the result)."
    )


# --- frozen_features --------------------------------------------------------------------------


def call_features(rng):
    model, x, _, shown = random_model(rng)
    call = f"frozen_features(model, x) with model = {shown} in training mode"
    with eval_mode_seen(model) as seen:
        result = kata.frozen_features(model, x)
    expect_tensor(result, call)
    return model, x, call, result, EVAL_INSIDE if any(seen) else ""


def test_features_of_a_model_in_eval_mode_carry_no_graph(rng):
    model, x, _, shown = random_model(rng)
    model.eval()  # the caller's: eval() is not a grad mode, so the result must carry no graph
    call = f"frozen_features(model, x) with model = {shown} in eval mode (model.eval())"
    result = expect_tensor(kata.frozen_features(model, x), call)
    if result.grad_fn is not None or result.requires_grad:
        fail(graph_message(call, result, EVAL_BY_CALLER))


def test_features_are_the_models_output(rng):
    model, x, call, result, _ = call_features(rng)
    head = model[2]
    features = body_features(x, model[0].weight, model[0].bias)
    expected = features @ head.weight.detach().double().T + head.bias.detach()
    check_value(result.detach(), expected.float(), call=call, what="The result")


def test_features_carry_no_graph_back_into_the_model(rng):
    *_, call, result, in_eval = call_features(rng)
    if result.grad_fn is not None or result.requires_grad:
        fail(graph_message(call, result, in_eval))


def test_features_can_be_fed_to_autograd_later(rng):
    *_, call, result, _ = call_features(rng)
    require(
        not result.is_inference(),
        f"Called {call}. The result is an inference tensor (result.is_inference() is True), "
        f"expected an ordinary tensor: {INFERENCE_WHY}",
    )
    new_head = nn.Linear(result.shape[-1], 1)
    new_head(result).pow(2).mean().backward()
    require(
        new_head.weight.grad is not None,
        f"Called {call}, then trained a new linear layer on the result: its weight got no "
        f"gradient.",
    )


# --- fine_tune_head ---------------------------------------------------------------------------


@dataclass
class Descent:
    """Gradient descent on the head alone, the body fixed, in float64."""

    losses: list[float]  # each step's loss, before its update
    weight: torch.Tensor  # the head's, after the last step
    bias: torch.Tensor
    body_grads: list[tuple[torch.Tensor, torch.Tensor]]  # each step's (weight, bias) gradient


def descent(x, y, body, head, *, lr: float, steps: int, cleared: bool = True) -> Descent:
    """`steps` steps of gradient descent on the head of tanh-body-head, in closed form.

    With the loss L = mean(r^2), r = h W^T + b - y and h = tanh(x A^T + c): dL/dout = 2r/N,
    dL/dW = (dL/dout)^T h, dL/db = sum of dL/dout, and for the body dL/dpre = (dL/dout W) *
    (1 - h^2), dL/dA = (dL/dpre)^T x, dL/dc = sum of dL/dpre. `cleared=False` is the learner
    who never clears .grad: each step applies the sum of every gradient so far.
    """
    features, target = body_features(x, *body), y.double()
    weight, bias = (p.double() for p in head)
    applied_weight, applied_bias = torch.zeros_like(weight), torch.zeros_like(bias)
    losses, body_grads = [], []
    for _ in range(steps):
        residual = features @ weight.T + bias - target
        losses.append((residual**2).mean().item())
        d_out = 2 * residual / residual.numel()
        d_pre = (d_out @ weight) * (1 - features**2)
        body_grads.append((d_pre.T @ x.double(), d_pre.sum(0)))
        grad_weight, grad_bias = d_out.T @ features, d_out.sum(0)
        if cleared:
            applied_weight, applied_bias = grad_weight, grad_bias
        else:
            applied_weight, applied_bias = applied_weight + grad_weight, applied_bias + grad_bias
        weight, bias = weight - lr * applied_weight, bias - lr * applied_bias
    return Descent(losses, weight, bias, body_grads)


@dataclass
class FineTune:
    """One call of fine_tune_head on a random model, and what the test needs to judge it."""

    model: nn.Sequential
    x: torch.Tensor
    y: torch.Tensor
    lr: float
    steps: int
    call: str
    losses: object  # what the learner returned
    body_before: list[torch.Tensor]
    head_before: list[torch.Tensor]
    passes: int  # autograd's backward passes during the call
    ran_in_eval: bool  # whether the model was in eval mode at a forward pass of the call

    def descent(self, *, cleared: bool = True) -> Descent:
        return descent(
            self.x,
            self.y,
            self.body_before,
            self.head_before,
            lr=self.lr,
            steps=self.steps,
            cleared=cleared,
        )


def run_fine_tune(rng, steps: int | None = None) -> FineTune:
    """Call fine_tune_head on a random model."""
    model, x, y, shown = random_model(rng)
    lr, steps = rng.choice([0.05, 0.1, 0.2]), steps or rng.randint(2, 4)
    call = f"fine_tune_head(model, x, y, lr={lr}, steps={steps}) with model = {shown}"
    body_before = [p.detach().clone() for p in model[0].parameters()]
    head_before = [p.detach().clone() for p in model[2].parameters()]
    escaped = {
        NO_GRAD_FN_ERROR: (
            "backward() raised 'element 0 of tensors does not require grad and does not have a "
            "grad_fn': the loss was computed under torch.no_grad() (or set_grad_enabled(False)), "
            "and results computed there have no grad_fn, so there is nothing to backpropagate "
            "through, not even to the head. Do not wrap the training step in no_grad to freeze "
            "the body: freeze it with model[0].requires_grad_(False), and keep no_grad for the "
            "update alone."
        ),
        INFERENCE_ERROR: f"It raised RuntimeError: {INFERENCE_WHY}",
    }
    escaped = {text: f"Called {call}. {why}" for text, why in escaped.items()}

    def frozen_grad_is_none(error):
        return (
            f"Called {call}. It raised TypeError ({error}): a frozen parameter's .grad is None, "
            f"because autograd computes no gradient for it. Update only the head's parameters "
            f"(or skip any p whose p.grad is None, as torch.optim does)."
        )

    with (
        backward_passes() as engine,
        eval_mode_seen(model) as seen,
        explained(escaped),
        explained({"NoneType": frozen_grad_is_none}, TypeError),
    ):
        losses = kata.fine_tune_head(model, x, y, lr, steps)
    return FineTune(
        model, x, y, lr, steps, call, losses, body_before, head_before, engine.passes, any(seen)
    )


NEVER_CLEARED = (
    "the gradients were never cleared: backward() adds into .grad, so each step applied the "
    "sum of its own gradient and every earlier step's. Clear the head's .grad (p.grad = None, "
    "or zero_grad()) before each backward()."
)


UPHILL = (
    "the loss went up: the update moved each parameter along its gradient, uphill "
    "(p += lr * p.grad). Gradient descent subtracts: p -= lr * p.grad."
)
NEVER_MOVED = (
    "the head never moved. `p = p - lr * p.grad` makes a new tensor and rebinds the name p, "
    "leaving the model's parameter as it was: update in place, p -= lr * p.grad (under "
    "torch.no_grad()), or p.sub_(lr * p.grad)."
)
LOSS_AFTER_UPDATE = (
    "each loss was measured after its step's update: these are the losses of the next steps. "
    "Record loss.item() from the forward pass, before backward() and the update."
)


def test_the_body_does_not_change(rng):
    run = run_fine_tune(rng)
    for (name, parameter), before in zip(run.model[0].named_parameters(), run.body_before):
        if torch.equal(parameter.detach(), before):
            continue
        why = (
            EVAL_WHY + " So the body was trained along with the head."
            if run.ran_in_eval or in_eval_mode(run.model)
            else "a frozen parameter was changed by an update: the body was not frozen, so "
            "it got gradients and the update moved it. Freeze it with "
            "model[0].requires_grad_(False) before the first forward pass."
        )
        fail(
            f"Called {run.call}. model[0].{name} changed from {fmt(before)} to "
            f"{fmt(parameter.detach())}, expected no change: {why}"
        )


def test_the_body_gets_no_gradient_at_all(rng):
    run = run_fine_tune(rng)
    every_step = run.descent().body_grads
    freeze = (
        "Freeze it with model[0].requires_grad_(False): then no gradient is computed for it at all."
    )
    for index, (name, parameter) in enumerate(run.model[0].named_parameters()):
        piled_up = sum(grads[index] for grads in every_step)
        check_value(
            parameter.grad,
            None,
            call=run.call,
            what=f"model[0].{name}.grad",
            rel=1e-4,
            wrong=[
                Wrong(
                    piled_up,
                    f"that is the sum of the body's gradients over the {run.steps} steps. "
                    f"Leaving the body out of the update (or the optimizer) keeps it still, "
                    f"but autograd still computes its gradients at every backward(), and "
                    f"since nothing clears them they pile up step after step (a later update "
                    f"of all parameters would apply them). {freeze}",
                ),
                Wrong(
                    lambda got: got is not None,
                    f"the body is not frozen, so autograd still computes its gradients at "
                    f"every backward(). Clearing them (model.zero_grad()) or leaving them out "
                    f"of the update throws them away afterwards; it does not stop autograd "
                    f"from computing them. {freeze}",
                ),
            ],
        )


def test_the_body_is_left_frozen(rng):
    run = run_fine_tune(rng)
    for name, parameter in run.model[0].named_parameters():
        require(
            not parameter.requires_grad,
            f"Called {run.call}. model[0].{name}.requires_grad is True, expected False: freeze "
            f"the body with model[0].requires_grad_(False) and leave it frozen, so that any "
            f"later backward() or optimizer leaves it alone too.",
        )


def test_the_head_follows_gradient_descent(rng):
    run = run_fine_tune(rng)
    losses, call = run.losses, run.call
    trajectories = expected, never_cleared = run.descent(), run.descent(cleared=False)
    require(
        isinstance(losses, list) and all(isinstance(loss, float) for loss in losses),
        f"Called {call}. It returned {losses!r}, expected a list of floats, one per step "
        f"(loss.item()).",
    )
    body_moved = not all(
        torch.equal(parameter.detach(), before)
        for parameter, before in zip(run.model[0].parameters(), run.body_before)
    )
    moved = Wrong(
        lambda got: body_moved,
        "the body moved too, so the head was trained on features that kept changing. Freeze "
        "the body with model[0].requires_grad_(False) before the first step.",
    )
    head = run.model[2]
    uphill = descent(run.x, run.y, run.body_before, run.head_before, lr=-run.lr, steps=run.steps)
    one_more = descent(
        run.x, run.y, run.body_before, run.head_before, lr=run.lr, steps=run.steps + 1
    )
    for what, got, value, accumulated, ascent, still in (  # tensors in float32, as the head's
        ("The list of losses", losses, expected.losses, never_cleared.losses, uphill.losses,
         [expected.losses[0]] * run.steps),
        ("The head's weight", head.weight.detach(), *(d.weight.float() for d in trajectories),
         uphill.weight.float(), run.head_before[0]),
        ("The head's bias", head.bias.detach(), *(d.bias.float() for d in trajectories),
         uphill.bias.float(), run.head_before[1]),
    ):  # fmt: skip
        wrong = [moved, Wrong(accumulated, NEVER_CLEARED), Wrong(ascent, UPHILL)]
        wrong.append(Wrong(still, NEVER_MOVED))
        if what == "The list of losses":
            wrong.append(Wrong(one_more.losses[1:], LOSS_AFTER_UPDATE))
        check_value(got, value, call=call, what=what, rel=1e-4, wrong=wrong)


def test_one_backward_per_step(rng):
    run = run_fine_tune(rng)
    require(
        run.passes == run.steps,
        f"Called {run.call}. Autograd ran {run.passes} backward pass(es), expected "
        f"{run.steps}: one backward() per training step.",
    )


# --- contracts the stub states (issue 16) -----------------------------------------------------


def test_a_stale_head_gradient_does_not_join_the_first_step(rng):
    model, x, y, shown = random_model(rng)
    head = model[2]
    stale = [torch.randn_like(parameter) for parameter in head.parameters()]
    for parameter, grad in zip(head.parameters(), stale):
        parameter.grad = grad.clone()  # left from elsewhere
    lr = round(rng.uniform(0.05, 0.2), 3)
    body, before = ([p.detach().clone() for p in part.parameters()] for part in (model[0], head))
    step = descent(x, y, body, before, lr=lr, steps=1)
    call = (
        f"fine_tune_head(model, x, y, {lr}, 1) with model = {shown}, its head holding stale .grad"
    )
    kata.fine_tune_head(model, x, y, lr, 1)
    for (name, parameter), expected, grad in zip(
        head.named_parameters(), (step.weight, step.bias), stale
    ):
        check_value(
            parameter.detach(),
            expected.float(),
            call=call,
            what=f"The head's {name} after the step",
            rel=1e-4,
            wrong=[
                Wrong(
                    (expected - lr * grad.double()).float(),
                    "the first step used the stale gradient plus its own: backward() adds "
                    "into whatever .grad holds. Clear the head's gradients before each "
                    "backward(), the first included.",
                )
            ],
        )


def test_a_stale_body_gradient_does_not_move_the_frozen_body(rng):
    model, x, y, shown = random_model(rng)
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter)  # left from elsewhere, body included
    before = [p.detach().clone() for p in model[0].parameters()]
    lr, steps = round(rng.uniform(0.05, 0.2), 3), rng.randint(1, 3)
    call = (
        f"fine_tune_head(model, x, y, {lr}, {steps}) with model = {shown}, every parameter "
        f"holding a stale .grad"
    )
    kata.fine_tune_head(model, x, y, lr, steps)
    for (name, parameter), old in zip(model[0].named_parameters(), before):
        if not torch.equal(parameter.detach(), old):
            fail(
                f"Called {call}. model[0].{name} changed from {fmt(old)} to "
                f"{fmt(parameter.detach())}, expected no change: the frozen body still moved. "
                f"requires_grad_(False) stops new gradients but leaves an old .grad in place, "
                f"and an update that uses it (torch.optim.SGD given every parameter of the "
                f"model, or a loop over model.parameters()) moves the body with it. Update the "
                f"head's parameters only (model[2].parameters()), or set the body's .grad to "
                f"None when you freeze it."
            )


def test_a_model_in_eval_mode_stays_in_eval_mode(rng):
    model, x, y, _ = random_model(rng)
    model.eval()
    kata.fine_tune_head(model, x, y, 0.1, 2)  # the inputs law checks the training flag
    kata.frozen_features(model, x)


def test_features_of_a_float64_model_for_one_sample(rng):
    model, x, _, shown = random_model(rng)
    model = model.double()
    x = x[:1].double().requires_grad_()  # the caller's x requires grad: the law checks it
    call = f"frozen_features(model, x) with model = {shown} in float64 and one sample"
    with eval_mode_seen(model) as seen:
        result = kata.frozen_features(model, x)
    require(
        isinstance(result, torch.Tensor) and result.dtype == torch.float64,
        f"Called {call}. It returned {getattr(result, 'dtype', type(result))}, expected a "
        f"float64 tensor: the model's own dtype.",
    )
    head = model[2]
    features = body_features(x, model[0].weight, model[0].bias)
    expected = features @ head.weight.detach().T + head.bias.detach()
    check_value(result.detach(), expected.detach(), call=call, what="The result")
    if result.grad_fn is not None or result.requires_grad:
        reaches = "the model, and into the caller's x too (it requires grad)"
        fail(graph_message(call, result, EVAL_INSIDE if any(seen) else "", reaches))

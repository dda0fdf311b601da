"""Kata 15: no_grad, inference_mode and requires_grad_(False) stop autograd; eval() does not."""

import copy

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
    "model.eval() does not stop gradients. It only switches layers such as dropout and batch "
    "norm to their inference behaviour; autograd still records every operation and backward() "
    "still reaches every parameter."
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


# --- frozen_features --------------------------------------------------------------------------


def call_features(rng):
    model, x, _, shown = random_model(rng)
    call = f"frozen_features(model, x) with model = {shown} in training mode"
    result = kata.frozen_features(model, x)
    expect_tensor(result, call)
    return model, x, call, result


def test_features_are_the_models_output(rng):
    model, x, call, result = call_features(rng)
    head = model[2]
    features = body_features(x, model[0].weight, model[0].bias)
    expected = features @ head.weight.detach().double().T + head.bias.detach()
    check_value(result.detach(), expected.float(), call=call, what="The result")


def test_features_carry_no_graph_back_into_the_model(rng):
    model, _, call, result = call_features(rng)
    if result.grad_fn is None and not result.requires_grad:
        return
    seen = (
        f"Called {call}. The result has grad_fn {type(result.grad_fn).__name__} and "
        f"requires_grad={result.requires_grad}, expected no grad_fn and False: autograd "
        f"recorded the forward pass, so a loss built on these features would backpropagate "
        f"into the model."
    )
    fix = "Run the forward pass under torch.no_grad() (or detach() the result)."
    why = f"{EVAL_WHY} {fix}" if in_eval_mode(model) else fix
    fail(f"{seen} {why}")


def test_features_can_be_fed_to_autograd_later(rng):
    *_, call, result = call_features(rng)
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


def run_fine_tune(rng, steps: int | None = None):
    """Call fine_tune_head on a random model; return what the test needs to judge it."""
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
        explained(escaped),
        explained({"NoneType": frozen_grad_is_none}, TypeError),
    ):
        losses = kata.fine_tune_head(model, x, y, lr, steps)
    return model, x, y, lr, steps, call, losses, body_before, head_before, engine.passes


def expected_training(features, y, head_before, lr: float, steps: int):
    """Gradient descent on the head alone, in closed form: (losses, weight, bias), float64."""
    target = y.double()
    weight, bias = (p.double() for p in head_before)
    losses = []
    for _ in range(steps):
        residual = features @ weight.T + bias - target
        losses.append((residual**2).mean().item())
        scale = 2 / residual.numel()
        weight, bias = (
            weight - lr * scale * residual.T @ features,
            bias - lr * scale * residual.sum(0),
        )
    return losses, weight, bias


def test_the_body_does_not_change(rng):
    model, *_, call, _, body_before, _, _ = run_fine_tune(rng)
    for (name, parameter), before in zip(model[0].named_parameters(), body_before):
        if torch.equal(parameter.detach(), before):
            continue
        why = (
            EVAL_WHY + " So the body was trained along with the head."
            if in_eval_mode(model)
            else "a frozen parameter was changed by an update: the body was not frozen, so "
            "it got gradients and the update moved it. Freeze it with "
            "model[0].requires_grad_(False) before the first forward pass."
        )
        fail(
            f"Called {call}. model[0].{name} changed from {fmt(before)} to "
            f"{fmt(parameter.detach())}, expected no change: {why}"
        )


def test_the_body_gets_no_gradient_at_all(rng):
    model, *_, call, _, _, _, _ = run_fine_tune(rng)
    for name, parameter in model[0].named_parameters():
        require(
            parameter.grad is None,
            f"Called {call}. model[0].{name}.grad is {fmt(parameter.grad)}, expected None: "
            f"leaving the body out of the update (or the optimizer) keeps it still, but "
            f"autograd still computes its gradients at every backward(), and since nothing "
            f"clears them they pile up step after step (a later update of all parameters "
            f"would apply them). Freeze it with model[0].requires_grad_(False): then no "
            f"gradient is computed for it at all.",
        )


def test_the_body_is_left_frozen(rng):
    model, *_, call, _, _, _, _ = run_fine_tune(rng)
    for name, parameter in model[0].named_parameters():
        require(
            not parameter.requires_grad,
            f"Called {call}. model[0].{name}.requires_grad is True, expected False: freeze "
            f"the body with model[0].requires_grad_(False) and leave it frozen, so that any "
            f"later backward() or optimizer leaves it alone too.",
        )


def test_the_head_follows_gradient_descent(rng):
    model, x, y, lr, steps, call, losses, body_before, head_before, _ = run_fine_tune(rng)
    expected_losses, weight, bias = expected_training(
        body_features(x, *body_before), y, head_before, lr, steps
    )
    require(
        isinstance(losses, list) and all(isinstance(loss, float) for loss in losses),
        f"Called {call}. It returned {losses!r}, expected a list of floats, one per step "
        f"(loss.item()).",
    )
    body_moved = not all(
        torch.equal(parameter.detach(), before)
        for parameter, before in zip(model[0].parameters(), body_before)
    )
    moved = Wrong(
        lambda got: body_moved,
        "the body moved too, so the head was trained on features that kept changing. Freeze "
        "the body with model[0].requires_grad_(False) before the first step.",
    )
    check_value(
        losses, expected_losses, call=call, what="The list of losses", rel=1e-4, wrong=[moved]
    )
    head = model[2]
    check_value(
        head.weight.detach(),
        weight.float(),
        call=call,
        what="The head's weight",
        rel=1e-4,
        wrong=[moved],
    )
    check_value(
        head.bias.detach(), bias.float(), call=call, what="The head's bias", rel=1e-4, wrong=[moved]
    )


def test_one_backward_per_step(rng):
    *_, steps, call, _, _, _, passes = run_fine_tune(rng)
    require(
        passes == steps,
        f"Called {call}. Autograd ran {passes} backward pass(es), expected {steps}: one "
        f"backward() per training step.",
    )


# --- contracts the stub states (issue 16) -----------------------------------------------------


def test_a_stale_head_gradient_does_not_join_the_first_step(rng):
    model, x, y, shown = random_model(rng)
    head = model[2]
    for parameter in head.parameters():
        parameter.grad = torch.randn_like(parameter)  # left from elsewhere
    reference = copy.deepcopy(model)  # the test's own step, from a fresh gradient
    loss = ((reference(x) - y) ** 2).mean()
    grads = torch.autograd.grad(loss, list(reference[2].parameters()))
    lr = round(rng.uniform(0.05, 0.2), 3)
    expected = [p.detach() - lr * g for p, g in zip(reference[2].parameters(), grads)]
    stale = [p.detach() - lr * (g + p.grad) for p, g in zip(head.parameters(), grads)]
    call = (
        f"fine_tune_head(model, x, y, {lr}, 1) with model = {shown}, its head holding stale .grad"
    )
    kata.fine_tune_head(model, x, y, lr, 1)
    check_value(
        [p.detach() for p in head.parameters()],
        expected,
        call=call,
        what="The head's parameters after the step",
        wrong=[
            Wrong(
                stale,
                "the first step used the stale gradient plus its own: backward() adds into "
                "whatever .grad holds. Clear the head's gradients before each backward(), the "
                "first included.",
            )
        ],
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
    require(
        result.grad_fn is None and not result.requires_grad,
        f"Called {call}. The result has grad_fn {type(result.grad_fn).__name__} and "
        f"requires_grad={result.requires_grad}: with a caller's x that requires grad the "
        f"graph reaches x too. Run the forward pass under torch.no_grad().",
    )

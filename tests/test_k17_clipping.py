"""Kata 17: clipping by the global norm of all gradients together, and by value."""

import math

import pytest
import torch

from coach.runtime.testing import (
    Wrong,
    caught,
    check_value,
    expect_float,
    explained,
    fmt,
    load_kata,
    require,
)

kata = load_kata("k17_clipping")


# --- building gradients with chosen norms ---------------------------------------------------


def gradient(shape: tuple, norm: float) -> torch.Tensor:
    """A random gradient of the given shape whose L2 norm is `norm`."""
    direction = torch.randn(shape)
    return direction / direction.norm() * norm


def params_with(grads: list) -> list[torch.Tensor]:
    """One leaf parameter per gradient (None: a parameter that has no .grad yet)."""
    params = []
    for grad in grads:
        shape = grad.shape if grad is not None else (2,)
        param = torch.randn(shape).requires_grad_()
        param.grad = None if grad is None else grad.clone()
        params.append(param)
    return params


def total_norm(grads: list) -> float:
    """The global L2 norm, in float64: the square root of every element squared, summed."""
    return math.sqrt(sum(float(grad.double().pow(2).sum()) for grad in grads if grad is not None))


def own_norms(grads: list) -> list[float]:
    return [float(grad.double().norm()) for grad in grads if grad is not None]


def scaled(grads: list, factor: float) -> list:
    return [None if grad is None else grad * factor for grad in grads]


def clip_call(grads: list, max_norm: float) -> str:
    return f"clip_grad_norm(params, {fmt(max_norm)}) with the gradients {fmt(grads)}"


def clip_norm(grads: list, max_norm: float) -> tuple[str, float, list]:
    """Call clip_grad_norm on parameters holding `grads`: (call, returned norm, .grad after)."""
    params = params_with(grads)
    call = clip_call(grads, max_norm)
    result = kata.clip_grad_norm(params, max_norm)
    norm = expect_float(result, call, "the total norm")
    return call, norm, [param.grad for param in params]


def check_returned_norm(call: str, norm: float, grads: list, max_norm: float) -> None:
    norms = own_norms(grads)
    check_value(
        norm,
        total_norm(grads),
        call=call,
        what="The returned norm",
        wrong=(
            Wrong(
                min(max_norm, total_norm(grads)),
                "that is the norm after clipping. Return the total norm measured before "
                "clipping, as clip_grad_norm_ does: it says how large the gradients got.",
            ),
            Wrong(
                sum(norms),
                "that is the parameters' own norms added up. The global norm treats all "
                "gradients as one long vector: the square root of the sum of their squared "
                "norms.",
            ),
            Wrong(
                total_norm(grads) ** 2,
                "that is the sum of the squares without the square root: the norm is its "
                "square root.",
            ),
            Wrong(
                max(norms, default=0.0),
                "that is the largest parameter's own norm. The global norm takes all "
                "gradients together: the square root of the sum of their squared norms.",
            ),
        ),
    )


GRADS_AFTER = "[p.grad for p in params] after the call"

UNCHANGED = (
    "the gradients came back unchanged, though the total norm is above max_norm. Scale them "
    "in place (grad.mul_(factor)): a new tensor such as grad * factor changes nothing unless "
    "it is written back into p.grad."
)


def clipping_wrongs(grads: list, max_norm: float) -> tuple[Wrong, ...]:
    """What the usual mistakes leave in the gradients when the total norm is above max_norm."""
    return (
        Wrong(
            [None if g is None else g * min(1.0, max_norm / float(g.norm())) for g in grads],
            "each parameter was clipped by its own norm, so only those above max_norm shrank "
            "and the step changed direction. Clip by the global norm: one factor, "
            "max_norm / total_norm, for every gradient.",
        ),
        Wrong(
            scaled(grads, max_norm / sum(own_norms(grads))),
            "the factor was max_norm divided by the parameters' own norms added up. The total "
            "norm is the square root of the sum of their squared norms.",
        ),
        Wrong(grads, UNCHANGED),
    )


# --- clip_grad_norm -------------------------------------------------------------------------


def test_returns_the_norm_of_all_gradients_together(rng):
    grads = [gradient((2, 2), rng.uniform(0.5, 3)), gradient((3,), rng.uniform(0.5, 3))]
    max_norm = round(rng.uniform(0.2, 0.4), 3)
    call, norm, _ = clip_norm(grads, max_norm)
    check_returned_norm(call, norm, grads, max_norm)


def test_gradients_above_the_limit_shrink_together_to_max_norm(rng):
    # The middle parameter alone is above max_norm; the others are below it.
    grads = [
        gradient((2, 2), rng.uniform(0.5, 1.5)),
        gradient((3,), rng.uniform(3.0, 5.0)),
        gradient((1,), rng.uniform(0.5, 1.5)),
    ]
    max_norm = round(rng.uniform(1.6, 2.9), 3)
    call, norm, after = clip_norm(grads, max_norm)
    factor = max_norm / total_norm(grads)
    check_value(
        after,
        scaled(grads, factor),
        call=call,
        what=GRADS_AFTER,
        wrong=clipping_wrongs(grads, max_norm),
    )
    check_returned_norm(call, norm, grads, max_norm)


def test_parameters_each_below_the_limit_are_still_clipped_together(rng):
    grads = [gradient((2,), rng.uniform(0.8, 1.2)) for _ in range(4)]
    max_norm = round(rng.uniform(1.25, 1.5), 3)
    call, _, after = clip_norm(grads, max_norm)
    check_value(
        after,
        scaled(grads, max_norm / total_norm(grads)),
        call=call,
        what=GRADS_AFTER,
        wrong=(
            Wrong(
                grads,
                f"the gradients came back unchanged. Each parameter's own norm "
                f"({', '.join(fmt(round(n, 4)) for n in own_norms(grads))}) is below max_norm, "
                f"but their total norm {fmt(round(total_norm(grads), 4))} is above it: clip by "
                f"the norm of all gradients together, not parameter by parameter (and scale "
                f"them in place).",
            ),
        ),
    )


def test_gradients_below_the_limit_are_left_exactly_alone(rng):
    grads = [gradient((2, 2), rng.uniform(0.5, 2)), gradient((3,), rng.uniform(0.5, 2))]
    max_norm = round(total_norm(grads) * rng.uniform(1.2, 3.0), 3)
    call, norm, after = clip_norm(grads, max_norm)
    check_value(
        after,
        grads,
        call=call,
        what=GRADS_AFTER,
        wrong=(
            Wrong(
                scaled(grads, max_norm / total_norm(grads)),
                "gradients below the limit were scaled UP to max_norm. Clipping only ever "
                "shrinks: multiply by max_norm / total_norm only when the total norm is above "
                "max_norm (the factor is at most 1).",
            ),
        ),
        rel=1e-6,
        abs_=1e-7,
    )
    check_returned_norm(call, norm, grads, max_norm)


def test_parameters_without_a_gradient_are_skipped(rng):
    grads = [gradient((2,), rng.uniform(2, 3)), None, gradient((3,), rng.uniform(2, 3))]
    max_norm = round(rng.uniform(0.5, 1.5), 3)
    call, norm, after = clip_norm(grads, max_norm)
    check_value(
        after,
        scaled(grads, max_norm / total_norm(grads)),
        call=call,
        what=GRADS_AFTER,
        wrong=clipping_wrongs(grads, max_norm),
    )
    check_returned_norm(call, norm, grads, max_norm)


def test_no_gradients_at_all_give_a_total_norm_of_zero():
    call = clip_call([None, None], 1.0)

    def divided_by_zero(error):
        return (
            f"Called {call}. It raised ZeroDivisionError ({error}): no parameter has a "
            f"gradient, so the total norm is 0 and max_norm / total_norm divides by zero. Only "
            f"scale when the total norm is above max_norm (a norm of 0 never is)."
        )

    with explained(divided_by_zero, ZeroDivisionError):
        call, norm, after = clip_norm([None, None], 1.0)
    check_value(
        norm,
        0.0,
        call=call,
        what="The returned norm",
        wrong=(Wrong(1.0, "that is max_norm; with no gradient at all the total norm is 0.0."),),
    )
    require(all(grad is None for grad in after), f"Called {call}. A .grad was created: {after}.")


def test_all_zero_gradients_stay_zero(rng):
    grads = [torch.zeros(2, 2), torch.zeros(3)]
    max_norm = round(rng.uniform(0.5, 2), 3)
    call = clip_call(grads, max_norm)

    def divided_by_zero(error):
        return (
            f"Called {call}. It raised ZeroDivisionError ({error}): every gradient is "
            f"zero, so the total norm is 0 and max_norm / total_norm divides by zero. Only scale "
            f"when the total norm is above max_norm (a norm of 0 never is)."
        )

    with explained(divided_by_zero, ZeroDivisionError):
        call, norm, after = clip_norm(grads, max_norm)
    check_value(
        after,
        grads,
        call=call,
        what=GRADS_AFTER,
        wrong=(
            Wrong(
                lambda got: any(bool(grad.isnan().any()) for grad in got),
                "zero gradients became nan. The total norm is 0, max_norm / 0 is inf, and "
                "0 * inf is nan, not 0. Only scale when the total norm is above max_norm.",
            ),
        ),
    )
    check_value(norm, 0.0, call=call, what="The returned norm")


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_a_non_finite_norm_raises_and_leaves_the_gradients_alone(bad, rng):
    grads = [gradient((2, 2), rng.uniform(0.5, 2)), gradient((3,), rng.uniform(0.5, 2))]
    grads[rng.randrange(2)].view(-1)[0] = bad
    max_norm = round(rng.uniform(0.5, 2), 3)
    params = params_with(grads)
    call = clip_call(grads, max_norm)
    result = None
    with caught(RuntimeError) as refusal:
        result = kata.clip_grad_norm(params, max_norm)
    check_value(
        [param.grad for param in params],
        grads,
        call=call,
        what=GRADS_AFTER,
        wrong=(
            Wrong(
                lambda got: all(bool((grad.isnan() | (grad == 0)).all()) for grad in got),
                f"the gradients were scaled by max_norm / {bad}, which turned them into zeros "
                f"and nans. Training would go on with a ruined step and no warning: when the "
                f"total norm is not finite, raise RuntimeError before touching the gradients.",
            ),
        ),
    )
    require(
        refusal.error is not None,
        f"Called {call}. It returned {fmt(result)} instead of raising RuntimeError: the total "
        f"norm is {bad}, and a non-finite norm cannot be clipped. Check math.isfinite(total) "
        f"and raise, as clip_grad_norm_(..., error_if_nonfinite=True) does.",
    )


def test_agrees_with_torch_clip_grad_norm(rng):
    grads = [gradient((2, 3), rng.uniform(0.1, 3)), gradient((2,), rng.uniform(0.1, 3))]
    max_norm = round(total_norm(grads) * rng.uniform(0.2, 1.8), 3)
    reference = params_with(grads)
    torch_norm = torch.nn.utils.clip_grad_norm_(reference, max_norm).item()
    call, norm, after = clip_norm(grads, max_norm)
    check_value(norm, torch_norm, call=call, what="The returned norm")
    check_value(after, [param.grad for param in reference], call=call, what=GRADS_AFTER)


# --- clip_grad_value ------------------------------------------------------------------------


def test_clip_by_value_clamps_every_element_on_its_own(rng):
    grads = [torch.randn(2, 3) * 2, None, torch.randn(3) * 2]
    clip_value = round(rng.uniform(0.5, 1.5), 3)
    reference = params_with(grads)
    torch.nn.utils.clip_grad_value_(reference, clip_value)
    params = params_with(grads)
    call = f"clip_grad_value(params, {fmt(clip_value)}) with the gradients {fmt(grads)}"
    kata.clip_grad_value(params, clip_value)
    by_norm = scaled(grads, min(1.0, clip_value / total_norm(grads)))
    check_value(
        [param.grad for param in params],
        [param.grad for param in reference],
        call=call,
        what=GRADS_AFTER,
        wrong=(
            Wrong(
                grads,
                "the gradients came back unchanged. clamp() returns a new tensor; change "
                "p.grad itself with p.grad.clamp_(-clip_value, clip_value).",
            ),
            Wrong(
                by_norm,
                "that is clipping by the global norm. Clipping by value clamps each element "
                "into [-clip_value, clip_value] on its own.",
            ),
            Wrong(
                [None if grad is None else grad.clamp(0, clip_value) for grad in grads],
                "the negative elements became 0: the range is [-clip_value, clip_value], "
                "not [0, clip_value].",
            ),
        ),
    )


# --- clipped_sgd_step -----------------------------------------------------------------------


class Regression:
    """A small linear model y = X @ W.T + b with a mean squared error loss."""

    def __init__(self, rng):
        self.X, self.Y = torch.randn(4, 3), torch.randn(4, 2)
        self.start = [torch.randn(2, 3), torch.randn(2)]
        self.lr = round(rng.uniform(0.05, 0.5), 3)

    def loss(self, W, b):
        return ((self.X @ W.T + b - self.Y) ** 2).mean()

    def gradients(self) -> list[torch.Tensor]:
        """d(loss)/dW and d(loss)/db at the start, by autograd in float64."""
        W, b = (value.double().requires_grad_() for value in self.start)
        loss = ((self.X.double() @ W.T + b - self.Y.double()) ** 2).mean()
        return [grad.float() for grad in torch.autograd.grad(loss, (W, b))]

    def step(self, max_norm: float, stale: list | None = None):
        """Call clipped_sgd_step: (call, the returned norm, the weights after)."""
        W, b = (value.clone().requires_grad_() for value in self.start)
        if stale is not None:
            W.grad, b.grad = (grad.clone() for grad in stale)

        def loss_fn():
            return self.loss(W, b)

        call = (
            f"clipped_sgd_step([W, b], loss_fn, {fmt(max_norm)}, {fmt(self.lr)}) with the "
            f"mean squared error of X @ W.T + b"
        )
        if stale is not None:
            call += f", W and b holding old gradients {fmt(stale)}"
        result = kata.clipped_sgd_step([W, b], loss_fn, max_norm, self.lr)
        norm = expect_float(result, call, "the total norm")
        return call, norm, [W.detach(), b.detach()]

    def after(self, grads: list) -> list[torch.Tensor]:
        return [value - self.lr * grad for value, grad in zip(self.start, grads)]


def clipped(grads: list, max_norm: float) -> list:
    return scaled(grads, min(1.0, max_norm / total_norm(grads)))


def check_step_norm(call: str, norm: float, grads: list, max_norm: float) -> None:
    check_value(
        norm,
        total_norm(grads),
        call=call,
        what="The returned norm",
        wrong=(
            Wrong(
                0.0,
                "that is the norm before backward(), when there are no gradients yet: "
                "clipping ran too early. Order: clear, backward(), clip, update.",
            ),
            Wrong(
                min(max_norm, total_norm(grads)),
                "that is the norm after clipping; return the one measured before.",
            ),
        ),
    )


def test_step_updates_with_the_clipped_gradient(rng):
    model = Regression(rng)
    grads = model.gradients()
    max_norm = round(total_norm(grads) * rng.uniform(0.2, 0.7), 3)
    call, norm, weights = model.step(max_norm)
    check_value(
        weights,
        model.after(clipped(grads, max_norm)),
        call=call,
        what="[W, b] after the step",
        wrong=(
            Wrong(
                model.after(grads),
                "the step used the unclipped gradient. Did clipping run before backward()? "
                "Then there was nothing to clip yet, and backward() wrote the full gradient "
                "afterwards. Order: clear, backward(), clip, update.",
            ),
            Wrong(
                model.after([grad * min(1.0, max_norm / float(grad.norm())) for grad in grads]),
                "each parameter's gradient was clipped by its own norm. Clip by the global "
                "norm: one factor, max_norm / total_norm, for every gradient.",
            ),
            Wrong(
                model.start,
                "the weights did not move. Update them in place under torch.no_grad(): "
                "p -= lr * p.grad.",
            ),
        ),
    )
    check_step_norm(call, norm, grads, max_norm)


def test_step_below_the_limit_is_a_plain_sgd_step(rng):
    model = Regression(rng)
    grads = model.gradients()
    max_norm = round(total_norm(grads) * rng.uniform(1.2, 3.0), 3)
    call, norm, weights = model.step(max_norm)
    check_value(
        weights,
        model.after(grads),
        call=call,
        what="[W, b] after the step",
        wrong=(
            Wrong(
                model.after(scaled(grads, max_norm / total_norm(grads))),
                "the gradient was scaled UP to max_norm. Below the limit clipping leaves the "
                "gradient alone.",
            ),
        ),
    )
    check_step_norm(call, norm, grads, max_norm)


def test_step_starts_from_fresh_gradients(rng):
    model = Regression(rng)
    grads = model.gradients()
    stale = [gradient((2, 3), 1.0), gradient((2,), 1.0)]
    max_norm = round(total_norm(grads) * rng.uniform(0.2, 0.7), 3)
    call, _, weights = model.step(max_norm, stale)
    summed = [old + new for old, new in zip(stale, grads)]
    check_value(
        weights,
        model.after(clipped(grads, max_norm)),
        call=call,
        what="[W, b] after the step",
        wrong=(
            Wrong(
                model.after(clipped(summed, max_norm)),
                "the old gradients were still in .grad: backward() adds into .grad, so the "
                "step used old + new. Clear the gradients first (p.grad = None).",
            ),
            Wrong(
                model.after([old + new for old, new in zip(clipped(stale, max_norm), grads)]),
                "clipping ran before backward(): it clipped the old gradients, then backward() "
                "added the full new gradient on top. Order: clear, backward(), clip, update.",
            ),
            Wrong(
                model.after(grads),
                "the step used the unclipped gradient: clip after backward(), before the update.",
            ),
        ),
    )


# --- contracts the stub states (issue 16) -----------------------------------------------------


def test_gradients_exactly_at_the_limit_are_left_exactly_alone(rng):
    k = 2.0 ** rng.randint(-3, 3)  # a power of two: [3k] and [4k] have the norm 5k exactly
    grads = [torch.tensor([3.0 * k]), torch.tensor([-4.0 * k])]
    call, norm, after = clip_norm(grads, 5.0 * k)
    if not all(torch.equal(a, g) for a, g in zip(after, grads)):
        factor = (after[0] / grads[0]).item()
        pytest.fail(
            f"Called {call}. The gradients were multiplied by {factor!r}, expected them "
            f"exactly as they were: the total norm equals max_norm, which is not above it, so "
            f"nothing is scaled (`>=` where `>` belongs, or max_norm / (total + 1e-6) applied "
            f"at the limit).",
            pytrace=False,
        )
    check_value(norm, 5.0 * k, call=call, what="The returned norm")


def test_a_small_total_norm_above_the_limit_with_or_without_torchs_1e_6(rng):
    # 1e-6 / total is more than 1e-5 here: both forms the stub allows must pass, and no other.
    grads = [gradient((3,), rng.uniform(0.01, 0.03)), gradient((2,), rng.uniform(0.01, 0.03))]
    total = total_norm(grads)
    max_norm = round(total * rng.uniform(0.3, 0.6), 5)
    call, _, after = clip_norm(grads, max_norm)
    tolerance = 2e-6 / total  # between max_norm / total and max_norm / (total + 1e-6)
    check_value(
        after,
        scaled(grads, max_norm / total),
        call=call,
        what=GRADS_AFTER,
        wrong=clipping_wrongs(grads, max_norm),
        rel=tolerance,
        abs_=0.0,
    )


def test_step_skips_a_parameter_the_loss_does_not_use(rng):
    used = torch.randn(3).requires_grad_()
    unused = torch.randn(2).requires_grad_()
    start = unused.detach().clone()
    target = torch.randn(3)
    lr = rng.choice([0.05, 0.1])
    call = (
        f"clipped_sgd_step([used, unused], loss_fn, max_norm=100.0, lr={lr}) with "
        f"loss_fn = lambda: ((used - target) ** 2).sum(), which never uses `unused`"
    )
    expected = used.detach() - lr * 2 * (used.detach() - target)

    def loss_fn():
        return ((used - target) ** 2).sum()

    try:
        kata.clipped_sgd_step([used, unused], loss_fn, 100.0, lr)
    except TypeError as error:
        if "NoneType" not in str(error):
            raise
        failure = (
            f"Called {call}. It raised TypeError ({error}): unused.grad is None after "
            f"backward(), since the loss never uses it. Skip such a parameter (if p.grad is "
            f"not None), as torch's optimizers do."
        )
        pytest.fail(failure, pytrace=False)
    check_value(used.detach(), expected, call=call, what="used after the step")
    require(
        torch.equal(unused.detach(), start) and unused.grad is None,
        f"Called {call}. unused is {fmt(unused.detach())} with .grad {fmt(unused.grad)}, "
        f"expected it unchanged with .grad None: a parameter the loss does not use gets no "
        f"gradient; skip it (if p.grad is not None), as torch's optimizers do.",
    )


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_float64_gradients_of_one_element_clipped_twice(rng):
    grads = [gradient((1,), rng.uniform(2, 3)).double(), gradient((3,), rng.uniform(2, 3)).double()]
    max_norm = round(rng.uniform(0.5, 1.5), 3)
    params = [torch.randn(g.shape, dtype=torch.float64).requires_grad_() for g in grads]
    for param, grad in zip(params, grads):
        param.grad = grad.clone()
    call = clip_call(grads, max_norm)
    first = expect_float(kata.clip_grad_norm(params, max_norm), call, "the total norm")
    after = [p.grad.clone() for p in params]
    check_value(after, scaled(grads, max_norm / total_norm(grads)), call=call, what=GRADS_AFTER)
    require(
        all(p.grad.dtype == torch.float64 for p in params),
        f"Called {call} on float64 gradients; they came back as "
        f"{[p.grad.dtype for p in params]}: scale them in place, in their own dtype.",
    )
    second = expect_float(kata.clip_grad_norm(params, max_norm), call + " again", "the norm")
    check_value(first, total_norm(grads), call=call, what="The returned norm")
    check_value(second, max_norm, call=call + ", then once more", what="The second norm", rel=1e-5)


def test_clip_by_value_of_float64_gradients_with_an_infinity(rng):
    clip = round(rng.uniform(0.5, 1.5), 2)
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([float("inf"), -float("inf"), 0.25], dtype=torch.float64)
    call = f"clip_grad_value([p], {clip}) with p.grad = tensor([inf, -inf, 0.25]) in float64"
    kata.clip_grad_value([p], clip)
    check_value(p.grad, torch.tensor([clip, -clip, 0.25]), call=call, what="p.grad")

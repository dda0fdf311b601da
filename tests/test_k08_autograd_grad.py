"""Kata 8: autograd.grad returns gradients and leaves .grad alone; a walk frees saved values."""

import math

import torch

from coach.runtime.catalogue import CUBIC, EXP_HALF_TIMES_X, X_SIN_X
from coach.runtime.testing import (
    Wrong,
    backward_passes,
    caught,
    check_shape_like,
    check_value,
    explained,
    fail,
    fmt,
    load_kata,
    require,
)

kata = load_kata("k08_autograd_grad")

SHAPES = [(), (3,), (2, 3)]
SECOND_WALK = "backward through the graph a second time"
UNUSED = "appears to not have been used in the graph"

A_TUPLE = (
    "torch.autograd.grad returns a tuple with one gradient per input, even for one input. "
    "Unpack it: (grad,) = torch.autograd.grad(...), or take [0]."
)


def not_written_into_grad(name: str) -> str:
    return (
        f"torch.autograd.grad returns the gradients (a tuple, one per input) and never writes "
        f"{name}.grad, so {name}.grad still holds what it held before the call (None, or the "
        f"caller's gradients). Use what autograd.grad returns."
    )


def random_leaf(rng, shape, dtype=torch.float32, low=-2.0, high=2.0) -> torch.Tensor:
    values = [rng.uniform(low, high) for _ in range(math.prod(shape))]
    return torch.tensor(values, dtype=dtype).reshape(shape).requires_grad_()


def with_collected_grad(rng, x: torch.Tensor) -> torch.Tensor:
    """Give x a .grad, as if the caller were in the middle of accumulating gradients."""
    x.grad = random_leaf(rng, tuple(x.shape), x.dtype).detach()
    return x


def is_tuple_of_tensors(got) -> bool:
    return isinstance(got, (tuple, list)) and all(isinstance(g, torch.Tensor) for g in got)


def second_walk(call: str, why: str) -> dict[str, str]:
    """torch's 'backward through the graph a second time', re-worded (for `explained`)."""
    return {
        SECOND_WALK: (
            f"Called {call}; torch raised 'Trying to backward through the graph a second time'. "
            f"{why}"
        )
    }


# --- cube_sum_grad ---------------------------------------------------------------------------


def check_cube_sum_grad(x: torch.Tensor, call: str) -> None:
    collected = x.grad  # the caller's own gradients, or None
    got = kata.cube_sum_grad(x)
    expected = 3 * x.detach().double() ** 2
    wrong = (
        Wrong(lambda got: got is None or got is collected, not_written_into_grad("x")),
        Wrong(is_tuple_of_tensors, A_TUPLE),
    )
    if not isinstance(got, torch.Tensor) or got is collected:
        check_value(got, expected, call=call, what="the result", wrong=wrong)
    check_shape_like(got, x, call=call)
    check_value(got, expected, call=call, what="the result", wrong=wrong)


def test_cube_sum_grad_is_3x_squared(rng):
    for shape in SHAPES:
        x = random_leaf(rng, shape)
        check_cube_sum_grad(x, f"cube_sum_grad(x) with x = {fmt(x)}")


def test_cube_sum_grad_keeps_float64(rng):
    x = random_leaf(rng, (3,), torch.float64)
    check_cube_sum_grad(x, f"cube_sum_grad(x) with the float64 x = {fmt(x)}")


def test_cube_sum_grad_leaves_the_callers_grad_alone(rng):
    # The kata loader fails the call if x.grad changes; the value check catches a learner who
    # returns x.grad, which autograd.grad never wrote.
    for shape in SHAPES:
        x = with_collected_grad(rng, random_leaf(rng, shape))
        check_cube_sum_grad(x, f"cube_sum_grad(x) with x = {fmt(x)} and x.grad = {fmt(x.grad)}")


def test_cube_sum_grad_asks_autograd(rng):
    x = random_leaf(rng, (3,))
    with backward_passes() as engine:
        kata.cube_sum_grad(x)
    require(
        engine.passes == 1,
        f"Autograd ran {engine.passes} backward pass(es), expected 1: the point is to ask "
        f"torch.autograd.grad, not to write 3 * x**2 down yourself.\n"
        f"Called cube_sum_grad(x) with x = {fmt(x)}.",
    )


# --- two_losses_one_forward ------------------------------------------------------------------

# Elementwise forwards whose graphs save tensors for backward, with their derivatives.
FORWARDS = {"x * sin(x)": X_SIN_X, "x**3 - 2*x": CUBIC, "exp(x / 2) * x": EXP_HALF_TIMES_X}


class Forward:
    """The expensive forward pass: counts its calls and keeps what it returned."""

    def __init__(self, formula: str):
        self.formula = formula
        self.function, self.derivative = FORWARDS[formula].f, FORWARDS[formula].derivative
        self.outputs = []

    def __call__(self, x):
        h = self.function(x)
        self.outputs.append(h)
        return h

    def expected(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(d h.sum()/dx, d (h**2).sum()/dx) in float64: h' and 2 * h * h'."""
        x64 = x.detach().double()
        slope = self.derivative(x64)
        return slope, 2 * self.function(x64) * slope

    def graph_is_alive(self) -> bool:
        """Whether a graph behind any h that forward returned still holds its saved values."""
        for h in self.outputs:
            with caught(saying=SECOND_WALK) as freed:
                # backward(), not autograd.grad(..., x): h may come from the kata's copy of x.
                h.sum().backward()
            if freed.error is None:
                return True
        return False


def random_forward(rng) -> Forward:
    return Forward(rng.choice(sorted(FORWARDS)))


def call_two_losses(forward: Forward, x: torch.Tensor):
    call = f"two_losses_one_forward(forward, x) with forward(x) = {forward.formula}, x = {fmt(x)}"
    freed = (
        "The first autograd.grad call freed the values forward's graph saved, and loss_b's "
        "walk needs them again. Pass retain_graph=True to the first call (only the first)."
    )
    with explained(second_walk(call, freed)):
        result = kata.two_losses_one_forward(forward, x)
    return call, result


def check_two_gradients(forward: Forward, x: torch.Tensor) -> None:
    collected = x.grad
    call, got = call_two_losses(forward, x)
    grad_a, grad_b = forward.expected(x)
    if isinstance(got, (tuple, list)):
        got = tuple(got)
    wrong = (
        Wrong(
            lambda got: isinstance(got, tuple) and any(g is None or g is collected for g in got),
            not_written_into_grad("x"),
        ),
        Wrong(
            lambda got: isinstance(got, tuple) and any(is_tuple_of_tensors(g) for g in got),
            A_TUPLE,
        ),
        Wrong(
            (grad_a + grad_b, grad_a + grad_b),
            "that is the gradient of loss_a + loss_b: handing both losses to one "
            "autograd.grad call sums their gradients. Ask once per loss.",
        ),
        Wrong(
            (grad_a, grad_a + grad_b),
            "the second gradient still holds the first: gradients accumulated in .grad "
            "between the two walks. autograd.grad returns each loss's gradient on its own.",
        ),
    )
    check_value(got, (grad_a, grad_b), call=call, what="(grad_a, grad_b)", wrong=wrong)


def test_each_loss_gets_its_own_gradient(rng):
    for shape in SHAPES:
        x = random_leaf(rng, shape)
        check_two_gradients(random_forward(rng), x)


def test_each_loss_gets_its_own_gradient_with_the_callers_grad_in_place(rng):
    for formula in sorted(FORWARDS):
        x = with_collected_grad(rng, random_leaf(rng, (3,)))
        check_two_gradients(Forward(formula), x)


def test_the_forward_pass_runs_once(rng):
    forward, x = random_forward(rng), random_leaf(rng, (3,))
    call, _ = call_two_losses(forward, x)
    runs = len(forward.outputs)
    if runs == 1:
        return
    if runs == 0:
        why = "Build h with the forward function you are given: h = forward(x)."
    else:
        why = (
            "Rebuilding the forward pass to get a fresh graph for the second gradient costs a "
            "whole forward pass; keeping the first graph costs nothing. Run forward once, and "
            "pass retain_graph=True to the first autograd.grad call."
        )
    fail(f"forward ran {runs} times, expected once. {why}\nCalled {call}.")


def test_the_graph_is_freed_after_the_last_gradient(rng):
    forward, x = random_forward(rng), random_leaf(rng, (3,))
    with backward_passes() as engine:
        call, _ = call_two_losses(forward, x)
    require(
        engine.passes >= 1,
        f"Autograd ran no backward pass: the gradients were worked out by hand. Ask "
        f"torch.autograd.grad for them.\nCalled {call}.",
    )
    require(
        not forward.graph_is_alive(),
        f"After {call} returned, the graph behind h could still be walked: the last walk "
        f"kept it too, with retain_graph=True. Kept values stay in memory for as long as the "
        f"graph's outputs live (in a training loop that carries a tensor across steps, every "
        f"step's graph). Retain the graph only for a walk that another walk will follow: the "
        f"first call, not the last.",
    )


# --- unused_parameters -----------------------------------------------------------------------


class Model:
    """A loss built from some of its parameters; the test knows which ones it used."""

    def __init__(self, rng, roles: list[str]):
        # role: "used" (a plain path), "dead" (a path through a relu that is off: gradient 0)
        # or "unused" (no path at all).
        self.roles = roles
        self.params = [random_leaf(rng, rng.choice(SHAPES), low=-1.0, high=1.0) for _ in roles]
        terms, self.parts = [], []
        for index, (role, param) in enumerate(zip(roles, self.params)):
            if role == "used":
                weights = random_leaf(rng, tuple(param.shape)).detach()
                terms.append((param * weights).sum())
                self.parts.append(f"(params[{index}] * c{index}).sum()")
            elif role == "dead":
                terms.append(torch.relu(param - 5).sum())  # params lie in [-1, 1]
                self.parts.append(f"relu(params[{index}] - 5).sum()")
        self.loss = sum(terms[1:], terms[0])
        self.call = f"unused_parameters(loss, params) with loss = {' + '.join(self.parts)}"

    @classmethod
    def random(cls, rng) -> "Model":
        roles = ["used", rng.choice(["dead", "unused"]), "unused", "dead"]
        roles += [rng.choice(["used", "dead", "unused"]) for _ in range(rng.randint(0, 2))]
        rng.shuffle(roles)
        return cls(rng, roles)

    def expected(self) -> list[bool]:
        return [role == "unused" for role in self.roles]

    def expected_grads(self) -> list[torch.Tensor | None]:
        """What loss.backward() leaves in each .grad: c for a used one, 0 for a dead one."""
        return [
            None if role == "unused" else torch.autograd.grad(self.loss, p, retain_graph=True)[0]
            for role, p in zip(self.roles, self.params)
        ]

    def ask(self) -> list:
        unused = (
            f"Called {self.call}; torch raised 'One of the differentiated Tensors appears to "
            f"not have been used in the graph'. By default autograd.grad refuses an input the "
            f"output does not depend on; allow_unused=True makes it return None for that input "
            f"instead, and None is the answer here."
        )
        one_walk = (
            "Each walk frees the values saved in the graph it went through. Ask one "
            "autograd.grad call for all the parameters at once (it takes a list of inputs)."
        )
        with explained({UNUSED: unused, **second_walk(self.call, one_walk)}):
            result = kata.unused_parameters(self.loss, self.params)
        return list(result) if isinstance(result, tuple) else result

    def check(self) -> None:
        got = self.ask()
        zero_means_unused = [role != "used" for role in self.roles]
        wrong = (
            Wrong(
                zero_means_unused,
                "a parameter whose gradient is exactly 0 was called unused, but a relu "
                "that is off still lies on the path from the loss: its gradient is a tensor of "
                "zeros. autograd.grad(..., allow_unused=True) returns None only where no path "
                "leads; test `grad is None`, not whether it is zero (and do not pass "
                "materialize_grads=True, which turns None into zeros).",
            ),
            Wrong(
                lambda got: isinstance(got, list) and any(isinstance(g, torch.Tensor) for g in got),
                "the answer is one bool per parameter: True where autograd.grad gave None.",
            ),
        )
        check_value(got, self.expected(), call=self.call, what="the result", wrong=wrong)


def test_unused_parameters_finds_the_unreached_ones(rng):
    for _ in range(4):
        Model.random(rng).check()


def test_a_parameter_with_a_zero_gradient_is_still_reached(rng):
    Model(rng, ["used", "dead", "unused"]).check()


CALLERS_GRAPH_FREED = (
    "unused_parameters freed the values the loss's graph saved, so the caller's own "
    "backward() failed. The caller walks this graph again: pass retain_graph=True here."
)


def test_the_callers_backward_still_works_afterwards(rng):
    model = Model.random(rng)
    expected_grads = model.expected_grads()
    model.ask()
    with explained(second_walk(f"{model.call}, then loss.backward()", CALLERS_GRAPH_FREED)):
        model.loss.backward()
    for index, (param, expected) in enumerate(zip(model.params, expected_grads)):
        check_value(
            param.grad,
            expected,
            call=f"{model.call}, then loss.backward()",
            what=f"params[{index}].grad",
        )


def test_unused_parameters_leaves_the_callers_grads_alone(rng):
    # The kata loader fails the call if any params[i].grad changes (a backward() would).
    model = Model.random(rng)
    for param in model.params:
        with_collected_grad(rng, param)
    model.check()


# --- contracts the stub states (issue 16) -----------------------------------------------------


def test_a_parameter_that_does_not_require_grad_is_unused(rng):
    n = rng.randint(1, 4)
    w = torch.randn(n, requires_grad=True)
    frozen = torch.randn(n)  # used by the loss, but it does not require grad
    loss = (w * frozen).sum() ** 2
    call = f"unused_parameters(loss, [w, frozen]) with loss = ((w * frozen).sum())**2, n = {n}"
    refused = (
        f"Called {call}. torch.autograd.grad raised 'One of the differentiated Tensors "
        f"does not require grad': it refuses a tensor that does not require grad. Such a "
        f"parameter gets no gradient from any loss, so it is unused (True); ask autograd "
        f"only about the parameters that require grad."
    )
    with explained({"does not require grad": refused}):
        result = kata.unused_parameters(loss, [w, frozen])
    check_value(
        result,
        [False, True],
        call=call,
        what="The result",
        wrong=[
            Wrong(
                [False, False],
                "frozen does not require grad: no gradient ever reaches it, however the loss "
                "uses it. Ask autograd only about the parameters that require grad.",
            )
        ],
    )
    with explained(second_walk(f"{call}, then loss.backward()", CALLERS_GRAPH_FREED)):
        loss.backward()  # the caller's walk still works
    require(w.grad is not None, f"Called {call}; the caller's loss.backward() reached no w.")


def test_no_parameters_give_an_empty_list():
    loss = (torch.randn(3, requires_grad=True) ** 2).sum()
    empty = (
        "Called unused_parameters(loss, []). torch.autograd.grad raised '`inputs` argument to "
        "`grad()` cannot be empty': it refuses to be asked about nothing. With no parameter "
        "that requires grad there is nothing to ask: every parameter is unused, so return True "
        "for each (here there are none: []) without calling it."
    )
    with explained({"cannot be empty": empty}):
        result = kata.unused_parameters(loss, [])
    require(
        result == [],
        f"Called unused_parameters(loss, []). It returned {result!r}, expected []: one bool "
        f"per parameter, and there are none (torch.autograd.grad refuses an empty list).",
    )


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


class MixingForward(Forward):
    """forward(x) = cumsum(x) * sin(x): h_i depends on x_0..x_i, so J is not diagonal."""

    def __init__(self):
        self.formula = "torch.cumsum(x, 0) * torch.sin(x)"
        self.function = lambda x: torch.cumsum(x, 0) * torch.sin(x)
        self.outputs = []

    def expected(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x64 = x.detach().double().requires_grad_()
        h = self.function(x64)
        grad_a = torch.autograd.grad(h.sum(), x64, retain_graph=True)[0]
        grad_b = torch.autograd.grad((h**2).sum(), x64)[0]
        return grad_a, grad_b


def test_each_loss_gets_its_own_gradient_through_a_forward_that_mixes(rng):
    for dtype in (torch.float32, torch.float64):
        x = random_leaf(rng, (rng.randint(2, 4),), dtype)
        forward = MixingForward()
        call, got = call_two_losses(forward, x)
        grad_a, grad_b = forward.expected(x)
        h = forward.function(x.detach().double())
        check_value(
            tuple(got) if isinstance(got, (tuple, list)) else got,
            (grad_a, grad_b),
            call=call,
            what="(grad_a, grad_b)",
            wrong=[
                Wrong(
                    (grad_a, 2 * h * grad_a),
                    "grad_b is 2 * h * grad_a, the chain rule for an elementwise forward. This "
                    "forward mixes elements (h_i depends on x_0..x_i), so d(h**2).sum()/dx is "
                    "J^T (2h), not 2h times J^T 1: ask autograd for loss_b's gradient too.",
                )
            ],
        )
        check_two_gradients(MixingForward(), x)  # a second call on the same x

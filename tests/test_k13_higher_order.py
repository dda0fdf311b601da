"""Kata 13: gradients of gradients: create_graph, second derivatives, H v, a gradient penalty."""

import math

import torch

from coach.runtime.testing import (
    Wrong,
    backward_passes,
    check_shape_like,
    check_value,
    expect_float,
    explained,
    fmt,
    load_kata,
    require,
)

kata = load_kata("k13_higher_order")

NO_CREATE_GRAPH = (
    "the first gradient was taken without create_graph=True, so it came out as a constant "
    "with no grad_fn, and a constant has nothing to differentiate a second time. Pass "
    "create_graph=True to the first torch.autograd.grad (or backward)."
)
CUT_IN_THE_MIDDLE = (
    "the first gradient was taken with create_graph=True, but then cut off from its graph "
    "(.item(), .detach(), torch.tensor(...) of it, or a torch.no_grad() block) before it was "
    "differentiated again. Keep it a tensor, with its grad_fn."
)
NEW_LEAF = (
    "what you differentiated the second time was not computed from x: a tensor rebuilt from "
    "the first gradient (torch.tensor(g.item(), requires_grad=True), "
    "g.detach().requires_grad_()) is a new leaf with no path back to x. Differentiate the "
    "first gradient itself, taken with create_graph=True."
)
SECOND_BACKWARD = (
    "a second backward pass through the graph of f(x), which the first pass had freed. A "
    "second derivative does not come from running backward on f(x) again: differentiate the "
    "first gradient, taken with create_graph=True."
)
GRAD_ACCUMULATED = (
    "that is f'(x0) + f''(x0), because backward() adds into .grad: the first "
    "backward(create_graph=True) left f'(x0) in x.grad and the second one added f''(x0) on "
    "top. Clear x.grad between the passes (g = x.grad, x.grad = None, then g.backward()), or "
    "better, differentiate the first gradient with torch.autograd.grad, which returns it and "
    "writes no .grad."
)
TWO_FIRST_DERIVATIVES = (
    "two backward() calls on f(x) each added f'(x0) into x.grad: .grad accumulates first "
    "derivatives, it never turns them into a second one. Take the first gradient with "
    "create_graph=True and differentiate that."
)
FIRST_ONLY = "that is f'(x0), the first derivative: differentiate it once more."
ZERO_SECOND = (
    "0 is what the second pass gives when the first gradient no longer depends on x: it was "
    "wiped in place (x.grad.zero_()) before the second pass, or it was rebuilt as a new "
    "tensor and differentiated with materialize_grads=True (or allow_unused=True, whose None "
    "became 0). (A missing create_graph=True or a detached first gradient raises instead.) "
    "Differentiate the first gradient itself, as torch.autograd.grad(..., create_graph=True) "
    "returned it."
)


def why_it_raised(error: RuntimeError, passes: list[bool]) -> str | None:
    text = str(error)
    if "does not require grad and does not have a grad_fn" in text:
        if passes and not passes[0]:
            return NO_CREATE_GRAPH
        if passes:
            return CUT_IN_THE_MIDDLE
        return (
            "backward() started from a tensor that does not require grad: make x with "
            "requires_grad=True."
        )
    if "appears to not have been used in the graph" in text:
        return NEW_LEAF
    if "backward through the graph a second time" in text:
        return SECOND_BACKWARD
    return None


def run(call: str, action):
    """(action(), its backward passes), with autograd's errors put in plain words."""

    def in_plain_words(error) -> str | None:
        why = why_it_raised(error, engine.create_graph)
        said = str(error).split(". ")[0].rstrip(".")
        return (
            None if why is None else f"torch raised RuntimeError ('{said}'): {why}\nCalled {call}."
        )

    with backward_passes() as engine, explained(in_plain_words):
        return action(), engine.create_graph


# --- second_derivative -----------------------------------------------------------------------


def functions(rng) -> list[tuple[str, object, object, object]]:
    """(source, f, f', f'') with random coefficients: the derivatives in closed form."""
    # |c| < 2 keeps exp(c x)'s f'' = c f' apart from 2 f', a wrong answer.
    c = round(rng.choice([-1, 1]) * rng.uniform(0.5, 1.5), 2)
    return [
        (f"lambda x: {c} * x**3", lambda x: c * x**3, lambda t: 3 * c * t**2, lambda t: 6 * c * t),
        ("torch.sin", torch.sin, math.cos, lambda t: -math.sin(t)),
        (
            f"lambda x: torch.exp({c} * x)",
            lambda x: torch.exp(c * x),
            lambda t: c * math.exp(c * t),
            lambda t: c * c * math.exp(c * t),
        ),
        (
            f"lambda x: x**4 - {c} * x**2",
            lambda x: x**4 - c * x**2,
            lambda t: 4 * t**3 - 2 * c * t,
            lambda t: 12 * t**2 - 2 * c,
        ),
    ]


CUBE = ("lambda x: x**3", lambda x: x**3, lambda t: 3 * t**2, lambda t: 6 * t)


def check_second_derivative(source: str, f, first, second, x0) -> None:
    call = f"second_derivative({source}, {x0!r})"
    result, _ = run(call, lambda: kata.second_derivative(f, x0))
    got = expect_float(result, call, "f''(x0)")
    t = float(x0)
    check_value(
        got,
        second(t),
        call=call,
        what="The result",
        wrong=[
            Wrong(first(t) + second(t), GRAD_ACCUMULATED),
            Wrong(2 * first(t), TWO_FIRST_DERIVATIVES),
            Wrong(first(t), FIRST_ONLY),
            Wrong(0.0, ZERO_SECOND),
        ],
        rel=1e-4,
        abs_=1e-4,
    )


def test_second_derivative_of_x_cubed_at_one_half_is_3():
    # f' = 0.75 and f'' = 3 here: each wrong answer checked for gives a number of its own.
    check_second_derivative(*CUBE, 0.5)


def test_second_derivative_matches_the_closed_forms(rng):
    for source, f, first, second in functions(rng):
        x0 = round(rng.choice([-1, 1]) * rng.uniform(0.3, 1.5), 3)
        check_second_derivative(source, f, first, second, x0)


def test_second_derivative_accepts_an_int_x0():
    check_second_derivative(*CUBE, 3)


def test_second_derivative_differentiates_the_first_gradient(rng):
    source, f, _, _ = functions(rng)[1]
    x0 = round(rng.uniform(0.3, 1.5), 3)
    call = f"second_derivative({source}, {x0!r})"
    _, passes = run(call, lambda: kata.second_derivative(f, x0))
    require(
        len(passes) >= 2 and passes[0],
        f"Autograd ran {len(passes)} backward pass(es), with create_graph {passes}; expected a "
        f"first pass with create_graph=True, then a second one through the first gradient. "
        f"f''(x0) must come from autograd differentiating its own result, not from a formula "
        f"or finite differences.\nCalled {call}.",
    )


# --- hessian_vector_product ------------------------------------------------------------------


def vector(rng, n: int) -> torch.Tensor:
    return torch.tensor([round(rng.uniform(-1.5, 1.5), 3) for _ in range(n)], dtype=torch.float64)


def quartic_plus_square(a: torch.Tensor):
    """f(x) = sum(x**4) / 4 + (a . x)**2.

    Its gradient is x**3 + 2 a (a . x) and its Hessian diag(3 x**2) + 2 a a^T."""

    def f(x):
        return (x**4).sum() / 4 + (a @ x) ** 2

    def gradient(x):
        return x**3 + 2 * a * (a @ x)

    def hessian(x):
        return torch.diag(3 * x**2) + 2 * torch.outer(a, a)

    return f"lambda x: (x**4).sum() / 4 + (a @ x)**2 with a = {fmt(a)}", f, gradient, hessian


def log_of_1_plus_square():
    """f(x) = log(1 + |x|^2): gradient 2x / (1 + r), H = 2 I / (1 + r) - 4 x x^T / (1 + r)**2."""

    def f(x):
        return torch.log(1 + (x * x).sum())

    def gradient(x):
        return 2 * x / (1 + x @ x)

    def hessian(x):
        r = x @ x
        return 2 * torch.eye(len(x), dtype=x.dtype) / (1 + r) - 4 * torch.outer(x, x) / (1 + r) ** 2

    return "lambda x: torch.log(1 + (x * x).sum())", f, gradient, hessian


def test_hessian_vector_product_matches_the_closed_form(rng):
    for source, f, gradient, hessian in [
        quartic_plus_square(vector(rng, 4)),
        log_of_1_plus_square(),
    ]:
        x, v = vector(rng, 4), vector(rng, 4)
        call = f"hessian_vector_product({source}, x, v) with x = {fmt(x)}, v = {fmt(v)}"
        result, _ = run(call, lambda f=f, x=x, v=v: kata.hessian_vector_product(f, x, v))
        check_shape_like(result, x, call=call)
        H, g = hessian(x), gradient(x)
        check_value(
            result,
            H @ v,
            call=call,
            what="H v",
            wrong=[
                Wrong(
                    g * v,
                    "that is the gradient times v, element by element. H v is the "
                    "gradient of the scalar (gradient . v): differentiate (g * v).sum().",
                ),
                Wrong(
                    (H @ torch.ones_like(v)) * v,
                    "that is the gradient of g.sum() (H times a vector of ones) multiplied "
                    "by v element by element, so v came in only after the second "
                    "differentiation. "
                    "Differentiate (g * v).sum(), the dot product of the gradient with v, not "
                    "g.sum() times v.",
                ),
                Wrong(
                    torch.diagonal(H) * v,
                    "that is diag(H) * v, which leaves out every mixed second derivative "
                    "(H's off-diagonal entries). H v is the gradient of (g * v).sum(), the dot "
                    "product of the gradient with v.",
                ),
                Wrong(
                    H @ torch.ones_like(v),
                    "that is H times a vector of ones, the gradient "
                    "of g.sum(). Weight by v: differentiate (g * v).sum().",
                ),
                Wrong(
                    g + H @ v,
                    "that is the gradient plus H v: backward() added H v into "
                    "x.grad on top of the first gradient. Use torch.autograd.grad, which "
                    "returns gradients and writes no .grad.",
                ),
                Wrong(
                    g,
                    "that is the gradient of f itself: H v is the gradient of "
                    "(gradient . v), one more differentiation.",
                ),
            ],
            rel=1e-6,
            abs_=1e-8,
        )


def test_hessian_vector_product_takes_two_backward_passes_not_n(rng):
    n = 6
    source, f, _, hessian = quartic_plus_square(vector(rng, n))
    x, v = vector(rng, n), vector(rng, n)
    call = f"hessian_vector_product({source}, x, v) with x = {fmt(x)}, v = {fmt(v)}"
    result, passes = run(call, lambda: kata.hessian_vector_product(f, x, v))
    check_value(result, hessian(x) @ v, call=call, what="H v", rel=1e-6, abs_=1e-8)
    require(
        len(passes) <= 3,
        f"Autograd ran {len(passes)} backward passes for n = {n}, expected 2: the full "
        f"{n}-by-{n} Hessian was built (a pass per row, as torch.autograd.functional.hessian "
        f"does), and H v read from it. That costs n passes and n * n numbers, which no network "
        f"can afford. H v is the gradient of (gradient . v): one pass with create_graph=True "
        f"for the gradient, one more for H v.\nCalled {call}.",
    )


# --- gradient_penalty ------------------------------------------------------------------------


class TanhCritic(torch.nn.Module):
    """score_i = tanh(x_i . w + b): a one-unit critic whose input gradients have a closed form."""

    def __init__(self, w: torch.Tensor, b: float):
        super().__init__()
        self.w = torch.nn.Parameter(w)
        self.b = torch.nn.Parameter(torch.tensor(b, dtype=torch.float64))

    def forward(self, x):
        return torch.tanh(x @ self.w + self.b)

    def __repr__(self):
        return f"TanhCritic(w = {fmt(self.w)}, b = {fmt(self.b.item())})"


def input_gradients(w, b, X) -> torch.Tensor:
    """Row i: d score_i / d x_i = (1 - tanh(x_i . w + b)**2) w, an (n, d) tensor."""
    t = torch.tanh(X @ w + b)
    return (1 - t**2)[:, None] * w[None, :]


def penalty_value(w, b, X) -> float:
    norms = input_gradients(w, b, X).norm(dim=1)
    return ((norms - 1) ** 2).mean().item()


def critic_and_batch(rng, n=4, d=3):
    w = vector(rng, d)
    b = round(rng.uniform(-0.5, 0.5), 3)
    X = torch.tensor(
        [[round(rng.uniform(-1, 1), 3) for _ in range(d)] for _ in range(n)], dtype=torch.float64
    )
    critic = TanhCritic(w.clone(), b)
    return critic, w, b, X, f"gradient_penalty(critic, x) with critic = {critic!r}, x = {fmt(X)}"


def test_gradient_penalty_is_the_mean_of_squared_norm_gaps(rng):
    critic, w, b, X, call = critic_and_batch(rng)
    penalty, _ = run(call, lambda: kata.gradient_penalty(critic, X))
    require(
        isinstance(penalty, torch.Tensor) and penalty.dim() == 0,
        f"Called {call}. It returned {fmt(penalty)}; expected a 0-d tensor. The penalty is a "
        f"loss term the caller backpropagates through, so it must stay a tensor: no .item(), "
        f"and a mean over the batch.",
    )
    G = input_gradients(w, b, X)
    norms = G.norm(dim=1)
    check_value(
        penalty,
        torch.tensor(penalty_value(w, b, X), dtype=torch.float64),
        call=call,
        what="The penalty",
        wrong=[
            Wrong(
                ((norms**2 - 1) ** 2).mean(),
                "that uses the squared norm: the norm is the "
                "square root of the sum of squares (gradients.norm(dim=1)).",
            ),
            Wrong(
                ((G.norm(dim=0) - 1) ** 2).mean(),
                "that takes norms down the batch "
                "(dim=0), one per input feature. Each sample's gradient is a row: "
                "norm(dim=1).",
            ),
            Wrong(
                (G.norm() - 1) ** 2,
                "that is the norm of the whole batch's gradients at "
                "once. Take one norm per sample (norm(dim=1)), then the mean of (norm - 1)**2.",
            ),
            Wrong(
                ((norms - 1) ** 2).sum(), "that is the sum over the batch; the penalty is the mean."
            ),
            Wrong(
                (norms**2).mean(),
                "the - 1 is missing: the penalty pushes each norm towards 1, (norm - 1)**2.",
            ),
        ],
    )


def test_gradient_penalty_trains_the_critic_through_the_gradient(rng):
    critic, w, b, X, call = critic_and_batch(rng)
    penalty, passes = run(call, lambda: kata.gradient_penalty(critic, X))
    require(
        isinstance(penalty, torch.Tensor),
        f"Called {call}. It returned {fmt(penalty)}; expected a 0-d tensor.",
    )
    cut = NO_CREATE_GRAPH if not any(passes) else CUT_IN_THE_MIDDLE
    require(
        penalty.requires_grad,
        f"Called {call}. The penalty has no grad_fn, so backward() cannot carry it into the "
        f"critic's weights. {cut[0].upper()}{cut[1:]}",
    )
    full_call = f"{call}, then penalty.backward()"
    run(full_call, penalty.backward)
    h = 1e-6
    expected = []
    for k in range(len(w)):
        step = torch.zeros_like(w)
        step[k] = h
        expected.append((penalty_value(w + step, b, X) - penalty_value(w - step, b, X)) / (2 * h))
    expected_b = (penalty_value(w, b + h, X) - penalty_value(w, b - h, X)) / (2 * h)
    check_value(
        (critic.w.grad, critic.b.grad),
        (
            torch.tensor(expected, dtype=torch.float64),
            torch.tensor(expected_b, dtype=torch.float64),
        ),
        call=full_call,
        what="(critic.w.grad, critic.b.grad)",
        rel=1e-4,
        abs_=1e-6,
    )


# --- contracts the stub states (issue 16) -----------------------------------------------------


def test_second_derivative_of_a_linear_f_is_zero(rng):
    slope, offset = round(rng.uniform(0.5, 3.0), 2), round(rng.uniform(-2.0, 2.0), 2)
    x0 = round(rng.uniform(-1.5, 1.5), 3)
    source = f"lambda x: {slope} * x + {offset}"
    call = f"second_derivative({source}, {x0!r})"
    refused = (
        f"Called {call}. It raised RuntimeError (element 0 of tensors does not require "
        f"grad): the backward of {slope} * x multiplies by the constant {slope} and uses no "
        f"tensor that requires grad, so the first derivative came without a graph "
        f"(first.requires_grad is False), and a second "
        f"autograd.grad of it refuses to run. Its second derivative is 0: return 0.0 when "
        f"first.requires_grad is False."
    )
    with explained({"does not require grad": refused}):
        result = kata.second_derivative(lambda x: slope * x + offset, x0)
    got = expect_float(result, call, "f''(x0)")
    check_value(
        got,
        0.0,
        call=call,
        what="The result",
        wrong=[Wrong(slope, FIRST_ONLY)],
    )


def test_hessian_vector_product_in_float32(rng):
    a = vector(rng, 3)
    source, f, _, hessian = quartic_plus_square(a.float())
    x, v = vector(rng, 3).float(), vector(rng, 3).float()
    call = f"hessian_vector_product({source}, x, v) with float32 x = {fmt(x)}, v = {fmt(v)}"
    result, _ = run(call, lambda: kata.hessian_vector_product(f, x, v))
    check_shape_like(result, x, call=call)
    expected = hessian(x.double()).double() @ v.double()
    check_value(result, expected, call=call, what="H v", rel=1e-4, abs_=1e-5)


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_gradient_penalty_of_a_caller_x_that_requires_grad_and_a_critic_with_grads(rng):
    critic, w, b, X, call = critic_and_batch(rng, n=rng.choice([1, 3]))
    x = X.clone().requires_grad_()
    for parameter in critic.parameters():  # the caller is collecting gradients there
        parameter.grad = torch.ones_like(parameter)
    # The inputs law checks x and the critic's .grad around each call.
    for _ in range(2):  # a second call on the same caller's tensors gives the same penalty
        got = expect_float(kata.gradient_penalty(critic, x).item(), call, "the penalty")
        check_value(got, penalty_value(w, b, X), call=call, what="The penalty")

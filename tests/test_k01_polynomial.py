"""Kata 1: the gradient of y = x**3 + 2x**2 - 5x + 1, by autograd."""

import torch

from coach.runtime.testing import (
    backward_passes,
    check_shape_like,
    close,
    expect_float,
    fmt,
    load_kata,
    require,
)

kata = load_kata("k01_polynomial")


def y_of(x: float) -> float:
    return x**3 + 2 * x**2 - 5 * x + 1


def dy_dx(x: float) -> float:
    return 3 * x**2 + 4 * x - 5


def checked_value_and_grad(x0):
    call = f"value_and_grad({fmt(x0)})"
    result = kata.value_and_grad(x0)
    require(
        isinstance(result, tuple) and len(result) == 2,
        f"{call} returned {result!r}; expected a pair (y, dy/dx).",
    )
    y, grad = result
    return call, expect_float(y, call, "y"), expect_float(grad, call, "dy/dx")


def test_polynomial_keeps_the_graph_for_autograd(rng):
    x = torch.tensor(rng.uniform(-4.0, 4.0), requires_grad=True)
    y = kata.polynomial(x)
    check_shape_like(y, x, call=f"polynomial(x) at x = {fmt(x.item())}")
    require(
        y.grad_fn is not None,
        "polynomial(x) returned a tensor with no grad_fn: autograd has no record of how it was "
        "made from x. Build it from x with tensor arithmetic; .item(), float() or "
        "torch.tensor(...) on the way cut the record.",
    )


def test_polynomial_works_elementwise_on_any_shape(rng):
    for shape, dtype in [((), torch.float32), ((5,), torch.float32), ((2, 3), torch.float64)]:
        values = [rng.uniform(-4.0, 4.0) for _ in range(torch.Size(shape).numel())]
        x = torch.tensor(values, dtype=dtype).reshape(shape)
        y = kata.polynomial(x)
        check_shape_like(y, x, call=f"polynomial(x) with x of shape {tuple(shape)}")
        for got, x0 in zip(y.flatten().tolist(), values):
            require(
                close(got, y_of(x0)),
                f"polynomial at x = {fmt(x0)} gave {fmt(got)}, expected {fmt(y_of(x0))}.",
            )


def test_polynomial_backpropagates_every_element(rng):
    values = [rng.uniform(-4.0, 4.0) for _ in range(6)]
    x = torch.tensor(values, requires_grad=True)
    kata.polynomial(x).sum().backward()
    require(x.grad is not None, "After polynomial(x).sum().backward(), x.grad is still None.")
    for got, x0 in zip(x.grad.tolist(), values):
        require(
            close(got, dy_dx(x0)),
            f"d/dx of polynomial at x = {fmt(x0)} came out as {fmt(got)}, expected "
            f"{fmt(dy_dx(x0))}: check each term's coefficient and power.",
        )


def test_value_and_grad_at_3_is_31_and_34():
    call, y, grad = checked_value_and_grad(3.0)
    require(y == 31.0, f"y is {fmt(y)}, expected 27 + 18 - 15 + 1 = 31.0.\nCalled {call}.")
    require(
        grad == 34.0,
        f"dy/dx is {fmt(grad)}, expected 34.0 (3*9 + 4*3 - 5): read the gradient from x.grad "
        f"after y.backward().\nCalled {call}.",
    )


def test_value_and_grad_accepts_an_int():
    call, y, grad = checked_value_and_grad(3)
    require(
        (y, grad) == (31.0, 34.0),
        f"With an int it returned ({fmt(y)}, {fmt(grad)}), expected (31.0, 34.0), the same as "
        f"for 3.0.\nCalled {call}.",
    )


def test_value_and_grad_follows_the_derivative_at_random_points(rng):
    for _ in range(10):
        x0 = rng.uniform(-4.0, 4.0)
        call, y, grad = checked_value_and_grad(x0)
        require(
            close(y, y_of(x0)),
            f"y is {fmt(y)}, expected x^3 + 2x^2 - 5x + 1 = {fmt(y_of(x0))}.\nCalled {call}.",
        )
        require(
            close(grad, dy_dx(x0)),
            f"dy/dx is {fmt(grad)}, expected 3x^2 + 4x - 5 = {fmt(dy_dx(x0))}. Is the gradient "
            f"read at the same x the polynomial was evaluated at?\nCalled {call}.",
        )


def test_value_and_grad_gets_the_gradient_from_autograd(rng):
    x0 = rng.uniform(-4.0, 4.0)
    with backward_passes() as engine:
        kata.value_and_grad(x0)
    require(
        engine.passes >= 1,
        f"Autograd never ran a backward pass, so dy/dx came from a hand-written formula. The "
        f"point of this kata is to let autograd find it: call y.backward() (or "
        f"torch.autograd.grad(y, x)) and read the result.\nCalled value_and_grad({fmt(x0)}).",
    )


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_polynomial_of_a_float64_x_that_requires_grad_stays_float64():
    x = torch.tensor([0.5, -1.25, 2.0], dtype=torch.float64, requires_grad=True)
    call = f"polynomial(x) with x = {fmt(x.detach())} (float64, requires grad)"
    y = kata.polynomial(x)
    check_shape_like(y, x, call=call)
    expected = [y_of(v) for v in x.tolist()]
    require(
        all(close(got, want, rel=1e-12, abs_=1e-12) for got, want in zip(y.tolist(), expected)),
        f"Called {call}. It returned {fmt(y.detach())}, expected {fmt(expected)} to float64 "
        f"precision: compute in x's own dtype.",
    )


def test_value_and_grad_called_twice_gives_the_same_answer(rng):
    x0 = round(rng.uniform(-2.0, 2.0), 3)
    first = checked_value_and_grad(x0)
    second = checked_value_and_grad(x0)
    require(
        first[1:] == second[1:],
        f"Called {first[0]} twice: it returned {first[1:]} and then {second[1:]}. The second "
        f"call must start afresh: a tensor kept between calls (at module level) keeps its "
        f".grad, and backward() adds into it.",
    )

"""Kata 11: a custom autograd Function: forward, backward, save_for_backward, gradcheck."""

import math
import re

import pytest
import torch

from coach.runtime.testing import (
    Wrong,
    caught,
    check_shape_like,
    check_value,
    explained,
    fail,
    fmt,
    load_kata,
    matches,
    require,
)

kata = load_kata("k11_custom_function")

INPUTS = {"Softplus": ("x",), "ScaledProduct": ("a", "b", "scale")}

IGNORES_GRAD_OUTPUT = (
    "backward returned dy/d(input) and dropped grad_output. backward receives grad_output = "
    "dL/dy and must return dL/d(input) = grad_output * dy/d(input) (the chain rule); without "
    "it the gradient is right only when grad_output is 1, as for y.sum()."
)
ONLY_FLOAT32_PRECISE = (
    "close to the right gradient, but not equal to it: an approximate derivative (a finite "
    "difference inside backward, a rounded constant) passes a check in float32, where finite "
    "differences are good to about 1e-3, but not one in float64. Write the exact derivative."
)
RIGHT_AT_ONE_POINT = (
    "that is sigmoid(-x) = 1 / (1 + exp(x)), the derivative of log(1 + exp(-x)). At x = 0 it "
    "equals sigmoid(0) = 0.5, so a check at that one point passes; at random points it does "
    "not. d/dx log(1 + exp(x)) = exp(x) / (1 + exp(x)) = sigmoid(x)."
)
ATTRIBUTE_NOT_SAVED = (
    "a tensor kept as a plain ctx attribute (ctx.x = x) escapes autograd's version check, so "
    "backward silently used the changed value. Save tensors with ctx.save_for_backward(...) "
    "and read them from ctx.saved_tensors: then backward refuses a tensor that was changed in "
    "place after forward."
)
KEPT_AS_ATTRIBUTE = (
    "tensors kept as plain ctx attributes (ctx.x = x) escape autograd's version check (a "
    "tensor changed in place before backward silently gives a wrong gradient) and the "
    "saved-tensor hooks that activation offloading and checkpointing rely on. Save them with "
    "ctx.save_for_backward(...) and read them back from ctx.saved_tensors."
)


def values(rng, count: int, low: float = 0.3, high: float = 3.0) -> list[float]:
    """Random values with |v| in [low, high]: kept off 0, where sigmoid(x) = sigmoid(-x)."""
    return [round(rng.choice([-1, 1]) * rng.uniform(low, high), 3) for _ in range(count)]


def tensor(numbers: list[float], shape=None, dtype=torch.float64, requires_grad=False):
    shape = (len(numbers),) if shape is None else shape
    return torch.tensor(numbers, dtype=dtype).reshape(shape).requires_grad_(requires_grad)


def upstream(rng, count: int) -> torch.Tensor:
    """A grad_output with no element near 1, so that forgetting it shows."""
    return tensor(
        [round(rng.choice([rng.uniform(-2, -0.3), rng.uniform(1.5, 2.5)]), 2) for _ in range(count)]
    )


def plain_words(error: Exception, function: str) -> str | None:
    """What autograd's complaint about a custom Function means, or None if it is another."""
    text, names = str(error), INPUTS[function]
    count = re.search(r"incorrect number of gradients \(expected (\d+), got (\d+)\)", text)
    if count:
        expected, got = int(count[1]), int(count[2])
        message = (
            f"{function}.backward returned {got} gradient(s), but forward takes {expected} "
            f"input(s) ({', '.join(names)}): autograd wants exactly one per input, in forward's "
            f"order, with None for an input that is not a tensor."
        )
        if got == 1 < expected:
            message += " (A list counts as one gradient: return a tuple.)"
        return message
    not_tensor = re.search(r"gradient different than None at position (\d+)", text)
    if not_tensor:
        position = int(not_tensor[1])
        name = names[position - 1] if position <= len(names) else f"input {position}"
        return (
            f"{function}.backward returned a gradient in place {position}, for {name}, which "
            f"is not a tensor: nothing can receive a gradient there. Return None in its place."
        )
    saved = re.search(
        r"save_for_backward can only save variables, but argument (\d+) is of "
        r"type (\w+)",
        text,
    )
    if saved:
        return (
            f"{function}.forward passed a {saved[2]} to ctx.save_for_backward (argument "
            f"{saved[1]}), which takes tensors only. Keep a non-tensor on ctx as a plain "
            f"attribute: ctx.scale = scale."
        )
    shape = re.search(
        r"invalid gradient at index (\d+) - got \[(.*?)\] but expected shape "
        r"compatible with \[(.*?)\]",
        text,
    )
    if shape:
        name = names[int(shape[1])]
        return (
            f"{function}.backward returned a gradient of shape [{shape[2]}] for {name}, whose "
            f"shape is [{shape[3]}]: a gradient has the shape of its input, one number per "
            f"element. Keep every element (no sum, no indexing)."
        )
    return None


def run(function: str, call: str, action):
    """action(), with autograd's errors about the kata's Function put in plain words."""

    def in_plain_words(error) -> str | None:
        message = plain_words(error, function)
        return None if message is None else f"{message}\nCalled {call}."

    with explained(in_plain_words, (RuntimeError, TypeError)):
        return action()


def backward(function: str, call: str, y, weights=None) -> None:
    """y.sum().backward(), or (y * weights).sum().backward(): then grad_output = weights.

    (y.backward(weights) would hand the same grad_output, but its first use in a process
    imports sympy, about 1 s.)"""
    require(
        isinstance(y, torch.Tensor) and y.grad_fn is not None,
        f"Called {call}. The result is {fmt(y)} without a grad_fn, so backward() cannot start "
        f"from it: return a tensor from forward, and call the Function through apply.",
    )
    loss = y.sum() if weights is None else (y * weights).sum()
    run(function, call, loss.backward)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x.detach().double())


def nearly(expected: torch.Tensor):
    """Recognises a gradient within a few percent of `expected`: right to float32-check
    precision, yet wrong."""
    return lambda got: matches(got, expected, rel=3e-2, abs_=1e-3)


# --- Softplus --------------------------------------------------------------------------------


def test_softplus_forward_is_log_of_1_plus_exp(rng):
    for shape, dtype in [((), torch.float32), ((4,), torch.float32), ((3,), torch.float64)]:
        numbers = values(rng, math.prod(shape), low=0.0)
        x = tensor(numbers, shape, dtype)
        call = f"Softplus.apply(x) with x = {fmt(x)}"
        y = run("Softplus", call, lambda x=x: kata.Softplus.apply(x))
        check_shape_like(y, x, call=call, what="y")
        expected = tensor([math.log1p(math.exp(v)) for v in numbers], shape)
        check_value(
            y,
            expected,
            call=call,
            what="y",
            wrong=[
                Wrong(
                    sigmoid(x),
                    "that is sigmoid(x), the derivative; forward returns the "
                    "value log(1 + exp(x)).",
                ),
                Wrong(
                    x.double(),
                    "log(exp(x)) is x itself: the 1 goes inside the log, log(1 + exp(x)).",
                ),
            ],
        )


def test_softplus_backward_of_a_sum_is_sigmoid(rng):
    for shape in [(), (4,)]:
        x = tensor(values(rng, math.prod(shape)), shape, requires_grad=True)
        call = f"Softplus.apply(x) with x = {fmt(x)}, then y.sum().backward()"
        y = run("Softplus", call, lambda x=x: kata.Softplus.apply(x))
        backward("Softplus", call, y)
        check_shape_like(x.grad, x, call=call, what="x.grad")
        check_value(
            x.grad,
            sigmoid(x),
            call=call,
            what="x.grad",
            wrong=[
                Wrong(sigmoid(-x), RIGHT_AT_ONE_POINT),
                Wrong(nearly(sigmoid(x)), ONLY_FLOAT32_PRECISE),
            ],
        )


def test_softplus_backward_multiplies_by_grad_output(rng):
    for shape in [(), (5,)]:
        count = math.prod(shape)
        x = tensor(values(rng, count), shape, requires_grad=True)
        grad_output = upstream(rng, count).reshape(shape)
        call = (
            f"Softplus.apply(x) with x = {fmt(x)}, then L = (y * w).sum() with "
            f"w = {fmt(grad_output)}, and L.backward(), which hands backward grad_output = w"
        )
        y = run("Softplus", call, lambda x=x: kata.Softplus.apply(x))
        backward("Softplus", call, y, grad_output)
        check_value(
            x.grad,
            grad_output * sigmoid(x),
            call=call,
            what="x.grad",
            wrong=[
                Wrong(sigmoid(x), IGNORES_GRAD_OUTPUT),
                Wrong(grad_output * sigmoid(-x), RIGHT_AT_ONE_POINT),
                Wrong(nearly(grad_output * sigmoid(x)), ONLY_FLOAT32_PRECISE),
            ],
        )


def jacobians(function: str, apply, inputs: list[torch.Tensor], call: str):
    """[(analytical, numerical)] Jacobians of apply(*inputs), one pair per input, as gradcheck
    builds them: backward with one-hot grad_outputs against float64 central differences of
    forward. (torch.autograd.gradcheck itself would import sympy on first use, ~1 s.)"""
    h = 1e-6
    y = run(function, call, lambda: apply(*inputs))
    require(
        isinstance(y, torch.Tensor) and y.dtype == torch.float64,
        f"Called {call}. forward returned {fmt(y) if y is None else getattr(y, 'dtype', y)} "
        f"for float64 inputs: gradcheck's finite differences need float64 all the way through "
        f"(float32 keeps about 7 digits, a step of 1e-6 then measures mostly rounding). Keep "
        f"the input's dtype.",
    )
    rows = []
    for row in range(y.numel()):
        one_hot = torch.zeros(y.numel(), dtype=torch.float64)
        one_hot[row] = 1.0
        loss = (y * one_hot.reshape(y.shape)).sum()
        grads = run(
            function,
            call,
            lambda loss=loss: torch.autograd.grad(
                loss, inputs, retain_graph=True, allow_unused=True
            ),
        )
        rows.append(
            [
                torch.zeros(x.numel(), dtype=torch.float64) if g is None else g.reshape(-1)
                for g, x in zip(grads, inputs)
            ]
        )
    pairs = []
    for index, x in enumerate(inputs):
        analytical = torch.stack([row[index] for row in rows])
        numerical = torch.zeros_like(analytical)
        for column in range(x.numel()):
            shifted = [t.detach().clone() for t in inputs]
            shifted[index].view(-1)[column] += h
            up = apply(*shifted).detach().reshape(-1)
            shifted[index].view(-1)[column] -= 2 * h
            down = apply(*shifted).detach().reshape(-1)
            numerical[:, column] = (up - down) / (2 * h)
        pairs.append((analytical, numerical))
    return pairs


def check_like_gradcheck(function: str, apply, inputs: list[torch.Tensor], *, names, call, why):
    """The check torch.autograd.gradcheck makes, with its tolerances (rtol 1e-3, atol 1e-5)."""
    pairs = jacobians(function, apply, inputs, call)
    for name, x, (analytical, numerical) in zip(names, inputs, pairs):
        if torch.allclose(analytical, numerical, rtol=1e-3, atol=1e-5):
            continue
        elementwise = torch.diag(numerical)  # y[i] depends on x[i] alone
        every_row_the_same = torch.allclose(analytical, analytical[:1].expand_as(analytical))
        if every_row_the_same and torch.allclose(analytical[0], elementwise, rtol=1e-3, atol=1e-5):
            fail(
                f"gradcheck sends one-hot grad_outputs (1 for one element of y, 0 for the "
                f"others), so the gradient for every other element of {name} must come out 0; "
                f"your backward gave the same full gradient for each: {IGNORES_GRAD_OUTPUT}"
                f"\nCalled {call}."
            )
        row, column = divmod(int((analytical - numerical).abs().argmax()), numerical.shape[1])
        fail(
            f"backward does not match finite differences: for y[{row}] with respect to "
            f"{name}[{column}] = {fmt(x.reshape(-1)[column].item())}, backward gives "
            f"{fmt(analytical[row, column].item())}, central differences of forward in float64 "
            f"give {fmt(numerical[row, column].item())}. {why}\nCalled {call}."
        )


def test_softplus_backward_matches_finite_differences_in_float64(rng):
    x = tensor(values(rng, 4), requires_grad=True)
    check_like_gradcheck(
        "Softplus",
        kata.Softplus.apply,
        [x],
        names=["x"],
        call=f"Softplus.apply(x) with the float64 x = {fmt(x)}, checked as gradcheck does",
        why="A derivative can look right when checked in float32, where finite differences are "
        "good to about 1e-3, or at a single point (at x = 0, sigmoid(x) and sigmoid(-x) are "
        "both 0.5). gradcheck, in float64 at random points, sees the difference: backward must "
        "return grad_output * sigmoid(x) exactly.",
    )


def test_softplus_backward_refuses_an_x_changed_in_place(rng):
    x = tensor(values(rng, 3), requires_grad=True)
    shown, changed_grad = fmt(x), sigmoid(x + 1.0)
    call = (
        f"Softplus.apply(x) with x = {shown}; then x += 1 under torch.no_grad() (as an "
        f"optimizer step would); then y.sum().backward()"
    )
    y = run("Softplus", call, lambda: kata.Softplus.apply(x))
    with torch.no_grad():
        x.add_(1.0)
    with caught(saying="modified by an inplace operation") as edit:
        backward("Softplus", call, y)
    if edit.error:
        return  # autograd's version check caught it: x was saved with save_for_backward
    check_value(
        x.grad,
        sigmoid(x - 1.0),
        call=call,
        what="x.grad",
        wrong=[Wrong(changed_grad, ATTRIBUTE_NOT_SAVED)],
    )


def saved_by_autograd(action) -> int:
    """How many tensors action() saved through ctx.save_for_backward (its pack hook sees them)."""
    packed = []

    def pack(saved):
        packed.append(saved)
        return saved

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda saved: saved):
        action()
    return len(packed)


def test_softplus_saves_its_tensor_with_save_for_backward(rng):
    x = tensor(values(rng, 3), requires_grad=True)
    call = f"Softplus.apply(x) with x = {fmt(x)}"
    count = saved_by_autograd(lambda: run("Softplus", call, lambda: kata.Softplus.apply(x)))
    require(
        count >= 1,
        f"Softplus.forward saved no tensor with ctx.save_for_backward, yet backward needs x "
        f"(or y): {KEPT_AS_ATTRIBUTE}\nCalled {call}.",
    )


# --- ScaledProduct ---------------------------------------------------------------------------


def random_scale(rng) -> float:
    return round(rng.choice([-1, 1]) * rng.uniform(1.5, 3.0), 2)


def test_scaled_product_forward_is_scale_times_a_times_b(rng):
    for shape, dtype in [((), torch.float32), ((4,), torch.float32), ((3,), torch.float64)]:
        count, scale = math.prod(shape), random_scale(rng)
        a, b = tensor(values(rng, count), shape, dtype), tensor(values(rng, count), shape, dtype)
        call = f"ScaledProduct.apply(a, b, {scale}) with a = {fmt(a)}, b = {fmt(b)}"
        y = run("ScaledProduct", call, lambda a=a, b=b, s=scale: kata.ScaledProduct.apply(a, b, s))
        check_shape_like(y, a, call=call, what="y")
        check_value(
            y,
            scale * a.double() * b.double(),
            call=call,
            what="y",
            wrong=[Wrong(a.double() * b.double(), "scale is part of the product: scale * a * b.")],
        )


def product_mistakes(a, b, scale: float, g) -> list[Wrong]:
    """(a.grad, b.grad) as the usual mistakes in ScaledProduct.backward leave them. When b
    needs no gradient, b.grad stays None whatever backward returns for it."""
    b_grad = (lambda value: value) if b.requires_grad else (lambda value: None)
    a, b = a.detach(), b.detach()
    none_for = (
        "is None: backward returns one gradient per input in forward's order, (dL/da, dL/db, "
        "None), with None only for scale."
    )
    return [
        Wrong(
            (g * scale * a, b_grad(g * scale * b)),
            "the gradients are swapped: d(scale * a * b)/da = scale * b, the OTHER factor, "
            "and dL/db likewise holds a.",
        ),
        Wrong((scale * b, b_grad(scale * a)), IGNORES_GRAD_OUTPUT),
        Wrong(
            (g * b, b_grad(g * a)),
            "scale is missing: d(scale * a * b)/da = scale * b. Read it back from ctx (ctx.scale).",
        ),
        Wrong(lambda got: got[0] is None, f"a.grad {none_for}"),
        Wrong(lambda got: got[1] is None and b_grad(True), f"b.grad {none_for}"),
    ]


def test_scaled_product_backward_gives_one_gradient_per_input(rng):
    for shape in [(), (4,)]:
        count, scale = math.prod(shape), random_scale(rng)
        a = tensor(values(rng, count), shape, requires_grad=True)
        b = tensor(values(rng, count), shape, requires_grad=True)
        g = upstream(rng, count).reshape(shape)
        call = (
            f"ScaledProduct.apply(a, b, {scale}) with a = {fmt(a)}, b = {fmt(b)}, then "
            f"L = (y * w).sum() with w = {fmt(g)}, and L.backward(), which hands backward "
            f"grad_output = w"
        )
        y = run("ScaledProduct", call, lambda a=a, b=b, s=scale: kata.ScaledProduct.apply(a, b, s))
        backward("ScaledProduct", call, y, g)
        check_value(
            (a.grad, b.grad),
            (g * scale * b.detach(), g * scale * a.detach()),
            call=call,
            what="(a.grad, b.grad)",
            wrong=product_mistakes(a, b, scale, g),
        )


def test_scaled_product_backward_matches_finite_differences_in_float64(rng):
    scale = random_scale(rng)
    a, b = tensor(values(rng, 3), requires_grad=True), tensor(values(rng, 3), requires_grad=True)
    check_like_gradcheck(
        "ScaledProduct",
        lambda a, b: kata.ScaledProduct.apply(a, b, scale),
        [a, b],
        names=["a", "b"],
        call=f"ScaledProduct.apply(a, b, {scale}) with the float64 a = {fmt(a)}, b = {fmt(b)}, "
        f"checked as gradcheck does",
        why="backward must return (grad_output * scale * b, grad_output * scale * a, None).",
    )


def test_scaled_product_works_when_only_a_requires_grad(rng):
    scale = random_scale(rng)
    a, b = tensor(values(rng, 3), requires_grad=True), tensor(values(rng, 3))
    g = upstream(rng, 3)
    call = (
        f"ScaledProduct.apply(a, b, {scale}) with a = {fmt(a)} requiring grad and the constant "
        f"b = {fmt(b)}, then L = (y * w).sum() with w = {fmt(g)}, and L.backward()"
    )
    y = run("ScaledProduct", call, lambda: kata.ScaledProduct.apply(a, b, scale))
    backward("ScaledProduct", call, y, g)
    # b needs no gradient: whatever backward returns for it is dropped, and b.grad stays None.
    check_value(
        (a.grad, b.grad),
        (g * scale * b, None),
        call=call,
        what="(a.grad, b.grad)",
        wrong=product_mistakes(a, b, scale, g),
    )


def test_scaled_product_backward_refuses_an_a_changed_in_place(rng):
    scale = random_scale(rng)
    a, b = tensor(values(rng, 3), requires_grad=True), tensor(values(rng, 3), requires_grad=True)
    g = upstream(rng, 3)
    call = (
        f"ScaledProduct.apply(a, b, {scale}) with a = {fmt(a)}, b = {fmt(b)}; then a += 1 "
        f"under torch.no_grad() (as an optimizer step would); then L = (y * w).sum() with "
        f"w = {fmt(g)}, and L.backward()"
    )
    y = run("ScaledProduct", call, lambda: kata.ScaledProduct.apply(a, b, scale))
    with torch.no_grad():
        a.add_(1.0)
    with caught(saying="modified by an inplace operation") as edit:
        backward("ScaledProduct", call, y, g)
    if edit.error:
        return  # autograd's version check caught it: a was saved with save_for_backward
    a_then = a.detach() - 1.0
    check_value(
        b.grad,
        g * scale * a_then,
        call=call,
        what="b.grad",
        wrong=[Wrong(g * scale * a.detach(), ATTRIBUTE_NOT_SAVED)],
    )


def test_scaled_product_saves_its_tensors_with_save_for_backward(rng):
    scale = random_scale(rng)
    a, b = tensor(values(rng, 3), requires_grad=True), tensor(values(rng, 3), requires_grad=True)
    call = f"ScaledProduct.apply(a, b, {scale}) with a = {fmt(a)}, b = {fmt(b)}"
    count = saved_by_autograd(
        lambda: run("ScaledProduct", call, lambda: kata.ScaledProduct.apply(a, b, scale))
    )
    require(
        count >= 2,
        f"ScaledProduct.forward saved {count} tensor(s) with ctx.save_for_backward, yet "
        f"backward needs both a and b: {KEPT_AS_ATTRIBUTE}\nCalled {call}.",
    )


# --- contracts the stub states (issue 16) -----------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softplus_forward_far_from_zero(dtype, rng):
    # The stub's range: -20 to 20, to 1e-5 absolute or relative; every accepted form passes.
    numbers = [-20.0, round(rng.uniform(-15, -8), 2), round(rng.uniform(8, 15), 2), 20.0]
    x = torch.tensor(numbers, dtype=dtype, requires_grad=True)
    call = f"Softplus.apply(x) with x = {fmt(x)} ({dtype})"
    y = run("Softplus", call, lambda: kata.Softplus.apply(x))
    check_shape_like(y, x, call=call, what="y")
    expected = torch.tensor([math.log1p(math.exp(v)) for v in numbers], dtype=torch.float64)
    check_value(y, expected, call=call, what="y")
    backward("Softplus", call, y)
    check_value(x.grad, sigmoid(x), call=call + ", then y.sum().backward()", what="x.grad")


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_two_applies_before_either_backward_keep_their_own_state(rng):
    # State kept on the class (ScaledProduct.scale = scale) instead of ctx shows only here.
    first, second = random_scale(rng), random_scale(rng) + 1.0
    a1, b1 = tensor(values(rng, 3), requires_grad=True), tensor(values(rng, 3))
    a2, b2 = tensor(values(rng, 3), requires_grad=True), tensor(values(rng, 3))
    call = (
        f"y1 = ScaledProduct.apply(a1, b1, {first}), then y2 = ScaledProduct.apply(a2, b2, "
        f"{second}), then y1.sum().backward() and y2.sum().backward()"
    )
    y1 = run("ScaledProduct", call, lambda: kata.ScaledProduct.apply(a1, b1, first))
    y2 = run("ScaledProduct", call, lambda: kata.ScaledProduct.apply(a2, b2, second))
    backward("ScaledProduct", call, y1)
    backward("ScaledProduct", call, y2)
    check_value(
        (a1.grad, a2.grad),
        (first * b1, second * b2),
        call=call,
        what="(a1.grad, a2.grad)",
        wrong=[
            Wrong(
                (second * b1, second * b2),
                "y1's backward used the second call's scale: it was kept where both calls "
                "share it (on the class, or in a global), and the second forward overwrote "
                "it. Keep per-call state on ctx: ctx.scale = scale.",
            )
        ],
    )
    x1, x2 = tensor(values(rng, 2), requires_grad=True), tensor(values(rng, 2), requires_grad=True)
    call = "y1 = Softplus.apply(x1), y2 = Softplus.apply(x2), then both backward()"
    z1 = run("Softplus", call, lambda: kata.Softplus.apply(x1))
    z2 = run("Softplus", call, lambda: kata.Softplus.apply(x2))
    backward("Softplus", call, z1)
    backward("Softplus", call, z2)
    check_value(
        (x1.grad, x2.grad),
        (sigmoid(x1), sigmoid(x2)),
        call=call,
        what="(x1.grad, x2.grad)",
        wrong=[
            Wrong(
                (sigmoid(x2), sigmoid(x2)),
                "x1's gradient was taken at x2: the saved x was kept where both calls share it "
                "(on the class, or in a global). Save it on ctx: ctx.save_for_backward(x).",
            )
        ],
    )

"""Kata 18: torch.where computes both branches, and the untaken one's nan reaches the gradient."""

import math
import re
import warnings

import pytest
import torch

from coach.runtime.testing import (
    Wrong,
    check_shape_like,
    check_value,
    explained,
    fmt,
    load_kata,
    require,
)

kata = load_kata("k18_nan_where")


def nan_at(mask: torch.Tensor):
    """A predicate: the tensor got has nan exactly where `mask` is True (and somewhere)."""

    def check(got) -> bool:
        return (
            isinstance(got, torch.Tensor)
            and got.shape == mask.shape
            and bool(mask.any())
            and bool((got.isnan() == mask).all())
        )

    return check


def gradient_of(result: torch.Tensor, leaf: torch.Tensor, weights: torch.Tensor, call: str):
    """d(sum(weights * result))/d(leaf), through the learner's result; None if it never arrives."""
    require(
        isinstance(result, torch.Tensor) and result.requires_grad,
        f"Called {call} on an input that requires grad. The result does not require grad: "
        f"autograd has no path back to the input. Compute it from the input with torch "
        f"operations (no .item(), detach() or torch.no_grad()).",
    )
    (grad,) = torch.autograd.grad((weights * result).sum(), leaf, allow_unused=True)
    return grad


# --- safe_log -------------------------------------------------------------------------------


# A positive x far below any eps a clamp would use: log(x) and 1/x are still finite in float32.
TINY = 1e-20


def mixed_values(rng, count: int) -> list[float]:
    """Positive values (TINY among them), one 0.0 and one negative value, shuffled."""
    values = [round(rng.uniform(0.2, 3.0), 3) for _ in range(count - 3)]
    values += [TINY, 0.0, -round(rng.uniform(0.2, 3.0), 3)]
    rng.shuffle(values)
    return values


def log_call(values) -> str:
    return f"safe_log(tensor({fmt(values)}))"


def call_safe_log(values, dtype=torch.float32):
    x = torch.tensor(values, dtype=dtype, requires_grad=True)
    call = log_call(values)
    y = kata.safe_log(x)
    check_shape_like(y, x, call=call)
    return call, x, y


SINGLE_WHERE = (
    "nan where x is 0. torch.where computed log(x) for every x before picking, and in "
    "backward the untaken branch still gets a gradient, 0, which log's backward divides by "
    "x = 0: 0 / 0 is nan (as 0 * inf is). Give log a safe input first, "
    "torch.where(x > 0, x, 1.0), a value where log and its derivative are finite, then pick "
    "with a second where."
)


CLAMPED = (
    "x.clamp(min=eps) (or max(x, eps)) swaps every 0 < x < eps for eps, not only the x <= 0 "
    "that log must not see: for those x it returns log(eps) instead of log(x), and gradient 0 "
    "(clamp passes none below its min) instead of 1/x. Make only x <= 0 safe, "
    "torch.where(x > 0, x, 1.0), then pick with a second where."
)


def tiny_positive(values) -> torch.Tensor:
    return torch.tensor([0.0 < v < 1e-3 for v in torch.tensor(values).reshape(-1).tolist()])


def wrong_only_at_tiny_x(values, expected, at_tiny):
    """A predicate: got is right except where 0 < x < 1e-3, where at_tiny(got, x) holds."""
    tiny = tiny_positive(values)

    def check(got) -> bool:
        if not (isinstance(got, torch.Tensor) and got.shape == expected.shape) or not tiny.any():
            return False
        got_, want = got.detach().double().reshape(-1), expected.double().reshape(-1)
        x = torch.tensor(values, dtype=torch.float64).reshape(-1)
        rest = torch.allclose(got_[~tiny], want[~tiny], rtol=1e-5, atol=1e-5)
        return rest and bool(at_tiny(got_[tiny], x[tiny]).all())

    return check


def clamped_log(values, expected):
    """safe_log's result after a clamp(min=eps): log(eps) > log(x), finite, where x is tiny."""
    return wrong_only_at_tiny_x(
        values, expected, lambda got, x: got.isfinite() & (got > torch.log(x) + 1.0)
    )


def log_value_wrongs(values) -> tuple[Wrong, ...]:
    """The usual wrong results of safe_log(tensor(values)) (values: a list or one float)."""
    expected = torch.tensor(values, dtype=torch.float64)
    expected = torch.where(expected > 0, expected, 1.0).log().where(expected > 0, 0.0)
    return (
        Wrong(
            clamped_log(values, expected), f"log(eps), not log(x), where x = {TINY:g}: {CLAMPED}"
        ),
        Wrong(
            nan_at(torch.tensor(values) <= 0),
            "nan where x <= 0. Multiplying by a mask does not hide a value: log(0) is -inf and "
            "log of a negative number is nan, and 0 * inf and 0 * nan are both nan, not 0. "
            "Pick values with torch.where instead.",
        ),
        Wrong(
            lambda got: isinstance(got, torch.Tensor) and bool(torch.isinf(got).any()),
            "-inf where x is 0: log(0) is -inf. Where x <= 0 the result is 0.",
        ),
    )


def test_safe_log_is_log_where_positive_and_zero_elsewhere(rng):
    values = mixed_values(rng, 6)
    call, _, y = call_safe_log(values)
    expected = torch.tensor([math.log(v) if v > 0 else 0.0 for v in values])
    check_value(y, expected, call=call, what="The result", wrong=log_value_wrongs(values))


def test_safe_log_gradient_is_finite_where_x_is_zero(rng):
    values = mixed_values(rng, 6)
    call, x, y = call_safe_log(values)
    weights = torch.rand(len(values)) + 0.5
    grad = gradient_of(y, x, weights, call)
    expected = torch.tensor([w / v if v > 0 else 0.0 for w, v in zip(weights.tolist(), values)])
    check_value(
        grad,
        expected,
        call=call + " and backward() of sum(w * result)",
        what="The gradient",
        wrong=(
            Wrong(nan_at(torch.tensor([v == 0 for v in values])), SINGLE_WHERE),
            Wrong(
                wrong_only_at_tiny_x(values, expected, lambda got, x: got == 0),
                f"0, not 1/x, where x = {TINY:g}: {CLAMPED}",
            ),
            Wrong(None, "None: the result is not computed from x. Build it from x itself."),
        ),
    )


def test_safe_log_of_an_exact_zero_alone(rng):
    weight = round(rng.uniform(0.5, 2.0), 3)
    x = torch.tensor(0.0, requires_grad=True)
    call = "safe_log(tensor(0.0))"
    y = kata.safe_log(x)
    check_shape_like(y, x, call=call)
    check_value(y, torch.tensor(0.0), call=call, what="The result", wrong=log_value_wrongs(0.0))
    grad = gradient_of(y, x, torch.tensor(weight), call)
    check_value(
        grad,
        torch.tensor(0.0),
        call=f"{call} and backward() of {fmt(weight)} * result",
        what="The gradient",
        wrong=(Wrong(nan_at(torch.tensor(True)), SINGLE_WHERE),),
    )


def test_safe_log_keeps_shape_and_dtype(rng):
    value = round(rng.uniform(0.2, 3.0), 3)
    call, _, y = call_safe_log(value)
    check_value(y, torch.tensor(math.log(value)), call=call, what="The result")
    values = mixed_values(rng, 4)
    call, _, y = call_safe_log(values, torch.float64)
    expected = torch.tensor([math.log(v) if v > 0 else 0.0 for v in values], dtype=torch.float64)
    check_value(
        y, expected, call=call + " in float64", what="The result", wrong=log_value_wrongs(values)
    )


# --- safe_norm ------------------------------------------------------------------------------


def rows_with_zeros(rng) -> list[list[float]]:
    """Four rows of length 3: two all zero, one with a zero element, one random."""
    rows = [[0.0, 0.0, 0.0], [0.0, round(rng.uniform(0.5, 2), 3), round(rng.uniform(-2, -0.5), 3)]]
    rows += [[round(rng.uniform(-2, 2), 3) for _ in range(3)], [0.0, 0.0, 0.0]]
    rng.shuffle(rows)
    return rows


def norm_call(rows) -> str:
    return f"safe_norm(tensor({fmt(rows)}))"


EPS_IN_SQRT = (
    "an all-zero row came out above 0: that is sqrt(s + eps). An eps "
    "inside sqrt keeps the gradient finite, but it changes the value at 0 (sqrt(eps), not 0) "
    "and biases every small norm upward. The double where keeps the value exact: make the sum "
    "of squares safe for sqrt, torch.where(s > 0, s, 1.0), then pick 0 where s is 0."
)


def eps_in_sqrt(rows):
    """A predicate: got is sqrt(s + eps) for one small eps > 0 (s: each row's sum of squares)."""
    squares = torch.tensor([sum(a * a for a in row) for row in rows], dtype=torch.float64)
    zero_rows = squares == 0

    def check(got) -> bool:
        if not (isinstance(got, torch.Tensor) and got.shape == squares.shape):
            return False
        got = got.detach().double()
        eps = got[zero_rows].square()
        if not (bool((eps > 0).all()) and eps.max().item() < 1e-4):
            return False
        return torch.allclose(got, (squares + eps.mean()).sqrt(), rtol=1e-5, atol=0.0)

    return check


def norm_eps_wrongs(rows, expected) -> tuple[Wrong, ...]:
    """An eps added inside sqrt, or anywhere else that moves the norm of an all-zero row."""
    return (
        Wrong(eps_in_sqrt(rows), EPS_IN_SQRT),
        Wrong(
            lambda got: (
                isinstance(got, torch.Tensor)
                and got.shape == expected.shape
                and bool((got.detach()[expected == 0] != 0).all())
            ),
            "an all-zero row has norm exactly 0, as sqrt(0) is. Something added to the "
            "sum of squares or to the norm (an eps) moved it. Keep the value exact with the "
            "double where: torch.where(s > 0, s, 1.0) before sqrt, then pick 0 where s is 0.",
        ),
    )


def test_safe_norm_is_the_length_of_each_row(rng):
    rows = rows_with_zeros(rng)
    call = norm_call(rows)
    v = torch.tensor(rows)
    result = kata.safe_norm(v)
    expected = torch.tensor([math.sqrt(sum(a * a for a in row)) for row in rows])
    zero_elements_as_one = torch.tensor(
        [math.sqrt(sum(a * a if a else 1.0 for a in row)) if any(row) else 0.0 for row in rows]
    )
    check_value(
        result,
        expected,
        call=call,
        what="The result",
        wrong=(
            Wrong(
                zero_elements_as_one,
                "rows with a zero element came out too big: the first where replaced each "
                "zero ELEMENT of v by 1. Only a row that is all zero is a problem for sqrt: "
                "make the sum of squares safe instead.",
            ),
            Wrong(
                lambda got: isinstance(got, torch.Tensor) and got.shape != expected.shape,
                "the shape is wrong: one norm per row, over the last dimension (dim=-1).",
            ),
            *norm_eps_wrongs(rows, expected),
        ),
    )


def test_safe_norm_of_an_all_zero_row_is_exactly_0_and_small_norms_exact(rng):
    scale = rng.choice([1e-7, 1e-6, 1e-5])
    rows = [
        [0.0, 0.0, 0.0],
        [round(rng.uniform(0.5, 2), 3) * scale, 0.0, round(rng.uniform(-2, -0.5), 3) * scale],
        [round(rng.uniform(-2, 2), 3) for _ in range(3)],
    ]
    rng.shuffle(rows)
    call = norm_call(rows) + " in float64"
    result = kata.safe_norm(torch.tensor(rows, dtype=torch.float64))
    expected = torch.tensor(
        [math.sqrt(sum(a * a for a in row)) for row in rows], dtype=torch.float64
    )
    check_value(
        result,
        expected,
        call=call,
        what="The result",
        wrong=norm_eps_wrongs(rows, expected),
        rel=1e-9,
        abs_=0.0,
    )


def test_safe_norm_gradient_is_zero_where_v_is_zero(rng):
    rows = rows_with_zeros(rng)
    call = norm_call(rows) + " and backward() of sum(w * result)"
    v = torch.tensor(rows, requires_grad=True)
    weights = torch.rand(len(rows)) + 0.5
    grad = gradient_of(kata.safe_norm(v), v, weights, call)
    reference = torch.tensor(rows, requires_grad=True)
    (expected,) = torch.autograd.grad(
        (weights * torch.linalg.vector_norm(reference, dim=-1)).sum(), reference
    )
    zero_rows = torch.tensor([[not any(row)] * 3 for row in rows])
    check_value(
        grad,
        expected,
        call=call,
        what="The gradient",
        wrong=(
            Wrong(
                nan_at(zero_rows),
                "nan in the rows that are all zero. The value sqrt(0) = 0 is right, but "
                "sqrt's derivative at 0 is inf, and the chain rule multiplies it by 2 * v = 0: "
                "nan. A where after sqrt does not help, since sqrt's backward still runs. Make "
                "the sum of squares safe before sqrt (torch.where(s > 0, s, 1.0)), then pick.",
            ),
            Wrong(None, "None: the result is not computed from v. Build it from v itself."),
        ),
    )


def test_safe_norm_of_one_vector_is_0_d(rng):
    row = [round(rng.uniform(-2, 2), 3) for _ in range(3)]
    call = norm_call(row)
    result = kata.safe_norm(torch.tensor(row, dtype=torch.float64))
    expected = torch.tensor(math.sqrt(sum(a * a for a in row)), dtype=torch.float64)
    check_value(result, expected, call=call + " in float64", what="The result")
    require(
        result.shape == () and result.dtype == torch.float64,
        f"Called {call} in float64. The result has shape {tuple(result.shape)} and dtype "
        f"{result.dtype}, expected shape () and torch.float64: one vector has one norm, a 0-d "
        f"tensor, in v's dtype.",
    )


# --- nan_source -----------------------------------------------------------------------------

# Which backward function detect_anomaly names first, pinned on torch 2.13.
NAN_CASES = [
    ("torch.where(x > 0, torch.log(x), 0.0).sum()", "LogBackward0", 0.0),
    ("torch.where(x > 0, torch.sqrt(x), 0.0).sum()", "SqrtBackward0", 0.0),
    ("(x**2).sum().sqrt()", "PowBackward0", None),
    ("torch.where(x != 0, 1 / x, 0.0).sum()", "ReciprocalBackward0", 0.0),
    ("torch.where(x < 50, torch.exp(x), 0.0).sum()", "ExpBackward0", 1000.0),
]
FORWARD_NAMES = {"log", "sqrt", "pow", "reciprocal", "exp", "where", "sum", "div", "mul"}


def call_nan_source(source: str, x: torch.Tensor):
    loss_fn = eval(f"lambda x: {source}", {"torch": torch})
    call = f"nan_source(lambda x: {source}, tensor({fmt(x.tolist())}))"

    def uncaught_report(error):
        return (
            f"Called {call}. It raised RuntimeError({str(error)!r}). That error is anomaly "
            f"mode's report: catch it (try/except RuntimeError around the backward) and return "
            f"the name it gives."
        )

    with warnings.catch_warnings(), explained({"returned nan values": uncaught_report}):
        warnings.simplefilter("ignore")  # anomaly mode warns that it is on
        result = kata.nan_source(loss_fn, x)
    return call, result


@pytest.mark.parametrize(("source", "name", "special"), NAN_CASES, ids=[c[1] for c in NAN_CASES])
def test_nan_source_names_the_backward_function_that_made_the_nan(source, name, special, rng):
    values = [round(rng.uniform(0.5, 3.0), 3) for _ in range(3)]
    if special is None:
        values = [0.0, 0.0, 0.0]
    else:
        values[rng.randrange(3)] = special
    call, result = call_nan_source(source, torch.tensor(values))
    loss_fn = eval(f"lambda x: {source}", {"torch": torch})
    last = loss_fn(torch.tensor(values, requires_grad=True)).grad_fn.name()
    check_value(
        result,
        name,
        call=call,
        what="The result",
        wrong=(
            Wrong(
                None,
                "None, as if backward() had run cleanly. Did backward() run inside `with "
                "torch.autograd.detect_anomaly():`? Only there does autograd check each "
                "backward function's output for nan.",
            ),
            Wrong(
                lambda got: isinstance(got, str) and name in got and got != name,
                f"return only the function's name, {name!r}, not the whole message.",
            ),
            Wrong(
                lambda got: isinstance(got, str) and got.lower() in FORWARD_NAMES,
                f"that is a forward operation. Anomaly mode names the backward function "
                f"that returned nan: {name!r}, from the error's message.",
            ),
            Wrong(
                last,
                f"that is the backward function of the loss itself, made by the last operation "
                f"of the forward pass: backward() starts there, but the nan was made further "
                f"down. The answer is the first backward function that returned nan, which "
                f"detect_anomaly() reports: run backward() inside `with "
                f"torch.autograd.detect_anomaly():` and return the name its RuntimeError gives "
                f'("Function {name!r} returned nan values ...").',
            ),
            Wrong(
                lambda got: isinstance(got, str) and re.fullmatch(r"\w+Backward\d+", got),
                f"that backward function is in the graph, but it is not the first that returned "
                f"nan. Let detect_anomaly() tell you: its RuntimeError names {name!r}.",
            ),
        ),
    )


@pytest.mark.parametrize(
    ("source", "special"),
    [
        ("torch.where(x > 0, torch.log(torch.where(x > 0, x, 1.0)), 0.0).sum()", 0.0),
        ("torch.exp(x).sum()", 100.0),  # exp(100) overflows float32 to inf: inf is not nan
    ],
    ids=["double_where", "inf_gradient"],
)
def test_nan_source_is_none_when_no_backward_function_returns_nan(source, special, rng):
    values = [round(rng.uniform(0.5, 3.0), 3) for _ in range(3)]
    values[rng.randrange(3)] = special
    call, result = call_nan_source(source, torch.tensor(values))
    check_value(
        result,
        None,
        call=call,
        what="The result",
        wrong=(
            Wrong(
                lambda got: isinstance(got, str),
                "a name, but no backward function returned nan here (an inf gradient is "
                "not nan, and anomaly mode only checks for nan). Return None when backward() "
                "finishes without raising.",
            ),
        ),
    )


# --- contracts the stub states (issue 16) -----------------------------------------------------


def test_safe_norm_of_a_row_holding_nan_is_nan(rng):
    d = rng.randint(2, 4)
    row = [round(rng.uniform(-2, 2), 3) for _ in range(d)]
    nan_row = list(row)
    nan_row[rng.randrange(d)] = math.nan
    v = torch.tensor([nan_row, row, [0.0] * d])
    call = f"safe_norm({fmt(v)})"
    result = kata.safe_norm(v)
    expected = torch.tensor([math.nan, math.sqrt(sum(r * r for r in row)), 0.0])
    check_value(
        result,
        expected,
        call=call,
        what="The result",
        wrong=[
            Wrong(
                lambda got: isinstance(got, torch.Tensor) and got.numel() == 3 and got[0] == 0,
                "the row holding nan came out as 0: `squares > 0` is False for nan, so the "
                "nan was taken for an all-zero row and hidden. A nan must stay nan, as in "
                "torch.linalg.vector_norm: pick the zero rows with `squares == 0`.",
            )
        ],
    )


@pytest.mark.parametrize("error", [RuntimeError, ValueError])
def test_nan_source_lets_other_errors_through(error, rng):
    x = torch.tensor([round(rng.uniform(0.5, 3.0), 3) for _ in range(3)])

    def loss_fn(t):
        raise error("a bug in loss_fn (raised by the test)")

    call = f"nan_source(loss_fn, {fmt(x)}) with a loss_fn that raises {error.__name__}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            got = kata.nan_source(loss_fn, x)
        except error as raised:
            if "raised by the test" in str(raised):
                return
            raise
    pytest.fail(
        f"Called {call}. It returned {got!r}, expected the {error.__name__} to come out: only "
        f"anomaly mode's 'returned nan values' error is an answer. Re-raise anything else.",
        pytrace=False,
    )


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_safe_log_and_safe_norm_at_infinity(rng):
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor(
            [math.inf, round(rng.uniform(0.5, 2), 3), -math.inf], dtype=dtype, requires_grad=True
        )
        call = f"safe_log({fmt(x.detach())}) in {dtype}"
        y = kata.safe_log(x)
        check_value(
            y.detach(),
            torch.tensor([math.inf, math.log(x[1].item()), 0.0]),
            call=call,
            what="The result",
        )
        (grad,) = torch.autograd.grad(y.sum(), x)
        check_value(
            grad,
            torch.tensor([0.0, 1 / x[1].item(), 0.0]),
            call=call + ", backward()",
            what="x.grad",
        )
        v = torch.tensor([[math.inf, 1.0], [3.0, 4.0]], dtype=dtype)
        check_value(
            kata.safe_norm(v),
            torch.tensor([math.inf, 5.0]),
            call=f"safe_norm({fmt(v)})",
            what="The result",
        )

"""Kata 12: central differences in float64, a relative tolerance, and a gradcheck of your own."""

import torch

from coach.runtime.testing import (
    Wrong,
    backward_passes,
    check_value,
    fmt,
    load_kata,
    matches,
    require,
)

kata = load_kata("k12_numerical_check")

F64 = torch.float64


def weights_like(t: torch.Tensor) -> torch.Tensor:
    """0.5, 1.0, 1.5, ... in t's shape and dtype: every element gets its own weight."""
    return 0.5 + 0.5 * torch.arange(t.numel(), dtype=t.dtype).reshape(t.shape)


class CubicMix:
    """f(t) = sum(w * t**3) + c * t.sum()**2: the second term mixes all the elements."""

    def __init__(self, c: float, scale: float = 1.0):
        self.c, self.scale = c, scale

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return self.scale * ((weights_like(t) * t**3).sum() + self.c * t.sum() ** 2)

    def __repr__(self) -> str:
        scale = f"{fmt(self.scale)} * " if self.scale != 1.0 else ""
        return f"f(t) = {scale}(sum(w * t**3) + {fmt(self.c)} * t.sum()**2), w = 0.5, 1.0, ..."

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().to(F64)
        return self.scale * (3 * weights_like(x) * x**2 + 2 * self.c * x.sum())

    def central(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        """The exact central difference of this f: for a cubic it is f' + w * eps**2."""
        x = x.detach().to(F64)
        return self.grad(x) + self.scale * weights_like(x) * eps**2


def random_x(rng, n: int, dtype=F64, low=0.5, high=2.0) -> torch.Tensor:
    """n values of random sign and size between low and high, to 3 significant digits."""
    values = [float(f"{rng.choice([-1, 1]) * rng.uniform(low, high):.3g}") for _ in range(n)]
    return torch.tensor(values, dtype=dtype)


def shown(x: torch.Tensor) -> str:
    return f"tensor({x.tolist()}, dtype={x.dtype})"


def one_sided(f, x: torch.Tensor, eps: float, forward: bool) -> torch.Tensor:
    point, grad = x.detach().to(F64).clone(), torch.zeros(x.shape, dtype=F64)
    for i in range(point.numel()):
        moved = point.clone()
        moved.view(-1)[i] += eps if forward else -eps
        difference = f(moved) - f(point) if forward else f(point) - f(moved)
        grad.view(-1)[i] = difference / eps
    return grad


def left_moved(f, x: torch.Tensor, eps: float, got, shift: float) -> bool:
    """Whether `got` is the central differences of an f whose every element, once measured,
    stays moved by `shift`. (Computed only for a wrong answer: it costs 2n calls of f.)"""
    point, grad = x.detach().to(F64).clone(), torch.zeros(x.shape, dtype=F64)
    for i in range(point.numel()):
        at = point.clone()
        at.view(-1)[:i] += shift  # the elements before i, all left moved
        up, down = at.clone(), at.clone()
        up.view(-1)[i] += eps
        down.view(-1)[i] -= eps
        grad.view(-1)[i] = (f(up) - f(down)) / (2 * eps)
    return matches(got, grad, rel=1e-6, abs_=1e-7)


def all_at_once(f, x: torch.Tensor, eps: float) -> torch.Tensor:
    point = x.detach().to(F64)
    slope = (f(point + eps) - f(point - eps)) / (2 * eps)
    return torch.full(x.shape, slope.item(), dtype=F64)


def in_float32(f, x: torch.Tensor, eps: float) -> torch.Tensor:
    point, grad = x.detach().to(torch.float32).clone(), torch.zeros(x.shape, dtype=F64)
    for i in range(point.numel()):
        up, down = point.clone(), point.clone()
        up.view(-1)[i] += eps
        down.view(-1)[i] -= eps
        grad.view(-1)[i] = ((f(up) - f(down)) / (2 * eps)).item()
    return grad


def nearer(got, one: torch.Tensor, other: torch.Tensor) -> bool:
    """Whether `got` is a tensor of the right shape, nearer to `one` than to `other`."""
    if not isinstance(got, torch.Tensor) or got.shape != one.shape:
        return False
    got = got.detach().to(F64)
    return bool((got - one).abs().max() < (got - other).abs().max())


ONE_SIDED = (
    "that is a one-sided difference, (f(x + eps) - f(x)) / eps, whose error shrinks only like "
    "eps. Step both ways: (f(x + eps) - f(x - eps)) / (2 * eps)."
)
ALL_AT_ONCE = (
    "every element got the same number, the slope with all elements moved at once. Move one "
    "element at a time and put it back before moving the next."
)
LEFT_MOVED = (
    "element 0 is right but later ones drift, because each element was left moved by eps "
    "after its slope was measured (+eps, then -2 * eps, and never put back). Every later slope "
    "was then measured at a shifted x. Save each element's value and put it back before "
    "moving the next."
)


def check_numerical_grad(f, x: torch.Tensor, eps=None, wrong=()):
    call = f"numerical_grad(f, {shown(x)}" + (f", eps={eps})" if eps else ")") + f" with {f!r}"
    got = kata.numerical_grad(f, x, eps) if eps else kata.numerical_grad(f, x)
    eps = eps or 1e-6
    require(
        isinstance(got, torch.Tensor),
        f"Called {call}. It returned {fmt(got)}, expected a tensor with one entry per element "
        f"of x.",
    )
    require(
        got.shape == x.shape,
        f"Called {call}. The result has shape {tuple(got.shape)}, expected x's shape "
        f"{tuple(x.shape)}: one slope per element, in x's layout.",
    )
    require(
        got.dtype == F64,
        f"Called {call}. The result is {got.dtype}, expected torch.float64: compute on a "
        f"float64 copy of x, whatever x's dtype (float32 round-off swamps a step of {eps}).",
    )
    check_value(
        got,
        f.central(x, eps),
        call=call,
        what="The result",
        wrong=[
            Wrong(all_at_once(f, x, eps), ALL_AT_ONCE),
            Wrong(one_sided(f, x, eps, forward=True), ONE_SIDED),
            Wrong(one_sided(f, x, eps, forward=False), ONE_SIDED),
            Wrong(
                lambda got: any(left_moved(f, x, eps, got, shift) for shift in (-eps, eps)),
                LEFT_MOVED,
            ),
            *wrong,
        ],
        rel=1e-6,
        abs_=1e-7,
    )
    return got


# --- numerical_grad ------------------------------------------------------------------------


def test_numerical_grad_matches_the_derivative(rng):
    for _ in range(3):
        x = random_x(rng, rng.randint(2, 5))
        check_numerical_grad(CubicMix(round(rng.uniform(-1, 1), 2)), x)


def test_numerical_grad_steps_both_ways_by_the_given_eps(rng):
    # With eps = 0.01 a one-sided difference is off by about 1%, a central one by 1e-4 * w.
    x = random_x(rng, 3)
    f = CubicMix(round(rng.uniform(-1, 1), 2))
    ignored = "that is the exact derivative, not the central difference with the eps passed in"
    check_numerical_grad(f, x, eps=1e-2, wrong=[Wrong(f.grad(x), ignored + ": use eps.")])


def test_numerical_grad_moves_one_element_at_a_time(rng):
    # No mixing term here: each slope depends on its own element alone.
    check_numerical_grad(CubicMix(0.0), random_x(rng, 4))
    # With one, every slope depends on all the elements: each element left moved by eps = 0.01
    # shifts every later slope by 2 * c * eps, far beyond the tolerance.
    c = round(rng.choice([-1, 1]) * rng.uniform(0.5, 1.0), 2)
    check_numerical_grad(CubicMix(c), random_x(rng, 4), eps=1e-2)


def test_numerical_grad_of_a_float32_x_is_measured_in_float64(rng):
    x = random_x(rng, 3, dtype=torch.float32)
    f = CubicMix(round(rng.uniform(-1, 1), 2))
    float32 = in_float32(f, x, 1e-6)
    check_numerical_grad(
        f,
        x,
        wrong=[
            Wrong(
                lambda got: nearer(got, float32, f.central(x, 1e-6)),
                "the slopes were measured in x's float32. x + 1e-6 and x - 1e-6 are rounded "
                "to float32's grid (about 1e-7 apart near 1), so the step really taken is not "
                "2e-6 and the slopes come out a percent or more off. Make a float64 copy of x "
                "first and perturb that.",
            )
        ],
    )


def test_numerical_grad_works_for_any_shape(rng):
    f = CubicMix(round(rng.uniform(-1, 1), 2))
    check_numerical_grad(f, torch.tensor(rng.uniform(0.5, 2.0), dtype=F64))  # 0-d
    check_numerical_grad(f, random_x(rng, 6).reshape(2, 3))


def test_numerical_grad_leaves_x_as_it_was(rng):
    # x.double() is x itself here, and detach() shares its memory: only a clone is safe.
    # Full-precision values: x[i] + eps - eps does not always come back to x[i] exactly.
    x = torch.tensor([rng.uniform(0.5, 2.0) for _ in range(4)], dtype=F64, requires_grad=True)
    before = x.detach().clone()
    call = f"numerical_grad(f, {shown(before)} with requires_grad=True)"
    kata.numerical_grad(CubicMix(0.5), x)
    require(
        torch.equal(x.detach(), before),
        f"Called {call}. x changed to {x.tolist()}: the elements were moved in x's own memory. "
        f"x.double() returns x itself when x is float64, and detach() shares x's memory; "
        f"perturb a .clone().",
    )


# --- gradients_match -------------------------------------------------------------------------


def check_match(analytic, numerical, expected: bool, wrong=(), **tolerances):
    args = ", ".join(f"{name}={value}" for name, value in tolerances.items())
    call = f"gradients_match({shown(analytic)}, {shown(numerical)}" + (
        f", {args})" if args else ")"
    )
    got = kata.gradients_match(analytic, numerical, **tolerances)
    tensor_bool = Wrong(
        lambda g: isinstance(g, torch.Tensor),
        "a tensor is not a Python bool: wrap the answer in bool(...), or use .item().",
    )
    check_value(got, expected, call=call, what="The answer", wrong=[tensor_bool, *wrong])


def test_gradients_match_allows_round_off_at_large_magnitudes(rng):
    numerical = random_x(rng, 4, low=1e4, high=1e5)
    off = torch.tensor([rng.choice([-1, 1]) * rng.uniform(1e-4, 5e-4) for _ in range(4)])
    analytic = numerical * (1 + off.to(F64))
    check_match(
        analytic,
        numerical,
        True,
        wrong=[
            Wrong(
                False,
                "these differ by less than 0.05%, yet by far more than atol: a tolerance "
                "without its relative part fails every large gradient. Allow atol + rtol * "
                "|numerical| with the rtol and atol given (torch.allclose's own defaults are "
                "tighter: pass them on).",
            )
        ],
    )


def test_gradients_match_rejects_small_gradients_that_are_far_apart(rng):
    numerical = random_x(rng, 3, low=1e-7, high=1e-6)
    check_match(
        2 * numerical,
        numerical,
        False,
        rtol=1e-3,
        atol=1e-9,
        wrong=[
            Wrong(
                True,
                "these are 100% apart, but tiny: an absolute tolerance such as rtol (or a "
                "fixed 1e-5) passes everything at small magnitudes. rtol is relative: it "
                "multiplies |numerical|; only atol is absolute.",
            )
        ],
    )


def test_gradients_match_accepts_a_true_zero_with_numerical_noise(rng):
    noise = torch.tensor([rng.uniform(-1e-10, 1e-10) for _ in range(3)], dtype=F64)
    check_match(
        torch.zeros(3, dtype=F64),
        noise,
        True,
        wrong=[
            Wrong(
                False,
                "a true 0 comes out of central differences as round-off noise, which is "
                "infinitely far from 0 in relative terms. atol is the floor that lets it "
                "pass: allow atol + rtol * |numerical|.",
            )
        ],
    )


def test_gradients_match_needs_every_element_to_agree(rng):
    numerical = random_x(rng, 5)
    analytic = numerical.clone()
    analytic[rng.randrange(5)] *= 1.1
    check_match(
        analytic,
        numerical,
        False,
        wrong=[
            Wrong(
                True,
                "one element is 10% off. Every element must be within tolerance: .all(), "
                "not .any(), and not a check on the mean or sum of the differences.",
            )
        ],
    )


def test_gradients_match_uses_the_tolerances_given(rng):
    numerical = random_x(rng, 3)
    check_match(
        numerical * 1.05,
        numerical,
        True,
        rtol=0.1,
        wrong=[Wrong(False, "5% apart passes with rtol=0.1: use the rtol passed in.")],
    )
    check_match(
        numerical + 0.01,
        numerical,
        True,
        rtol=0.0,
        atol=0.02,
        wrong=[Wrong(False, "0.01 apart passes with atol=0.02: use the atol passed in.")],
    )


# --- check_gradient ----------------------------------------------------------------------------


class ScaledCube(torch.autograd.Function):
    """t**3 with a backward of 3 * t**2 * factor: right only when factor is 1."""

    @staticmethod
    def forward(ctx, t, factor):
        ctx.save_for_backward(t)
        ctx.factor = factor
        return t**3

    @staticmethod
    def backward(ctx, grad_output):
        (t,) = ctx.saved_tensors
        return grad_output * 3 * t**2 * ctx.factor, None


class CubeWithBackwardOff:
    """f(t) = sum(w * t**3) through ScaledCube: its backward is off by a factor."""

    def __init__(self, factor: float):
        self.factor = factor

    def __call__(self, t):
        return (weights_like(t) * ScaledCube.apply(t, self.factor)).sum()

    def __repr__(self) -> str:
        return f"f(t) = sum(w * t**3) whose backward gives {self.factor} * 3 * t**2"


def check_verdict(f, x: torch.Tensor, expected: bool, wrong=()):
    """`expected` is clear-cut by construction: a right backward, or one off by 1% or more.
    (torch.autograd.gradcheck gives the same verdicts; it is not called here because its
    first call takes a second of imports.)"""
    call = f"check_gradient(f, {shown(x)}) with {f!r}"
    got = kata.check_gradient(f, x)
    tensor_bool = Wrong(
        lambda g: isinstance(g, torch.Tensor),
        "a tensor is not a Python bool: wrap the answer in bool(...).",
    )
    check_value(got, expected, call=call, what="The verdict", wrong=[tensor_bool, *wrong])


def test_check_gradient_passes_a_correct_gradient(rng):
    for _ in range(2):
        check_verdict(CubicMix(round(rng.uniform(-1, 1), 2)), random_x(rng, 3), True)


def test_check_gradient_passes_a_correct_gradient_at_large_magnitudes(rng):
    check_verdict(
        CubicMix(0.5, scale=1e5),
        random_x(rng, 3, low=1.0, high=2.5),
        True,
        wrong=[
            Wrong(
                False,
                "autograd is right here; the two gradients differ only by round-off, which "
                "grows with the gradient's size. Compare with gradients_match, whose "
                "tolerance is relative.",
            )
        ],
    )


def test_check_gradient_catches_a_wrong_backward(rng):
    x = random_x(rng, 3)
    slightly_off = CubeWithBackwardOff(1 + rng.uniform(0.01, 0.05))
    check_verdict(
        slightly_off,
        x,
        False,
        wrong=[
            Wrong(
                True,
                "the backward is off by 1% or more. The analytic gradient must come from "
                "autograd running f's own backward (f at a float64 copy that requires grad, "
                "then backward() or torch.autograd.grad), compared with numerical_grad.",
            )
        ],
    )
    check_verdict(
        CubeWithBackwardOff(1 + 1e-5),
        x,
        True,
        wrong=[Wrong(False, "a backward off by 0.001% is within rtol = 1e-3: that is a pass.")],
    )


def test_check_gradient_of_a_float32_x_works_in_float64(rng):
    check_verdict(
        CubicMix(round(rng.uniform(-1, 1), 2)),
        random_x(rng, 3, dtype=torch.float32),
        True,
        wrong=[
            Wrong(
                False,
                "f is right, so the check must pass: a float32 x has to be measured in "
                "float64 (as gradcheck wants), or the round-off of a step of 1e-6 makes the "
                "numbers disagree with autograd.",
            )
        ],
    )


def test_check_gradient_leaves_x_as_it_was(rng):
    x = random_x(rng, 3, dtype=torch.float32)
    before = x.clone()
    call = f"check_gradient(f, {shown(x)})"
    kata.check_gradient(CubicMix(0.5), x)
    require(
        not x.requires_grad and x.grad is None and torch.equal(x, before),
        f"Called {call}. Afterwards x.requires_grad is {x.requires_grad} and x.grad is "
        f"{fmt(x.grad)}: the caller's x was made to require grad. Take a float64 copy "
        f"(x.detach().to(torch.float64).clone()) and call requires_grad_() on the copy.",
    )


def test_check_gradient_asks_autograd_for_the_analytic_gradient(rng):
    x = random_x(rng, 3)
    with backward_passes() as engine:
        kata.check_gradient(CubicMix(0.5), x)
    require(
        engine.passes >= 1,
        f"Autograd never ran a backward pass, so nothing checked f's backward. The analytic "
        f"gradient comes from autograd: f at a float64 copy that requires grad, then "
        f"backward() or torch.autograd.grad.\nCalled check_gradient(f, {shown(x)}).",
    )


# --- contracts the stub states (issue 16) -----------------------------------------------------


def test_numerical_grad_of_a_non_contiguous_x(rng):
    rows, cols = rng.randint(2, 3), rng.randint(3, 4)
    x = random_x(rng, rows * cols).reshape(cols, rows).T  # a transposed view: non-contiguous
    f = CubicMix(c=round(rng.uniform(0.5, 1.5), 2))
    call = f"numerical_grad(f, x) with {f!r} and x = a non-contiguous x.T of shape {(rows, cols)}"
    got = kata.numerical_grad(f, x)
    check_value(
        got,
        f.central(x, 1e-6),
        call=call,
        what="The result",
        wrong=[
            Wrong(
                lambda g: isinstance(g, torch.Tensor) and bool((g == 0).all()),
                "every element is 0: f never saw a moved element. A clone of a non-contiguous "
                "x is non-contiguous too, and .reshape(-1) of it is a copy, so the edits "
                "went into that copy. Make a contiguous copy "
                "(clone(memory_format=torch.contiguous_format)).",
            )
        ],
    )


def test_gradients_match_follows_allclose_at_infinity_and_nan():
    inf, nan = float("inf"), float("nan")
    for analytic, numerical, expected in [
        ([inf, 1.0], [inf, 1.0], True),
        ([-inf, 1.0], [-inf, 1.0], True),
        ([inf, 1.0], [-inf, 1.0], False),
        ([nan, 1.0], [nan, 1.0], False),
        ([1.0, 2.0], [nan, 2.0], False),
    ]:
        wrong = [
            Wrong(
                not expected,
                "torch.allclose counts the same infinity on both sides as agreeing (inf - inf "
                "is nan, so compare for equality first) and a nan as never agreeing.",
            )
        ]
        check_match(
            torch.tensor(analytic, dtype=F64),
            torch.tensor(numerical, dtype=F64),
            expected,
            wrong=wrong,
        )


def test_gradients_match_compares_a_float32_analytic_with_a_float64_numerical(rng):
    numerical = random_x(rng, 3)
    close_enough = (numerical * (1 + 2e-4)).float()
    check_match(close_enough, numerical, True)
    check_match((numerical * 1.01).float(), numerical, False)


def test_check_gradient_leaves_the_leaves_f_uses_alone(rng):
    weight = random_x(rng, 3).requires_grad_()
    x = random_x(rng, 3)

    def f(t):
        return (weight * t**3).sum()

    call = "check_gradient(f, x) with f(t) = (weight * t**3).sum(), weight a leaf"
    got = kata.check_gradient(f, x)
    check_value(got, True, call=call, what="The verdict")
    require(
        weight.grad is None,
        f"Called {call}. weight.grad is {fmt(weight.grad)} afterwards, expected None: a "
        f"backward() writes the .grad of every leaf f uses, the model's weights included. "
        f"Take the analytic gradient with torch.autograd.grad(f(copy), copy), which writes "
        f"no .grad.",
    )


def test_check_gradient_of_a_non_contiguous_x(rng):
    x = random_x(rng, 6).reshape(3, 2).T
    check_verdict(
        CubicMix(c=0.5),
        x,
        True,
        wrong=[
            Wrong(
                False,
                "a right gradient was rejected at a non-contiguous x (a transposed x.T): "
                "numerical_grad moved the elements of a copy that f never saw (.reshape(-1) of "
                "a non-contiguous clone is another copy). Make the point contiguous "
                "(clone(memory_format=torch.contiguous_format)).",
            )
        ],
    )


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_gradients_match_scales_rtol_by_the_numerical_gradient_only(rng):
    numerical = random_x(rng, 3, low=1.0, high=2.0)
    analytic = numerical * 1.9  # within 0.5 * |analytic|, not within 0.5 * |numerical|
    check_match(
        analytic,
        numerical,
        False,
        rtol=0.5,
        atol=0.0,
        wrong=[
            Wrong(
                True,
                "the tolerance was scaled by |analytic| (or the larger of the two): the rule is "
                "asymmetric, atol + rtol * |numerical|, with the numerical gradient as the "
                "reference.",
            )
        ],
    )


def test_check_gradient_passes_its_options_on(rng):
    x = random_x(rng, 3)
    f = CubeWithBackwardOff(1.05)  # backward off by 5%: rejected at rtol 1e-3, accepted at rtol 0.1
    call = f"check_gradient(f, {shown(x)}, eps=1e-4, rtol=0.1, atol=1e-3) with {f!r}"
    got = kata.check_gradient(f, x, eps=1e-4, rtol=0.1, atol=1e-3)
    check_value(
        got,
        True,
        call=call,
        what="The verdict",
        wrong=[
            Wrong(
                False,
                "the rtol (or eps, atol) passed to check_gradient did not reach the helpers: "
                "pass them on, numerical_grad(f, x, eps) and gradients_match(analytic, "
                "numerical, rtol, atol).",
            )
        ],
    )
    check_verdict(f, x, False)  # the defaults reject it
    right = CubeWithBackwardOff(1.0)
    call = f"check_gradient(f, {shown(x)}, eps=0.5) with {right!r}"
    got = kata.check_gradient(right, x, eps=0.5)  # a central difference off by w * 0.25
    check_value(
        got,
        False,
        call=call,
        what="The verdict",
        wrong=[Wrong(True, "eps=0.5 did not reach numerical_grad: pass it on.")],
    )

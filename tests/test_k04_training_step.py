"""Kata 4: one step of gradient descent by hand, and the loop that repeats it.

The tests rebuild the notebook's data themselves and run exact gradient descent in float64
from the closed-form gradients of L(w, b) = mean((y - (w*x + b))**2):

    dL/dw = -2 * mean((y - (w*x + b)) * x)        dL/db = -2 * mean(y - (w*x + b))

The kata runs in float32, so its values are compared with close() (1e-5 relative): that
absorbs rounding, including the different last bits of torch.optim.SGD, but not a mistake.
"""

import functools
import math

import pytest
import torch

from coach.runtime.testing import (
    backward_passes,
    close,
    expect_float,
    fail,
    fmt,
    load_kata,
)

kata = load_kata("k04_training_step")

# Each of these mistakes gives numbers of its own; a test that sees them names the mistake.
MISTAKES = {
    "not cleared": (
        "The first step was right and the next one went too far: backward() adds its "
        "gradient to whatever .grad already holds (kata 3), so the second update used the "
        "sum of two gradients. Clear w.grad and b.grad every step (`w.grad.zero_()`, "
        "`w.grad = None`, or an optimizer's zero_grad())."
    ),
    "summed": (
        "The numbers are n times too big, n being the number of points: the loss is the sum "
        "of the squared errors instead of their mean. Use .mean(), so neither the loss nor "
        "the step grows with the size of the data."
    ),
    "uphill": (
        "w and b moved uphill: the update added lr * grad. The gradient points the way the "
        "loss grows fastest, so step against it: subtract lr times the gradient."
    ),
    "lr ignored": (
        "The parameters moved by the whole gradient, as if lr were 1: scale the gradient by "
        "lr in the update."
    ),
    "loss after update": (
        "The loss returned is the one at the updated w and b. Return the loss of this "
        "step's forward pass, measured before the update."
    ),
    "no update": (
        "w and b did not move: `w = w - lr * w.grad` makes a new tensor that only the name w "
        "inside train_step sees, and leaves the caller's w where it was: update in place, "
        "`w -= lr * w.grad`, inside `with torch.no_grad():`. (Clearing .grad between "
        "backward() and the update also leaves nothing to step with.)"
    ),
}


# ---------------------------------------------------------------- the notebook's data


def recipe(n, noise, seed):
    """The notebook's data, exactly as its cell builds it."""
    torch.manual_seed(seed)
    X = torch.linspace(-3, 3, n)
    return X, 2 * X + 1 + torch.randn(n) * noise


# Computing 2x + 1 + noise*z in another order (say noise*z + 2x + 1) rounds differently in
# the last bit of float32, about 1e-6 at |y| <= 16; draws from another seed miss by ~0.1.
SAME_DATA = 1e-5
FLOAT32_EPS = torch.finfo(torch.float32).eps  # 2**-23


def checked_make_data(call, *args, **kwargs):
    result = kata.make_data(*args, **kwargs)
    if not (isinstance(result, tuple) and len(result) == 2):
        fail(f"{call} returned {result!r}; expected a pair (X, y).")
    X, y = result
    for name, tensor in (("X", X), ("y", y)):
        if not isinstance(tensor, torch.Tensor):
            fail(f"{call} returned {type(tensor).__name__} for {name}; expected a tensor.")
    return X, y


def largest_gap(actual, expected) -> float:
    return (actual.double() - expected.double()).abs().max().item()


# ---------------------------------------------------------- exact gradient descent (float64)


def mse_and_gradients(w, b, xs, ys):
    residuals = [y - (w * x + b) for x, y in zip(xs, ys)]
    n = len(xs)
    loss = sum(r * r for r in residuals) / n
    dw = -2 * sum(r * x for r, x in zip(residuals, xs)) / n
    db = -2 * sum(residuals) / n
    return loss, dw, db


def descend(xs, ys, lr, steps, *, start=(0.0, 0.0), mistake=None):
    """[(w, b, returned loss) after each step] of gradient descent, or of one of MISTAKES."""
    w, b = start
    scale = len(xs) if mistake == "summed" else 1
    rate = 1.0 if mistake == "lr ignored" else lr
    direction = 1.0 if mistake == "uphill" else -1.0
    kept_dw = kept_db = 0.0
    trajectory = []
    for _ in range(steps):
        loss, dw, db = (scale * v for v in mse_and_gradients(w, b, xs, ys))
        if mistake == "not cleared":
            kept_dw, kept_db = kept_dw + dw, kept_db + db
            dw, db = kept_dw, kept_db
        if mistake != "no update":
            w, b = w + direction * rate * dw, b + direction * rate * db
        if mistake == "loss after update":
            loss = mse_and_gradients(w, b, xs, ys)[0]
        trajectory.append((w, b, loss))
    return trajectory


def fail_diagnosed(diagnosis_text: str, observed: str) -> None:
    """Fail with the likely mistake first (the run's summary shows a message's first lines)."""
    fail("\n".join(part for part in (diagnosis_text, observed) if part))


def diagnosis(observed, xs, ys, lr, *, start=(0.0, 0.0)) -> str:
    """Name the mistake whose trajectory the observed one follows ("" if none does).

    `observed` holds (w, b, loss) per step; None stands for a value the test did not see.
    When only one of w and b goes wrong, name that one's mistake.
    """

    def follows(trajectory, field):
        return all(
            not isinstance(seen[field], float) or close(seen[field], exact[field], rel=1e-4)
            for seen, exact in zip(observed, trajectory)
        )

    correct = descend(xs, ys, lr, len(observed), start=start)
    wrong = [
        (name, field)
        for name, field in (("w", 0), ("b", 1))
        if isinstance(observed[0][field], float) and not follows(correct, field)
    ]
    partial = []
    for mistake, explanation in MISTAKES.items():
        trajectory = descend(xs, ys, lr, len(observed), start=start, mistake=mistake)
        if all(follows(trajectory, field) for field in range(3)):
            return explanation
        if len(wrong) == 1 and follows(trajectory, wrong[0][1]):
            name = wrong[0][0]
            partial.append(
                f"Only {name} went wrong, and the way it did matches this: {explanation}"
            )
    return partial[0] if partial else ""


def random_line_data(rng):
    """A random cloud of points around a random line, in float32, off-centre on purpose."""
    n = rng.randint(6, 30)
    shift = rng.uniform(-1.0, 1.0)
    slope, intercept = rng.uniform(-3.0, 3.0), rng.uniform(-3.0, 3.0)
    X = torch.tensor([rng.uniform(-2.0, 2.0) + shift for _ in range(n)])
    y = torch.tensor([slope * x + intercept + rng.gauss(0.0, 0.5) for x in X.tolist()])
    return X, y


def curvatures(xs):
    """Eigenvalues (smallest, largest) of the loss's Hessian 2*[[mean(x^2), mean(x)], [mean(x), 1]].

    The loss is quadratic in (w, b), so this Hessian is the same everywhere.
    """
    m1 = sum(xs) / len(xs)
    m2 = sum(x * x for x in xs) / len(xs)
    spread = math.sqrt((m2 - 1) ** 2 + 4 * m1**2)
    return m2 + 1 - spread, m2 + 1 + spread


def least_squares(xs, ys):
    """The (w, b) with the smallest mean squared error: where gradient descent is heading."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    w = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return w, my - w * mx


def parameter(value):
    return torch.tensor(value, requires_grad=True)


def checked_train(call, *args, **kwargs):
    result = kata.train(*args, **kwargs)
    if not (isinstance(result, tuple) and len(result) == 3):
        fail(f"{call} returned {result!r}; expected a triple (w, b, losses).")
    w, b, losses = result
    for name, tensor in (("w", w), ("b", b)):
        if not (isinstance(tensor, torch.Tensor) and tensor.dim() == 0):
            fail(f"{call} returned {tensor!r} for {name}; expected the 0-d tensor it trained.")
    if not isinstance(losses, list):
        fail(
            f"{call} returned {type(losses).__name__} for losses; expected a list with one "
            f"float per step."
        )
    for loss in losses:
        expect_float(loss, call, "an entry of losses")
    return w, b, losses


@functools.cache
def notebook_run():
    """train(X, y) with its defaults on the notebook's data.

    The run is deterministic, so the tests that inspect it share it: its 200 steps are the
    slowest thing in this file. A run that raises is not cached; each test tries again.
    """
    X, y = recipe(20, 0.3, 42)
    return checked_train("train(X, y)", X, y)


# ------------------------------------------------------------------------------ make_data


def require_recipe(call, data, arguments, likely_mistake):
    """X must be exactly linspace(-3, 3, n); y the recipe's values up to float32 rounding."""
    (X, y), (n, noise, seed) = data, arguments
    expected_X, expected_y = recipe(n, noise, seed)
    if not (X.shape == expected_X.shape and torch.equal(X, expected_X)):
        fail(
            f"X should be torch.linspace(-3, 3, {n}): {n} evenly spaced values from -3 to 3, "
            f"both ends included.\nCalled {call}; X is {X}."
        )
    if not (y.shape == expected_y.shape and largest_gap(y, expected_y) <= SAME_DATA):
        fail(
            f"{likely_mistake} y should be 2*X + 1 + {fmt(float(noise))} * torch.randn({n}) "
            f"drawn right after torch.manual_seed({seed}).\nCalled {call}. y is\n{y}\n"
            f"expected\n{expected_y}"
        )


def test_make_data_defaults_rebuild_the_notebook_data():
    X, y = checked_make_data("make_data()")
    require_recipe(
        "make_data()",
        (X, y),
        (20, 0.3, 42),
        "Are the draws taken from a generator seeded with 42 (torch.manual_seed(42), or a "
        "torch.Generator seeded with 42 and passed as torch.randn(n, generator=g)), and scaled "
        "by noise = 0.3?",
    )


def test_make_data_follows_the_recipe_for_any_n_noise_and_seed(rng):
    cases = [(rng.randint(2, 50), rng.uniform(0.05, 2.0), rng.randint(0, 10**6)) for _ in range(4)]
    cases.append((rng.randint(2, 50), 1, rng.randint(0, 10**6)))  # noise given as an int
    for n, noise, seed in cases:
        call = f"make_data(n={n}, noise={noise!r}, seed={seed})"
        X, y = checked_make_data(call, n=n, noise=noise, seed=seed)
        require_recipe(
            call,
            (X, y),
            (n, noise, seed),
            "Are all three arguments used, none replaced by the notebook's 20, 0.3 and 42?",
        )


def test_make_data_gives_float32_vectors_of_length_n(rng):
    n = rng.randint(2, 50)
    call = f"make_data(n={n})"
    X, y = checked_make_data(call, n=n)
    for name, tensor in (("X", X), ("y", y)):
        if tensor.shape != (n,):
            fail(f"Called {call}. {name} has shape {tuple(tensor.shape)}, expected ({n},).")
        if tensor.dtype != torch.float32:
            fail(
                f"Called {call}. {name} is {tensor.dtype}, expected torch.float32, torch's "
                f"default float type, which the parameters w and b use too."
            )


def test_make_data_different_seeds_draw_different_noise(rng):
    seed = rng.randint(0, 10**6)
    _, y = checked_make_data(f"make_data(seed={seed})", seed=seed)
    _, y_next = checked_make_data(f"make_data(seed={seed + 1})", seed=seed + 1)
    if not largest_gap(y, y_next) > 1e-3:
        fail(
            f"make_data(seed={seed}) and make_data(seed={seed + 1}) returned the same y. The "
            f"seed must choose the noise: seed the generator with `seed`, not with a fixed "
            f"number."
        )


def test_make_data_noise_scales_the_draws(rng):
    n, seed, noise = rng.randint(2, 50), rng.randint(0, 10**6), rng.uniform(0.1, 1.0)
    X, clean = checked_make_data(f"make_data(n={n}, noise=0.0, seed={seed})", n, 0.0, seed)
    if not largest_gap(clean, 2 * X + 1) <= SAME_DATA:
        fail(
            f"With no noise every y should lie on the line 2x + 1, but y - (2*X + 1) reaches "
            f"{fmt(largest_gap(clean, 2 * X + 1))}.\nCalled make_data(n={n}, noise=0.0, "
            f"seed={seed})."
        )
    _, y = checked_make_data(f"make_data({n}, {noise!r}, {seed})", n, noise, seed)
    _, y_doubled = checked_make_data(f"make_data({n}, {2 * noise!r}, {seed})", n, 2 * noise, seed)
    if not largest_gap(y_doubled - clean, 2 * (y - clean)) <= 2 * SAME_DATA:
        fail(
            f"noise multiplies the same seed's standard-normal draws, so make_data(n={n}, "
            f"noise={fmt(2 * noise)}, seed={seed}) should land twice as far from the line "
            f"2x + 1 as make_data(n={n}, noise={fmt(noise)}, seed={seed}).\nOffsets were\n"
            f"{y_doubled - clean}\nand\n{y - clean}"
        )


# ----------------------------------------------------------------------------- train_step


def test_train_step_returns_the_loss_before_the_update_as_a_float(rng):
    X, y = random_line_data(rng)
    xs, ys = X.tolist(), y.tolist()
    w0, b0 = rng.uniform(-3.0, 3.0), rng.uniform(-3.0, 3.0)
    w, b = parameter(w0), parameter(b0)
    w0, b0 = w.item(), b.item()  # the float32 values the step starts from
    lr = rng.uniform(0.01, 0.1)
    call = f"train_step(w, b, X, y, lr={fmt(lr)}) with w = {fmt(w0)}, b = {fmt(b0)}"
    loss = expect_float(kata.train_step(w, b, X, y, lr), call, "the loss")
    expected = mse_and_gradients(w0, b0, xs, ys)[0]
    if not close(loss, expected):
        fail_diagnosed(
            diagnosis([(None, None, loss)], xs, ys, lr, start=(w0, b0)),
            f"Called {call} on {len(xs)} points. It returned {fmt(loss)}, expected the mean "
            f"squared error at the w and b it was given, mean((y - (w*X + b))**2) = "
            f"{fmt(expected)}.",
        )


def test_train_step_moves_w_and_b_one_step_downhill(rng):
    X, y = random_line_data(rng)
    xs, ys = X.tolist(), y.tolist()
    w, b = parameter(rng.uniform(-3.0, 3.0)), parameter(rng.uniform(-3.0, 3.0))
    w0, b0 = w.item(), b.item()
    lr = rng.uniform(0.2, 0.9) / curvatures(xs)[1]
    call = f"train_step(w, b, X, y, lr={fmt(lr)})"
    loss = expect_float(kata.train_step(w, b, X, y, lr), call, "the loss")
    _, dw, db = mse_and_gradients(w0, b0, xs, ys)
    w1, b1, _ = descend(xs, ys, lr, 1, start=(w0, b0))[0]
    got = (w.item(), b.item())
    if not (close(got[0], w1) and close(got[1], b1)):
        fail_diagnosed(
            diagnosis([(*got, loss)], xs, ys, lr, start=(w0, b0)),
            f"Called {call} with w = {fmt(w0)}, b = {fmt(b0)} on {len(xs)} points. Afterwards "
            f"w = {fmt(got[0])} and b = {fmt(got[1])}; expected w - lr*dL/dw = {fmt(w1)} and "
            f"b - lr*dL/db = {fmt(b1)}, the gradients being dL/dw = {fmt(dw)} and "
            f"dL/db = {fmt(db)}.",
        )


def test_train_step_gets_the_gradients_from_one_backward_pass(rng):
    X, y = random_line_data(rng)
    w, b = parameter(rng.uniform(-3.0, 3.0)), parameter(rng.uniform(-3.0, 3.0))
    with backward_passes() as engine:
        kata.train_step(w, b, X, y, 0.01)
    if engine.passes != 1:
        why = (
            "With none, the gradients came from a formula written by hand; here autograd "
            "should find them: call loss.backward()."
            if engine.passes == 0
            else "One backward() on this step's loss gives both gradients at once."
        )
        fail(
            f"One call of train_step ran {engine.passes} backward passes, expected exactly 1. {why}"
        )


def test_train_step_clears_the_gradients_for_the_next_step(rng):
    X, y = random_line_data(rng)
    xs, ys = X.tolist(), y.tolist()
    w, b = parameter(rng.uniform(-3.0, 3.0)), parameter(rng.uniform(-3.0, 3.0))
    w0, b0 = w.item(), b.item()
    lr = rng.uniform(0.2, 0.9) / curvatures(xs)[1]
    call = f"train_step(w, b, X, y, lr={fmt(lr)})"
    observed = []
    for _ in range(2):
        loss = expect_float(kata.train_step(w, b, X, y, lr), call, "the loss")
        observed.append((w.item(), b.item(), loss))
    expected = descend(xs, ys, lr, 2, start=(w0, b0))
    for number, (seen, exact) in enumerate(zip(observed, expected), start=1):
        if not all(close(s, e) for s, e in zip(seen, exact)):
            fail_diagnosed(
                diagnosis(observed, xs, ys, lr, start=(w0, b0)),
                f"Called {call} twice on the same w and b, starting from w = {fmt(w0)}, "
                f"b = {fmt(b0)}. After call {number}: w = {fmt(seen[0])}, b = {fmt(seen[1])}, "
                f"returned loss {fmt(seen[2])}; expected w = {fmt(exact[0])}, "
                f"b = {fmt(exact[1])}, loss {fmt(exact[2])}, as exact gradient descent gives.",
            )


def test_train_step_keeps_w_and_b_as_leaves_that_require_grad(rng):
    X, y = random_line_data(rng)
    w, b = parameter(rng.uniform(-3.0, 3.0)), parameter(rng.uniform(-3.0, 3.0))
    kata.train_step(w, b, X, y, 0.01)
    for name, tensor in (("w", w), ("b", b)):
        if not (tensor.requires_grad and tensor.is_leaf):
            fail(
                f"After train_step(w, b, X, y, lr=0.01), {name}.requires_grad is "
                f"{tensor.requires_grad} and {name}.is_leaf is {tensor.is_leaf}; both should "
                f"stay True, so the next backward() fills {name}.grad again. Update the tensor "
                f"in place under torch.no_grad() and leave its requires_grad alone (no "
                f"detach_())."
            )
        if not (tensor.dim() == 0 and tensor.dtype == torch.float32):
            fail(
                f"After train_step, {name} is {tensor!r}; it should still be a 0-d float32 tensor."
            )


# ---------------------------------------------------------------------------------- train


def test_train_starts_from_zero_and_returns_one_float_loss_per_step(rng):
    X, y = random_line_data(rng)
    ys = y.tolist()
    call = "train(X, y, lr=0.01, steps=0)"
    w, b, losses = checked_train(call, X, y, lr=0.01, steps=0)
    if (w.item(), b.item(), losses) != (0.0, 0.0, []):
        fail(
            f"w and b start at 0.0. Called {call}. It returned w = {fmt(w.item())}, "
            f"b = {fmt(b.item())}, losses = {[fmt(loss) for loss in losses]}; with no steps "
            f"expected w = 0.0, b = 0.0 and no losses."
        )
    steps = rng.randint(1, 12)
    call = f"train(X, y, lr=0.01, steps={steps})"
    _, _, losses = checked_train(call, X, y, lr=0.01, steps=steps)
    if len(losses) != steps:
        fail(f"Called {call}. losses has {len(losses)} entries, expected {steps}: one per step.")
    start = sum(v * v for v in ys) / len(ys)
    if not close(losses[0], start):
        fail(
            f"The first loss is measured at w = b = 0, before any update. Called {call}. "
            f"losses[0] is {fmt(losses[0])}, expected mean(y**2) = {fmt(start)}."
        )


def test_train_matches_exact_gradient_descent_step_by_step(rng):
    X, y = random_line_data(rng)
    xs, ys = X.tolist(), y.tolist()
    lr = rng.uniform(0.2, 0.9) / curvatures(xs)[1]
    steps = rng.randint(20, 40)
    call = f"train(X, y, lr={fmt(lr)}, steps={steps}) on {len(xs)} random points"
    w, b, losses = checked_train(call, X, y, lr=lr, steps=steps)
    expected = descend(xs, ys, lr, steps)
    if len(losses) != steps:
        fail(f"Called {call}. Got {len(losses)} losses, expected {steps}.")
    for step, (loss, exact) in enumerate(zip(losses, expected)):
        if not close(loss, exact[2]):
            fail_diagnosed(
                diagnosis([(None, None, v) for v in losses[:3]], xs, ys, lr),
                f"Called {call}. losses[{step}] is {fmt(loss)}, expected {fmt(exact[2])} from "
                f"exact gradient descent (the losses before it matched).",
            )
    final_w, final_b, _ = expected[-1]
    if not (close(w.item(), final_w) and close(b.item(), final_b)):
        fail(
            f"Return the w and b that were trained, after their last update. Called {call}. "
            f"It returned w = {fmt(w.item())}, b = {fmt(b.item())}, expected w = "
            f"{fmt(final_w)}, b = {fmt(final_b)} after {steps} steps."
        )


def test_train_with_a_zero_lr_never_moves(rng):
    X, y = random_line_data(rng)
    ys = y.tolist()
    steps = rng.randint(2, 8)
    call = f"train(X, y, lr=0, steps={steps})"
    w, b, losses = checked_train(call, X, y, lr=0, steps=steps)
    start = sum(v * v for v in ys) / len(ys)
    if (w.item(), b.item()) != (0.0, 0.0):
        fail(
            f"With a learning rate of 0, w and b should never leave 0: does the update use the "
            f"lr it was given? Called {call}. It returned w = {fmt(w.item())}, "
            f"b = {fmt(b.item())}."
        )
    if not all(close(loss, start) for loss in losses):
        fail(
            f"With lr = 0 every step sees w = b = 0, so each loss should be mean(y**2) = "
            f"{fmt(start)}. Called {call}; the losses were "
            f"[{', '.join(fmt(loss) for loss in losses)}]."
        )


def test_train_runs_one_backward_pass_per_step(rng):
    X, y = random_line_data(rng)
    steps = rng.randint(2, 12)
    with backward_passes() as engine:
        kata.train(X, y, lr=0.01, steps=steps)
    if engine.passes != steps:
        fail(
            f"train(X, y, lr=0.01, steps={steps}) ran {engine.passes} backward passes, "
            f"expected {steps}: each step is one call of train_step, and each train_step one "
            f"backward()."
        )


def test_train_returns_leaves_that_still_require_grad(rng):
    X, y = random_line_data(rng)
    call = "train(X, y, lr=0.01, steps=5)"
    w, b, _ = checked_train(call, X, y, lr=0.01, steps=5)
    for name, tensor in (("w", w), ("b", b)):
        if not tensor.is_leaf:
            fail(
                f"The {name} that {call} returned is not a leaf: it has grad_fn="
                f"{type(tensor.grad_fn).__name__}, so it was computed from other tensors, as "
                f"`{name} = {name} - lr * {name}.grad` outside torch.no_grad() does. Such a "
                f"tensor gets no .grad from backward() (it stays None), so the next update, "
                f"which reads {name}.grad, fails. Update in place instead: "
                f"`{name} -= lr * {name}.grad` inside `with torch.no_grad():`."
            )
        if not tensor.requires_grad:
            fail(
                f"The {name} that {call} returned no longer requires grad: it was replaced by a "
                f"tensor made under torch.no_grad() (`{name} = {name} - lr * {name}.grad`) or "
                f"detached, so the next backward() could not reach it. Update the tensor you "
                f"created in place: `{name} -= lr * {name}.grad` inside `with torch.no_grad():`."
            )


def test_train_losses_never_increase(rng):
    # For a quadratic loss with largest curvature L (top eigenvalue of its Hessian), a step
    # of size lr along -g changes the loss by -lr*|g|^2 + lr^2/2 * g.H.g <= -lr*(1 - lr*L/2)*|g|^2,
    # which is <= 0 whenever lr < 2/L; below 1/L it falls by at least lr/2 * |g|^2. On the
    # notebook's data L = 2*mean(x^2) = 6.63, so lr = 0.01 is far below. But each loss is
    # computed in float32: every residual y - (w*x + b) carries a rounding error of a few eps
    # times the size of the terms (about |y|), so the loss carries one of a few eps times
    # mean(y^2). Near convergence the true decrease per step is smaller than that, so a rise
    # within 8 * eps32 * mean(y^2) is rounding, not a wrong step; a missed clear or a wrong
    # sign makes the loss rise by orders of magnitude more.
    _, notebook_y = recipe(20, 0.3, 42)
    random_X, random_y = random_line_data(rng)
    random_lr = rng.uniform(0.1, 0.95) / curvatures(random_X.tolist())[1]
    random_call = f"train(X, y, lr={fmt(random_lr)}, steps=60) on random points"
    runs = [
        ("train(X, y) on the notebook's data", notebook_y, notebook_run()[2]),
        (
            random_call,
            random_y,
            checked_train(random_call, random_X, random_y, lr=random_lr, steps=60)[2],
        ),
    ]
    for call, y, losses in runs:
        rounding = 8 * FLOAT32_EPS * sum(v * v for v in y.tolist()) / len(y)
        for step in range(len(losses) - 1):
            before, after = losses[step], losses[step + 1]
            if not after <= before + rounding:  # a NaN fails too
                fail(
                    f"With a learning rate this small, every step of gradient descent lowers "
                    f"the loss: is the update going downhill, and is .grad cleared between "
                    f"steps?\nCalled {call}. The loss rose from {fmt(before)} at step {step} to "
                    f"{fmt(after)} at step {step + 1}."
                )


@pytest.mark.checks("train")  # notebook_run() is cached across tests
def test_train_on_the_notebook_data_reproduces_its_numbers():
    w, b, losses = notebook_run()
    if len(losses) != 200:
        fail(f"train(X, y) gave {len(losses)} losses; steps defaults to 200.")
    # The notebook prints 4 decimals. (Exact float64 gradient descent rounds to the same.)
    seen = {"losses[0]": losses[0], "losses[-1]": losses[-1], "w": w.item(), "b": b.item()}
    printed = {"losses[0]": 13.8612, "losses[-1]": 0.0763, "w": 1.9533, "b": 1.0461}
    for name, value in seen.items():
        if not abs(value - printed[name]) < 5e-5:
            fail(
                f"{name} is {fmt(value)}, but the notebook's run gives {printed[name]}. Check "
                f"the default arguments, the start at w = b = 0 and each of the five steps."
                f"\nCalled train(X, y) on the notebook's data, with the defaults lr = 0.01 and "
                f"steps = 200."
            )


@pytest.mark.checks("train")  # notebook_run() is cached across tests
def test_train_on_the_notebook_data_lands_near_the_least_squares_line():
    X, y = recipe(20, 0.3, 42)
    xs, ys = X.tolist(), y.tolist()
    w, b, _ = notebook_run()
    best_w, best_b = least_squares(xs, ys)  # about 1.953 and 1.065
    # Gradient descent on a quadratic shrinks the error e = (w, b) - best by the matrix
    # I - lr*H each step, H the Hessian, so |e_k| <= rho^k * |e_0| with rho = max|1 - lr*lam|
    # over H's eigenvalues lam. Here mean(x) = 0, so H = diag(2*mean(x^2), 2) = diag(6.63, 2):
    # w's error shrinks by 0.934 a step and is gone, b's by only 0.98, and 0.98^200 = 0.018 of
    # the 1.065 b had to travel is still left (b = 1.046). Float32 rounding adds at most about
    # 1e-7 * |(w, b)| per step, which the contraction never amplifies: < 1e-4 over 200 steps.
    lr, steps = 0.01, 200
    rho = max(abs(1 - lr * lam) for lam in curvatures(xs))
    bound = rho**steps * math.hypot(best_w, best_b) + 1e-4
    error = math.hypot(w.item() - best_w, b.item() - best_b)
    if not error <= bound:
        fail(
            f"Is every step going downhill, with fresh gradients? 200 steps of gradient descent "
            f"with lr = 0.01 from w = b = 0 end within {fmt(bound)} of the least-squares line "
            f"w = {fmt(best_w)}, b = {fmt(best_b)}.\nCalled train(X, y) on the notebook's "
            f"data. It returned w = {fmt(w.item())}, b = {fmt(b.item())}, {fmt(error)} away."
        )


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_train_step_in_float64_keeps_float64_leaves():
    w = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-0.25, dtype=torch.float64, requires_grad=True)
    X = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)
    y = torch.tensor([0.0, 1.5, 3.0], dtype=torch.float64)
    residual = [0.5 * a - 0.25 - t for a, t in zip(X.tolist(), y.tolist())]
    grad_w = sum(2 * r * a for r, a in zip(residual, X.tolist())) / 3
    call = "train_step(w, b, X, y, 0.1) with float64 w = 0.5, b = -0.25, X and y"
    kata.train_step(w, b, X, y, 0.1)
    if not (w.dtype == torch.float64 and w.is_leaf and close(w.item(), 0.5 - 0.1 * grad_w)):
        pytest.fail(
            f"Called {call}. w is {fmt(w.detach())} ({w.dtype}, leaf: {w.is_leaf}), expected "
            f"the float64 leaf {fmt(0.5 - 0.1 * grad_w)}: update w in place, in its own dtype.",
            pytrace=False,
        )

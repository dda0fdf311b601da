"""Kata 16: a tensor hook may replace a gradient; a post-accumulate hook may step a parameter."""

import torch

from coach.runtime.testing import (
    TorchCalls,
    Wrong,
    backward_passes,
    caught,
    check_shape_like,
    check_value,
    expect_tensor,
    explained,
    fail,
    fmt,
    load_kata,
    require,
)

kata = load_kata("k16_hooks")

SHARED_MEMORY_ERROR = "refers to a single memory location"
IN_PLACE_WHY = (
    "the hook edited the gradient it was given in place (grad.mul_(...), grad *= ...) instead "
    "of returning a new one. That tensor is shared: here the same gradient was also on its way "
    "to x's direct path, so that path was reversed too. Return a new tensor: "
    "`return -scale * grad`."
)


def random_x(rng, shape=None) -> torch.Tensor:
    shape = shape if shape is not None else (rng.randint(2, 5),)
    return (torch.rand(shape) * 4 - 2).requires_grad_(True)


def random_scale(rng) -> float:
    return rng.choice([0.5, 2.0, 3.0, 0.25])


def call_reverse(x: torch.Tensor, scale: float) -> tuple[str, torch.Tensor]:
    call = f"reverse_gradient({fmt(x.detach())}, {scale})"
    result = kata.reverse_gradient(x, scale)
    expect_tensor(result, call)
    return call, result


def backward_through(call: str, loss: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x's gradient from loss, turning the error of an in-place hook into a message."""
    broke = (
        f"Called {call}, then backward() from result.sum(). It raised RuntimeError "
        f"('more than one element of the written-to tensor refers to a single memory "
        f"location'): the hook edited the gradient it was given in place instead of "
        f"returning a new one. The gradient of a sum is one value broadcast to every "
        f"element, so it cannot be edited in place. Return a new tensor: "
        f"`return -scale * grad`."
    )
    with explained({SHARED_MEMORY_ERROR: broke}):
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def hook_left_on(x: torch.Tensor, scale: float) -> bool:
    """Whether reverse_gradient leaves a hook on the caller's x: does x's own gradient change?"""
    probe = x.detach().clone().requires_grad_(True)
    kata.reverse_gradient(probe, scale)
    (grad,) = torch.autograd.grad(probe.sum(), probe)
    return not torch.equal(grad, torch.ones_like(probe))


def hooks_on(result: torch.Tensor) -> list:
    """The hooks registered with result.register_hook(...) and still on it."""
    return list((result._backward_hooks or {}).values())


def unchanged_why(result: torch.Tensor) -> str:
    """Why the gradient came back unchanged: no hook on the result, or one that returns None."""
    hooks = hooks_on(result)
    if not hooks:
        return (
            "the gradient came back unchanged: the hook never ran on this path. A hook "
            "changes only gradients that flow through the tensor it is registered on; "
            "register it on the tensor you return (a copy of x that you register on but do "
            "not return is on no path of the loss)."
        )
    returned = []
    for hook in hooks:
        with caught(Exception) as failed:
            returned.append(hook(torch.ones_like(result)))
        if failed.error:
            returned.append("an error")
    if all(value is None for value in returned):
        return (
            "the gradient came back unchanged, although your hook is on the returned tensor "
            "and ran: it returned None. A hook that returns None leaves the gradient as it "
            "was (rebinding `grad = -scale * grad` inside it changes only a local name): "
            "return the new gradient, `return -scale * grad`."
        )
    return (
        "the gradient came back unchanged, although a hook is on the returned tensor: the "
        "tensor it returns is the gradient as it was. Return the new gradient, "
        "`return -scale * grad`."
    )


def sign_and_scale_wrongs(
    v: torch.Tensor, scale: float, direct: torch.Tensor, result: torch.Tensor
) -> list[Wrong]:
    """What x's gradient is with the reversal's sign or scale wrong, or the hook without effect."""
    return [
        Wrong(v + direct, unchanged_why(result)),
        Wrong(
            scale * v + direct,
            f"the sign is wrong: a gradient reversal multiplies by -scale = {-scale}, not "
            f"+scale. Return -scale * grad.",
        ),
        Wrong(
            -v + direct,
            f"the gradient was negated but not scaled: multiply by -scale = {-scale}, not -1.",
        ),
        Wrong(
            -v / scale + direct,
            f"the gradient was divided by the scale: multiply it by -scale = {-scale}.",
        ),
    ]


# --- reverse_gradient -------------------------------------------------------------------------


def test_the_reversed_tensor_equals_x(rng):
    for shape in [(), (rng.randint(2, 5),)]:
        x = random_x(rng, shape)
        call, result = call_reverse(x, random_scale(rng))
        check_shape_like(result, x, call=call)
        check_value(result.detach(), x.detach(), call=call, what="The result's value")


def check_reversed_gradient(call: str, result, x, v, scale: float) -> None:
    """The law of gradient reversal: backward from (v * result).sum() gives x -scale * v."""
    got = backward_through(call, (v * result).sum(), x)
    check_value(
        got,
        -scale * v,
        call=f"{call}, then backward() from (v * result).sum() with v = {fmt(v)}",
        what="x's gradient",
        wrong=sign_and_scale_wrongs(v, scale, torch.zeros_like(v), result),
    )


def test_the_gradient_arrives_reversed_and_scaled(rng):
    x, scale = random_x(rng), random_scale(rng)
    v = torch.randn(x.shape)
    call, result = call_reverse(x, scale)
    check_reversed_gradient(call, result, x, v, scale)


def test_the_gradient_of_a_plain_sum_comes_back_reversed(rng):
    x, scale = random_x(rng), random_scale(rng)
    call, result = call_reverse(x, scale)
    got = backward_through(call, result.sum(), x)
    ones = torch.ones_like(x)
    check_value(
        got,
        -scale * ones,
        call=f"{call}, then backward() from result.sum()",
        what="x's gradient",
        wrong=sign_and_scale_wrongs(ones, scale, torch.zeros_like(ones), result),
    )


def test_only_paths_through_the_result_are_reversed(rng):
    x, scale = random_x(rng), random_scale(rng)
    v = torch.randn(x.shape)
    call, result = call_reverse(x, scale)
    got = backward_through(call, (v * (result + x)).sum(), x)
    if hook_left_on(x, scale):
        both = (
            "the hook is on x itself, so it changes every gradient x receives, also on the "
            "direct path that never passes through the result (and it stays on the caller's "
            "x for good). Register it on a new tensor, x.clone(), and return that."
        )
    else:
        both = IN_PLACE_WHY
    check_value(
        got,
        (1 - scale) * v,
        call=f"{call}, then backward() from (v * (result + x)).sum() with v = {fmt(v)}",
        what="x's gradient (-scale * v through the result, plus v straight from x)",
        wrong=[Wrong(-2 * scale * v, both), *sign_and_scale_wrongs(v, scale, v, result)],
    )


def test_the_callers_x_keeps_no_hook(rng):
    x, scale = random_x(rng), random_scale(rng)
    call, _ = call_reverse(x, scale)
    v = torch.randn(x.shape)
    (got,) = torch.autograd.grad((v * x).sum(), x)
    check_value(
        got,
        v,
        call=f"{call}, then backward() from (v * x).sum(), which does not use the result, with "
        f"v = {fmt(v)}",
        what="x's gradient",
        wrong=[
            Wrong(
                lambda _: True,
                "a hook stayed on the caller's x and changed a gradient that has nothing to do "
                "with reverse_gradient. Register the hook on the new tensor you return, never "
                "on x.",
            )
        ],
    )


# --- step_in_backward -------------------------------------------------------------------------


def hooks_a_leaf(func, args, kwargs) -> bool:
    """register_hook (not the post-accumulate kind) called on a leaf."""
    first = args[0] if args else None
    return (
        getattr(func, "__name__", "") == "register_hook"
        and isinstance(first, torch.Tensor)
        and first.is_leaf
    )


TENSOR_HOOK_WHY = (
    "the hook came from p.register_hook(...), and a tensor hook runs BEFORE autograd adds "
    "the gradient into p.grad: it is handed the gradient, and whatever it does to p.grad "
    "(p.grad = None included), autograd writes the gradient into p.grad right after it "
    "returns. Use p.register_post_accumulate_grad_hook(hook): autograd calls hook(p) once "
    "p.grad is written, so the hook can use p.grad and then drop it (p.grad = None)."
)


class Regression:
    """Parameters w (n,) and b (), data X (m, n) and y (m,), and mean((X w + b - y)**2)."""

    def __init__(self, rng):
        samples, features = rng.randint(3, 6), rng.randint(1, 3)
        self.w = torch.randn(features).requires_grad_(True)
        self.b = torch.randn(()).requires_grad_(True)
        self.X, self.y = torch.randn(samples, features), torch.randn(samples)
        self.lr = rng.choice([0.05, 0.1, 0.2])
        self.calls = 0
        self.tensor_hook = False  # whether a call registered a plain tensor hook on a leaf

    def loss(self) -> torch.Tensor:
        return ((self.X @ self.w + self.b - self.y) ** 2).mean()

    def exact(self, w: torch.Tensor, b: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
        """(loss, dL/dw, dL/db) in closed form, in float64."""
        X, y = self.X.double(), self.y.double()
        residual = X @ w.double() + b.double() - y
        scale = 2 / len(y)
        return (residual**2).mean().item(), scale * X.T @ residual, scale * residual.sum()

    def step(self) -> tuple[str, float, list, int]:
        """Call step_in_backward once; return (call, its result, (loss, w, b) expected, passes)."""
        self.calls += 1
        w0, b0 = self.w.detach().clone(), self.b.detach().clone()
        loss, grad_w, grad_b = self.exact(w0, b0)
        w1, b1 = w0 - self.lr * grad_w.float(), b0 - self.lr * grad_b.float()
        expected = [loss, w1, b1, w0, b0]
        nth = "" if self.calls == 1 else " again, on the same w and b,"
        call = (
            f"step_in_backward([w, b], loss_fn, lr={self.lr}){nth} with w = {fmt(w0)}, "
            f"b = {fmt(b0)} and loss_fn = lambda: ((X @ w + b - y) ** 2).mean()"
        )
        spy = TorchCalls(hooks_a_leaf)
        why = (
            "the hook found p.grad None, because another hook had already used and cleared "
            "it: the hook from the previous call, never removed. Keep the handles and call "
            "handle.remove() on each after backward()."
            if self.calls > 1
            else "the hook found p.grad None: a hook from register_hook runs before the "
            "gradient is added into p.grad. Use p.register_post_accumulate_grad_hook, which "
            "runs after."
        )

        def broke(error):
            return f"Called {call}. It raised TypeError ({error}): {why}"

        with backward_passes() as engine, explained({"NoneType": broke}, TypeError), spy:
            result = kata.step_in_backward([self.w, self.b], self.loss, self.lr)
        self.tensor_hook = spy.seen > 0
        return call, result, expected, engine.passes


def check_step(problem: Regression, call: str, expected: list) -> None:
    _, w, b, w0, b0 = expected
    for name, param, new, old in (("w", problem.w, w, w0), ("b", problem.b, b, b0)):
        check_value(
            param.detach(),
            new,
            call=call,
            what=f"{name} after the step",
            wrong=[
                Wrong(
                    old,
                    "the parameter did not move. Update it in place inside the hook "
                    "(param -= lr * param.grad, under torch.no_grad()): rebinding the name "
                    "(param = param - ...) changes nothing the caller holds.",
                ),
                Wrong(2 * old - new, "the parameter moved uphill: subtract lr times the gradient."),
            ],
        )
    for name, param in (("w", problem.w), ("b", problem.b)):
        why = (
            TENSOR_HOOK_WHY
            if problem.tensor_hook
            else "the hook must drop the gradient once it has used it (param.grad = None). "
            "Dropping each gradient as soon as its parameter is updated is what saves the "
            "memory."
        )
        require(
            param.grad is None,
            f"Called {call}. {name}.grad is {fmt(param.grad)} afterwards, expected None: {why}",
        )


def test_one_step_moves_each_parameter_against_its_gradient(rng):
    problem = Regression(rng)
    call, _, expected, _ = problem.step()
    check_step(problem, call, expected)


def test_the_returned_loss_is_measured_before_the_step(rng):
    problem = Regression(rng)
    call, result, expected, _ = problem.step()
    require(
        isinstance(result, float),
        f"Called {call}. It returned {result!r} ({type(result).__name__}), expected the loss "
        f"as a float (loss.item()).",
    )
    check_value(result, expected[0], call=call, what="The returned loss", rel=1e-4)


def test_a_second_step_updates_each_parameter_once(rng):
    problem = Regression(rng)
    *_, first, _ = problem.step()
    call, _, expected, _ = problem.step()
    twice = (
        "the parameters moved twice as far: the hooks from the previous call were never "
        "removed, so they updated the parameters again beside this call's hooks. Keep the "
        "handles register_post_accumulate_grad_hook returns and call handle.remove() on each "
        "after backward()."
    )
    kept = (
        "the previous step's gradient was still in .grad, so this step used the sum of both. "
        "Set param.grad = None in the hook, after the update."
    )
    for index, name, param in ((1, "w", problem.w), (2, "b", problem.b)):
        new, old, first_move = expected[index], expected[index + 2], first[index] - first[index + 2]
        check_value(
            param.detach(),
            new,
            call=call,
            what=f"{name} after the 2nd step",
            wrong=[Wrong(old - 2 * (old - new), twice), Wrong(new + first_move, kept)],
        )


def test_the_hooks_are_gone_afterwards(rng):
    problem = Regression(rng)
    call, *_ = problem.step()
    after = (problem.w.detach().clone(), problem.b.detach().clone())
    problem.loss().backward()
    for name, param, old in (("w", problem.w, after[0]), ("b", problem.b, after[1])):
        require(
            torch.equal(param.detach(), old) and param.grad is not None,
            f"Called {call}, then a plain loss.backward() of our own. {name} changed from "
            f"{fmt(old)} to {fmt(param.detach())} (and {name}.grad is {fmt(param.grad)}), "
            f"expected no change and a gradient in {name}.grad: a hook registered by "
            f"step_in_backward is still on the parameter and ran again. Remove each hook with "
            f"its handle (handle.remove()) once backward() is done.",
        )


def test_the_step_happens_inside_one_backward_pass(rng):
    problem = Regression(rng)
    call, _, _, passes = problem.step()
    require(
        passes == 1,
        f"Called {call}. Autograd ran {passes} backward pass(es), expected 1: a single "
        f"loss.backward(), with the update done by the hooks inside it.",
    )


# --- contracts the stub states (issue 16) -----------------------------------------------------


def test_a_stale_gradient_on_entry_does_not_join_the_step(rng):
    problem = Regression(rng)
    problem.w.grad = torch.randn_like(problem.w)  # left from elsewhere
    problem.b.grad = torch.randn_like(problem.b)
    call, _, expected, _ = problem.step()
    w, b = expected[1], expected[2]
    for name, param, new in (("w", problem.w, w), ("b", problem.b, b)):
        check_value(
            param.detach(),
            new,
            call=call + f", {name} holding a stale .grad on entry",
            what=f"{name} after the step",
            wrong=[
                Wrong(
                    lambda got, new=new: not torch.allclose(got.double(), new.double()),
                    "the stale .grad was added to this step's gradient: backward() adds "
                    "into whatever .grad holds. Set p.grad = None before backward().",
                )
            ],
        )


def test_the_hooks_go_when_the_loss_raises(rng):
    problem = Regression(rng)

    def broken_loss():
        raise ValueError("the data broke (raised by the test)")

    call = "step_in_backward([w, b], loss_fn, 0.1) with a loss_fn that raises ValueError"
    try:
        kata.step_in_backward([problem.w, problem.b], broken_loss, 0.1)
    except ValueError as error:
        require(
            "raised by the test" in str(error),
            f"Called {call}. It raised another ValueError: {error}",
        )
    else:
        fail(f"Called {call}. It returned; expected the ValueError to come out.")
    # The inputs law has checked that no hook stayed behind; a plain backward confirms it.
    before = problem.w.detach().clone()
    problem.loss().backward()
    require(
        torch.equal(problem.w.detach(), before),
        f"Called {call}, then a plain backward(): w moved, so a hook stayed registered. "
        f"Remove the hooks in a `finally:`, so that they go even when something raises.",
    )


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_the_reversal_in_float64_for_one_element_and_a_second_call(rng):
    x = random_x(rng, (1,)).detach().double().requires_grad_()
    for scale in (random_scale(rng), 1.0):
        v = torch.tensor([rng.uniform(0.5, 2.0)], dtype=torch.float64)
        call, result = call_reverse(x, scale)
        check_shape_like(result, x, call=call)
        check_reversed_gradient(call, result, x, v, scale)

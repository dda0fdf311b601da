"""Kata 14: autograd's version counter catches in-place edits of saved tensors; .data does not."""

from dataclasses import dataclass

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

kata = load_kata("k14_inplace")

VERSION_ERROR = "modified by an inplace operation"
LEAF_ERROR = "a leaf Variable that requires grad is being used in an in-place operation"


@dataclass(frozen=True)
class Op:
    """An operation for the experiment, and what it saves for backward (by its derivative)."""

    shown: str
    apply: object
    saves: str  # "input", "output" or "nothing"
    because: str


SAVES_OUTPUT = [
    Op("torch.exp", torch.exp, "output", "the derivative of exp(x) is exp(x), its own output"),
    Op("torch.sigmoid", torch.sigmoid, "output", "its derivative s * (1 - s) needs only s"),
    Op("torch.tanh", torch.tanh, "output", "its derivative 1 - tanh(x)**2 needs only tanh(x)"),
    Op("torch.relu", torch.relu, "output", "its output tells where the gradient passes"),
    Op("torch.sqrt", torch.sqrt, "output", "its derivative 1 / (2 * sqrt(x)) needs sqrt(x)"),
]
SAVES_INPUT = [
    Op("torch.sin", torch.sin, "input", "its derivative cos(x) needs x"),
    Op("torch.log", torch.log, "input", "its derivative 1 / x needs x"),
    Op("lambda t: t * t", lambda t: t * t, "input", "each factor's gradient is the other factor"),
    Op("lambda t: t ** 2", lambda t: t**2, "input", "its derivative 2 * x needs x"),
]
SAVES_NOTHING = [
    Op("lambda t: t + 1", lambda t: t + 1, "nothing", "its derivative is 1 whatever t is"),
    Op("lambda t: t * 3", lambda t: t * 3, "nothing", "its derivative is the constant 3"),
    Op("torch.neg", torch.neg, "nothing", "its derivative is -1 whatever t is"),
    Op("lambda t: t / 2", lambda t: t / 2, "nothing", "its derivative is the constant 1/2"),
]


def edits_a_leaf(func, args, kwargs) -> bool:
    """An in-place call (add_, +=, ...) on a leaf that requires grad."""
    name = getattr(func, "__name__", "")
    in_place = (name.endswith("_") and not name.startswith("_")) or name.startswith("__i")
    first = args[0] if args else None
    return in_place and isinstance(first, torch.Tensor) and first.is_leaf and first.requires_grad


LEAF_WHY = (
    "torch refuses any in-place edit of a leaf that requires grad ('a leaf Variable that "
    "requires grad is being used in an in-place operation'), at the edit itself, before "
    "backward() ever runs. Edit a non-leaf made from the leaf instead: inp = a.clone()."
)


def random_input(rng) -> torch.Tensor:
    # Positive, so that log and sqrt are defined; 2 to 4 elements.
    return torch.tensor([round(rng.uniform(0.5, 2.0), 2) for _ in range(rng.randint(2, 4))])


def expected_break(op: Op, edit: str) -> bool:
    return op.saves == edit


def why_wrong(op: Op, edit: str) -> str:
    if expected_break(op, edit):
        return (
            f"{op.shown} saves its {edit} for backward ({op.because}), and add_(1) on it "
            f"bumps its version counter, so backward() must raise 'modified by an inplace "
            f"operation'. Edit the {edit} itself: not a copy (clone()), and not through "
            f".data, whose edits the version counter never sees."
        )
    if op.saves == "nothing":
        return (
            f"not every in-place edit breaks backward. {op.shown} saves nothing for backward "
            f"({op.because}), so no saved tensor was overwritten and backward() runs. Only an "
            f"edit of a tensor that some operation saved trips the version check."
        )
    return (
        f"{op.shown} saves its {op.saves} ({op.because}), not its {edit}: editing the {edit} "
        f"in place overwrites nothing backward needs, so backward() runs. Only an edit of a "
        f"tensor that some operation saved trips the version check."
    )


def check_experiment(op: Op, x: torch.Tensor, edit: str) -> None:
    call = f"edit_breaks_backward({op.shown}, {fmt(x)}, {edit!r})"
    spy = TorchCalls(edits_a_leaf)
    escaped = {
        LEAF_ERROR: f"It raised RuntimeError at the edit, before any backward(): {LEAF_WHY}",
        VERSION_ERROR: (
            "It raised the 'modified by an inplace operation' RuntimeError instead of "
            "returning True: that error is the answer. Catch it around backward() "
            "(try/except RuntimeError) and return True."
        ),
    }
    escaped = {text: f"Called {call}. {why}" for text, why in escaped.items()}
    with backward_passes() as engine, explained(escaped), spy:
        got = kata.edit_breaks_backward(op.apply, x, edit)
    if engine.passes == 0:
        why = (
            LEAF_WHY
            if spy.seen
            else (
                "Run the experiment: backward() must really run (or raise the version check) "
                "for the answer to mean anything. Another error caught by a broad except (like "
                "'grad can be implicitly created only for scalar outputs') also stops it before "
                "it starts: call out.sum().backward()."
            )
        )
        fail(f"Called {call}. Autograd ran no backward pass, expected one. {why}")
    if spy.seen and not expected_break(op, edit) and got is True:
        fail(f"Called {call}. It returned True, expected False: {LEAF_WHY}")
    expected = expected_break(op, edit)
    check_value(
        got,
        expected,
        call=call,
        what="The result",
        wrong=[Wrong(not expected, why_wrong(op, edit))],
    )


# --- edit_breaks_backward ---------------------------------------------------------------------


def test_editing_the_output_exp_saved_breaks_backward():
    check_experiment(SAVES_OUTPUT[0], torch.tensor([1.0, 2.0]), "output")


def test_editing_the_input_of_exp_is_safe_because_exp_saved_its_output():
    check_experiment(SAVES_OUTPUT[0], torch.tensor([1.0, 2.0]), "input")


def test_ops_that_save_their_output_break_only_on_an_output_edit(rng):
    for op in rng.sample(SAVES_OUTPUT, 3):
        for edit in ("output", "input"):
            check_experiment(op, random_input(rng), edit)


def test_ops_that_save_their_input_break_only_on_an_input_edit(rng):
    for op in rng.sample(SAVES_INPUT, 3):
        for edit in ("input", "output"):
            check_experiment(op, random_input(rng), edit)


def test_ops_that_save_nothing_survive_any_in_place_edit(rng):
    for op in rng.sample(SAVES_NOTHING, 3):
        for edit in ("output", "input"):
            check_experiment(op, random_input(rng), edit)


class BuggyBackward(RuntimeError):
    """An error of our own, raised by a broken op's backward: a bug, not the version check."""


def broken_op(error: type[Exception]):
    """2 * t as an autograd.Function whose backward raises `error`: any op with a bug."""

    class BrokenOp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t * 2  # saves nothing, so no in-place edit can trip the version check

        @staticmethod
        def backward(ctx, grad):
            raise error("a bug in this op's backward (raised by the test)")

    return BrokenOp.apply


def test_other_errors_from_backward_are_let_through(rng):
    # The edit is harmless (2 * t saves nothing): backward() gets as far as the op's own
    # backward, which raises. That error must come out of edit_breaks_backward as it is.
    for error, kind in ((BuggyBackward, "a RuntimeError"), (ValueError, "a ValueError")):
        x, edit = random_input(rng), rng.choice(["input", "output"])
        call = (
            f"edit_breaks_backward(op, {fmt(x)}, {edit!r}) with op an autograd.Function that "
            f"computes 2 * t, saves nothing, and whose backward raises {kind} (a bug, not the "
            f"version check)"
        )
        at_the_edit = f"Called {call}. It raised at the edit: {LEAF_WHY}"
        with (
            explained({LEAF_ERROR: at_the_edit}),
            caught(error, saying="raised by the test") as bug,
        ):
            got = kata.edit_breaks_backward(broken_op(error), x, edit)
        if bug.error:
            continue  # let through, as the docstring asks
        fail(
            f"Called {call}. It returned {got!r}, expected the error to come out of "
            f"edit_breaks_backward: only the 'modified by an inplace operation' RuntimeError "
            f"means True. A bare `except Exception` (or `except RuntimeError` without reading "
            f"the message) also swallows every other error, so a real bug in an op's backward "
            f"comes out as an answer about the edit instead of as the error it is. Catch "
            f"RuntimeError, check that '{VERSION_ERROR}' is in str(error), and re-raise "
            f"anything else (`raise`)."
        )


# --- softmax ----------------------------------------------------------------------------------


def random_logits(rng, offset: float = 0.0) -> torch.Tensor:
    values = [round(offset + rng.uniform(-3.0, 3.0), 3) for _ in range(rng.randint(3, 6))]
    return torch.tensor(values, requires_grad=True)


def call_softmax(x: torch.Tensor) -> tuple[str, torch.Tensor]:
    call = f"softmax({fmt(x.detach())}) with x a leaf that requires grad"
    leaf_edit = (
        f"Called {call}. It raised RuntimeError: {LEAF_ERROR}. x is a leaf that requires "
        f"grad, and autograd forbids editing one in place (`x -= x.max()`): its .grad "
        f"must describe the values it holds. Compute a new tensor: x - x.max()."
    )
    with explained({LEAF_ERROR: leaf_edit}):
        result = kata.softmax(x)
    expect_tensor(result, call)
    require(
        result.grad_fn is not None,
        f"Called {call}. The result has no grad_fn, so no gradient can flow back to x: it was "
        f"computed without autograd watching (under torch.no_grad(), from x.detach() or "
        f"x.data, or rebuilt with torch.tensor(...)). Compute it from x itself.",
    )
    return call, result


def softmax_vjp(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """v^T J of softmax at x, by torch.softmax on a copy of x."""
    leaf = x.detach().clone().requires_grad_(True)
    # Through a scalar: a non-scalar output with grad_outputs imports sympy on first use (1 s).
    (grad,) = torch.autograd.grad((torch.softmax(leaf, dim=0) * v).sum(), leaf)
    return grad


def hidden_division(x: torch.Tensor, v: torch.Tensor) -> list[torch.Tensor]:
    """x's gradient when autograd saw only exp(x - max(x)) and a constant divisor."""
    probs = torch.softmax(x.detach(), dim=0)
    plain = v * probs
    at_max = torch.zeros_like(plain)
    at_max[x.detach().argmax()] = plain.sum()
    return [plain, plain - at_max]


def test_softmax_values_match_torch(rng):
    x = random_logits(rng)
    call, result = call_softmax(x)
    expected = torch.softmax(x.detach(), dim=0)
    check_value(result.detach(), expected, call=call, what="The result")


def test_softmax_of_large_values_does_not_overflow(rng):
    x = random_logits(rng, offset=100.0)
    call, result = call_softmax(x)
    expected = torch.softmax(x.detach(), dim=0)
    check_value(
        result.detach(),
        expected,
        call=call,
        what="The result",
        wrong=[
            Wrong(
                lambda got: bool(got.isnan().any()),
                "exp(x) overflowed to inf (exp(100.0) is inf in float32) and inf / inf is "
                "nan. Subtract x.max() before exp(): the result does not change, the numbers "
                "stay small.",
            )
        ],
    )


def test_softmax_gradient_matches_torch(rng):
    x = random_logits(rng)
    v = torch.randn(x.shape)
    call, result = call_softmax(x)
    broke = (
        f"Called {call}. Backward through the result raised 'one of the variables needed "
        f"for gradient computation has been modified by an inplace operation': exp saved "
        f"its output for backward (the derivative of exp is exp), and the in-place "
        f"division (e /= e.sum()) overwrote it. Divide out of place: e / e.sum(). (Doing "
        f"the edit through e.detach() does not help: detach() shares the version counter, "
        f"so backward still notices.)"
    )
    with explained({VERSION_ERROR: broke}):
        (got,) = torch.autograd.grad((result * v).sum(), x)
    data_why = (
        "that is the gradient of exp(x - max) times a constant: autograd never saw the "
        "division by the sum. Edits through .data (e.data /= ...) skip the version check, so "
        "backward runs without an error and gives this silently wrong gradient; a sum taken "
        "out of the graph (.detach(), .item(), .data) does the same. Divide out of place, by "
        "the sum autograd can see: e / e.sum()."
    )
    check_value(
        got,
        softmax_vjp(x, v),
        call=f"{call}, then torch.autograd.grad((result * v).sum(), x) with v = {fmt(v)}",
        what="x's gradient",
        wrong=[Wrong(wrong, data_why) for wrong in hidden_division(x, v)],
    )


def test_softmax_keeps_the_shape_and_dtype(rng):
    for dtype in (torch.float32, torch.float64):
        x = random_logits(rng).detach().to(dtype).requires_grad_(True)
        call, result = call_softmax(x)
        check_shape_like(result, x, call=call)


# --- contracts the stub states (issue 16) -----------------------------------------------------


def test_the_experiment_leaves_the_leaves_op_uses_alone(rng):
    x = random_input(rng)
    weight = torch.tensor([round(rng.uniform(0.5, 2.0), 2) for _ in x], requires_grad=True)
    call = (
        f"edit_breaks_backward(op, {fmt(x)}, 'output') with op = lambda t: t * weight, "
        f"weight a leaf"
    )
    got = kata.edit_breaks_backward(lambda t: t * weight, x, "output")
    check_value(got, False, call=call, what="The answer")
    require(
        weight.grad is None,
        f"Called {call}. weight.grad is {fmt(weight.grad)} afterwards, expected None: "
        f"out.sum().backward() writes the .grad of every leaf op uses, the caller's weight "
        f"too. Walk back with torch.autograd.grad(out.sum(), a), which writes no .grad.",
    )


def test_an_edit_other_than_input_or_output_raises_value_error(rng):
    x = random_input(rng)
    edit = rng.choice(["both", "Output", "weight"])
    call = f"edit_breaks_backward(torch.exp, {fmt(x)}, {edit!r})"
    try:
        got = kata.edit_breaks_backward(torch.exp, x, edit)
    except ValueError:
        return
    fail(
        f"Called {call}. It returned {got!r}, expected ValueError: edit is 'input' or "
        f"'output', and any other value is a mistake of the caller's, not an experiment "
        f"(treating everything else as 'output' answers a question nobody asked)."
    )


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_softmax_of_one_element_and_a_second_call(rng):
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor([round(rng.uniform(-3, 3), 2)], dtype=dtype, requires_grad=True)
        for _ in range(2):
            call, result = call_softmax(x)
            check_value(result.detach(), torch.ones(1), call=call, what="The result")
            (grad,) = torch.autograd.grad(result.sum(), x)
            check_value(grad, torch.zeros(1), call=call + ", then backward()", what="x.grad")


def test_the_experiment_on_a_float64_x_that_requires_grad(rng):
    x = random_input(rng).double().requires_grad_()
    x.grad = torch.ones_like(x)  # the caller's: the inputs law checks it stays
    call = f"edit_breaks_backward(torch.exp, {fmt(x.detach())} (float64, requires grad), 'output')"
    check_value(kata.edit_breaks_backward(torch.exp, x, "output"), True, call=call, what="It")
    check_value(kata.edit_breaks_backward(torch.exp, x, "input"), False, call=call, what="It")

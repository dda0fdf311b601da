"""Kata 7: y.backward(v) computes v^T J; a whole Jacobian is one VJP per row."""

import math

import torch

from coach.runtime import catalogue
from coach.runtime.catalogue import CUMSUM, MIXING, SIN, SOFTMAX, SQUARE, TIMES_SUM, Function
from coach.runtime.testing import (
    Wrong,
    backward_passes,
    check_shape_like,
    check_value,
    expect_tensor,
    explained,
    fmt,
    load_kata,
    require,
    torch_said,
)

kata = load_kata("k07_nonscalar")


SQUARE_FUNCTIONS = [SIN, SQUARE, CUMSUM, SOFTMAX, TIMES_SUM]


def matrix_times_tanh(rng, n: int) -> Function:
    """x -> A @ tanh(x) with a random A of m != n rows: a Jacobian that is not square.

    m * n stays at most 12, so that a message can show every entry of A and of J.
    """
    m = rng.choice([k for k in range(2, 6) if k != n and k * n <= 12])
    A = torch.tensor([[rng.uniform(-2.0, 2.0) for _ in range(n)] for _ in range(m)])
    return catalogue.matrix_times_tanh(A)


def small_size(rng) -> int:
    """A Jacobian's side: at most 3, so that a message can show all of an n x n Jacobian."""
    return rng.randint(2, 3)


def random_vector(rng, n: int, dtype=torch.float32):
    return torch.tensor([rng.uniform(-2.0, 2.0) for _ in range(n)], dtype=dtype)


def every_function(rng, n: int) -> list[Function]:
    return [*SQUARE_FUNCTIONS, matrix_times_tanh(rng, n)]


# Errors a learner's own code raises, each with the misunderstanding behind it.
EXPLAINED = {
    "grad can be implicitly created only for scalar outputs": (
        "backward() with no argument works only from a single number, and f(x) is a vector: "
        "backward() cannot guess how to weight its outputs. Pass the weights, y.backward(v) "
        "(its gradient= argument), which gives v^T J. Reducing with .sum() first would quietly "
        "pick v = all ones instead."
    ),
    "Trying to backward through the graph a second time": (
        "backward() frees the values the graph saved for it once it has used them, so the "
        "second row's walk through the same y found them gone. Pass retain_graph=True to "
        "every backward() that walks y again, or build a fresh y = f(leaf) for each row."
    ),
    "does not require grad and does not have a grad_fn": (
        "f(x) has no graph, because the caller's x does not require grad. Differentiate a "
        "leaf of your own that holds x's values: x.detach().requires_grad_()."
    ),
}


def called(function: str, call: str, *args):
    """Call kata.<function>(*args), re-wording the errors this kata's mistakes raise."""

    def told(why: str):  # torch's first sentence, then the misunderstanding behind it
        return lambda error: f"Called {call}. It raised RuntimeError: {torch_said(error)}.\n{why}"

    with explained({text: told(why) for text, why in EXPLAINED.items()}):
        result = getattr(kata, function)(*args)
    expect_tensor(result, call)
    return result


# --- vjp --------------------------------------------------------------------------------------


def vjp_call(f, x, v) -> str:
    return f"vjp({f!r}, x={fmt(x)}, v={fmt(v)})"


def check_vjp(f: Function, x, v) -> None:
    call = vjp_call(f, x, v)
    got = called("vjp", call, f, x, v)
    J = f.exact(x)
    v64 = v.to(torch.float64)
    ones = torch.ones_like(v64)
    wrong = [
        Wrong(
            ones @ J,
            "that is 1^T J, what y.sum().backward() gives: it weights every output with 1. "
            "Weight them with v instead: y.backward(v).",
        )
    ]
    if J.shape[0] == J.shape[1]:  # n outputs for n inputs: two more mix-ups fit the shape
        wrong += [
            Wrong(
                (ones @ J) * v64,
                "that is 1^T J times v, element by element: x.grad after y.backward(ones) holds "
                "each dy_i/dx_i only when f is elementwise, and f mixes elements. Let "
                "backward() do the weighting: y.backward(v).",
            ),
            Wrong(
                J @ v64,
                "that is J v, a Jacobian-vector product (J times v as a column). backward() "
                "gives v^T J, v as a row times J: x.grad[j] = sum over i of v[i] * dy_i/dx_j.",
            ),
        ]
    check_value(got, v64 @ J, call=call, what="v^T J", wrong=wrong)


def test_vjp_of_sin_weights_each_cosine_by_v():
    check_vjp(SIN, torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0]))


def test_vjp_is_v_transposed_times_the_jacobian(rng):
    n = rng.randint(2, 5)
    x = random_vector(rng, n)
    for f in every_function(rng, n):
        m = len(f(x))
        check_vjp(f, x, random_vector(rng, m))


def test_vjp_of_a_function_that_mixes_elements_is_not_elementwise(rng):
    n = rng.randint(3, 5)
    x = random_vector(rng, n)
    for f in MIXING:
        check_vjp(f, x, random_vector(rng, n))


def test_vjp_has_the_shape_and_dtype_of_x(rng):
    for dtype in (torch.float32, torch.float64):
        for n in (1, rng.randint(2, 5)):
            x, v = random_vector(rng, n, dtype), random_vector(rng, n, dtype)
            call = vjp_call(SIN, x, v)
            check_shape_like(called("vjp", call, SIN, x, v), x, call=call, what="v^T J")


def test_vjp_takes_one_backward_pass(rng):
    n = rng.randint(3, 5)
    x, v = random_vector(rng, n), random_vector(rng, n)
    call = vjp_call(SOFTMAX, x, v)
    with backward_passes() as engine:
        called("vjp", call, SOFTMAX, x, v)
    require(
        engine.passes == 1,
        f"Called {call}. Autograd ran {engine.passes} backward passes, expected 1: a VJP is "
        f"one pass, y.backward(v), whatever the length of y. Building J row by row (or not "
        f"using autograd at all) is what the VJP saves you.",
    )


def test_vjp_leaves_the_callers_x_and_its_grad_alone(rng):
    n = rng.randint(2, 5)
    x = random_vector(rng, n).requires_grad_()
    x.grad = random_vector(rng, n)  # a gradient the caller already holds
    v = random_vector(rng, n)
    # The laws checked around every call fail if x's values, .grad or flag changed.
    check_vjp(SQUARE, x, v)


# --- jacobian ---------------------------------------------------------------------------------


def check_jacobian(f: Function, x) -> None:
    call = f"jacobian({f!r}, x={fmt(x)})"
    with backward_passes() as engine:
        got = called("jacobian", call, f, x)
    J = f.exact(x)
    m, n = J.shape
    wrong = [
        Wrong(
            J.cumsum(0),
            "row i holds the sum of rows 0 to i: backward() adds into .grad, so each VJP "
            "piled onto the ones before. Clear the leaf's .grad before each row (leaf.grad = "
            "None), or use torch.autograd.grad, which returns the VJP without touching .grad.",
        ),
        Wrong(
            J[-1].expand(m, n),
            "every row is the last one: the list holds the same .grad tensor m times, and "
            "zero_() and backward() kept rewriting it in place. Store a copy of each row "
            "(leaf.grad.clone()), or set leaf.grad = None before each backward().",
        ),
        Wrong(
            (torch.ones(m, dtype=J.dtype) @ J).expand(m, n),
            "every row is 1^T J, what y.sum().backward() gives. Row i is the VJP with the "
            "one-hot v = e_i: 1 at output i, 0 elsewhere.",
        ),
        Wrong(
            J.T,
            "that is J transposed. Row i of the Jacobian is output i's gradient, dy_i/dx: the "
            "VJP with v = e_i. Stack the VJPs as rows (torch.stack(rows)), shape (m, n).",
        ),
    ]
    check_value(got, J, call=call, what="The Jacobian", wrong=wrong)
    require(
        engine.passes >= 1,
        f"Called {call}. Autograd never ran a backward pass: compute each row with backward() "
        f"(or torch.autograd.grad) from y = f(leaf).",
    )


def test_jacobian_of_cumsum_is_lower_triangular_ones():
    check_jacobian(CUMSUM, torch.tensor([1.0, 2.0, 3.0]))


def test_jacobian_of_an_elementwise_function_is_diagonal(rng):
    x = random_vector(rng, small_size(rng))
    for f in (SIN, SQUARE):
        check_jacobian(f, x)


def test_jacobian_walks_a_graph_that_saved_values_once_per_row(rng):
    # softmax saves its result for backward(), so a second walk without retain_graph fails.
    for n in (2, 3):
        check_jacobian(SOFTMAX, random_vector(rng, n))


def test_jacobian_matches_the_closed_form(rng):
    n = small_size(rng)
    x = random_vector(rng, n)
    for f in every_function(rng, n):
        check_jacobian(f, x)


def test_jacobian_of_a_function_with_fewer_or_more_outputs_than_inputs(rng):
    for _ in range(3):
        n = rng.randint(2, 4)
        check_jacobian(matrix_times_tanh(rng, n), random_vector(rng, n))


def test_jacobian_has_x_dtype(rng):
    x = random_vector(rng, small_size(rng), torch.float64)
    call = f"jacobian({TIMES_SUM!r}, x={fmt(x)})"
    got = called("jacobian", call, TIMES_SUM, x)
    require(
        got.dtype == torch.float64,
        f"Called {call} with a float64 x. The Jacobian is {got.dtype}, expected float64: "
        f"a tensor made in torch's default float32 (torch.zeros(m, n) filled row by row, "
        f"torch.tensor(...)) changed it. Stack the rows as backward() gives them "
        f"(torch.stack(rows)), or give such a tensor x's dtype (dtype=x.dtype).",
    )
    check_jacobian(TIMES_SUM, x)


def test_jacobian_leaves_the_callers_x_and_its_grad_alone(rng):
    n = small_size(rng)
    x = random_vector(rng, n).requires_grad_()
    x.grad = random_vector(rng, n)
    check_jacobian(SOFTMAX, x)  # the laws fail the call if x's .grad or flag changed


# --- jacobian_diagonal ------------------------------------------------------------------------


def check_diagonal(f: Function, x) -> None:
    call = f"jacobian_diagonal({f!r}, x={fmt(x)})"
    got = called("jacobian_diagonal", call, f, x)
    check_shape_like(got, x, call=call, what="The diagonal")
    J = f.exact(x)
    ones = torch.ones(len(x), dtype=J.dtype)
    column_sums = ones @ J
    wrong = [
        Wrong(
            column_sums,
            f"that is 1^T J, the column sums of J: what y.sum().backward() (or "
            f"y.backward(torch.ones_like(y))) leaves in x.grad. x.grad[j] collects dy_i/dx_j "
            f"from every output i, which is dy_j/dx_j only when f is elementwise, and {f!r} "
            f"mixes elements. Take the diagonal of the whole Jacobian.",
        ),
        Wrong(
            J @ ones,
            "that is J times a column of ones, the row sums of J: each output's derivative "
            "summed over all inputs. The diagonal keeps only dy_i/dx_i.",
        ),
    ]
    check_value(got, J.diagonal(), call=call, what="The diagonal", wrong=wrong)


def test_jacobian_diagonal_of_an_elementwise_function_is_its_derivative(rng):
    x = random_vector(rng, rng.randint(2, 5))
    for f in (SIN, SQUARE):
        check_diagonal(f, x)


def test_jacobian_diagonal_of_cumsum_is_all_ones(rng):
    # y.sum().backward() would give [n, n-1, ..., 1]: x_j appears in n - j partial sums.
    check_diagonal(CUMSUM, random_vector(rng, rng.randint(3, 5)))


def test_jacobian_diagonal_of_softmax_is_s_times_1_minus_s(rng):
    # softmax's outputs always sum to 1, so y.sum().backward() would give all zeros.
    check_diagonal(SOFTMAX, random_vector(rng, rng.randint(3, 5)))


def test_jacobian_diagonal_of_functions_that_mix_elements(rng):
    for dtype in (torch.float32, torch.float64):
        x = random_vector(rng, rng.randint(2, 4), dtype)
        for f in MIXING:
            check_diagonal(f, x)


def test_jacobian_diagonal_sums_to_the_divergence(rng):
    x = random_vector(rng, 4)
    call = f"jacobian_diagonal({TIMES_SUM!r}, x={fmt(x)})"
    got = called("jacobian_diagonal", call, TIMES_SUM, x)
    # The trace of J for x * x.sum(): n * sum(x) + sum(x) = (n + 1) * sum(x).
    divergence = 5 * math.fsum(x.tolist())
    check_value(
        got.sum().item(),
        divergence,
        call=call,
        what="The sum of the diagonal (the divergence of f)",
        wrong=[
            Wrong(
                2 * math.fsum(x.tolist()) * 4,
                "that is the sum of every entry of J: the column sums 1^T J that "
                "y.sum().backward() gives add up to it. The divergence sums the diagonal alone.",
            )
        ],
    )


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_one_input_and_a_caller_x_that_requires_grad_with_a_stale_grad(rng):
    for dtype in (torch.float32, torch.float64):
        x = random_vector(rng, 1, dtype).requires_grad_()
        x.grad = torch.full_like(x, 7.0)  # the caller's, from elsewhere: the law checks it
        v = random_vector(rng, 1, dtype)
        check_vjp(SIN, x, v)
        check_jacobian(SOFTMAX, x)
        check_diagonal(TIMES_SUM, x)


def test_a_second_call_with_other_inputs_gives_their_own_answer(rng):
    n = small_size(rng)
    for f in MIXING:
        check_jacobian(f, random_vector(rng, n, torch.float64))
        check_jacobian(f, random_vector(rng, n + 1, torch.float64))

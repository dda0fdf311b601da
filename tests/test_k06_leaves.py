"""Kata 6: only leaves that require grad get a .grad; retain_grad() keeps a non-leaf's."""

import warnings

import torch

from coach.runtime.testing import (
    Wrong,
    backward_passes,
    check_value,
    expect_tensor,
    explained,
    fmt,
    load_kata,
    require,
)

kata = load_kata("k06_leaves")

DTYPES = [torch.float32, torch.float64]
SHAPES = [(), (3,), (2, 3)]
SET_ON_A_NON_LEAF = "you can only change requires_grad flags of leaf variables"

# What the operations a learner may have used show up as, in a non-leaf's grad_fn.
OPERATIONS = {
    "MulBackward0": "`* scale`",
    "ToCopyBackward0": "`.to(dtype)` or `.double()`",
    "CloneBackward0": "`clone()`",
}


def operation(tensor) -> str:
    name = type(tensor.grad_fn).__name__
    return f"{name}, from {OPERATIONS[name]}" if name in OPERATIONS else name


def grad_of(tensor):
    """tensor.grad, without the warning torch gives when the tensor is not a leaf."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tensor.grad


def random_values(rng, shape, dtype=torch.float32):
    count = torch.Size(shape).numel()
    return torch.tensor([rng.uniform(-3.0, 3.0) for _ in range(count)], dtype=dtype).reshape(shape)


# --- make_parameter ---------------------------------------------------------------------------


def parameter_call(shape, scale, dtype) -> str:
    return f"make_parameter({shape!r}, {fmt(scale)}, {dtype})"


def checked_parameter(shape, scale, dtype):
    """Call make_parameter, re-wording the error of setting requires_grad on a result."""
    call = parameter_call(shape, scale, dtype)
    refused = (
        f"Called {call}. It raised RuntimeError: {SET_ON_A_NON_LEAF}. The tensor whose "
        f"requires_grad you set was already the result of an operation on a tensor that "
        f"required grad, so it is no leaf: torch lets you set the flag only on a leaf, and "
        f"no flag turns a result into one. Draw, scale and convert the values without "
        f"requires_grad, then switch it on for the finished tensor."
    )
    with explained({SET_ON_A_NON_LEAF: refused}):
        w = kata.make_parameter(shape, scale, dtype)
    expect_tensor(w, call)
    return call, w


def random_scale(rng) -> float:
    return round(rng.choice([0.001, 0.01, 0.1]) * rng.uniform(1.0, 5.0), 4)


def test_make_parameter_returns_a_leaf_that_requires_grad(rng):
    for dtype in DTYPES:
        for shape in SHAPES:
            call, w = checked_parameter(shape, random_scale(rng), dtype)
            require(
                w.requires_grad,
                f"Called {call}. The tensor it returned has requires_grad=False: autograd does "
                f"not track it, so no backward() will ever compute its gradient. Switch "
                f"requires_grad on, as the last step.",
            )
            require(
                w.is_leaf,
                f"Called {call}. The tensor it returned is not a leaf: its grad_fn is "
                f"{operation(w)}. It is the result of an operation on a tensor that already "
                f"required grad, so backward() stores the gradient in that earlier tensor, "
                f"which nobody holds, and this one's .grad stays None: torch's optimizers refuse "
                f"it ('can't optimize a non-leaf Tensor'), and an update by hand finds no "
                f"gradient. Do every operation first, without requires_grad, and "
                f"switch requires_grad on last.",
            )


def test_make_parameter_gets_its_gradient_in_its_own_grad(rng):
    for dtype in DTYPES:
        call, w = checked_parameter((3,), random_scale(rng), dtype)
        require(w.requires_grad, f"Called {call}. It returned a tensor with requires_grad=False.")
        factors = random_values(rng, (3,), dtype)
        (w * factors).sum().backward()
        got = grad_of(w)
        why_none = (
            f"w is not a leaf (grad_fn {operation(w)}). backward() passed the gradient through "
            f"it to the tensor it was made from, which nobody holds, and stored nothing in w. "
            f"Do every operation first, without requires_grad, and switch requires_grad on last."
        )
        check_value(
            got,
            factors,
            call=f"{call}, then (w * c).sum().backward() with c = {fmt(factors)}",
            what="w.grad",
            wrong=[Wrong(None, why_none)],
        )


def test_make_parameter_has_the_shape_and_dtype_asked_for(rng):
    for dtype in DTYPES:
        for shape in SHAPES:
            call, w = checked_parameter(shape, random_scale(rng), dtype)
            require(
                tuple(w.shape) == shape,
                f"Called {call}. The weight has shape {tuple(w.shape)}, expected {shape}: "
                f"torch.randn(shape) draws a tensor of that shape.",
            )
            require(
                w.dtype == dtype,
                f"Called {call}. The weight is {w.dtype}, expected {dtype}: give it the dtype "
                f"asked for (torch.randn(shape, dtype=dtype), or .to(dtype) before requires_grad "
                f"is switched on).",
            )


def test_make_parameter_values_are_standard_normal_times_scale(rng):
    scale = random_scale(rng)
    _, first = checked_parameter((64,), scale, torch.float64)
    call, w = checked_parameter((64,), scale, torch.float64)
    values = w.detach().to(torch.float64)
    require(
        bool(values.isfinite().all()),
        f"Called {call}. Some values are not finite: {fmt(values[~values.isfinite()][:3])}.",
    )
    spread = values.std().item()
    seen = f"Called {call}. The 64 values have a spread (std) of {fmt(spread)}"
    if 0.5 <= spread <= 1.6:
        why = "that of a standard normal: multiply the values by scale."
    elif spread == 0.0:
        why = f"all of them are {fmt(values[0].item())}: draw them at random with torch.randn."
    elif bool((values >= 0).all()):
        why = (
            "and none is negative: torch.rand draws uniformly from [0, 1), while the standard "
            "normal, torch.randn, is centred on 0."
        )
    else:
        why = "a standard normal times scale spreads by about scale."
    require(
        0.5 * scale <= spread <= 1.6 * scale and values.abs().max().item() <= 6 * scale,
        f"{seen}, expected about scale = {fmt(scale)}: {why}",
    )
    require(
        not torch.equal(first.detach(), w.detach()),
        f"Called {call} twice and got the same values both times: draw them at random with "
        f"torch.randn, anew on each call.",
    )


def test_make_parameter_uses_float32_by_default(rng):
    shape, scale = (2,), random_scale(rng)
    w = kata.make_parameter(shape, scale)
    call = f"make_parameter({shape!r}, {fmt(scale)})"
    require(isinstance(w, torch.Tensor), f"Called {call}. It returned {type(w).__name__}.")
    require(
        w.dtype == torch.float32 and w.is_leaf and w.requires_grad,
        f"Called {call}. It returned a {w.dtype} tensor with is_leaf={w.is_leaf} and "
        f"requires_grad={w.requires_grad}; expected a float32 leaf that requires grad.",
    )


# --- fresh_leaf -------------------------------------------------------------------------------


def sources(rng):
    """Tensors a caller may pass: (how it was made, t, the leaf behind it or None)."""
    dtype = rng.choice(DTYPES)
    shape = rng.choice(SHAPES)
    root = random_values(rng, shape, dtype).requires_grad_()
    made = [("a non-leaf, t = a * 2 + 1", root * 2 + 1, root)]
    made.append(("a plain tensor", random_values(rng, rng.choice(SHAPES), dtype), None))
    leaf = random_values(rng, rng.choice(SHAPES), dtype).requires_grad_()
    made.append(("a leaf that requires grad", leaf, leaf))
    return made


def checked_fresh_leaf(description: str, t):
    """Call fresh_leaf(t) and check it gave a leaf that requires grad with t's values."""
    call = f"fresh_leaf(t), t {description} = {fmt(t)}"
    refused = (
        f"Called {call}. It raised RuntimeError: {SET_ON_A_NON_LEAF}. t is the result of "
        f"an operation (grad_fn {type(t.grad_fn).__name__}): torch sets requires_grad only "
        f"on a leaf, and no flag turns a result into a leaf. Cut the history first: "
        f"t.detach() is a leaf holding t's values."
    )
    with explained({SET_ON_A_NON_LEAF: refused}):
        result = kata.fresh_leaf(t)
    expect_tensor(result, call)
    require(
        result.shape == t.shape and result.dtype == t.dtype,
        f"Called {call}. It returned a {result.dtype} tensor of shape {tuple(result.shape)}; "
        f"expected t's dtype {t.dtype} and shape {tuple(t.shape)}.",
    )
    check_value(result.detach(), t.detach(), call=call, what="The result's values")
    return call, result


def test_fresh_leaf_is_a_leaf_that_requires_grad(rng):
    for description, t, _ in sources(rng):
        call, result = checked_fresh_leaf(description, t)
        if result is t and not t.is_leaf:
            require(
                False,
                f"Called {call}. It returned t itself, still a non-leaf (grad_fn "
                f"{type(t.grad_fn).__name__}): requires_grad_() on a result changes nothing, "
                f"and no flag turns a result into a leaf. t.detach() is a leaf with t's "
                f"values: copy that and switch requires_grad on.",
            )
        require(
            result.is_leaf,
            f"Called {call}. The result is not a leaf: its grad_fn is {operation(result)}, an "
            f"operation autograd recorded on t, so backward() would go on past it into t's "
            f"history. Cut the history first with t.detach(), which gives a leaf.",
        )
        require(
            result.requires_grad,
            f"Called {call}. The result does not require grad, so backward() would never give "
            f"it a gradient: t.detach() gives a tensor without requires_grad; switch it on "
            f"with requires_grad_().",
        )


def test_fresh_leaf_shares_no_memory_with_t(rng):
    for description, t, _ in sources(rng):
        call, result = checked_fresh_leaf(description, t)
        require(
            result is not t,
            f"Called {call}. It returned t itself, so an optimizer updating the result in "
            f"place would change the caller's t. Return a new tensor: t.detach().clone().",
        )
        require(
            result.untyped_storage().data_ptr() != t.untyped_storage().data_ptr(),
            f"Called {call}. The result shares t's memory (detach() returns a view of the same "
            f"numbers; nothing is copied), so an optimizer updating it in place would change t "
            f"as well. Copy the values: t.detach().clone().",
        )


def test_backward_stops_at_the_fresh_leaf(rng):
    for description, t, root in sources(rng):
        call, result = checked_fresh_leaf(description, t)
        require(result.requires_grad, f"Called {call}. The result does not require grad.")
        factors = random_values(rng, tuple(t.shape), t.dtype)
        (result * factors).sum().backward()
        check_value(
            grad_of(result),
            factors,
            call=f"{call}, then (result * c).sum().backward() with c = {fmt(factors)}",
            what="result.grad",
            wrong=[Wrong(None, "backward() kept no gradient in the result: it is not a leaf.")],
        )
        if root is not None:
            require(
                root.grad is None,
                f"Called {call}, then backward() from the result. The gradient went on into "
                f"t's history: the tensor t came from now has .grad {fmt(root.grad)}, expected "
                f"None. Cut the history with detach().",
            )


# --- hidden_grads -----------------------------------------------------------------------------

H_NOT_KEPT = (
    "h is not a leaf (h = x * 3 has a grad_fn), so backward() passed its gradient on to x and "
    "kept none for h. Call h.retain_grad() before backward() (afterwards is too late), or get "
    "both at once with torch.autograd.grad(y, (h, x))."
)
X_CUT_OFF = (
    "no gradient reached x, so y's graph does not lead back to x. Was h made anew as a tensor "
    "of its own (torch.tensor(...), detach(), a copy with requires_grad=True)? That makes h a "
    "leaf and cuts x off. h = x * 3 needs no flag: a result inherits requires_grad from its "
    "inputs."
)
AS_A_FLOAT = (
    "the right number, but as a float. Return the gradient tensors themselves (h.grad), "
    "not their .item()."
)


def checked_hidden_grads(x0):
    """Call hidden_grads, re-wording the error of setting requires_grad on h."""
    call = f"hidden_grads({x0!r})"
    refused = (
        f"Called {call}. It raised RuntimeError: {SET_ON_A_NON_LEAF}. h = x * 3 already "
        f"requires grad: a result inherits requires_grad from its inputs, and torch refuses "
        f"to set the flag on a non-leaf. Drop that line; to keep h's gradient, call "
        f"h.retain_grad() before backward()."
    )
    with explained({SET_ON_A_NON_LEAF: refused}):
        result = kata.hidden_grads(x0)
    require(
        isinstance(result, tuple) and len(result) == 2,
        f"Called {call}. It returned {fmt(result)}; expected a pair (h.grad, x.grad).",
    )
    return call, result


def check_hidden_grads(x0) -> None:
    call, (h_grad, x_grad) = checked_hidden_grads(x0)
    dy_dh, dy_dx = torch.tensor(6.0 * x0), torch.tensor(18.0 * x0)
    check_value(
        h_grad,
        dy_dh,
        call=call,
        what="h.grad",
        wrong=[
            Wrong(None, H_NOT_KEPT),
            Wrong(dy_dx, "that is dy/dx. Return the pair in the order (h.grad, x.grad)."),
            Wrong(lambda got: isinstance(got, float), AS_A_FLOAT),
        ],
    )
    check_value(
        x_grad,
        dy_dx,
        call=call,
        what="x.grad",
        wrong=[
            Wrong(None, X_CUT_OFF),
            Wrong(
                2 * dy_dx,
                "twice dy/dx: two backward passes added up in x.grad. Backpropagate from y "
                "once, after h.retain_grad().",
            ),
            Wrong(lambda got: isinstance(got, float), AS_A_FLOAT),
        ],
    )


def test_hidden_grads_at_2_are_12_and_36():
    check_hidden_grads(2.0)


def test_hidden_grads_are_6x_and_18x_at_random_points(rng):
    for _ in range(5):
        check_hidden_grads(round(rng.uniform(-3.0, 3.0), 3))


def test_hidden_grads_accepts_an_int():
    check_hidden_grads(2)


def test_hidden_grads_come_from_a_backward_pass(rng):
    x0 = round(rng.uniform(-3.0, 3.0), 3)
    with backward_passes() as engine:
        call, _ = checked_hidden_grads(x0)
    require(
        engine.passes >= 1,
        f"Called {call}. Autograd never ran a backward pass, so the gradients came from a "
        f"formula. Call y.backward() and read them from .grad.",
    )


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_hidden_grads_called_twice_gives_the_same_answer(rng):
    x0 = round(rng.uniform(-2.0, 2.0), 3)
    first = [g.item() for g in kata.hidden_grads(x0)]
    second = [g.item() for g in kata.hidden_grads(x0)]
    require(
        first == second,
        f"Called hidden_grads({fmt(x0)}) twice: it returned {first} and then {second}. Each "
        f"call builds its own x: an x kept between calls keeps its .grad, and backward() adds "
        f"into it.",
    )


def test_fresh_leaf_of_a_float64_non_leaf_of_one_element(rng):
    root = torch.tensor([rng.uniform(-2.0, 2.0)], dtype=torch.float64, requires_grad=True)
    call, result = checked_fresh_leaf(
        "a float64 non-leaf of one element, t = a * 2 + 1", root * 2 + 1
    )
    require(
        result.is_leaf and result.requires_grad,
        f"Called {call}. It returned a tensor with is_leaf={result.is_leaf} and "
        f"requires_grad={result.requires_grad}; expected a leaf that requires grad.",
    )

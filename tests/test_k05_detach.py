"""Kata 5: detach() keeps a tensor's value and drops its history."""

import sys

import pytest
import torch
from torch.overrides import TorchFunctionMode

from coach.runtime.testing import (
    TorchCalls,
    backward_passes,
    caught,
    check_shape_like,
    close,
    expect_float,
    explained,
    fail,
    fmt,
    load_kata,
    require,
)

kata = load_kata("k05_detach")

# Every spelling of "detach": the method, the function, and the in-place variants.
DETACH_FUNCTIONS = {torch.Tensor.detach, torch.detach, torch.Tensor.detach_, torch.detach_}


class DetachSpy(TorchFunctionMode):
    """Sees every torch call inside its `with` block and records each detach.

    For each one it keeps the input's grad_fn and storage address as they were before the call
    (detach_() rewrites its input in place) and the tensor the call returned.
    """

    def __init__(self):
        super().__init__()
        self.detaches = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in DETACH_FUNCTIONS:
            source = args[0]
            before = (source.grad_fn, source.untyped_storage().data_ptr())
        result = func(*args, **(kwargs or {}))
        if func in DETACH_FUNCTIONS:
            self.detaches.append((*before, result))
        return result


def reaches(tensor, leaf) -> bool:
    """True when the autograd graph behind `tensor` leads back to the leaf tensor `leaf`."""
    return graph_reaches(tensor.grad_fn, leaf)


def graph_reaches(grad_fn, leaf) -> bool:
    todo, seen = [grad_fn], set()
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if getattr(node, "variable", None) is leaf:
            return True
        todo.extend(next_node for next_node, _ in node.next_functions)
    return False


def shown(tensor) -> str:
    """A tensor's values with 7 significant digits, as fmt writes them: [1.5, -0.25]."""

    def text(values):
        if isinstance(values, list):
            return f"[{', '.join(text(value) for value in values)}]"
        return fmt(values)

    return text(tensor.tolist())


def node_name(tensor) -> str:
    """A tensor's grad_fn as a learner reads it: MulBackward0, or None."""
    return "None" if tensor.grad_fn is None else type(tensor.grad_fn).__name__


def checked_chain(a0, detach):
    call = f"chain({fmt(a0)}, detach={detach})"
    result = kata.chain(a0, detach)
    if not (isinstance(result, tuple) and len(result) == 3):
        fail(f"{call} returned {result!r}; expected a triple (a, b, c).")
    for name, value in zip("abc", result):
        if not isinstance(value, torch.Tensor):
            fail(
                f"{call} returned {name} = {value!r} ({type(value).__name__}); expected a "
                f"tensor, so that autograd can follow it."
            )
    return (call, *result)


def checked_grad_of_a(a0, detach):
    """Call grad_of_a, re-wording the two errors this kata's own mistakes raise."""
    call = f"grad_of_a({fmt(a0)}, detach={detach})"

    def refused(error):
        return (
            f"backward() refused to run on c: detach() cut c's only path to a, so c "
            f"does not require grad and there is nothing to backpropagate. Check c.requires_grad "
            f"before calling backward() and return a.grad, which is still None."
            f"\nCalled {call}; torch raised: {error}"
        )

    used_up = (
        f"The graph from a to c had already been used up by an earlier backward(): chain must "
        f"only build it, and grad_of_a backpropagates once.\nCalled {call}; torch raised "
        f"'Trying to backward through the graph a second time'."
    )
    known = {"does not require grad": refused} if detach else {}  # checked in this order
    with explained({**known, "second time": used_up}):
        grad = kata.grad_of_a(a0, detach)
    return call, grad


# chain ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("detach", [False, True])
def test_chain_at_2_gives_b_6_and_c_36(detach):
    call, a, b, c = checked_chain(2.0, detach)
    got = (a.item(), b.item(), c.item())
    assert got == (2.0, 6.0, 36.0), (
        f"Called {call}. It returned values (a, b, c) = ({', '.join(map(fmt, got))}), "
        f"expected (2.0, 6.0, 36.0): "
        f"b = a * 3 and c = b ** 2. detach() changes the history, never the value."
    )


@pytest.mark.parametrize("detach", [False, True])
def test_chain_values_are_3a_and_9a_squared_at_random_points(rng, detach):
    for _ in range(5):
        a0 = rng.uniform(-3.0, 3.0)
        call, a, b, c = checked_chain(a0, detach)
        for name, tensor, expected in [("a", a, a0), ("b", b, 3 * a0), ("c", c, 9 * a0**2)]:
            if not (tensor.dtype == torch.float32 and tensor.dim() == 0):
                fail(
                    f"Called {call}. {name} is a {tensor.dtype} tensor of shape "
                    f"{tuple(tensor.shape)}; expected a 0-d float32 tensor, as "
                    f"torch.tensor(float(a0)) gives."
                )
            if not close(tensor.item(), expected):
                fail(f"Called {call}. {name} = {fmt(tensor.item())}, expected {fmt(expected)}.")


def test_chain_accepts_an_int():
    call, a, b, c = checked_chain(2, False)
    if not (a.is_floating_point() and a.requires_grad):
        fail(
            f"Called {call}. a is a {a.dtype} tensor with requires_grad={a.requires_grad}; "
            f"only floating-point (and complex) tensors can require grad, so build a from "
            f"float(a0)."
        )
    if (b.item(), c.item()) != (6.0, 36.0):
        fail(f"Called {call}. b, c = {fmt(b.item())}, {fmt(c.item())}; expected 6.0, 36.0.")


@pytest.mark.parametrize("detach", [False, True])
def test_chain_starts_from_a_leaf_that_requires_grad(rng, detach):
    call, a, _, _ = checked_chain(rng.uniform(-3.0, 3.0), detach)
    if not (a.requires_grad and a.is_leaf):
        fail(
            f"Called {call}. a has requires_grad={a.requires_grad}, is_leaf={a.is_leaf}; "
            f"expected a leaf that requires grad: torch.tensor(float(a0), requires_grad=True)."
        )


@pytest.mark.parametrize("detach", [False, True])
def test_chain_does_not_call_backward(rng, detach):
    a0 = rng.uniform(-3.0, 3.0)
    with backward_passes() as engine:
        call, a, _, _ = checked_chain(a0, detach)
    if engine.passes != 0 or a.grad is not None:
        fail(
            f"chain only builds the graph; backpropagating is grad_of_a's job. Called {call}: "
            f"autograd ran {engine.passes} backward pass(es) inside it and a.grad is "
            f"{None if a.grad is None else fmt(a.grad.item())}."
        )


def test_chain_without_detach_records_how_c_came_from_a(rng):
    call, a, b, c = checked_chain(rng.uniform(-3.0, 3.0), False)
    if b.grad_fn is None or b.is_leaf:
        fail(
            f"Called {call}. b has grad_fn={node_name(b)} and is_leaf={b.is_leaf}; expected "
            f"b = a * 3 to remember it came from a (a MulBackward0 grad_fn, not a leaf). "
            f"Compute b from the tensor a, not from a number, and only detach when detach=True."
        )
    if c.grad_fn is None or not reaches(c, a):
        fail(
            f"Called {call}. c's graph (grad_fn={node_name(c)}) does not lead back to a, so "
            f"backward() from c could not reach a. Compute c = b ** 2 from the b you returned."
        )


def returned_the_original_b(detached: bool) -> str:
    """Why c is cut but b is not: c was computed from a detached copy, b returned as it was."""
    how = (
        "Here c was built from a detached b (c has no path back to a), but chain returned the "
        "original b, which is still attached to a"
        if detached
        else "Here c has no path back to a, but the b that chain returned is still attached to a"
    )
    return (
        f"{how}. Return the detached tensor as b, the one c is computed from: b = b.detach(), "
        f"then c = b ** 2."
    )


def require_grad_not_switched_back_on(call: str, a, b) -> None:
    """A detached b made to require grad again is a leaf of its own: name that, whatever test
    meets it first."""
    if b.is_leaf and b.requires_grad and not reaches(b, a):
        fail(
            f"Called {call}. b is a leaf with no path back to a but requires_grad=True, "
            f"expected False: it was detached and then made to require grad again "
            f"(requires_grad_(), or requires_grad=True). That makes b a fresh starting point of "
            f"its own, so c = b ** 2 records a history again, one that stops at b. detach() "
            f"alone is the whole cut: b = b.detach(), and leave its requires_grad False."
        )


def test_chain_with_detach_returns_a_b_that_is_a_fresh_leaf(rng):
    with DetachSpy() as spy:
        call, a, b, c = checked_chain(rng.uniform(-3.0, 3.0), True)
    if not (b.requires_grad or not b.is_leaf or b.grad_fn is not None):
        return
    require_grad_not_switched_back_on(call, a, b)
    seen = (
        f"Called {call}. b has requires_grad={b.requires_grad}, is_leaf={b.is_leaf}, "
        f"grad_fn={node_name(b)}; a detached tensor is a leaf that does not require grad and "
        f"has no grad_fn."
    )
    if not c.requires_grad and reaches(b, a):  # c was cut, b was not
        fail(f"{seen} {returned_the_original_b(bool(spy.detaches))}")
    fail(
        f"{seen} detach() returns a new tensor and leaves b as it was, so a bare "
        f"`b.detach()` changes nothing: write b = b.detach() (or return b.detach())."
    )


def test_chain_with_detach_returns_the_output_of_detach_sharing_memory_with_a_times_3(rng):
    a0 = rng.uniform(-3.0, 3.0)
    with DetachSpy() as spy:
        call, a, b, c = checked_chain(a0, True)
    if not spy.detaches:
        fail(
            f"Called {call}. detach() was never called, so b was made some other way "
            f"(torch.no_grad(), clone(), torch.tensor(b.item()), .data, ...). This kata is "
            f"about detach(): b.detach() drops b's history and keeps its numbers, without "
            f"copying them."
        )
    matches = [(grad_fn, address) for grad_fn, address, out in spy.detaches if out is b]
    if not matches and not c.requires_grad and reaches(b, a):  # c was cut, b was not
        fail(f"Called {call}. {returned_the_original_b(detached=True)}")
    if not matches:
        fail(
            f"Called {call}. detach() was called, but the b that chain returned is not the "
            f"tensor detach() gave back. Either its result was thrown away (detach() returns "
            f"a new tensor, it does not change b: write b = b.detach()), another tensor was "
            f"detached, or something was made from it afterwards (clone(), torch.tensor(...), "
            f"arithmetic). Detach b = a * 3 and return that result as b."
        )
    source_grad_fn, source_address = matches[-1]
    if not graph_reaches(source_grad_fn, a):
        fail(
            f"Called {call}. The tensor that was detached has no history leading back to a; "
            f"detach b = a * 3 itself, the tensor autograd built from a."
        )
    if source_address != b.untyped_storage().data_ptr():
        fail(
            f"Called {call}. The detached b lives in different memory from a * 3; detach() "
            f"shares the original's storage, so nothing should have been copied."
        )


def test_chain_with_detach_gives_a_c_with_no_history(rng):
    call, a, b, c = checked_chain(rng.uniform(-3.0, 3.0), True)
    require_grad_not_switched_back_on(call, a, b)
    if c.requires_grad or c.grad_fn is not None:
        fail(
            f"Called {call}. c has requires_grad={c.requires_grad} and grad_fn={node_name(c)}; "
            f"expected False and None: c = b ** 2 was built from a detached b, which autograd "
            f"treats as a constant. Compute c from the detached b."
        )


def test_backward_from_a_detached_chain_raises(rng):
    call, a, b, c = checked_chain(rng.uniform(-3.0, 3.0), True)
    require_grad_not_switched_back_on(call, a, b)
    with caught() as backward:
        c.backward()
    refusal = None if backward.error is None else str(backward.error)
    if refusal is None:
        fail(
            f"Called {call}, then c.backward(), and it ran. With b detached, c should have no "
            f'path back to a, and backward() on such a c raises RuntimeError ("element 0 of '
            f'tensors does not require grad and does not have a grad_fn"). Build c from '
            f"b.detach()."
        )
    if "does not require grad" not in refusal:
        fail(
            f"Called {call}, then c.backward(). It raised RuntimeError: {refusal}; expected "
            f'"element 0 of tensors does not require grad and does not have a grad_fn".'
        )
    if a.grad is not None:
        fail(f"After the failed c.backward(), a.grad is {fmt(a.grad.item())}; expected None.")


# grad_of_a --------------------------------------------------------------------------------------


def require_none(call: str, grad, a0: float) -> None:
    """With detach, a.grad must be None; name what the learner's number means."""
    if grad is None:
        return
    if isinstance(grad, float) and grad == 0.0:
        why = (
            "detach() cut the only path from c to a, so autograd never writes a gradient into "
            "a, not even a zero: a.grad stays None. Return a.grad as it is."
        )
    elif isinstance(grad, float) and close(grad, 18 * a0):
        why = (
            "that is the gradient without detach(), 18a: c still reached a. Was detach()'s "
            "result used (b = b.detach())? With b detached, a.grad stays None."
        )
    else:
        why = "with b detached, no gradient reaches a, and a.grad stays None."
    fail(f"Called {call}. It returned {fmt(grad)}, expected None: {why}")


def test_grad_of_a_at_2_without_detach_is_36():
    call, grad = checked_grad_of_a(2.0, False)
    grad = expect_float(grad, call, "a.grad")
    require(
        grad == 36.0,
        f"Called {call}. It returned {fmt(grad)}, expected 36.0: dc/db * db/da = 2b * 3 = "
        f"12 * 3 at a = 2.",
    )


def test_grad_of_a_without_detach_is_18a_at_random_points(rng):
    for _ in range(5):
        a0 = rng.uniform(-3.0, 3.0)
        with backward_passes() as engine:
            call, grad = checked_grad_of_a(a0, False)
        grad = expect_float(grad, call, "a.grad")
        if not close(grad, 18 * a0):
            fail(f"Called {call}. It returned {fmt(grad)}, expected 2b * 3 = 18a = {fmt(18 * a0)}.")
        if engine.passes < 1:
            fail(
                f"Autograd never ran a backward pass, so the gradient came from a formula. Call "
                f"c.backward() (or torch.autograd.grad) and read a.grad.\nCalled {call}."
            )


def test_grad_of_a_at_2_with_detach_is_none():
    call, grad = checked_grad_of_a(2.0, True)
    require_none(call, grad, 2.0)


def test_grad_of_a_with_detach_is_none_at_random_points(rng):
    for _ in range(5):
        a0 = rng.uniform(-3.0, 3.0)
        call, grad = checked_grad_of_a(a0, True)
        require_none(call, grad, a0)


def test_grad_of_a_with_detach_builds_the_detached_chain(rng, request):
    a0 = rng.uniform(-3.0, 3.0)
    with DetachSpy() as spy:
        call, grad = checked_grad_of_a(a0, True)
    require_none(call, grad, a0)
    if spy.detaches:
        return
    with DetachSpy() as chain_spy:
        chain_call, *_ = checked_chain(a0, True)
    if not chain_spy.detaches:
        request.node.add_marker(pytest.mark.checks("chain"))  # charge this failure to chain
        fail(
            f"Called {call}. It returned None, but no detach() ran inside it, because "
            f"{chain_call} never called detach(): chain cuts b some other way (.data, "
            f"torch.no_grad(), a new tensor, ...). The fault is chain's, and chain's own test "
            f"says so: cut b with b = b.detach() in chain."
        )
    fail(
        f"Called {call}. It never called detach(), so its None was assumed, not observed. "
        f"Build the detached chain with chain(a0, detach) and return what a.grad holds."
    )


def test_grad_of_a_reports_the_gradient_its_chain_lets_through(rng, monkeypatch):
    # The stub's contract: grad_of_a gets a, b, c from this module's chain(a0, detach) and
    # returns what a.grad holds after backpropagating. So a chain that forgets to detach makes
    # grad_of_a(a0, True) return 18 * a0: a None decided from `detach` alone is not observed.
    a0 = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 3.0)
    calls = []

    def forgetful_chain(a0, detach):
        calls.append(detach)
        a = torch.tensor(float(a0), requires_grad=True)
        b = a * 3  # not detached, whatever `detach` says
        return a, b, b**2

    module = sys.modules[kata.grad_of_a.__module__]
    monkeypatch.setattr(module, "chain", forgetful_chain, raising=False)
    call, grad = checked_grad_of_a(a0, True)
    setup = (
        f"The test replaced chain with one that ignores detach=True (b = a * 3 stays attached, so "
        f"c = b ** 2 still reaches a) and called {call}."
    )
    if not calls:
        fail(
            f"{setup} grad_of_a never called chain, so its answer is not what autograd saw on "
            f"the chain that chain(a0, detach) builds. Get a, b, c from chain(a0, detach), "
            f"backpropagate from c where c.requires_grad allows it, and return a.grad."
        )
    if grad is None:
        fail(
            f"{setup} It returned None, expected 18a = {fmt(18 * a0)}: backward() from this c "
            f"reaches a, so a.grad holds a number. The None was decided from `detach`, not read "
            f"from a.grad. Let c tell you whether backward() can run (c.requires_grad), "
            f"then return what a.grad holds."
        )
    grad = expect_float(grad, call, "a.grad")
    require(
        close(grad, 18 * a0),
        f"{setup} It returned {fmt(grad)}, expected 18a = {fmt(18 * a0)}, the a.grad that "
        f"backward() from this c gives.",
    )


def test_grad_of_a_accepts_an_int():
    call, grad = checked_grad_of_a(2, False)
    grad = expect_float(grad, call, "a.grad")
    require(grad == 36.0, f"Called {call}. It returned {fmt(grad)}, expected 36.0, as for 2.0.")
    call, grad = checked_grad_of_a(2, True)
    require(grad is None, f"Called {call}. It returned {fmt(grad)}, expected None, as for 2.0.")


# straight_through_round -------------------------------------------------------------------------

SHAPES = [(), (5,), (2, 3), (2, 2, 3)]


def random_tensor(rng, shape, requires_grad=True):
    values = [rng.uniform(-5.0, 5.0) for _ in range(torch.Size(shape).numel())]
    return torch.tensor(values).reshape(shape).requires_grad_(requires_grad)


def checked_round(x):
    y = kata.straight_through_round(x)
    check_shape_like(y, x, call=f"straight_through_round(x) with x of shape {tuple(x.shape)}")
    return y


def test_straight_through_round_keeps_shape_and_dtype(rng):
    for shape in [(), (4,)]:
        checked_round(random_tensor(rng, shape).detach().double().requires_grad_())


def backward_through_round(x, weights=None):
    """Run straight_through_round(x), then backward() from its (weighted) sum."""
    y = checked_round(x)
    if not y.requires_grad:
        fail(
            "straight_through_round(x) returned a tensor that does not require grad, so "
            "backward() from it cannot run and x gets no gradient. Keep x itself in the "
            "result and detach only the correction round(x) - x."
        )
    (y if weights is None else y * weights).sum().backward()


def test_straight_through_round_rounds_like_torch_round(rng):
    for shape in SHAPES:
        x = random_tensor(rng, shape)
        y = checked_round(x)
        expected = torch.round(x.detach())
        # x + (round(x) - x) is exact in float32 (round(x) is 0, or within a factor of two of x,
        # so the difference is exact, and so is the sum). Exactness is the law of the test at
        # large magnitudes below, where a formulation that rounds twice shows it; this one
        # checks the values, with a tolerance.
        if not torch.allclose(y.detach(), expected, rtol=1e-6, atol=1e-6):
            fail(
                f"The forward value must be the rounded x. straight_through_round(x) for "
                f"x = {shown(x)} gave {shown(y)}, expected torch.round(x) = {shown(expected)}."
            )


def test_straight_through_round_sends_halves_to_the_even_neighbour():
    x = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], requires_grad=True)
    y = checked_round(x)
    # torch.round rounds half to even (banker's rounding), like Python's round().
    expected = [-2.0, -2.0, 0.0, 0.0, 2.0, 2.0]
    if y.tolist() != expected:
        fail(
            f"torch.round sends a half to the even neighbour (0.5 -> 0, 1.5 -> 2, 2.5 -> 2); "
            f"floor(x + 0.5) rounds halves up instead, so use torch.round. "
            f"straight_through_round(x) for x = {shown(x)} gave {shown(y)}, expected "
            f"{expected}."
        )


def test_straight_through_round_keeps_a_grad_fn(rng):
    x = random_tensor(rng, (4,))
    y = checked_round(x)
    if not (y.requires_grad and y.grad_fn is not None):
        fail(
            f"straight_through_round(x) returned a tensor with requires_grad={y.requires_grad} "
            f"and grad_fn={node_name(y)}; expected a link back to x. Detach only the correction "
            f"round(x) - x, never the whole result."
        )


def described(tensor) -> str:
    """A gradient as a sentence reads it: 0.0 for a 0-d tensor, "all zeros", or its values."""
    if tensor.dim() == 0:
        return fmt(tensor.item())
    for value, words in [(0.0, "all zeros"), (1.0, "all ones")]:
        if torch.equal(tensor, torch.full_like(tensor, value)):
            return words
    return shown(tensor)


def test_straight_through_round_passes_a_gradient_of_ones(rng):
    for shape in SHAPES:
        x = random_tensor(rng, shape)
        backward_through_round(x)
        if x.grad is None:
            fail(
                "After straight_through_round(x).sum().backward(), x.grad is None: the result "
                "has no path back to x. Keep x itself in the result and detach only the "
                "correction."
            )
        if torch.equal(x.grad, torch.ones_like(x)):
            continue
        ones = "1.0" if x.dim() == 0 else "all ones"
        seen = (
            f"After straight_through_round(x).sum().backward() for x = {shown(x)}, x.grad is "
            f"{described(x.grad)}, expected {ones}."
        )
        if torch.equal(x.grad, torch.zeros_like(x)):
            why = (
                "A gradient does reach x (x.grad is not None), but it is zero: every path adds "
                "up to 0. Either round's zero derivative is in the path (autograd gives "
                "torch.round a derivative of 0 everywhere), or the x terms cancel (x - x, as in "
                "x + round(x).detach() - x). Detach the whole correction (round(x) - x) as one "
                "unit and keep one undetached x."
            )
        else:
            why = (
                "For autograd the function should be the identity, whose derivative is 1: "
                "keep exactly one undetached x and detach the whole correction (round(x) - x)."
            )
        fail(f"{seen}\n{why}")


def test_straight_through_round_passes_any_upstream_gradient_unchanged(rng):
    x = random_tensor(rng, (2, 3))
    weights = random_tensor(rng, (2, 3), requires_grad=False)
    backward_through_round(x, weights)
    if x.grad is None or not torch.allclose(x.grad, weights):
        fail(
            f"The identity hands back whatever gradient arrives. After "
            f"(straight_through_round(x) * w).sum().backward(), x.grad is "
            f"{None if x.grad is None else shown(x.grad)}, expected w = {shown(weights)}."
        )


# Reading or writing .data: torch calls them as the getter and setter of Tensor.data.
DATA_READ, DATA_WRITE = torch.Tensor.data.__get__, torch.Tensor.data.__set__


def test_straight_through_round_uses_detach_not_data(rng):
    x = random_tensor(rng, (4,))
    with (
        TorchCalls(lambda func, args, kwargs: func == DATA_READ) as reads,
        TorchCalls(lambda func, args, kwargs: func == DATA_WRITE) as writes,
    ):
        y = kata.straight_through_round(x)
    detached = "write x + (torch.round(x) - x).detach()"
    if writes.seen:
        graph = f"grad_fn={node_name(y)}" if isinstance(y, torch.Tensor) else "its grad_fn"
        fail(
            f"straight_through_round(x) assigned to .data (y.data = ...), swapping a tensor's "
            f"numbers behind autograd's back. .data hides the rounding from autograd's graph: "
            f"the graph ({graph}) computes x, not round(x), while the tensor holds round(x). "
            f"The gradient comes out as wanted only because nothing checks that the graph and "
            f"the values agree. This kata cuts the graph in the open, with detach(): "
            f"{detached}. The rounding is in the value, and the detached correction is what "
            f"autograd is told to ignore."
        )
    if reads.seen:
        fail(
            f"straight_through_round(x) read .data. .data is detach() without its safety "
            f"check: autograd does not see edits made through it (kata 14), and chain's tests "
            f"reject it too. This kata is about detach(): {detached}."
        )


def test_straight_through_round_is_exactly_round_x_for_large_numbers(rng):
    # Around |x| = 1000, float32 keeps fewer fraction digits of round(x) + x (about 2x) than of
    # x: a formulation that adds them first rounds the sum, and about half the values are off.
    values = [rng.gauss(0.0, 1000.0) for _ in range(32)]
    x = torch.tensor(values, requires_grad=True)
    values = x.tolist()  # the float32 numbers themselves, exactly, as Python floats
    expected = [float(round(value)) for value in values]  # Python rounds halves to even too
    got = checked_round(x).detach().tolist()
    off = [i for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    if not off:
        return
    i = off[0]
    fail(
        f"The forward value must be round(x) exactly. straight_through_round(x) for 32 float32 "
        f"values of x (spread about 1000) gave {len(off)} that differ from torch.round(x): at "
        f"x = {values[i]:.9g} it gave {got[i]:.9g}, expected {expected[i]:.9g}. In floating "
        f"point the order of operations matters. x + (round(x) - x).detach() is exact: "
        f"round(x) - x is computed without error, and adding it back to x lands exactly on the "
        f"whole number round(x). round(x).detach() + x - x.detach() (or x + round(x).detach() "
        f"- x.detach()) rounds twice: round(x) + x is about 2x, and float32 keeps fewer digits "
        f"of its fraction than of x's, so the sum is rounded, and subtracting x keeps that "
        f"error. Add the detached correction (round(x) - x) to x."
    )


# --- contracts the stub states (issue 16) -----------------------------------------------------


def test_straight_through_round_of_large_finite_numbers(rng):
    # Finite x of any size: halves far from 0 still go to the even neighbour.
    numbers = [1048576.5, -2.5e7, rng.choice([1048577.5, 3e6]), 0.5]
    x = torch.tensor(numbers, requires_grad=True)
    call = f"straight_through_round(x) with x = {numbers} (float32)"
    result = kata.straight_through_round(x)
    expected = [float(round(value)) for value in numbers]  # Python rounds halves to even too
    require(
        result.detach().tolist() == expected,
        f"Called {call}. It returned {result.detach().tolist()}, expected {expected}: x plus a "
        f"detached (round(x) - x) is round(x) exactly, at any finite size.",
    )
    (grad,) = torch.autograd.grad(result.sum(), x)
    require(
        grad.tolist() == [1.0] * len(numbers),
        f"Called {call}, then backward() from the sum: x.grad is {described(grad)}, expected "
        f"all ones: the estimator's backward is the identity's.",
    )

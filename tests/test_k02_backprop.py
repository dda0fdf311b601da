"""Kata 2: y = (x*w1 + b)*w2, backpropagated by autograd and by the chain rule by hand."""

import inspect
import sys
from pathlib import Path

import torch

from coach.runtime.testing import (
    backward_passes,
    close,
    expect_float,
    explained,
    fail,
    fmt,
    load_kata,
)

kata = load_kata("k02_backprop")

NAMES = ("x", "w1", "w2", "b")
SEED_POINT = (2.0, 3.0, -1.0, 0.5)
FORMULAS = {"x": "w1*w2", "w1": "x*w2", "w2": "h_act = x*w1 + b", "b": "w2"}


def closed_forms(x: float, w1: float, w2: float, b: float) -> dict[str, float]:
    x, w1, w2, b = float(x), float(w1), float(w2), float(b)  # the expected values are floats
    return {"x": w1 * w2, "w1": x * w2, "w2": x * w1 + b, "b": w2}


def random_point(rng) -> tuple[float, float, float, float]:
    """(x, w1, w2, b), each 0.5 to 3 in size, either sign.

    Keeping every input away from 0 keeps the usual mistakes visible: leaving out the bias
    changes dy/dw2 by at least 0.5, and dropping a factor changes a product."""
    return tuple(rng.choice((-1.0, 1.0)) * rng.uniform(0.5, 3.0) for _ in NAMES)


def call_text(function: str, args) -> str:
    """The call as a learner would type it; fmt keeps ints as ints, floats to 7 digits."""
    return f"{function}({', '.join(fmt(arg) for arg in args)})"


# The usual wrong answers for dy/d(key), by the quantity they equal, and what each reveals.
MISTAKES = {
    "x": {
        "w1": "That is w1 alone, the local derivative dh/dx. The chain rule multiplies it by "
        "the gradient arriving from above, dy/dh = w2.",
        "w2": "That is w2 alone, the gradient arriving at h. Multiply it by the local "
        "derivative dh/dx = w1.",
    },
    "w1": {
        "x": "That is x alone, the local derivative dh/dw1. The chain rule multiplies it by "
        "the gradient arriving from above, dy/dh = w2.",
        "w2": "That is w2 alone, the gradient arriving at h. Multiply it by the local "
        "derivative dh/dw1 = x.",
    },
    "w2": {
        "h": "That is x*w1 = h: it forgets the bias. y = h_act * w2, so dy/dw2 is the other "
        "factor, h_act = h + b.",
        "y": "That is y itself. For y = h_act * w2, dy/dw2 is the other factor, h_act.",
    },
    "b": {
        "1": "That is only the local derivative dh_act/db = 1. Multiply it by the gradient "
        "arriving from above, dy/dh_act = w2.",
        "0": "b is only added, yet it still matters: a sum passes the gradient that reaches "
        "it on to each of its inputs unchanged, so dy/db = dy/dh_act = w2.",
    },
}


def likely_mistake(name: str, got: float, point) -> str:
    """A hint naming the mistake that gives `got` for dy/d(name), if a usual one does."""
    x, w1, w2, b = point
    expected = closed_forms(*point)
    quantities = {"x": x, "w1": w1, "w2": w2, "h": x * w1, "y": (x * w1 + b) * w2}
    quantities |= {"1": 1.0, "0": 0.0}
    suspects = [(quantities[label], hint) for label, hint in MISTAKES[name].items()]
    suspects += [
        (
            -expected[name],
            "The size is right but the sign is wrong: a minus sign slipped in or out "
            "somewhere along the chain.",
        ),
        (
            2 * expected[name],
            "That is twice the right value: did backward() run twice, adding to .grad the "
            "second time?",
        ),
    ]
    suspects += [
        (
            expected[other],
            f"That is dy/d{other} = {FORMULAS[other]}: are two gradients swapped, or a local "
            f"derivative taken for the wrong input?",
        )
        for other in NAMES
        if other != name
    ]
    for value, hint in suspects:
        if close(got, value) and not close(value, expected[name]):
            return " " + hint
    return ""


def leaves_without_grad(error: BaseException) -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) for each tensor whose .grad is None among the variables of the
    learner's frames where `error` was raised: the inputs autograd_grads could not read."""
    found: dict[str, torch.Tensor] = {}
    tb = error.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).stem == "k02_backprop":
            for name, value in tb.tb_frame.f_locals.items():
                if isinstance(value, torch.Tensor) and value.is_leaf and value.grad is None:
                    found.setdefault(name, value)
        tb = tb.tb_next
    return sorted(found.items(), key=lambda item: NAMES.index(item[0]) if item[0] in NAMES else 9)


def run(function: str, args):
    """kata.<function>(*args); when autograd_grads reads a .grad that is None, say whose."""
    with explained(lambda error: whose_grad_is_none(function, args, error), AttributeError):
        return getattr(kata, function)(*args)


def whose_grad_is_none(function: str, args, missing_grad: AttributeError) -> str | None:
    """autograd_grads's AttributeError on a .grad that is None, told leaf by leaf."""
    if function != "autograd_grads" or "'NoneType'" not in str(missing_grad):
        return None
    call = call_text(function, args)
    reasons = []
    for name, tensor in leaves_without_grad(missing_grad):
        if not tensor.requires_grad:
            reasons.append(
                f"{name}.grad is None because {name} was made without requires_grad=True: "
                f"autograd never tracked it, so backward() has no gradient to give it. Make it "
                f"with torch.tensor(float({name}), requires_grad=True)."
            )
        else:
            reasons.append(
                f"{name}.grad is None although {name} requires grad: y does not depend on "
                f"{name}, so backward() never reached it. Check that forward uses {name} and "
                f"keeps the graph (its tests come first)."
            )
    if not reasons:
        reasons.append(
            "A .grad was None: after backward(), a leaf's .grad is still None when it was made "
            "without requires_grad=True or when y does not depend on it."
        )
    return "\n".join([*reasons, f"{call} raised AttributeError: {missing_grad}."])


def checked_grads(function: str, args) -> tuple[str, dict[str, float]]:
    """Call kata.<function>(*args); fail unless it returns the four gradients as floats."""
    call = call_text(function, args)
    result = run(function, args)
    if not isinstance(result, dict):
        fail(
            f"{call} returned {result!r} ({type(result).__name__}); expected a dict "
            f'{{"x": ..., "w1": ..., "w2": ..., "b": ...}} holding dy/d(each input).'
        )
    missing = [name for name in NAMES if name not in result]
    extra = [name for name in result if name not in NAMES]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"it lacks {', '.join(repr(name) for name in missing)}")
        if extra:
            problems.append(f"it also has {', '.join(repr(name) for name in extra)}")
        fail(
            f"{call} returned a dict with keys {list(result)}: {' and '.join(problems)}. "
            f'Return exactly the keys "x", "w1", "w2" and "b", one gradient per input.'
        )
    return call, {name: expect_float(result[name], call, f'result["{name}"]') for name in NAMES}


def assert_grads(call: str, grads: dict[str, float], point, label: str = 'result["{}"]') -> None:
    """Fail, listing each wrong gradient (named label.format(name)), its formula and mistake."""
    expected = closed_forms(*point)
    wrong = [
        f"{label.format(name)} = {fmt(grads[name])}, expected dy/d{name} = {FORMULAS[name]} = "
        f"{fmt(expected[name])}.{likely_mistake(name, grads[name], point)}"
        for name in NAMES
        if not close(grads[name], expected[name])
    ]
    if wrong:  # the gradients first: the run's summary shows only a message's first lines
        fail("\n".join([*wrong, f"Called {call}."]))


def leaves(point) -> tuple[torch.Tensor, ...]:
    return tuple(torch.tensor(value, requires_grad=True) for value in point)


def checked_forward(point):
    """Call kata.forward on fresh leaves; fail unless it returns three tensors."""
    inputs = leaves(point)
    call = f"forward({', '.join(f'tensor({fmt(float(value))})' for value in point)})"
    result = kata.forward(*inputs)
    if not (isinstance(result, tuple) and len(result) == 3):
        fail(f"{call} returned {result!r}; expected the tuple (h, h_act, y).")
    for label, tensor in zip(("h", "h_act", "y"), result):
        if not isinstance(tensor, torch.Tensor):
            fail(
                f"{call} returned {tensor!r} ({type(tensor).__name__}) as {label}; expected a "
                f"tensor. Compute it with tensor arithmetic and do not convert it with .item() "
                f"or float(): autograd can only follow tensors."
            )
    return call, inputs, result


def require_graph(call: str, result) -> None:
    for label, tensor in zip(("h", "h_act", "y"), result):
        if tensor.grad_fn is None:
            fail(
                f"{call}, with all four inputs requiring grad, returned {label} with no "
                f"grad_fn: autograd has no record of how {label} was made, so no gradient "
                f"can flow back through it. Build it from the tensors with * and +; "
                f".item(), float(), .detach() or torch.tensor(...) on the way cut the record."
            )


# --- forward ---------------------------------------------------------------------------------


def test_forward_at_the_seed_point_gives_6_then_6_5_then_minus_6_5():
    call, _, (h, h_act, y) = checked_forward(SEED_POINT)
    if not close(h.item(), 6.0):
        fail(
            f"Called {call}. h was {fmt(h.item())}, but h = x*w1 = 2*3 = 6. Return the three "
            f"tensors in the order (h, h_act, y)."
        )
    if not close(h_act.item(), 6.5):
        fail(f"Called {call}. h_act was {fmt(h_act.item())}, but h_act = h + b = 6 + 0.5 = 6.5.")
    if not close(y.item(), -6.5):
        fail(f"Called {call}. y was {fmt(y.item())}, but y = h_act*w2 = 6.5*(-1) = -6.5.")


def test_forward_computes_each_intermediate_at_random_points(rng):
    for _ in range(5):
        x, w1, w2, b = point = random_point(rng)
        call, _, (h, h_act, y) = checked_forward(point)
        expected = {"h": x * w1, "h_act": x * w1 + b, "y": (x * w1 + b) * w2}
        got = {"h": h.item(), "h_act": h_act.item(), "y": y.item()}
        hints = {
            "h": "h is x*w1, the input times the first weight.",
            "h_act": "h_act is h + b: the bias is added to h.",
            "y": "y is h_act*w2: the bias goes in before multiplying by w2.",
        }
        for label in ("h", "h_act", "y"):
            if not close(got[label], expected[label]):
                fail(
                    f"{label} was {fmt(got[label])}, expected {fmt(expected[label])}. "
                    f"{hints[label]} Return them in the order (h, h_act, y).\nCalled {call}."
                )


def test_forward_keeps_the_graph_for_autograd(rng):
    call, _, result = checked_forward(random_point(rng))
    require_graph(call, result)


def test_forward_chains_y_through_h_act_and_h_act_through_h(rng):
    point = random_point(rng)
    w2 = point[2]
    call, _, (h, h_act, y) = checked_forward(point)
    require_graph(call, (h, h_act, y))
    dy_dh_act, dy_dh = torch.autograd.grad(y, (h_act, h), allow_unused=True)
    if dy_dh_act is None:
        fail(
            f"Autograd finds no path from y back to the h_act that forward returned: y was "
            f"computed some other way. Build y from that very tensor, y = h_act * w2, so the "
            f"returned intermediates are the nodes the gradient flows through.\nCalled {call}."
        )
    if dy_dh is None:
        fail(
            f"Autograd finds no path from y back to the h that forward returned: h_act was "
            f"computed some other way. Build it from that very tensor, h_act = h + b."
            f"\nCalled {call}."
        )
    if not close(dy_dh_act.item(), w2):
        fail(
            f"dy/dh_act was {fmt(dy_dh_act.item())}, expected w2 = {fmt(w2)}: y = h_act * w2 "
            f"moves by w2 per unit of h_act.\nCalled {call}."
        )
    if not close(dy_dh.item(), w2):
        fail(
            f"dy/dh was {fmt(dy_dh.item())}, expected w2 = {fmt(w2)}: h_act = h + b passes "
            f"the gradient w2 on to h unchanged (dh_act/dh = 1).\nCalled {call}."
        )


def test_backprop_from_forwards_y_gives_the_closed_forms(rng):
    point = random_point(rng)
    call, inputs, (_, _, y) = checked_forward(point)
    require_graph(call, (y,))
    y.backward()
    for name, tensor in zip(NAMES, inputs):
        if tensor.grad is None:
            fail(
                f"{name}.grad is still None after y.backward(): autograd found no path from y "
                f"back to {name}. Does forward use all four inputs, with no .detach() or .item() "
                f"on the way?\nCalled {call}, then y.backward()."
            )
    grads = {name: tensor.grad.item() for name, tensor in zip(NAMES, inputs)}
    assert_grads(f"{call}, then y.backward()", grads, point, label="{}.grad")


# --- autograd_grads --------------------------------------------------------------------------


def test_autograd_grads_at_the_seed_point_are_minus_3_minus_2_6_5_minus_1():
    call, grads = checked_grads("autograd_grads", SEED_POINT)
    assert_grads(call, grads, SEED_POINT)


def test_autograd_grads_match_the_closed_forms_at_random_points(rng):
    for _ in range(5):
        point = random_point(rng)
        call, grads = checked_grads("autograd_grads", point)
        assert_grads(call, grads, point)


def test_autograd_grads_accepts_ints():
    point = (2, 3, -1, 1)
    call, grads = checked_grads("autograd_grads", point)
    assert_grads(call, grads, point)


def test_autograd_grads_come_from_a_backward_pass(rng):
    point = random_point(rng)
    with backward_passes() as engine:
        run("autograd_grads", point)
    if engine.passes < 1:
        fail(
            f"Autograd never ran a backward pass, so these gradients were written by hand. This "
            f"function is autograd's side of the comparison: call y.backward() (or "
            f"torch.autograd.grad) and read the .grad values."
            f"\nCalled {call_text('autograd_grads', point)}."
        )


def test_autograd_grads_runs_forward_on_four_0d_float32_leaves(rng, monkeypatch):
    point = random_point(rng)
    call = call_text("autograd_grads", point)
    module = sys.modules[kata.forward.__module__]
    real_forward = module.forward
    calls = []

    def watched_forward(*args, **kwargs):
        calls.append(inspect.signature(real_forward).bind(*args, **kwargs).arguments)
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(module, "forward", watched_forward)
    run("autograd_grads", point)
    if not calls:
        fail(
            f"Called {call}. It never called forward(...). Reuse forward, so that the network "
            f"autograd differentiates is the one defined there."
        )
    for name, value in zip(NAMES, point):
        tensor = calls[0].get(name)
        how = f"Called {call}. forward received {name} = {tensor!r}"
        if not isinstance(tensor, torch.Tensor):
            fail(f"{how}; expected a tensor.")
        if not (tensor.dtype == torch.float32 and tensor.dim() == 0):
            fail(
                f"{how} ({tensor.dtype}, shape {tuple(tensor.shape)}); expected a 0-d float32 "
                f"tensor, as torch.tensor(float({name})) makes."
            )
        if not (tensor.requires_grad and tensor.is_leaf):
            fail(
                f"{how}; expected a leaf tensor with requires_grad=True. Only such tensors "
                f"collect a .grad when y.backward() runs."
            )
        if not close(tensor.item(), value):
            fail(f"{how}; expected the value {fmt(value)}.")


# --- manual_grads ----------------------------------------------------------------------------


def test_manual_grads_at_the_seed_point_are_minus_3_minus_2_6_5_minus_1():
    call, grads = checked_grads("manual_grads", SEED_POINT)
    assert_grads(call, grads, SEED_POINT)


def test_manual_grads_match_the_closed_forms_at_random_points(rng):
    for _ in range(5):
        point = random_point(rng)
        call, grads = checked_grads("manual_grads", point)
        assert_grads(call, grads, point)


def test_manual_grads_accepts_ints():
    point = (2, 3, -1, 1)
    call, grads = checked_grads("manual_grads", point)
    assert_grads(call, grads, point)


def test_manual_grads_works_with_autograd_switched_off(rng):
    point = random_point(rng)
    call = call_text("manual_grads", point)
    by_hand = (
        "manual_grads is the chain rule by hand: compute each gradient in plain arithmetic, "
        "as the gradient arriving from above times the local derivative, without backward(), "
        "torch.autograd.grad or autograd_grads."
    )

    def refused(error):
        return (
            f"{by_hand}\nCalled {call} inside torch.no_grad(), and it raised RuntimeError: "
            f"{error}. That is autograd refusing to work while it is switched off."
        )

    with torch.no_grad(), backward_passes() as engine, explained(refused):
        _, grads = checked_grads("manual_grads", point)
    if engine.passes != 0:
        fail(
            f"{by_hand}\nCalled {call} inside torch.no_grad(). It still ran {engine.passes} "
            f"autograd backward pass(es)."
        )
    assert_grads(call, grads, point)


def test_manual_chain_rule_matches_autograd_at_random_points(rng):
    for _ in range(3):
        point = random_point(rng)
        _, by_hand = checked_grads("manual_grads", point)
        _, by_autograd = checked_grads("autograd_grads", point)
        for name in NAMES:
            if not close(by_hand[name], by_autograd[name]):
                fail(
                    f"manual_grads gives dy/d{name} = {fmt(by_hand[name])} but autograd_grads "
                    f"gives {fmt(by_autograd[name])}. Both should be {FORMULAS[name]} = "
                    f"{fmt(closed_forms(*point)[name])}: autograd does the same chain rule you "
                    f"do by hand.\nAt (x, w1, w2, b) = ({', '.join(map(fmt, point))})."
                )


# --- the input policy (docs/INPUT_POLICY.md) --------------------------------------------------


def test_autograd_grads_called_twice_gives_the_same_answer():
    point = (1.5, -0.5, 2.0, 0.25)
    _, first = checked_grads("autograd_grads", point)
    _, second = checked_grads("autograd_grads", point)
    if first != second:
        fail(
            f"Called autograd_grads(1.5, -0.5, 2.0, 0.25) twice: it returned {first} and then "
            f"{second}. Each call must build fresh leaves: leaves kept between calls keep their "
            f".grad, and backward() adds into it."
        )


def test_forward_of_float64_tensors_that_require_grad_stays_float64():
    inputs = {
        name: torch.tensor(value, dtype=torch.float64, requires_grad=True)
        for name, value in {"x": 1.5, "w1": -0.5, "w2": 2.0, "b": 0.25}.items()
    }
    h, h_act, y = kata.forward(**inputs)
    dtypes = [t.dtype for t in (h, h_act, y)]
    if dtypes != [torch.float64] * 3:
        fail(
            f"Called forward(x, w1, w2, b) with float64 tensors. (h, h_act, y) have the dtypes "
            f"{dtypes}, expected float64 for all three: compute with the tensors as given."
        )

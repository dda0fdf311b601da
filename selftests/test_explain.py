"""The plain-words table (coach/runtime/explain.py) is pinned to the errors the installed torch
raises.

Every entry is provoked here with real torch code (never a copied message) and must fire; each
also meets a neighbouring error it could be mistaken for, and must stay silent there. A torch
release that rewords a message therefore fails `make check` instead of silently dropping the
explanation. The claims inside the explanations are run too.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from coach.core import registry
from coach.runtime import explain

ROOT = Path(__file__).resolve().parent.parent


def raised(code) -> BaseException:
    """The exception `code()` raises (with its traceback, as the plugin sees it)."""
    try:
        code()
    except Exception as error:
        return error
    raise AssertionError(f"{code} raised nothing")


def learner_module(tmp_path: Path, source: str):
    """A module written to a file and imported, as a learner's kata is."""
    path = tmp_path / "learner_code.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"learner_code_{id(path)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- each entry: the real error fires it ------------------------------------------------------


def in_place_on_leaf():
    p = torch.tensor(1.0, requires_grad=True)
    p -= 0.1


def in_place_on_view_of_leaf():
    p = torch.ones(3, requires_grad=True)
    view = p[:2]
    view += 1


def saved_value_changed():
    p = torch.tensor(2.0, requires_grad=True)
    h = p + 1
    y = h * h  # saves h
    h += 1
    y.backward()


def integer_with_keyword():
    torch.tensor(3, requires_grad=True)


def integer_requires_grad_():
    torch.tensor(3).requires_grad_()


def grad_is_none():
    x = torch.tensor(1.0, requires_grad=True)
    x.grad.zero_()


def grad_is_none_in_arithmetic():
    w = torch.tensor(1.0, requires_grad=True)
    with torch.no_grad():
        w -= 0.1 * w.grad


def grad_is_none_in_an_in_place_update():
    w = torch.tensor(1.0, requires_grad=True)
    with torch.no_grad():
        w.sub_(w.grad)  # torch: "sub_(): argument 'other' (position 1) must be Tensor, not ..."


def grad_is_none_in_a_stack():
    w = torch.tensor(1.0, requires_grad=True)
    torch.stack([w.grad])  # torch: "expected Tensor as element 0 in argument 0, but got ..."


def backward_twice_through_saved_values():
    x = torch.tensor(1.0, requires_grad=True)
    y = x**2
    y.backward()
    y.backward()


def backward_without_requires_grad():
    x = torch.tensor(2.0)
    (x * 3).backward()


def backward_after_detach():
    x = torch.tensor(2.0, requires_grad=True)
    (x * 3).detach().backward()


def grad_without_requires_grad():
    x = torch.tensor(2.0)
    torch.autograd.grad(x * 3, x)


def backward_on_a_vector():
    x = torch.ones(3, requires_grad=True)
    (x * 2).backward()


def grad_of_a_vector():
    x = torch.ones(3, requires_grad=True)
    torch.autograd.grad(x * 2, x)


def grad_of_an_unused_input():
    x = torch.tensor(1.0, requires_grad=True)
    w = torch.tensor(2.0, requires_grad=True)
    torch.autograd.grad(x * 2, [x, w])


def grad_of_the_only_input_unused():
    x = torch.tensor(1.0, requires_grad=True)
    w = torch.tensor(2.0, requires_grad=True)
    torch.autograd.grad(x * 2, w)


def vmap_over_a_shared_input():
    from torch.func import vmap

    vmap(lambda p, x: p * x)(torch.ones(2), torch.ones(5))


def vmap_over_inputs_of_different_dimensions():
    from torch.func import vmap

    vmap(lambda x: x, in_dims=1)(torch.ones(3))


def a_tuple_for_a_tensor():
    saved = (torch.ones(2),)  # what ctx.saved_tensors holds for one saved tensor
    torch.sigmoid(saved)


def allclose_of_float32_and_float64():
    torch.allclose(torch.ones(2), torch.ones(2, dtype=torch.float64))


def allclose_of_float32_and_int64():
    torch.allclose(torch.ones(2), torch.ones(2, dtype=torch.int64))


def a_list_for_a_tensor():
    torch.sigmoid([1.0, 2.0])


FIRES = {
    "in-place on a leaf": [in_place_on_leaf, in_place_on_view_of_leaf],
    "saved value changed in place": [saved_value_changed],
    "integer tensor": [integer_with_keyword, integer_requires_grad_],
    "None used as a value": [
        grad_is_none,
        grad_is_none_in_arithmetic,
        grad_is_none_in_an_in_place_update,
        grad_is_none_in_a_stack,
    ],
    "backward twice": [backward_twice_through_saved_values],
    "no path to a leaf": [
        backward_without_requires_grad,
        backward_after_detach,
        grad_without_requires_grad,
    ],
    "non-scalar backward": [backward_on_a_vector, grad_of_a_vector],
    "vmap sizes differ": [vmap_over_a_shared_input],
    "unused input": [grad_of_an_unused_input, grad_of_the_only_input_unused],
    "tuple for a tensor": [a_tuple_for_a_tensor],
    "float32 met float64": [allclose_of_float32_and_float64],
}

# --- ...and a neighbouring error does not -----------------------------------------------------


def numpy_of_a_tensor_that_requires_grad():
    torch.tensor(1.0, requires_grad=True).numpy()


def backward_with_a_wrongly_shaped_gradient():
    x = torch.ones(3, requires_grad=True)
    (x * 2).backward(torch.ones(2))


def attribute_missing_on_a_tensor():
    torch.tensor(1.0).gradient  # noqa: B018 (the attribute error is the point)


def requires_grad_on_a_non_leaf():
    x = torch.tensor(1.0, requires_grad=True)
    (x * 2).requires_grad_(False)


def a_number_in_a_stack():
    torch.stack([1.0])  # "expected Tensor as element 0 in argument 0, but got float"


def a_string_as_an_argument():
    torch.zeros(2).sub_("a")  # "sub_(): argument 'other' (position 1) must be Tensor, not str"


NEIGHBOURS = {
    "in-place on a leaf": [saved_value_changed],
    "saved value changed in place": [in_place_on_leaf],
    "integer tensor": [requires_grad_on_a_non_leaf],
    "None used as a value": [
        attribute_missing_on_a_tensor,
        a_number_in_a_stack,
        a_string_as_an_argument,
    ],
    "backward twice": [saved_value_changed],
    "no path to a leaf": [numpy_of_a_tensor_that_requires_grad],
    "non-scalar backward": [backward_with_a_wrongly_shaped_gradient],
    "vmap sizes differ": [vmap_over_inputs_of_different_dimensions],
    "unused input": [backward_without_requires_grad],
    "tuple for a tensor": [a_list_for_a_tensor],
    "float32 met float64": [allclose_of_float32_and_int64],
}

ENTRY_NAMES = [name for name, _, _ in explain.KNOWN_ERRORS]


def test_every_entry_is_pinned_both_ways():
    assert set(FIRES) == set(ENTRY_NAMES)
    assert set(NEIGHBOURS) == set(ENTRY_NAMES)


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_the_real_error_fires_its_entry(name):
    for provoke in FIRES[name]:
        error = raised(provoke)
        assert explain.entry_for(error) == name, f"{provoke.__name__}: {error}"
        assert explain.explain(error)


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_a_neighbouring_error_does_not_fire_it(name):
    for provoke in NEIGHBOURS[name]:
        error = raised(provoke)
        assert explain.entry_for(error) != name, f"{provoke.__name__}: {error}"


def test_an_unrelated_error_gets_no_explanation():
    assert explain.explain(ValueError("something else")) is None


# --- what the explanations claim is what torch does -------------------------------------------


def test_only_graphs_that_saved_values_refuse_a_second_backward():
    x = torch.tensor(1.0, requires_grad=True)
    y = x + 1  # saves nothing
    y.backward()
    y.backward()
    assert x.grad.item() == 2.0
    for build in (lambda: x**2, lambda: x * torch.tensor(3.0)):
        y = build()
        y.backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.backward()
    y = x**2
    y.backward(retain_graph=True)
    y.backward()  # retain_graph=True keeps the saved values for one more walk
    meaning = explain.explain(raised(backward_twice_through_saved_values))
    assert "saved values" in meaning and "retain_graph=True" in meaning


def test_only_a_leaf_or_a_view_of_one_refuses_an_in_place_change():
    p = torch.tensor(1.0, requires_grad=True)
    h = p + 1
    h += 1  # not a leaf, and nothing saved it: allowed
    h.backward()
    assert p.grad.item() == 1.0
    assert "leaf" in explain.explain(raised(in_place_on_leaf))
    assert "torch.no_grad()" in explain.explain(raised(in_place_on_leaf))


def test_the_integer_fixes_work_and_complex_tensors_can_require_grad():
    assert torch.tensor(float(3), requires_grad=True).requires_grad
    assert torch.tensor(3.0, requires_grad=True).requires_grad
    assert torch.tensor(3, dtype=torch.float32, requires_grad=True).requires_grad
    assert torch.tensor(3j, requires_grad=True).requires_grad
    meaning = explain.explain(raised(integer_requires_grad_))
    assert "float(" in meaning and "complex" in meaning


def test_no_path_names_the_missing_requires_grad_first_and_the_fix_works():
    meaning = explain.explain(raised(backward_without_requires_grad))
    first_cause = meaning.index("requires_grad=True")
    assert first_cause < meaning.index("detach()") < meaning.index("torch.no_grad()")
    assert "wrapping a result in a new torch.tensor(...)" in meaning
    x = torch.tensor(2.0, requires_grad=True)  # the fix it names
    (x * 3).backward()
    assert x.grad.item() == 3.0


def test_both_texts_name_autograd_grad_too_and_its_fix_works():
    """The same errors come from torch.autograd.grad, where the weights go in grad_outputs."""
    no_path = explain.explain(raised(grad_without_requires_grad))
    assert no_path.startswith("backward() (or torch.autograd.grad) was called")
    non_scalar = explain.explain(raised(grad_of_a_vector))
    assert "torch.autograd.grad(y, x, grad_outputs=v)" in non_scalar
    x = torch.ones(3, requires_grad=True)
    v = torch.tensor([1.0, 2.0, 3.0])
    (weighted,) = torch.autograd.grad(x * 2, x, grad_outputs=v)  # the fix it names: v^T J
    assert weighted.tolist() == [2.0, 4.0, 6.0]


# --- a None, and where it came from -----------------------------------------------------------


def test_a_function_without_return_is_named(tmp_path):
    module = learner_module(
        tmp_path,
        """
        import torch

        def loss_of(w):
            loss = (w * 3) ** 2  # forgot: return loss

        def step(w):
            loss = loss_of(w)
            loss.backward()

        def step_in_one_line(w):
            loss_of(w).backward()
        """,
    )
    w = torch.tensor(1.0, requires_grad=True)
    for call in (module.step, module.step_in_one_line):
        meaning = explain.explain(raised(lambda call=call: call(w)))
        assert "`loss_of(...)` returned None" in meaning
        assert "probably lacks a `return`" in meaning
        assert ".grad" not in meaning


def test_unpacking_the_none_of_a_function_without_return_names_it(tmp_path):
    module = learner_module(
        tmp_path,
        """
        def forward(x, w):
            h = x * w

        def grads(x, w):
            h, y = forward(x, w)
            return h, y
        """,
    )
    meaning = explain.explain(raised(lambda: module.grads(2.0, 3.0)))
    assert "`forward(...)` returned None" in meaning


def test_a_grad_that_is_none_keeps_the_grad_explanation(tmp_path):
    module = learner_module(
        tmp_path,
        """
        import torch

        def clear(w):
            w.grad.zero_()

        def read(w):
            g = w.grad
            return g.item()

        def update(w):
            with torch.no_grad():
                w -= 0.1 * w.grad

        def update_in_place(w):
            with torch.no_grad():
                w.sub_(w.grad, alpha=0.1)

        def norm_of_all(w):
            return torch.stack([p.grad for p in [w]]).norm()

        def norm_of_one(w):
            return torch.stack([w.grad]).norm()
        """,
    )
    calls = (
        module.clear,
        module.read,
        module.update,
        module.update_in_place,
        module.norm_of_all,
        module.norm_of_one,
    )
    for call in calls:
        w = torch.tensor(1.0, requires_grad=True)
        meaning = explain.explain(raised(lambda call=call, w=w: call(w)))
        assert "is None until a backward()" in meaning, call.__name__
        assert "returned None" not in meaning


def test_a_none_of_unknown_origin_names_both_usual_causes(tmp_path):
    module = learner_module(tmp_path, "def use(value):\n    return value.backward()\n")
    meaning = explain.explain(raised(lambda: module.use(None)))
    assert meaning == explain.NONE_VALUE


# --- end to end: what the learner sees --------------------------------------------------------

K2, K4 = registry.KATAS[1].name, registry.KATAS[3].name


@pytest.mark.timeout(180)
def test_the_learner_sees_which_function_lacks_a_return(tmp_path):
    impl = tmp_path / "impl"
    shutil.copytree(ROOT / "solutions", impl, ignore=shutil.ignore_patterns("__pycache__"))
    k2 = (impl / f"{K2}.py").read_text(encoding="utf-8")
    (impl / f"{K2}.py").write_text(k2.replace("    return h, h_act, y\n", ""), encoding="utf-8")
    k4 = (impl / f"{K4}.py").read_text(encoding="utf-8")
    k4 = k4.replace(
        "    loss = ((y - y_pred) ** 2).mean()  # 2. loss\n",
        "    loss = mse(y_pred, y)  # 2. loss\n",
    ) + ("\n\ndef mse(prediction, target):\n    ((target - prediction) ** 2).mean()\n")
    (impl / f"{K4}.py").write_text(k4, encoding="utf-8")
    outcomes = tmp_path / "outcomes.json"
    tests = [registry.KATAS[1].test_file, registry.KATAS[3].test_file]
    options = [f"--impl={impl}", "--coach-json", str(outcomes), "-q", "-p", "no:cacheprovider"]
    subprocess.run(
        [sys.executable, "-m", "pytest", *tests, *options],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    messages = {}
    for test in json.loads(outcomes.read_text(encoding="utf-8"))["tests"]:
        messages.setdefault(test["kata"], []).append(test["message"])
    assert any("`forward(...)` returned None" in m for m in messages[K2]), messages[K2]
    assert any("`mse(...)` returned None" in m for m in messages[K4]), messages[K4]
    assert not any("is None until a backward()" in m for m in messages[K2] + messages[K4])


def test_a_none_grad_read_on_a_result_says_it_is_no_leaf():
    import warnings

    x = torch.tensor(2.0, requires_grad=True)
    y = x * 3
    y.backward()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when a non-leaf's .grad is read
        try:
            y.grad.item()
        except AttributeError as error:
            meaning = explain.explain(error)
    assert meaning.startswith("`y.grad` is None because y is not a leaf")
    assert "MulBackward0" in meaning and "y.retain_grad()" in meaning

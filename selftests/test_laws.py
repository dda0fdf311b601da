"""The laws every kata keeps come for free: each is shown catching a function that breaks it.

- Inputs are left alone: the loader checks every call of a kata function.
- Shape and dtype as promised: `check_shape_like` for elementwise and any-shape functions.
- The first failing test follows the stub, and progress is told function by function.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from coach.core import registry
from coach.runtime import loader
from coach.runtime.summary import Progress
from coach.runtime.testing import Wrong, check_shape_like, check_value

ROOT = Path(__file__).resolve().parent.parent
K1, K3, K4 = "k01_polynomial", "k03_accumulation", "k04_training_step"


@pytest.fixture
def impl(tmp_path):
    """A scratch copy of solutions/ that the tests in this process load kata code from."""
    folder = tmp_path / "impl"
    shutil.copytree(ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
    saved = loader._impl_dir
    loader.set_impl_dir(folder)
    yield folder
    loader.set_impl_dir(saved)


def replace_function(folder: Path, kata: str, source: str) -> None:
    """Append `source` to the kata's module: a later def replaces the reference's."""
    path = folder / f"{kata}.py"
    path.write_text(path.read_text() + "\n\n" + source)


def failure_of(call) -> str:
    with pytest.raises(pytest.fail.Exception) as failed:
        call()
    return str(failed.value)


# --- inputs are left alone --------------------------------------------------------------------


def test_an_in_place_edit_of_an_argument_fails_naming_it(impl):
    replace_function(impl, K1, "def polynomial(x):\n    x.mul_(2)\n    return x**3\n")
    kata = loader.load_kata(K1)
    message = failure_of(lambda: kata.polynomial(torch.tensor([1.0, 2.0])))
    assert "polynomial() changed its argument `x`" in message
    assert "x was tensor([1.0, 2.0]) before the call" in message
    assert "tensor([2.0, 4.0]) after it" in message
    assert "in-place operation" in message


def test_a_backward_into_the_callers_tensor_fails_naming_its_grad(impl):
    replace_function(
        impl, K1, "def polynomial(x):\n    y = x**3\n    y.sum().backward()\n    return x**3\n"
    )
    kata = loader.load_kata(K1)
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    message = failure_of(lambda: kata.polynomial(x))
    assert "x.grad was None before the call and is tensor([3.0, 12.0]) after it" in message
    assert "torch.autograd.grad" in message


def test_switching_requires_grad_on_the_callers_tensor_fails(impl):
    replace_function(impl, K1, "def polynomial(x):\n    x.requires_grad_()\n    return x**3\n")
    kata = loader.load_kata(K1)
    message = failure_of(lambda: kata.polynomial(torch.tensor(2.0)))
    assert "x.requires_grad was False before the call and is True after it" in message


def test_a_tensor_inside_a_list_argument_is_watched_too(impl):
    replace_function(
        impl,
        K3,
        "def accumulated_batch_grad(w0, X, y, chunks):\n    X.sub_(X.mean())\n    return 0.0\n",
    )
    kata = loader.load_kata(K3)
    message = failure_of(
        lambda: kata.accumulated_batch_grad(0.0, torch.tensor([1.0, 3.0]), torch.ones(2), 1)
    )
    assert "changed its argument `X`" in message


def test_a_change_the_lesson_allows_is_no_failure(impl):
    assert registry.BY_NAME[K4].lesson.changes_inputs == {"train_step": ("w", "b")}
    kata = loader.load_kata(K4)
    w = torch.tensor(0.0, requires_grad=True)
    b = torch.tensor(0.0, requires_grad=True)
    X, y = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 5.0])
    kata.train_step(w, b, X, y, 0.1)
    assert w.item() != 0.0  # updated in place, as its docstring promises
    replace_function(impl, K4, "def train_step(w, b, X, y, lr):\n    X.add_(1)\n    return 0.0\n")
    loader.set_impl_dir(impl)  # forget the loaded module
    message = failure_of(lambda: loader.load_kata(K4).train_step(w, b, X, y, 0.1))
    assert "changed its argument `X`" in message


def test_a_function_that_raises_after_a_change_is_reported_with_both(impl):
    replace_function(impl, K1, "def polynomial(x):\n    x.add_(1)\n    raise ValueError('no')\n")
    message = failure_of(lambda: loader.load_kata(K1).polynomial(torch.tensor(1.0)))
    assert message.startswith("polynomial() raised ValueError: no\n    at ")
    assert "raise ValueError('no')" in message
    assert "On its way out it changed its argument `x`" in message


def test_a_function_that_raises_and_changes_nothing_raises_as_it_would(impl):
    replace_function(impl, K1, "def polynomial(x):\n    raise ValueError('no')\n")
    with pytest.raises(ValueError):
        loader.load_kata(K1).polynomial(torch.tensor(1.0))


# --- what the caller owns, beyond values: versions, .grad, entries, modules, hooks ----------

K8, K12, K15, K16, K17, K19 = (
    "k08_autograd_grad",
    "k12_numerical_check",
    "k15_grad_modes",
    "k16_hooks",
    "k17_clipping",
    "k19_per_sample",
)


def test_an_edit_that_restores_the_values_still_fails_by_the_version_counter(impl):
    replace_function(
        impl,
        K12,
        "def numerical_grad(f, x, eps=1e-6):\n"
        "    point = x.detach()\n"
        "    grad = torch.zeros_like(point)\n"
        "    for i in range(point.numel()):\n"
        "        point.view(-1)[i] += eps\n"
        "        above = float(f(point))\n"
        "        point.view(-1)[i] -= 2 * eps\n"
        "        below = float(f(point))\n"
        "        point.view(-1)[i] += eps\n"
        "        grad.view(-1)[i] = (above - below) / (2 * eps)\n"
        "    return grad\n",
    )
    x = torch.tensor([0.5, 2.0], dtype=torch.float64)  # +eps-2eps+eps is exact for these
    message = failure_of(lambda: loader.load_kata(K12).numerical_grad(lambda t: t.sum(), x))
    assert "numerical_grad() changed its argument `x`: x._version was 0" in message
    assert "modified by an inplace operation" in message


def test_a_rebound_grad_fails_where_the_stub_promises_an_in_place_change(impl):
    replace_function(
        impl,
        K17,
        "def clip_grad_value(parameters, clip_value):\n"
        "    for p in parameters:\n"
        "        p.grad = p.grad.clamp(-clip_value, clip_value)\n",
    )
    p = torch.zeros(2, requires_grad=True)
    p.grad = torch.tensor([3.0, -0.5])
    message = failure_of(lambda: loader.load_kata(K17).clip_grad_value([p], 1.0))
    assert "parameters[0].grad was one tensor before the call" in message
    assert "in place (p.grad.clamp_(...)" in message


def test_an_in_place_clamp_the_lesson_allows_passes(impl):
    p = torch.zeros(2, requires_grad=True)
    p.grad = torch.tensor([3.0, -0.5])
    grad = p.grad
    loader.load_kata(K17).clip_grad_value([p], 1.0)
    assert p.grad is grad and p.grad.tolist() == [1.0, -0.5]


def test_an_untouched_grad_whose_version_moved_fails(impl):
    replace_function(
        impl,
        K8,
        "def cube_sum_grad(x):\n"
        "    if x.grad is not None:\n"
        "        x.grad.mul_(1.0)\n"
        "    return (3 * x.detach() ** 2)\n",
    )
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    x.grad = torch.ones(2)
    message = failure_of(lambda: loader.load_kata(K8).cube_sum_grad(x))
    assert "x.grad._version was 0 before the call and is 1 after it" in message


def test_zero_grad_wiping_the_callers_gradients_fails(impl):
    replace_function(
        impl,
        K19,
        "def per_sample_grads_loop(model, X, y):\n"
        "    rows = {name: [] for name, _ in model.named_parameters()}\n"
        "    for x_i, y_i in zip(X, y):\n"
        "        model.zero_grad()\n"
        "        ((model(x_i) - y_i) ** 2).mean().backward()\n"
        "        for name, p in model.named_parameters():\n"
        "            rows[name].append(p.grad.clone())\n"
        "    return {name: torch.stack(g) for name, g in rows.items()}\n",
    )
    model = torch.nn.Linear(2, 1)
    model(torch.ones(1, 2)).sum().backward()  # the caller's own gradients
    message = failure_of(
        lambda: loader.load_kata(K19).per_sample_grads_loop(
            model, torch.ones(3, 2), torch.ones(3, 1)
        )
    )
    assert "changed its argument `model.weight`: model.weight.grad was one tensor" in message
    assert "zero_grad()" in message


def test_a_dict_reused_for_the_result_fails_naming_the_entry(impl):
    replace_function(
        impl,
        K19,
        "def batch_grad(per_sample):\n"
        "    for name in per_sample:\n"
        "        per_sample[name] = per_sample[name].mean(dim=0)\n"
        "    return per_sample\n",
    )
    per_sample = {"weight": torch.ones(3, 2), "bias": torch.ones(3)}
    message = failure_of(lambda: loader.load_kata(K19).batch_grad(per_sample))
    assert "batch_grad() changed its argument `per_sample`: per_sample['weight'] was" in message
    assert "build a new one for your result" in message


def test_a_module_left_in_eval_mode_fails(impl):
    replace_function(
        impl,
        K15,
        "def frozen_features(model, x):\n    model.eval()\n    return model(x).detach()\n",
    )
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    message = failure_of(lambda: loader.load_kata(K15).frozen_features(model, torch.ones(1, 2)))
    assert "model.training was True before the call and is False after it" in message
    assert "dropout and batch norm" in message


def test_a_changed_buffer_fails(impl):
    replace_function(
        impl,
        K15,
        "def frozen_features(model, x):\n    with torch.no_grad():\n        return model(x)\n",
    )
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    message = failure_of(lambda: loader.load_kata(K15).frozen_features(model, torch.randn(4, 2)))
    assert "changed its argument `model.1.running_mean`: model.1.running_mean was" in message


def test_a_module_hook_left_registered_fails(impl):
    replace_function(
        impl,
        K15,
        "def frozen_features(model, x):\n"
        "    model.register_forward_hook(lambda m, i, o: o.detach())\n"
        "    return model(x)\n",
    )
    model = torch.nn.Linear(2, 2)
    message = failure_of(lambda: loader.load_kata(K15).frozen_features(model, torch.ones(1, 2)))
    assert "the number of forward hooks on model was 0 before the call and is 1 after it" in message


def test_hooks_left_on_the_error_path_fail_with_the_error(impl):
    replace_function(
        impl,
        K16,
        "def step_in_backward(params, loss_fn, lr):\n"
        "    for p in params:\n"
        "        p.register_post_accumulate_grad_hook(lambda q: None)\n"
        "    loss = loss_fn()\n"
        "    loss.backward()\n"
        "    return loss.item()\n",
    )
    p = torch.ones(2, requires_grad=True)

    def broken_loss():
        raise ValueError("the data loader broke")

    message = failure_of(lambda: loader.load_kata(K16).step_in_backward([p], broken_loss, 0.1))
    assert message.startswith("step_in_backward() raised ValueError: the data loader broke")
    assert "post-accumulate-grad hooks on params[0] was 0 before the call and is 1" in message
    assert "in a `finally:`" in message


def test_a_tensor_hook_left_on_the_callers_tensor_fails(impl):
    replace_function(
        impl,
        K16,
        "def reverse_gradient(x, scale):\n"
        "    x.register_hook(lambda g: -scale * g)\n"
        "    return x.clone()\n",
    )
    x = torch.ones(2, requires_grad=True)
    message = failure_of(lambda: loader.load_kata(K16).reverse_gradient(x, 1.0))
    assert "backward hooks (register_hook) on x was 0 before the call and is 1 after" in message


# --- gradients come back plain ----------------------------------------------------------------


def test_a_gradient_returned_with_a_graph_fails(impl):
    assert "cube_sum_grad" in registry.BY_NAME[K8].lesson.returns_gradients
    replace_function(
        impl,
        K8,
        "def cube_sum_grad(x):\n"
        "    (g,) = torch.autograd.grad((x**3).sum(), x, create_graph=True)\n"
        "    return g\n",
    )
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    message = failure_of(lambda: loader.load_kata(K8).cube_sum_grad(x))
    assert message.startswith("cube_sum_grad() returned a gradient still attached to a graph")
    assert "the result has requires_grad=True and grad_fn=MulBackward0" in message
    assert "create_graph=True" in message


def test_a_gradient_by_formula_from_live_tensors_fails_inside_a_dict(impl):
    replace_function(
        impl,
        K19,
        "def batch_grad(per_sample):\n"
        "    return {name: g.mean(dim=0) for name, g in per_sample.items()}\n",
    )
    per_sample = {"weight": torch.ones(3, 2, requires_grad=True)}
    message = failure_of(lambda: loader.load_kata(K19).batch_grad(per_sample))
    assert "the result['weight'] has requires_grad=True and grad_fn=MeanBackward1" in message


def test_a_function_that_keeps_a_graph_by_its_stub_is_exempt(impl):
    assert "linear_backward" in registry.BY_NAME["k09_gradient_shapes"].lesson.keeps_graph
    W = torch.ones(2, 3, requires_grad=True)
    grads = loader.load_kata("k09_gradient_shapes").linear_backward(
        torch.ones(4, 3), W, torch.zeros(2), torch.ones(4, 2)
    )
    assert grads[0].requires_grad  # grad_x = grad_out @ W: differentiable, as promised


# --- shape and dtype as promised --------------------------------------------------------------


def test_a_broadcast_that_changes_the_shape_is_named():
    x = torch.tensor(2.0)
    message = failure_of(lambda: check_shape_like(x + torch.tensor([1.0]), x, call="f(x)"))
    assert "shape ()" in message and "shape (1,)" in message and "broadcast" in message


def test_a_reduction_that_drops_elements_is_named():
    x = torch.tensor([1.0, 2.0])
    message = failure_of(lambda: check_shape_like(x.sum(), x, call="f(x)"))
    assert "reduced" in message


def test_a_changed_dtype_is_named():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    message = failure_of(lambda: check_shape_like(x.float(), x, call="f(x)"))
    assert "torch.float32, expected torch.float64" in message


def test_a_result_of_the_right_shape_and_dtype_passes():
    x = torch.zeros(3, dtype=torch.float64)
    check_shape_like(x * 2, x, call="f(x)")
    check_shape_like(torch.tensor(1.0), torch.tensor(0.0), call="f(x)")


# --- diagnosis is data ------------------------------------------------------------------------


def test_check_value_names_the_first_wrong_answer_that_matches():
    wrong = [
        Wrong(12.0, "gradients accumulate across backward() calls: clear them between steps"),
        Wrong(None, "no backward() reached x"),
    ]
    message = failure_of(lambda: check_value(12.0, 6.0, call="f(3.0)", what="x.grad", wrong=wrong))
    assert message == (
        "Called f(3.0). x.grad is 12.0, expected 6.0: gradients accumulate across backward() "
        "calls: clear them between steps"
    )
    message = failure_of(lambda: check_value(None, 6.0, call="f(3.0)", what="x.grad", wrong=wrong))
    assert message.endswith("x.grad is None, expected 6.0: no backward() reached x")
    message = failure_of(lambda: check_value(7.0, 6.0, call="f(3.0)", what="x.grad", wrong=wrong))
    assert message == "Called f(3.0). x.grad is 7.0, expected 6.0."
    check_value(6.0000001, 6.0, call="f(3.0)", what="x.grad", wrong=wrong)


def test_check_value_compares_tensors_by_shape_and_value():
    expected = torch.tensor([1.0, 2.0])
    check_value(torch.tensor([1.0, 2.0], dtype=torch.float64), expected, call="f()", what="g")
    flipped = Wrong(lambda got: got.shape == (2, 1), "a column, not a row")
    message = failure_of(
        lambda: check_value(expected.reshape(2, 1), expected, call="f()", what="g", wrong=[flipped])
    )
    assert message.endswith(": a column, not a row")


# --- the first failing test follows the stub; progress per function ---------------------------


def outcome(function: str, passed: bool, line: int) -> tuple:
    return (K3, "passed" if passed else "failed", f"{function} is wrong", line, function)


def test_the_first_failure_is_in_the_first_unfinished_function_of_the_stub():
    first, second, third = registry.functions(K3)
    progress = Progress.from_outcomes(
        [
            ("t::a", outcome(third, False, 10)),  # early in the test file, late in the stub
            ("t::b", outcome(second, False, 300)),
            ("t::c", outcome(first, True, 200)),
            ("t::d", outcome(second, True, 100)),
        ]
    )
    result = progress.results[2]
    assert result.kata.name == K3
    assert result.failures[0][2] == f"{second} is wrong"
    assert result.functions_green() == (1, 3)


def test_a_real_run_charges_each_test_to_the_function_it_checks(tmp_path):
    """One kata half done: the summary counts functions, and `make next` points at the first
    unfinished one, whatever order pytest-randomly ran the tests in."""
    impl = tmp_path / "impl"
    shutil.copytree(ROOT / "katas", impl)
    first = registry.functions(K3)[0]
    reference = (ROOT / "solutions" / f"{K3}.py").read_text()
    start = reference.index(f"def {first}(")
    end = reference.index("\ndef ", start + 1)
    (impl / f"{K3}.py").write_text((impl / f"{K3}.py").read_text() + "\n\n" + reference[start:end])
    report = tmp_path / "out.json"
    run = subprocess.run(
        [
            *[sys.executable, "-m", "pytest", registry.BY_NAME[K3].test_file, f"--impl={impl}"],
            *["--coach-json", str(report), "-p", "randomly", "--randomly-seed=7", "--tb=no"],
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    tests = json.loads(report.read_text())["tests"]
    assert all(test["function"] in registry.functions(K3) for test in tests)
    assert "1 of 3 functions green" in run.stdout
    assert f"{registry.functions(K3)[1]}() is not written yet" in run.stdout.split("Next:")[1]

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

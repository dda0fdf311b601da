"""The helpers a test file is written with: explained, caught, the catalogue's closed forms."""

from __future__ import annotations

import pytest
import torch

from coach.runtime import catalogue
from coach.runtime.testing import caught, explained


def test_a_known_error_fails_with_the_katas_explanation_alone():
    known = {"second time": "Build a fresh y.", "other": "never"}
    with pytest.raises(pytest.fail.Exception) as failed, explained(known):
        raise RuntimeError("Trying to backward through the graph a second time (or ...)")
    assert str(failed.value) == "Build a fresh y."
    assert failed.value.pytrace is False and failed.value.__suppress_context__


def test_a_message_can_quote_the_error_and_a_function_can_decide():
    quoted = {"cannot": lambda error: f"torch said '{error}'"}
    with pytest.raises(pytest.fail.Exception) as failed, explained(quoted):
        raise RuntimeError("cannot be multiplied")
    assert str(failed.value) == "torch said 'cannot be multiplied'"
    with (
        pytest.raises(pytest.fail.Exception, match="zero"),
        explained(lambda error: "zero" if "division" in str(error) else None, ZeroDivisionError),
    ):
        raise ZeroDivisionError("float division by zero")


def test_unknown_errors_and_a_stubs_not_implemented_go_on_unchanged():
    with pytest.raises(RuntimeError, match="something else"), explained({"second time": "no"}):
        raise RuntimeError("something else")
    with pytest.raises(NotImplementedError), explained(lambda error: "never", Exception):
        raise NotImplementedError("write it")
    with pytest.raises(TypeError), explained({"": "only RuntimeError is explained"}):
        raise TypeError("a TypeError")


def test_caught_holds_an_expected_error_and_lets_others_through():
    with caught(saying="inplace") as got:
        raise RuntimeError("modified by an inplace operation")
    assert isinstance(got.error, RuntimeError)
    with caught() as nothing:
        pass
    assert nothing.error is None
    with pytest.raises(RuntimeError, match="other"), caught(saying="inplace"):
        raise RuntimeError("other")
    with pytest.raises(NotImplementedError), caught(Exception):
        raise NotImplementedError


NOT_SQUARE = catalogue.matrix_times_tanh(torch.arange(12.0).reshape(3, 4) / 4 - 1)


@pytest.mark.parametrize(
    "function", [*catalogue.ELEMENTWISE, *catalogue.MIXING, NOT_SQUARE], ids=repr
)
def test_each_catalogue_function_knows_its_jacobian_and_derivatives(function):
    x = torch.linspace(-1.5, 1.3, 4, dtype=torch.float64)
    assert torch.allclose(torch.autograd.functional.jacobian(function, x), function.exact(x))
    off_diagonal = function.exact(x).clone()
    off_diagonal.diagonal().zero_()
    assert function.mixes == bool(off_diagonal.any())
    if function.derivative is not None:
        first = torch.func.vmap(torch.func.grad(function.f))(x)
        second = torch.func.vmap(torch.func.grad(torch.func.grad(function.f)))(x)
        assert torch.allclose(first, function.derivative(x))
        assert torch.allclose(second, function.second(x))

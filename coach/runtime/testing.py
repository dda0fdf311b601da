"""What the kata tests share: loading the kata, watching autograd, checking returned values.

A test file reads as data: the inputs (drawn from `rng`), the expected value (computed
independently, in float64, never by calling the reference), and the known wrong answers.
The helpers here turn those into the messages a learner reads; an author writes no
try/except and no `pytest.fail(..., pytrace=False)` of their own.

- `kata = load_kata("kNN_topic")` once at the top: the learner's module (or the reference,
  under --impl=solutions), isolated so that a broken kata breaks only its own tests.
- `rng`, a fixture (coach/runtime/plugin.py): a `random.Random` for the test's inputs, seeded
  from pytest-randomly's seed and the test's id, so `ARGS=--randomly-seed=N` replays them.
  Draw the test's own numbers from it (`rng.uniform(-2, 2)`, `rng.randint(2, 3)`): torch's
  global generator is seeded for each test too, but every torch call of the kata moves it.
- `check_value(got, expected, call=..., what=..., wrong=[Wrong(value, why), ...])`: the law
  `what == expected`. Each `Wrong` is one misunderstanding: `value` is what a learner who holds
  it returns, computed independently in the test (a number, None, a bool, a tensor, a list or
  tuple of those), or a predicate `got -> bool` for an answer easier to recognise than to
  compute (`Wrong(lambda got: got.shape == x.shape, why)`); `why` names the misunderstanding
  and what to do instead. `Wrong(None, why)` is the learner who returned nothing, or read a
  .grad that is None. The message names the first wrong answer the learner's matches.
- `explained({text: message}):` around a kata call (or the backward() after it): an error
  whose text holds one of the keys fails the test with that key's message, the kata's own
  explanation, instead of torch's traceback. A message may be a function of the error. Any
  other error, and NotImplementedError always, goes on to the plugin unchanged.
- `caught(errors, saying=...) as got:` around a call that should raise (or may, as the test
  judges afterwards): `got.error` is the error, or None. No test writes try/except itself.
- `require(condition, message)` and `fail(message)`: a failure with that message alone.
- `check_shape_like`, `expect_tensor`, `expect_float`: the laws of an elementwise
  function's result, of a returned tensor and of a returned float.
- `backward_passes()` counts autograd's backward passes inside a block (and notes the leaves
  each reached, and whether it had create_graph); `TorchCalls(watch)` counts the torch calls
  inside a block that `watch(func, args, kwargs)` picks out.
- Functions with exact Jacobians and derivatives for a test to differentiate live in
  coach/runtime/catalogue.py.

So a new diagnosis is a few lines: compute what the misunderstanding returns and add a
`Wrong` beside the others, or add the error's text and its explanation to `explained`.

Two laws hold for every kata without a test asking: a kata function leaves its arguments as
the caller passed them (coach/runtime/loader.py checks every call), and a test that a kata
function fails is charged to that function (so progress is told function by function).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import pytest
import torch
from torch.autograd.variable import Variable
from torch.overrides import TorchFunctionMode

from coach.runtime.fmt import fmt
from coach.runtime.graphs import leaves_below
from coach.runtime.loader import load_kata

# Bound here, when the test files are collected, before any kata is imported: kata code that
# later replaces math.isclose, torch.allclose or a Tensor method changes nothing these see.
_isclose, _isnan = math.isclose, math.isnan
_allclose, _Tensor, _Parameter = torch.allclose, torch.Tensor, torch.nn.Parameter
_detach, _to, _float64 = torch.Tensor.detach, torch.Tensor.to, torch.float64
_fail = pytest.fail
_list_len, _list_item = list.__len__, list.__getitem__
_tuple_len, _tuple_item = tuple.__len__, tuple.__getitem__
_EXACT = frozenset({type(None), bool, int, float, str, torch.dtype, torch.device})

__all__ = [
    "Caught",
    "TorchCalls",
    "Wrong",
    "backward_passes",
    "caught",
    "check_shape_like",
    "check_value",
    "close",
    "expect_float",
    "expect_tensor",
    "explained",
    "fail",
    "fmt",
    "load_kata",
    "matches",
    "plain",
    "require",
    "torch_said",
]


class _CountingEngine:
    """Wraps the autograd engine: counts its backward passes and notes the leaves each reaches."""

    def __init__(self, engine):
        self._engine = engine
        self.passes = 0
        self.leaves: list[list[torch.Tensor]] = []  # per pass, the leaves its graph ends in
        self.create_graph: list[bool] = []  # per pass, whether it recorded a graph of its own

    def run_backward(self, outputs, *args, **kwargs):
        # run_backward(outputs, grad_outputs, keep_graph, create_graph, inputs, ...)
        self.passes += 1
        self.leaves.append(_leaves_of(outputs))
        self.create_graph.append(
            bool(kwargs.get("create_graph", args[2] if len(args) > 2 else False))
        )
        return self._engine.run_backward(outputs, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._engine, name)


def _leaves_of(outputs) -> list[torch.Tensor]:
    """The leaf tensors (AccumulateGrad nodes) that a backward pass from `outputs` reaches."""
    tensors = [t for t in outputs if isinstance(t, torch.Tensor)]
    below = [leaf for t in tensors if t.grad_fn is not None for leaf in leaves_below(t.grad_fn)]
    return below + [t for t in tensors if t.grad_fn is None]


@contextlib.contextmanager
def backward_passes():
    """Count how often autograd's engine runs a backward pass inside the block.

    Every route into autograd ends in the engine: `y.backward()`, `torch.autograd.backward`,
    `torch.autograd.grad` (however it was imported) and torch.func all do. So the count says
    whether gradients really came from autograd, and how many times it was asked.
    `engine.leaves[k]` holds the leaf tensors the k-th pass reached (the same tensor objects
    the learner made), so a test can tell one x cleared between passes from a new x each time;
    `engine.create_graph[k]` whether that pass was asked to record a graph (create_graph=True).
    """
    engine = Variable._execution_engine
    counter = _CountingEngine(engine)
    Variable._execution_engine = counter
    try:
        yield counter
    finally:
        Variable._execution_engine = engine


class NotPlain(Exception):
    """A value from kata code that is not plain data (a subclass that could answer as it likes)."""


def plain(value):
    """`value` as plain data, or NotPlain: what every comparison here works on.

    A value from kata code is compared only after this: exact None, bool, int, float, str,
    torch.dtype and torch.device pass; a torch.Tensor passes, a Parameter becomes a plain
    tensor; lists and tuples (torch.Size and torch's named tuples too) are rebuilt as plain
    lists and tuples of plain items. Anything else, subclasses of float or torch.Tensor
    included, is refused: an object whose `==` or `__torch_function__` says whatever it likes
    must not decide a test.
    """
    kind = type(value)
    if kind in _EXACT or kind is _Tensor:
        return value
    if kind is _Parameter:
        return _detach(value)
    if isinstance(value, list):
        return [plain(_list_item(value, i)) for i in range(_list_len(value))]
    if isinstance(value, tuple):
        return tuple(plain(_tuple_item(value, i)) for i in range(_tuple_len(value)))
    for base in (bool, int, float, str, _Tensor):
        if isinstance(value, base):
            raise NotPlain(
                f"a {kind.__name__}, a subclass of {base.__name__}: return a plain "
                f"{'torch.Tensor' if base is _Tensor else base.__name__} instead"
            )
    raise NotPlain(f"a {kind.__name__}, which is not plain data")


def _plain_or_fail(value, call: str, what: str):
    try:
        return plain(value)
    except NotPlain as refused:
        _fail(f"Called {call}. {what[:1].upper()}{what[1:]} is {refused}.", pytrace=False)


class TorchCalls(TorchFunctionMode):
    """Sees every torch call inside its `with` block; `seen` counts the ones that
    `watch(func, args, kwargs)` picks out. For telling which operation led to an error, or
    to an answer: an in-place edit of a leaf, a sum over dim=(), a hook on a leaf."""

    def __init__(self, watch: Callable[[Callable, tuple, dict], bool]):
        super().__init__()
        self.watch = watch
        self.seen = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.watch(func, args, kwargs):
            self.seen += 1
        return func(*args, **kwargs)


def expect_float(value, call: str, what: str):
    """Fail unless `value` is a plain Python float (exactly `float`); return it."""
    if type(value) is not float:
        kind = type(value).__name__
        if value is None:
            hint = (
                " A .grad is None until a backward() has reached the tensor: read it after"
                " backward()."
            )
        elif kind in {"Tensor", "Parameter"}:
            hint = " Call .item() on a one-element tensor to get its value as a float."
        elif type(value) is int:
            hint = " Wrap it in float(...) so callers get a float whatever they pass in."
        elif isinstance(value, float):
            hint = f" A {kind} is a subclass of float; return float(...) itself."
        else:
            hint = ""
        _fail(
            f"{call} returned {value!r} ({kind}) for {what}; expected a plain Python float.{hint}",
            pytrace=False,
        )
    return value


def close(actual: float, expected: float, rel: float = 1e-5, abs_: float = 1e-5) -> bool:
    """Equal up to float32 rounding: the katas compute in float32, the tests in float64.

    Both must be plain int or float (a subclass is refused: its comparisons could lie).
    """
    for value in (actual, expected):
        if type(value) not in (int, float):
            _fail(
                f"Expected a plain number, got {value!r} ({type(value).__name__}).",
                pytrace=False,
            )
    return _isclose(actual, expected, rel_tol=rel, abs_tol=abs_)


@dataclass(frozen=True)
class Wrong:
    """A known wrong answer: what a learner with one misunderstanding gets, and why.

    `value` is that learner's result, computed independently in the test (a float, None, a
    bool, a tensor, a list or tuple of those), or a predicate `got -> bool` for anything
    that is easier to recognise than to compute. `why` names the misunderstanding and says
    what to do instead.
    """

    value: object
    why: str


def matches(got, expected, rel: float = 1e-5, abs_: float = 1e-5) -> bool:
    """Whether `got` is `expected`: None only as None, numbers and tensors up to rounding.

    Both sides are made plain first (`plain`); what is not plain data matches nothing.
    """
    try:
        got, expected = plain(got), plain(expected)
    except NotPlain:
        return False
    return _matches(got, expected, rel, abs_)


def _matches(got, expected, rel: float, abs_: float) -> bool:
    if expected is None or got is None:
        return got is None and expected is None
    if type(expected) is bool or type(got) is bool:
        return type(got) is bool and type(expected) is bool and got == expected
    if type(expected) is _Tensor or type(got) is _Tensor:
        if not (type(got) is _Tensor and type(expected) is _Tensor):
            return False
        if tuple(got.shape) != tuple(expected.shape):
            return False
        a, b = _to(_detach(got), _float64), _to(_detach(expected), _float64)
        return bool(_allclose(a, b, rtol=rel, atol=abs_, equal_nan=True))
    if type(expected) in (list, tuple):
        return (
            type(got) in (list, tuple)
            and len(got) == len(expected)
            and all(_matches(g, e, rel, abs_) for g, e in zip(got, expected))
        )
    if type(expected) in (int, float) and type(got) in (int, float):
        if _isnan(expected) or _isnan(got):
            return _isnan(expected) and _isnan(got)
        return _isclose(got, expected, rel_tol=rel, abs_tol=abs_)
    return type(got) is type(expected) and got == expected


def _is(got, wrong: Wrong, rel: float, abs_: float) -> bool:
    if callable(wrong.value) and not isinstance(wrong.value, torch.Tensor):
        try:
            return bool(wrong.value(got))
        except Exception:
            return False
    return matches(got, wrong.value, rel, abs_)


def check_value(
    got,
    expected,
    *,
    call: str,
    what: str,
    wrong: tuple[Wrong, ...] | list[Wrong] = (),
    rel: float = 1e-5,
    abs_: float = 1e-5,
) -> None:
    """The law `what == expected`, with the misunderstandings that break it named.

    Fails with "Called {call}. {what} is {got}, expected {expected}: {why}", where `why`
    belongs to the first of `wrong` that `got` matches (and is left out when none does).
    A `got` that is not plain data (`plain`) fails, saying so.
    """
    got = _plain_or_fail(got, call, what)
    if matches(got, expected, rel, abs_):
        return
    if what.startswith(("the ", "a ", "an ")):  # it starts a sentence
        what = what[0].upper() + what[1:]
    shown_got, shown_expected = fmt(got), fmt(expected)
    if shown_got == shown_expected:  # too big, or too close, to tell apart as printed
        shown_got += _first_difference(got, expected, rel, abs_)
    message = f"Called {call}. {what} is {shown_got}, expected {shown_expected}"
    why = next((w.why for w in wrong if _is(got, w, rel, abs_)), None)
    _fail(f"{message}: {why}" if why else f"{message}.", pytrace=False)


def _first_difference(got, expected, rel: float = 1e-5, abs_: float = 1e-5) -> str:
    """' (at [1, 0]: 0.25 where 0.5 was expected)' for two same-shaped tensors, else ''."""
    if not (isinstance(got, torch.Tensor) and isinstance(expected, torch.Tensor)):
        return ""
    if got.shape != expected.shape:
        return ""
    a, b = got.detach().double(), expected.detach().double()
    off = ~torch.isclose(a, b, rtol=rel, atol=abs_, equal_nan=True)
    if not off.any():
        return ""
    index = [int(i) for i in off.nonzero()[0]]
    here = tuple(index)
    return (
        f" whose values differ (at {index}: {a[here].item()!r} ({got.dtype}) where "
        f"{b[here].item()!r} was expected, to a relative {rel:g})"
    )


def expect_tensor(value, call: str, what: str = "the result") -> torch.Tensor:
    """Fail unless a kata function returned a plain tensor (see `plain`); return it as one."""
    if not isinstance(value, _Tensor):
        shown = fmt(value) if value is None else f"{fmt(value)} ({type(value).__name__})"
        why = " (a function with no `return` gives None)" if value is None else ""
        fail(f"Called {call}. It returned {shown}, expected a tensor{why}.")
    return _plain_or_fail(value, call, what)


def check_shape_like(result, like: torch.Tensor, *, call: str, what: str = "the result") -> None:
    """The law of an elementwise or any-shape function: the input's shape and dtype back.

    A 0-d input gives a 0-d result and an (n,) input an (n,) result, in the input's dtype.
    """
    result = expect_tensor(result, call, what)
    if result.shape != like.shape:
        grew = result.dim() > like.dim()
        why = (
            "a broadcast against a tensor of another shape (a [1] or a (1, n) constant, or a "
            "torch.tensor([...]) wrapper) changed it. Work on the input itself, elementwise."
            if grew
            else "something reduced it (a sum, mean, item() or indexing). Keep every element."
        )
        pytest.fail(
            f"Called {call} with an input of shape {tuple(like.shape)}. {what} has shape "
            f"{tuple(result.shape)}, expected {tuple(like.shape)}: {why}",
            pytrace=False,
        )
    if result.dtype != like.dtype:
        pytest.fail(
            f"Called {call} with a {like.dtype} input. {what} is {result.dtype}, expected "
            f"{like.dtype}: a constant built with another dtype (torch.tensor(..., "
            f"dtype=...), .float(), .double()) changed it. Keep the input's dtype.",
            pytrace=False,
        )


def require(condition: bool, message: str) -> None:
    """Fail with `message` alone (no assertion introspection) unless `condition` holds."""
    if not condition:
        pytest.fail(message, pytrace=False)


def fail(message: str) -> NoReturn:
    """Fail the test with `message` alone: no traceback, no assertion introspection."""
    __tracebackhide__ = True
    pytest.fail(message, pytrace=False)


def torch_said(error: BaseException) -> str:
    """The first sentence of an error's message, without its trailing period or its
    parenthesised aside: what a message quotes of torch's own words."""
    return str(error).split(" (", 1)[0].split(". ", 1)[0].rstrip(".")


Explanation = str | Callable[[BaseException], str]


def _explanation(
    explain: dict[str, Explanation] | Callable[[BaseException], str | None], error: BaseException
) -> str | None:
    if callable(explain):
        return explain(error)
    text = str(error)
    said = next((why for known, why in explain.items() if known in text), None)
    return said(error) if callable(said) else said


@contextlib.contextmanager
def explained(
    explain: dict[str, Explanation] | Callable[[BaseException], str | None],
    errors: type[BaseException] | tuple[type[BaseException], ...] = RuntimeError,
):
    """Fail with the kata's explanation when the block raises an error it knows.

    `explain` maps a piece of an error's text to the message that explains it (a string, or
    a function of the error), or is a function `error -> message or None`. An error of type
    `errors` that it explains fails the test with that message alone (torch's traceback,
    chained or not, is not shown); every other error, and NotImplementedError always (a
    stub's "not written yet"), goes on unchanged. For example::

        with explained({"a leaf Variable that requires grad": f"Called {call}. ..."}):
            result = kata.fresh_leaf(t)
    """
    __tracebackhide__ = True
    try:
        yield
    except errors as error:
        if isinstance(error, NotImplementedError):
            raise
        message = _explanation(explain, error)
        if message is None:
            raise
    else:
        return
    raise pytest.fail.Exception(message, pytrace=False) from None


@dataclass
class Caught:
    """What `caught` caught: the error, or None when the block raised none."""

    error: BaseException | None = None


@contextlib.contextmanager
def caught(
    errors: type[BaseException] | tuple[type[BaseException], ...] = RuntimeError,
    saying: str | None = None,
):
    """Catch an error that the test expects or judges afterwards; `.error` holds it.

    Only errors of type `errors` whose text holds `saying` (when given) are caught; every
    other error, and NotImplementedError always, goes on unchanged. For example::

        with caught(saying="modified by an inplace operation") as edit:
            y.sum().backward()
        require(edit.error is not None, "...")
    """
    __tracebackhide__ = True
    found = Caught()
    try:
        yield found
    except errors as error:
        if isinstance(error, NotImplementedError) or (saying and saying not in str(error)):
            raise
        found.error = error

"""Tests compare plain data with trusted functions (issue 18, C): values from kata code are made
plain before any comparison (coach/runtime/testing.py), the comparisons use functions bound
before any kata is imported, and the parent accepts each streamed test record once, in order
(coach/grading/records.py's Report)."""

from __future__ import annotations

import builtins
import json
import math

import pytest
import torch

from coach.grading import records
from coach.runtime import testing, torch_state


class LyingFloat(float):
    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


class LyingTensor(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in {"allclose", "equal", "isclose"}:
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


def test_a_lying_float_or_tensor_matches_nothing_and_fails_check_value_saying_why():
    assert LyingFloat(0.0) == 1.0  # the lie itself
    assert not testing.matches(LyingFloat(0.0), 1.0)
    lying = torch.zeros(3).as_subclass(LyingTensor)
    assert torch.allclose(lying, torch.ones(3))  # the lie itself
    assert not testing.matches(lying, torch.ones(3))
    with pytest.raises(pytest.fail.Exception, match="subclass of float: return a plain float"):
        testing.check_value(LyingFloat(0.0), 1.0, call="f(1)", what="the value")
    with pytest.raises(pytest.fail.Exception, match="subclass of Tensor"):
        testing.check_value(lying, torch.ones(3), call="f(1)", what="the result")
    with pytest.raises(pytest.fail.Exception, match="subclass of float"):
        testing.expect_float(LyingFloat(1.0), "f(1)", "the value")
    with pytest.raises(pytest.fail.Exception, match="plain number"):
        testing.close(LyingFloat(0.0), 1.0)


def test_plain_keeps_plain_data_and_rebuilds_containers():
    size = torch.zeros(2, 3).shape
    assert testing.plain(size) == (2, 3) and type(testing.plain(size)) is tuple
    parameter = torch.nn.Parameter(torch.ones(2))
    assert type(testing.plain(parameter)) is torch.Tensor
    values = torch.tensor([3.0, 1.0]).max(dim=0)  # a torch named tuple
    assert type(testing.plain(values)) is tuple
    assert testing.matches([1.0, (2, None)], [1.0, (2, None)])
    assert testing.matches(torch.ones(2), torch.ones(2)) and not testing.matches(1, True)


def test_comparisons_use_the_functions_bound_before_any_kata(monkeypatch):
    with monkeypatch.context() as patch:  # undone inside the test: the guard watches these
        patch.setattr(math, "isclose", lambda *a, **k: True)
        patch.setattr(torch, "allclose", lambda *a, **k: True)
        found = [
            testing.matches(0.0, 1.0),
            testing.matches(torch.zeros(2), torch.ones(2)),
            testing.close(0.0, 1.0),
        ]
    assert found == [False, False, False]


def test_the_guard_names_a_replacement_whatever_its_module_claims():
    saved = torch_state.snapshot_namespaces()
    original = math.isclose

    def fake(*args, **kwargs):
        return True

    fake.__module__ = "torch"
    math.isclose, torch.equal, keep, kept = fake, fake, torch.equal, builtins.sorted
    builtins.sorted = fake
    try:
        found = {(label, name) for label, _, name, _ in torch_state.replaced_names(saved)}
    finally:
        math.isclose, torch.equal, builtins.sorted = original, keep, kept
    assert {("math", "isclose"), ("torch", "equal"), ("builtins", "sorted")} <= found


def _stream(*sent: dict) -> records.Report:
    report = records.Report("k")
    report.feed(b"".join(json.dumps(r).encode() + b"\n" for r in sent))
    return report


def _phases(nodeid: str, outcome: str = "passed") -> list[dict]:
    return [
        {"t": "phase", "nodeid": nodeid, "when": when, "outcome": outcome, "message": ""}
        for when in ("setup", "call", "teardown")
    ]


def test_the_parent_takes_each_test_record_once_and_in_order():
    ids = ["t::a", "t::b"]
    clean = _stream({"t": "collected", "ids": ids}, *_phases("t::a"), *_phases("t::b"),
                    {"t": "end", "exitstatus": 0, "crash": ""})  # fmt: skip
    assert clean.as_dict()["forged"] == []
    assert {k: v["outcome"] for k, v in clean.as_dict()["tests"].items()} == dict.fromkeys(
        ids, "passed"
    )
    failed_then_forged = _stream(
        {"t": "collected", "ids": ids}, *_phases("t::a", "failed")[:2], *_phases("t::a")
    )
    assert failed_then_forged.forged and failed_then_forged.tests["t::a"]["outcome"] == "failed"
    backwards = _stream({"t": "collected", "ids": ids}, *_phases("t::b"), *_phases("t::a"))
    assert any("after a later test" in f for f in backwards.forged)
    after_end = _stream({"t": "collected", "ids": ids}, {"t": "end", "exitstatus": 0},
                        *_phases("t::a"))  # fmt: skip
    assert after_end.forged
    assert _stream({"t": "collected", "ids": ids}).as_dict() is None  # never ended

"""Kata 10: a scalar autograd engine, checked against torch on expressions the tests build."""

import math
import sys
from collections import Counter

import pytest
import torch

from coach.runtime.testing import Wrong, caught, check_value, explained, fmt, load_kata, require

kata = load_kata("k10_value_engine")

PYTHON_RECURSION_LIMIT = 1000  # sys.getrecursionlimit() in a fresh Python


class Node:
    """One value of an expression built twice: a kata Value and a float64 torch tensor."""

    def __init__(self, name: str, value, tensor: torch.Tensor):
        self.name, self.value, self.tensor = name, value, tensor


class Expression:
    """An expression the test builds from the kata's Values and, side by side, from float64
    tensors: torch's gradients are the expected ones. `lines` lists it for the messages."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.lines: list[str] = []

    def leaf(self, name: str, x: float) -> Node:
        node = Node(name, kata.Value(x), torch.tensor(x, dtype=torch.float64, requires_grad=True))
        self.nodes.append(node)
        self.lines.append(f"{name} = Value({fmt(x)})")
        return node

    def apply(self, name: str, text: str, operation, *inputs: Node) -> Node:
        """`operation` is written once for both: Value and tensor share +, *, **, .tanh()."""
        node = Node(
            name,
            operation(*(each.value for each in inputs)),
            operation(*(each.tensor for each in inputs)),
        )
        self.nodes.append(node)
        self.lines.append(f"{name} = " + text.format(*(each.name for each in inputs)))
        return node

    def text(self) -> str:
        return "; ".join(self.lines)

    def call(self, out: Node) -> str:
        return f"{out.name}.backward() on [{self.text()}]"

    def torch_grads(self, out: Node) -> dict[str, float]:
        """d(out)/d(node) for every node, from torch (0.0 where out does not depend on it)."""
        grads = torch.autograd.grad(
            out.tensor, [node.tensor for node in self.nodes], allow_unused=True, retain_graph=True
        )
        return {node.name: 0.0 if g is None else g.item() for node, g in zip(self.nodes, grads)}

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)


def graph_of(root) -> list:
    """Every Value that `root` was computed from (itself included), without recursion."""
    found, stack, seen = [], [root], set()
    while stack:
        value = stack.pop()
        if id(value) not in seen:
            seen.add(id(value))
            found.append(value)
            stack.extend(value._prev)
    return found


class Trace:
    """Watches one backward(): whose _backward ran, how often, in which order.

    Read only to explain wrong gradients: an engine that gets them right passes however it
    walks the graph."""

    def __init__(self, expression: Expression, out: Node):
        self.names = {id(node.value): node.name for node in expression.nodes}
        self.values = graph_of(out.value)
        self.consumers = {id(value): [] for value in self.values}
        for value in self.values:
            for child in value._prev:
                self.consumers[id(child)].append(value)
        self.calls: list[int] = []
        for value in self.values:
            value._backward = self._recorded(value, value._backward)

    def _recorded(self, value, original):
        def recorded():
            self.calls.append(id(value))
            return original()

        return recorded

    def name(self, value) -> str:
        if id(value) in self.names:
            return self.names[id(value)]
        if not value._prev:
            return fmt(value.data)
        operands = f" {value._op} ".join(self.name(child) for child in value._prev)
        if len(value._prev) == 1:
            operands = f"{self.name(value._prev[0])}{value._op}"
        return f"the hidden node {operands} (made inside - or /)"

    def problem(self) -> str:
        """What went wrong in the walk over the graph, or "" if every step came in order."""
        if not self.calls:
            return (
                "no node's _backward ran at all. backward() must call _backward() on every "
                "node, from the output down to the leaves."
            )
        counts = Counter(self.calls)
        first_call = {}
        for index, value_id in enumerate(self.calls):
            first_call.setdefault(value_id, index)
        made_by_operations = [value for value in self.values if value._prev]
        for value in made_by_operations:
            if counts[id(value)] > 1:
                return (
                    f"{self.name(value)}'s _backward ran {counts[id(value)]} times in one "
                    f"backward(): a node reached along several paths was visited once per path, "
                    f"so its gradient went down more than once. Collect each node once (a set of "
                    f"nodes already seen), then call each _backward exactly once."
                )
        for value in made_by_operations:
            if id(value) not in first_call:
                return (
                    f"{self.name(value)}'s _backward never ran, so nothing below it got its "
                    f"share. backward() must visit every node the output was computed from."
                )
        for value in made_by_operations:
            for consumer in self.consumers[id(value)]:
                if first_call.get(id(consumer), math.inf) > first_call[id(value)]:
                    return (
                        f"{self.name(value)}'s _backward ran before that of "
                        f"{self.name(consumer)}, which was made from it: {self.name(value)} "
                        f"passed its gradient on before {self.name(consumer)} had added its "
                        f"share, and that share was lost. Walking from the output (recursion "
                        f"or a queue) visits nodes too early; call the _backward functions "
                        f"in reverse topological order, where a node comes only after every "
                        f"node made from it."
                    )
        return ""


LOCAL_RULES = (
    "every node's _backward ran once, in a good order, so a _backward passed on a wrong "
    "amount. Either a local rule is wrong (the tests of single operations say which), or a "
    "_backward assigns (=) where it must add (+=), so a node used by two operations keeps "
    "only the share that came last. Each _backward adds out.grad times its local derivative "
    "into its inputs."
)


def run_backward(expression: Expression, out: Node) -> Trace:
    trace = Trace(expression, out)
    call = expression.call(out)
    with explained(lambda _: f"RecursionError on a small graph.\nCalled {call}.", RecursionError):
        out.value.backward()
    return trace


def check_grads(expression: Expression, out: Node, trace: Trace, wrong=None) -> None:
    """Every node's .grad against torch; `wrong` maps a node's name to its known wrong answers."""
    expected = expression.torch_grads(out)
    call = expression.call(out)
    check_value(
        out.value.grad,
        1.0,
        call=call,
        what=f"{out.name}.grad",
        wrong=[Wrong(0.0, "the walk starts from d(out)/d(out) = 1: set self.grad = 1.0 first.")],
    )
    problem = trace.problem()
    for node in expression.nodes:
        known = list((wrong or {}).get(node.name, ()))
        check_value(
            node.value.grad,
            expected[node.name],
            call=call,
            what=f"{node.name}.grad",
            wrong=[
                Wrong(lambda _got: bool(problem), problem),
                *known,
                Wrong(lambda _got: not problem, LOCAL_RULES),
            ],
            rel=1e-6,
            abs_=1e-9,
        )


def upstream(rng) -> float:
    """A factor the op's result is multiplied by, so that out.grad at the op is not 1."""
    return round(rng.choice([-1, 1]) * rng.uniform(1.5, 3.0), 2)


def away_from_zero(rng, low=0.5, high=2.0) -> float:
    return round(rng.choice([-1, 1]) * rng.uniform(low, high), 2)


NO_UPSTREAM = (
    "this _backward ignored out.grad. The chain rule multiplies the local derivative by the "
    "gradient that arrives from above (out.grad, here the factor {k} of `* {k}`)."
)


# --- one operation at a time -------------------------------------------------------------


def test_add_passes_the_gradient_on_to_both_inputs(rng):
    e = Expression()
    a, b = e.leaf("a", away_from_zero(rng)), e.leaf("b", away_from_zero(rng))
    k = upstream(rng)
    s = e.apply("s", "{0} + {1}", lambda x, y: x + y, a, b)
    out = e.apply("out", f"{{0}} * {k}", lambda x: x * k, s)
    trace = run_backward(e, out)
    no_upstream = [Wrong(1.0, NO_UPSTREAM.format(k=k))]
    check_grads(e, out, trace, wrong={"a": no_upstream, "b": no_upstream})


def test_mul_sends_each_factor_the_other_factor(rng):
    e = Expression()
    a0, b0 = away_from_zero(rng), away_from_zero(rng)
    a, b = e.leaf("a", a0), e.leaf("b", b0)
    k = upstream(rng)
    p = e.apply("p", "{0} * {1}", lambda x, y: x * y, a, b)
    out = e.apply("out", f"{{0}} * {k}", lambda x: x * k, p)
    trace = run_backward(e, out)
    own = "p = a * b: d(p)/d(a) is the other factor, b, and d(p)/d(b) is a, not their own data."
    check_grads(
        e,
        out,
        trace,
        wrong={
            "a": [
                Wrong(b0, NO_UPSTREAM.format(k=k)),
                Wrong(a0 * k, own),
                Wrong(a0 * a0 * b0, own),  # `out = p * k` then sends p its own data too
            ],
            "b": [
                Wrong(a0, NO_UPSTREAM.format(k=k)),
                Wrong(b0 * k, own),
                Wrong(b0 * a0 * b0, own),
            ],
        },
    )


@pytest.mark.parametrize("exponent", [2, 3, -1])
def test_pow_follows_the_power_rule(exponent, rng):
    e = Expression()
    a0 = away_from_zero(rng)
    a = e.leaf("a", a0)
    k = upstream(rng)
    p = e.apply("p", f"{{0}} ** {exponent}", lambda x: x**exponent, a)
    out = e.apply("out", f"{{0}} * {k}", lambda x: x * k, p)
    trace = run_backward(e, out)
    rule = f"the power rule: d(a**n)/da = n * a**(n - 1), here {exponent} * a**{exponent - 1}."
    check_grads(
        e,
        out,
        trace,
        wrong={
            "a": [
                Wrong(exponent * a0 ** (exponent - 1), NO_UPSTREAM.format(k=k)),
                Wrong(exponent * a0**exponent * k, rule),
                Wrong(a0 ** (exponent - 1) * k, rule),
            ]
        },
    )


def test_tanh_uses_one_minus_its_output_squared(rng):
    e = Expression()
    a0 = away_from_zero(rng, 0.3, 1.5)
    a = e.leaf("a", a0)
    k = upstream(rng)
    t = e.apply("t", "{0}.tanh()", lambda x: x.tanh(), a)
    out = e.apply("out", f"{{0}} * {k}", lambda x: x * k, t)
    trace = run_backward(e, out)
    check_grads(
        e,
        out,
        trace,
        wrong={
            "a": [
                Wrong(1 - math.tanh(a0) ** 2, NO_UPSTREAM.format(k=k)),
                Wrong(
                    (1 - a0**2) * k,
                    "d(tanh x)/dx = 1 - tanh(x)**2: square the output (out.data), not the "
                    "input (self.data).",
                ),
            ]
        },
    )


def test_sub_and_div_built_from_the_four_operations_get_their_gradients(rng):
    e = Expression()
    a, b = e.leaf("a", away_from_zero(rng)), e.leaf("b", away_from_zero(rng))
    k = upstream(rng)
    d = e.apply("d", "{0} - {1}", lambda x, y: x - y, a, b)
    q = e.apply("q", "{0} / {1}", lambda x, y: x / y, d, b)
    r = e.apply("r", f"{k} - {{0}}", lambda x: k - x, q)
    out = e.apply("out", "2.0 / {0}", lambda x: 2.0 / x, r)
    check_grads(e, out, run_backward(e, out))


# --- values used more than once: += --------------------------------------------------------


@pytest.mark.parametrize("operation", ["+", "*"])
def test_a_value_used_twice_in_one_operation_gets_both_contributions(operation, rng):
    e = Expression()
    a0 = away_from_zero(rng)
    a = e.leaf("a", a0)
    if operation == "+":
        out = e.apply("out", "{0} + {0}", lambda x: x + x, a)
        assigned = 1.0
    else:
        out = e.apply("out", "{0} * {0}", lambda x: x * x, a)
        assigned = a0
    trace = run_backward(e, out)
    why = (
        f"a is both inputs of a {operation} a, so it gets two contributions that must add up. "
        f"A _backward that assigns (self.grad = ..., other.grad = ...) overwrites the first "
        f"with the second: use +=."
    )
    check_grads(e, out, trace, wrong={"a": [Wrong(assigned, why)]})


@pytest.mark.parametrize("tanh_first", [False, True])
def test_branches_that_meet_again_add_up(tanh_first, rng):
    e = Expression()
    a0, k = away_from_zero(rng, 0.3, 1.5), upstream(rng)
    a = e.leaf("a", a0)
    b = e.apply("b", f"{{0}} * {k}", lambda x: x * k, a)
    c = e.apply("c", "{0}.tanh()", lambda x: x.tanh(), a)
    first, second = (c, b) if tanh_first else (b, c)
    out = e.apply("out", "{0} + {1}", lambda x, y: x + y, first, second)
    trace = run_backward(e, out)
    why = (
        "a feeds two branches (b and c) that meet again in out, so a.grad is the sum of both "
        "branches' shares. A _backward that assigns (=) keeps only the share that came last: "
        "use +=."
    )
    check_grads(e, out, trace, wrong={"a": [Wrong(k, why), Wrong(1 - math.tanh(a0) ** 2, why)]})


@pytest.mark.parametrize("direct_first", [True, False])
def test_a_shared_node_passes_its_gradient_on_only_when_complete(direct_first, rng):
    # h is used by out directly and through u. Visiting h as soon as one consumer is done
    # sends a only part of h's gradient; visiting it once per path sends some twice. Both
    # child orders are built, so that a depth-first walk goes wrong in one of them.
    e = Expression()
    a0, k, m = away_from_zero(rng), upstream(rng), upstream(rng)
    a = e.leaf("a", a0)
    h = e.apply("h", f"{{0}} * {k}", lambda x: x * k, a)
    u = e.apply("u", f"{{0}} * {m}", lambda x: x * m, h)
    first, second = (h, u) if direct_first else (u, h)
    out = e.apply("out", "{0} + {1}", lambda x, y: x + y, first, second)
    trace = run_backward(e, out)
    # A walk in the wrong order is explained by the Trace; the value names the other mistake.
    overwritten = (
        "a.grad holds only what came through u: when u's _backward reached h, it replaced "
        "(=) the share h already had from out instead of adding to it (+=)."
    )
    check_grads(e, out, trace, wrong={"a": [Wrong(k * m, overwritten)]})


# --- random expressions against torch ------------------------------------------------------


def random_expression(rng, operations: int) -> tuple[Expression, Node]:
    """Leaves a, b, c and `operations` random steps, each reusing earlier nodes freely, so the
    graph has shared nodes and branches that meet again."""
    e = Expression()
    nodes = [e.leaf(name, away_from_zero(rng, 0.2, 1.5)) for name in "abc"[: rng.randint(2, 3)]]
    for step in range(1, operations + 1):
        recent = nodes[-3:]
        x, y = rng.choice(recent), rng.choice(nodes)
        k = round(rng.uniform(-1.5, 1.5), 2)
        text, operation, inputs = rng.choice(
            [
                ("{0} + {1}", lambda p, q: p + q, (x, y)),
                ("{0} * {1}", lambda p, q: p * q, (x, y)),
                ("{0} - {1}", lambda p, q: p - q, (y, x)),
                ("{0}.tanh()", lambda p: p.tanh(), (x,)),
                ("{0} ** 2", lambda p: p**2, (x,)),
                (f"{{0}} * {k}", lambda p, k=k: p * k, (x,)),
                (f"{{0}} + {k}", lambda p, k=k: p + k, (x,)),
            ]
        )
        nodes.append(e.apply(f"v{step}", text, operation, *inputs))
    return e, nodes[-1]


def test_random_expressions_match_torch(rng):
    for _ in range(4):
        e, out = random_expression(rng, operations=rng.randint(5, 9))
        check_grads(e, out, run_backward(e, out))


def test_the_output_of_the_diamond_and_the_chain_match_torch(rng):
    # One graph with everything at once: a diamond under a chain under a shared node.
    e = Expression()
    a, b = e.leaf("a", away_from_zero(rng, 0.2, 1.0)), e.leaf("b", away_from_zero(rng, 0.2, 1.0))
    p = e.apply("p", "{0} * {1}", lambda x, y: x * y, a, b)
    q = e.apply("q", "{0}.tanh()", lambda x: x.tanh(), p)
    r = e.apply("r", "{0} ** 2", lambda x: x**2, p)
    s = e.apply("s", "{0} + {1}", lambda x, y: x + y, q, r)
    t = e.apply("t", "{0} * {1}", lambda x, y: x * y, s, a)
    out = e.apply("out", "{0} - {1}", lambda x, y: x - y, t, q)
    check_grads(e, out, run_backward(e, out))


# --- each backward() starts from zero --------------------------------------------------------


def test_backward_twice_gives_the_same_gradients(rng):
    e, out = random_expression(rng, operations=5)
    out.value.backward()
    first = {node.name: node.value.grad for node in e.nodes}
    trace = run_backward(e, out)
    call = f"{out.name}.backward() twice on [{e.text()}]"
    expected = e.torch_grads(out)
    for node in e.nodes:
        not_reset = (
            f"{node.name}.grad was {fmt(first[node.name])} after the first backward() and "
            f"changed in the second: the gradients were not reset to 0.0 before the second "
            f"walk, so it added onto the first. Reset every node's grad, then set the output's "
            f"to 1.0."
        )
        check_value(
            node.value.grad,
            expected[node.name],
            call=call,
            what=f"After the second, {node.name}.grad",
            wrong=[
                Wrong(lambda got, before=first[node.name]: got != before, not_reset),
                Wrong(lambda _got: bool(trace.problem()), trace.problem()),
            ],
            rel=1e-6,
            abs_=1e-9,
        )


def two_outputs(x0: float, k: float) -> Expression:
    e = Expression()
    x = e.leaf("x", x0)
    h = e.apply("h", f"{{0}} * {k}", lambda v: v * k, x)
    e.apply("y1", "{0}.tanh()", lambda v: v.tanh(), h)
    e.apply("y2", "{0} ** 2", lambda v: v**2, h)
    return e


def test_a_second_output_gets_fresh_gradients(rng):
    x0, k = away_from_zero(rng, 0.3, 1.5), upstream(rng)
    e = two_outputs(x0, k)
    e.node("y1").value.backward()
    trace = run_backward(e, e.node("y2"))
    first, second = e.torch_grads(e.node("y1")), e.torch_grads(e.node("y2"))
    alone = two_outputs(x0, k)  # the same graph, where y2.backward() is the first call
    alone.node("y2").value.backward()
    call = f"y1.backward(), then y2.backward(), on [{e.text()}]"
    for name in ("x", "h"):
        not_reset = (
            f"y2.backward() added onto what y1.backward() had left in {name}.grad (called "
            f"alone, it gives {fmt(alone.node(name).value.grad)}). Reset every node's grad to "
            f"0.0 at the start of backward(), so that it gives d(y2)/d{name} alone."
        )
        check_value(
            e.node(name).value.grad,
            second[name],
            call=call,
            what=f"{name}.grad",
            wrong=[
                Wrong(first[name] + second[name], not_reset),
                Wrong(lambda _got: bool(trace.problem()), trace.problem()),
                Wrong(
                    lambda _got, name=name: math.isclose(
                        alone.node(name).value.grad, second[name], rel_tol=1e-6, abs_tol=1e-9
                    ),
                    not_reset,
                ),
            ],
            rel=1e-6,
            abs_=1e-9,
        )


# --- a deep graph -------------------------------------------------------------------------


def test_a_chain_of_thousands_of_nodes_does_not_overflow_recursion(rng):
    steps = 2 * PYTHON_RECURSION_LIMIT  # twice as many nodes in a line as nested calls allowed
    x0, k0 = round(rng.uniform(0.5, 1.5), 3), 1 + round(rng.uniform(1e-4, 3e-4), 6)
    x, k = kata.Value(x0), kata.Value(k0)
    y = x
    for _ in range(steps):
        y = y * k
    call = (
        f"y.backward() with x = Value({fmt(x0)}), k = Value({fmt(k0)}) and {steps} times "
        f"y = y * k ({steps} nodes in a line)"
    )
    limit, saved_limit = PYTHON_RECURSION_LIMIT, sys.getrecursionlimit()
    sys.setrecursionlimit(limit)  # as in a fresh Python, whatever ran before this test
    try:
        with caught(RecursionError) as overflow:
            y.backward()
    finally:  # the limit goes back even when the test fails
        raised_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(saved_limit)
    require(
        raised_limit == limit,
        f"backward() raised Python's recursion limit from {limit} to {raised_limit}. That only "
        f"moves the wall (and a deep enough graph then crashes Python itself): build the "
        f"topological order with a loop and an explicit stack instead.\nCalled {call}.",
    )
    require(
        overflow.error is None,
        f"RecursionError: backward() made one nested call per node, and {steps} nodes in a "
        f"line go past Python's limit of {limit} nested calls. Build the topological order "
        f"with a loop and an explicit stack (a list you push nodes onto and pop them from) "
        f"instead of a recursive helper.\nCalled {call}.",
    )
    check_value(x.grad, k0**steps, call=call, what="x.grad", rel=1e-9, abs_=0.0)
    check_value(
        k.grad,
        steps * x0 * k0 ** (steps - 1),
        call=call,
        what="k.grad",
        wrong=[
            Wrong(
                x0 * k0 ** (steps - 1),
                "k is used by every one of the steps, so its gradient is the sum of one share "
                "per use: add (+=), never assign.",
            )
        ],
        rel=1e-9,
        abs_=0.0,
    )

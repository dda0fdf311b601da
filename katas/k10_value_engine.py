"""Kata 10: write backward yourself.

Autograd is less magic than it looks. Each operation on values that need a gradient makes a
new node that remembers its inputs and knows how to pass a gradient back to them. A small
engine like micrograd's, the one you build here, then runs backward() in three steps:

1. Order the graph: list every node so that each one comes after all the nodes it was made
   from (a "topological order").
2. Seed the output: d(out)/d(out) = 1.
3. Walk that list backwards, from the output down to the leaves. At each node apply the chain
   rule: add the node's gradient times each local derivative into its inputs' gradients. When
   a node's turn comes, every node made from it has already had its turn, so the node's own
   gradient is complete before it is passed on.

torch's engine keeps the same promise another way, with no list made up front: it counts how
many nodes consume each node's output, and runs a node from a ready queue once all of those
have passed their gradient in.

You build this engine for plain Python numbers, micrograd's size. A `Value` holds a float in
`.data` and, after backward(), d(output)/d(this value) in `.grad`. Each operation records its
inputs in `_prev` and stores a small function `_backward` that passes the result's gradient on
to those inputs. You write `_backward` for four operations (subtraction, division and the rest
are built from them) and then backward() itself.

Two rules make it right:
- Add, never assign: `self.grad += ...`. A value used twice (a + a, or x feeding two branches
  that meet again) gets one contribution per use, and they sum.
- A node passes its gradient on only when all its consumers are done: that is what the
  topological order is for.

Predict before you run: a = Value(3.0), b = a + a, c = b * a. What is a.grad after
c.backward()? (c = 2a**2.) And what would it be if `+` assigned instead of adding?
"""

import math


class Value:
    """A float that remembers how it was made, so that backward() can find its gradient."""

    def __init__(self, data: float, children: tuple = (), op: str = ""):
        self.data = float(data)
        self.grad = 0.0  # d(output)/d(self), once output.backward() has run
        self._prev = tuple(children)  # the Values this one was computed from
        self._op = op  # how: "+", "*", "**2", "tanh"; "" for a leaf
        self._backward = lambda: None  # passes self.grad on to self._prev; a leaf has none

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"

    def __add__(self, other):
        """out = self + other. Local derivatives: d(out)/d(self) = d(out)/d(other) = 1."""
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            # TODO: add out.grad times each local derivative into self.grad and other.grad.
            raise NotImplementedError("add the sum's share of out.grad into both inputs' .grad")

        out._backward = _backward
        return out

    def __mul__(self, other):
        """out = self * other. Local derivatives: the other factor."""
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            # TODO: the same for a product.
            raise NotImplementedError("add each factor's share of out.grad into its .grad")

        out._backward = _backward
        return out

    def __pow__(self, exponent: float):
        """out = self ** exponent, for a plain number exponent: d(out)/d(self) = n * x**(n-1)."""
        out = Value(self.data**exponent, (self,), f"**{exponent}")

        def _backward():
            # TODO: the power rule, times out.grad.
            raise NotImplementedError("add the power's share of out.grad into self.grad")

        out._backward = _backward
        return out

    def tanh(self):
        """out = tanh(self): d(out)/d(self) = 1 - tanh(self)**2, which is 1 - out.data**2."""
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            # TODO: the local derivative of tanh, times out.grad.
            raise NotImplementedError("add tanh's share of out.grad into self.grad")

        out._backward = _backward
        return out

    def backward(self) -> None:
        """Fill .grad of this Value and of every Value it was computed from.

        Afterwards each node's .grad is d(self)/d(node). Three steps:

        1. Collect the nodes of the graph in topological order: every node after all the
           nodes in its _prev, each node once. Use a loop with a list as an explicit stack,
           not a recursive helper: a chain of thousands of operations would pass Python's
           recursion limit (1000 nested calls by default) and raise RecursionError.
        2. Reset: set every collected node's grad to 0.0, then self.grad = 1.0. A second
           backward() (on this output or another one) must not pile onto the gradients of
           the first. (Torch differs: it adds into leaves' .grad across calls, as kata 3
           showed. Here backward() answers "d(self)/d(node)", and nothing else.)
        3. Call each node's _backward() in reverse topological order, from self down to the
           leaves.
        """
        # TODO: topological order without recursion, reset the grads, seed 1.0, walk back.
        raise NotImplementedError("fill .grad of this Value and of every Value it came from")

    # Everything below is built from the four operations above: no new backward to write.

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def __truediv__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return self * other**-1

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __rsub__(self, other):
        return Value(other) - self

    def __rtruediv__(self, other):
        return Value(other) / self

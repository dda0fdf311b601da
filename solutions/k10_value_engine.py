"""Kata 10, reference solution: write backward yourself."""

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
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        """out = self * other. Local derivatives: the other factor."""
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent: float):
        """out = self ** exponent, for a plain number exponent: d(out)/d(self) = n * x**(n-1)."""
        out = Value(self.data**exponent, (self,), f"**{exponent}")

        def _backward():
            self.grad += exponent * self.data ** (exponent - 1) * out.grad

        out._backward = _backward
        return out

    def tanh(self):
        """out = tanh(self): d(out)/d(self) = 1 - tanh(self)**2, which is 1 - out.data**2."""
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1 - out.data**2) * out.grad

        out._backward = _backward
        return out

    def backward(self) -> None:
        """Fill .grad of this Value and of every Value it was computed from."""
        order, seen = [], set()
        stack = [(self, False)]
        while stack:
            node, inputs_done = stack.pop()
            if inputs_done:  # every node in its _prev is in `order` by now
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((child, False) for child in node._prev)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

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

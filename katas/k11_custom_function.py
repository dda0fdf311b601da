"""Kata 11: a custom torch.autograd.Function.

Autograd knows the derivative of nearly every torch operation (a few have none: differentiating
torch.special.zeta in its first argument raises "the derivative for 'zeta' is not
implemented"). Sometimes you want to give it one yourself: for an operation autograd cannot
look into (a C library, a numpy routine), or for a backward that is cheaper or more stable
than the one autograd would put together. A torch.autograd.Function is that plug: a class
with two static methods that you write.

- forward(ctx, *inputs) computes the output. Autograd records nothing inside it: to autograd
  the whole forward is one operation, and its backward is the one you write.
- backward(ctx, grad_output) receives grad_output = dL/dy, the gradient of whatever loss L was
  computed from your output y, and returns dL/d(input) for each input of forward. By the chain
  rule that is grad_output times dy/d(input), never dy/d(input) alone: the two agree only when
  grad_output happens to be 1.
- backward returns exactly one gradient per input of forward, in the same order, as a tuple
  (a bare tensor is fine when forward has a single input). An input that is not a tensor,
  such as a float setting, gets None.
- ctx carries what backward needs from forward. Tensors go through ctx.save_for_backward(...)
  and come back from ctx.saved_tensors: autograd then checks that nobody changed them in place
  between forward and backward. Anything else (a float, an int) goes on ctx as a plain
  attribute, ctx.scale = scale.

You call a Function through `apply`: y = Softplus.apply(x). To check a backward, compare it
with finite differences: torch.autograd.gradcheck(Softplus.apply, (x,)) does that, with x a
float64 tensor that requires grad. Check at several random points, in float64: float32 finite
differences are too coarse to tell a right gradient from a slightly wrong one, and a single
point can hide a formula that is right only there.

Predict before you run. softplus(x) = log(1 + exp(x)) has the derivative sigmoid(x), which is
0.5 at x = 0. Take x = 0, y = Softplus.apply(x), and call y.backward(torch.tensor(3.0)), as if
the loss were L = 3 * y.
  1. What should x.grad be?
  2. What is x.grad if backward returns sigmoid(x) and forgets grad_output?
"""

import torch
from torch import Tensor


class Softplus(torch.autograd.Function):
    """softplus(x) = log(1 + exp(x)), elementwise, with a backward written by hand.

    Its derivative is sigmoid(x) = 1 / (1 + exp(-x)) (torch.sigmoid).
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        """Return log(1 + exp(x)) for every element of x: any shape, in x's dtype.

        Save x for backward with ctx.save_for_backward(x), not as an attribute (ctx.x = x):
        autograd checks a tensor saved that way before backward uses it, so if x is changed
        in place after forward (an optimizer step, an x += ...), backward raises an error
        instead of silently giving the gradient at another x.

        log(1 + exp(x)) as written overflows for large x: in float32, exp(x) is inf from
        about x = 88.7 on, so log(1 + exp(torch.tensor(100.))) is inf, where softplus(100)
        is 100. The stable forms are torch.nn.functional.softplus(x) and
        log1p(exp(-|x|)) + max(x, 0), that is torch.log1p(torch.exp(-x.abs())) + x.clamp(min=0).
        The tests accept either form, or the plain one: they take x between -20 and 20 and
        check values to 1e-5, relative or absolute (below x = -8 the plain form's float32
        value is only absolutely close, since 1 + exp(x) rounds to about 1).

        A copy, ctx.save_for_backward(x.clone()), gives the right gradient too (the one at the
        x that forward saw), at the cost of the copy's memory; so does saving the output y.
        """
        # TODO: save x for backward, then return log(1 + exp(x)).
        raise NotImplementedError("return softplus(x), keeping on ctx what backward() will need")

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        """Return dL/dx = grad_output * sigmoid(x), elementwise.

        grad_output is dL/dy, with the shape of y: how much the loss changes per unit of each
        element of y. Multiplying it by dy/dx is the chain rule; leave it out and the
        gradient is right only for the loss y.sum(), whose grad_output is all ones.
        """
        # TODO: get x back from ctx.saved_tensors; return grad_output times the derivative.
        raise NotImplementedError("return the gradient for x: grad_output times softplus'(x)")


class ScaledProduct(torch.autograd.Function):
    """scale * a * b, elementwise, for tensors a and b of the same shape and a float scale."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, scale: float) -> Tensor:
        """Return scale * a * b, and keep for backward what it needs.

        backward needs a, b and scale. a and b are tensors: save them with
        ctx.save_for_backward. scale is a float, and save_for_backward takes tensors only:
        keep it as a plain attribute on ctx.
        """
        # TODO: save a and b for backward; keep scale on ctx; return the product.
        raise NotImplementedError("return scale * a * b, keeping on ctx what backward() will need")

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, Tensor, None]:
        """Return (dL/da, dL/db, None): one entry per input of forward, in its order.

        d(scale * a * b)/da = scale * b and d(scale * a * b)/db = scale * a; each is
        multiplied by grad_output. scale is a float, not a tensor, so autograd cannot give it
        a gradient: its place in the tuple holds None. Return two entries for three inputs
        and autograd raises.
        """
        # TODO: a, b from ctx.saved_tensors; return the three entries as a tuple.
        raise NotImplementedError("return one gradient per input of forward(), in forward's order")

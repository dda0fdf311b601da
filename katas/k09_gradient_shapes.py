"""Kata 9: gradients have the shape of what they differentiate.

The gradient of a loss with respect to a tensor says, for every element of that tensor, how the
loss changes when that element moves. So it has exactly the tensor's shape: a bias of shape (4,)
gets a gradient of shape (4,), a weight of shape (3, 5) one of shape (3, 5), however big the
batch was. Two rules get it there:

- Fan-out sums. When one value is used in several places, each use sends gradient back, and
  the value's gradient is the sum of them all. Autograd does this for you inside one backward
  pass: it adds up what every use sends before the value's gradient goes on (or into .grad),
  for a non-leaf as for a leaf. (Kata 3's adding into .grad is another matter: it is across
  backward() calls.) A backward written by hand must add the contributions itself.
- Broadcasting is fan-out. `x + b` with x of shape (N, 4) and b of shape (4,) uses every
  element of b N times, once per row. So b's gradient is the upstream gradient summed over
  the rows: shape (N, 4) in, shape (4,) out.

With these you will write the backward pass of a linear layer by hand, in torch.nn.Linear's
layout: x holds one sample per row, shape (N, in); W has shape (out, in); b has shape (out,);
and y = x @ W.T + b has shape (N, out). (Textbooks often write one sample as a column and
y = W @ x; other code keeps W as (in, out) and writes x @ W. Each layout has its own formulas:
here, let the shapes tell you which product is right.)

Predict before you run. x has shape (8, 3), W shape (2, 3), b shape (2,); y = x @ W.T + b and
loss = y.sum(). What are the shapes of W.grad and b.grad, and what is every element of b.grad?
"""

import torch
from torch import Tensor


def sum_to_shape(grad: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum a gradient back down to the shape of the tensor that was broadcast.

    `grad` is the gradient of a result of broadcasting a tensor of shape `shape` (for example
    the gradient of x + b, with b of shape `shape`). Broadcasting did two things, and each
    must be undone by summing:
    - it put new dimensions in front: sum over those leading dimensions;
    - it stretched dimensions of size 1: sum over those too, keeping them (keepdim=True),
      so that shape (3, 1) stays (3, 1).
    A grad that already has the shape comes back unchanged. (Careful: `t.sum(dim=())` sums
    over every dimension, not over none.) Keep grad's dtype.

    grad is floating point (float16, float32 or float64), as gradients are; summing keeps
    that dtype. (An integer grad would come back as int64: sum promotes integers.)

    Example: a grad of shape (5, 4) for a b of shape (4,) gives grad.sum(dim=0), shape (4,).
    torch has this built in as Tensor.sum_to_size; write it yourself from sum(dim, keepdim).
    """
    # TODO: sum the leading dims away, then the stretched size-1 dims with keepdim=True.
    raise NotImplementedError("sum over the dims broadcasting added or stretched")


def linear_backward(
    x: Tensor, W: Tensor, b: Tensor, grad_out: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The backward pass of y = x @ W.T + b, by hand: return (grad_x, grad_W, grad_b).

    x: (N, in), W: (out, in), b: (out,), grad_out = d loss / d y: (N, out). Each gradient has
    the shape of the tensor it belongs to. Work each one out from the shapes: which product
    of grad_out with W or x gives (N, in)? Which gives (out, in)? And b was broadcast over the
    N rows.

    By hand: no autograd here (the tests use autograd to check you).
    """
    # TODO: three lines, one per gradient; check each shape against its tensor's.
    raise NotImplementedError("grad_x is (N, in), grad_W is (out, in), grad_b is (out,)")


def layer_twice_backward(
    x: Tensor, W: Tensor, b: Tensor, grad_out: Tensor
) -> tuple[Tensor, Tensor]:
    """The same layer applied twice: return (grad_W, grad_b) for y = layer(layer(x)), by hand.

    layer(z) = z @ W.T + b with one square W of shape (d, d) and one b of shape (d,), used by
    both applications: h = layer(x), then y = layer(h). grad_out = d loss / d y, shape (N, d).
    Walk back through the second application (its input was h), then the first (its input
    was x), with linear_backward. W and b were each used twice, so each gets two
    contributions.

    By hand: no autograd here either.
    """
    # TODO: forward to h; backward through layer 2, then layer 1; combine what W and b got.
    raise NotImplementedError("h = layer(x); linear_backward twice, from the output back")

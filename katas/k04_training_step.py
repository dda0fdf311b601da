"""Kata 4: a training step by hand.

Every training loop in deep learning, however large the model, repeats the same five moves:

1. forward:  compute the model's predictions from its parameters;
2. loss:     turn "how wrong are the predictions" into one number;
3. backward: let autograd find how that number changes with each parameter;
4. update:   nudge each parameter a little against its gradient;
5. clear:    empty the parameters' .grad, because backward() adds to it (kata 3).

An optimizer from `torch.optim` does steps 4 and 5 for you. Here you write them yourself, to
fit a straight line y_hat = w * x + b to noisy points scattered around y = 2x + 1. Starting
from w = b = 0 with a learning rate of 0.01, 200 steps of plain gradient descent get close to
the best line through the points.

Predict before you run:
- After 200 steps, will w and b be exactly 2 and 1? Which of the two is still further from
  its best value, and why would one parameter learn more slowly than the other?
- What would the losses look like if you left out step 5?
"""

import torch
from torch import Tensor


def make_data(n: int = 20, noise: float = 0.3, seed: int = 42) -> tuple[Tensor, Tensor]:
    """Return (X, y): n points spread evenly over [-3, 3] and noisy targets around 2x + 1.

    X holds n evenly spaced values from -3 to 3 (both ends included). y is 2 * X + 1 plus
    `noise` times n draws from the standard normal distribution. Take the draws from a
    random generator seeded with `seed`, so the same seed always gives the same data: the
    draws must be the ones `torch.manual_seed(seed)` followed by `torch.randn(n)` gives
    (a `torch.Generator` seeded the same way gives the same numbers without touching the
    global one). Both tensors are float32 with shape (n,).
    """
    # TODO: build X, draw the noise from a seeded generator, build y.
    raise NotImplementedError("return X evenly over [-3, 3] and y = 2X + 1 plus seeded noise")


def train_step(w: Tensor, b: Tensor, X: Tensor, y: Tensor, lr: float) -> float:
    """Take one step of gradient descent on the mean squared error, and return that error.

    w and b are 0-d tensors that require grad. The loss is the mean over all points of
    (y - (w * X + b)) ** 2. Change w and b in place, so the caller's tensors move: rebinding
    the name (`w = ...`) inside this function would leave the caller's w where it was.

    Return the loss measured before the update, as a plain Python float.
    """
    # TODO 1, forward: the line's prediction for every point in X.
    # TODO 2, loss: the mean of the squared differences between y and the predictions.
    # TODO 3, backward: ask autograd for the loss's gradient with respect to w and b.
    # TODO 4, update: move w and b by lr times their gradient, downhill. Do it with gradient
    #         tracking switched off (inside `with torch.no_grad():`), since the update is not
    #         part of the model autograd should differentiate.
    # TODO 5, clear: empty w.grad and b.grad so the next step starts from nothing. (Clearing
    #         at the start of the step, before backward, works just as well with
    #         `w.grad = None`; `.zero_()` needs a .grad that already exists.)
    raise NotImplementedError("write the five steps: forward, loss, backward, update, clear")


def train(
    X: Tensor, y: Tensor, lr: float = 0.01, steps: int = 200
) -> tuple[Tensor, Tensor, list[float]]:
    """Fit y_hat = w * X + b by calling `train_step` `steps` times; return (w, b, losses).

    Start w and b at 0.0, as 0-d float tensors that require grad. `losses` holds the float
    each train_step returned, one per step, in order. The w and b you return must be the
    same tensors you started with, updated in place: still leaves that require grad.
    """
    # TODO: create w and b, run the steps, collect the losses.
    raise NotImplementedError("return w, b and every step's loss, training from w = b = 0")

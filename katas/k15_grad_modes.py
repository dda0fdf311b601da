"""Kata 15: grad modes and freezing.

Autograd records every operation on tensors that require grad, so that backward() can walk
back through them. Often you want a forward pass without that record: to evaluate a model, to
compute fixed features, or to keep part of a network as it is. Four tools switch it off:

- `with torch.no_grad():` records nothing inside the block. Results have no grad_fn and do
  not require grad, so nothing can be backpropagated through them.
- `with torch.set_grad_enabled(flag):` is no_grad when flag is False and normal recording when
  it is True: one loop body for training (True) and evaluation (False).
- `with torch.inference_mode():` is no_grad made faster, at a price: the tensors made inside
  are "inference tensors", and autograd refuses to save one for backward later ("Inference
  tensors cannot be saved for backward"). Use it only for results that never meet autograd.
- `p.requires_grad_(False)` freezes a parameter until you unfreeze it: autograd computes no
  new gradient for it, and an optimizer skips it as long as p.grad is None (an optimizer
  steps only parameters whose .grad is not None). A .grad left from before the freeze stays,
  though, and SGD's step() still moves the frozen weight with it: clear it (p.grad = None)
  when you freeze.

None of these is `model.eval()`. eval() switches layers such as dropout and batch norm to their
inference behaviour; autograd still records everything, and gradients still flow.

Predict before you run: a model is in eval() mode and you compute loss = model(x).sum().
Does loss have a grad_fn? And if you leave a parameter out of the optimizer but never freeze
it, and each of ten training steps starts with optimizer.zero_grad() (which clears the .grad
of the optimizer's own parameters only), what is that parameter's .grad after the ten steps?
"""

import torch
from torch import Tensor, nn


def frozen_features(model: nn.Module, x: Tensor) -> Tensor:
    """Return model(x) as fixed features: values only, with no graph back into the model.

    The result must have no grad_fn and must not require grad: the caller trains a new head
    on these features and must not reach the model's weights. The caller will feed the
    features to autograd (a linear layer saves its input for backward), so they must be
    ordinary tensors, not inference tensors.

    Leave the model as it was: its parameters keep requires_grad, and their .grad stays as
    it is. Switching the model to eval() does not do this job. (model(x).detach() gives the
    same features; it records the graph first and drops it, so it costs memory, not
    correctness. Both pass.)
    """
    # TODO: one forward pass that autograd does not record.
    raise NotImplementedError("run the model with gradient recording switched off")


def fine_tune_head(
    model: nn.Sequential, x: Tensor, y: Tensor, lr: float, steps: int
) -> list[float]:
    """Freeze the body and train only the head; return the loss of each step.

    `model` is nn.Sequential(body, activation, head): model[0] is the body, a Linear layer
    that must not change, and model[2] is the head to train. Freeze every parameter of the
    body with requires_grad_(False), and leave it frozen when you return.

    Then take `steps` steps of plain gradient descent by hand, as in kata 4: forward, the
    mean squared error mean((model(x) - y) ** 2), backward, then move each head parameter by
    lr times its gradient under torch.no_grad(), and clear the gradients. (torch.optim.SGD
    would do the same update, and skip a frozen parameter as long as its .grad is None.) Return
    each step's loss, measured before its update, as floats: loss.item() gives one (float(loss)
    does too, but warns that the loss still requires grad).

    The model may arrive with gradients left in .grad from elsewhere, in the head and in the
    body. Clear the head's before each backward(), the first included, so every step uses its
    own loss's gradient. The body's old .grad survives requires_grad_(False): no update may
    use it (an optimizer given the body's parameters would move the frozen body with it).

    This function changes the model in place: the head's weights move, the body's are frozen.
    Its training flag stays as it was.
    """
    # TODO: freeze model[0]; then steps x (forward, loss, backward, update, clear).
    raise NotImplementedError("train the head only, the body frozen; return each step's loss")

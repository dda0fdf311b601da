"""Plain words for the errors learners meet most, raised by torch or Python inside their code."""

from __future__ import annotations

# (a fragment of the error message, what it usually means); the first match wins.
KNOWN_ERRORS = (
    (
        "is being used in an in-place operation",
        "Your code changed a tensor that requires grad in place (`-=`, `+=`, `.zero_()` on the "
        "tensor itself) while autograd was recording. Autograd refuses: it would lose track of "
        "what it differentiates. Put parameter updates inside `with torch.no_grad():`.",
    ),
    (
        "Only Tensors of floating point and complex dtype can require gradients",
        "torch.tensor(3, requires_grad=True) makes an integer tensor, and autograd only works on "
        "floating-point ones. Build the tensor from float(...) (or pass dtype=torch.float32).",
    ),
    (
        "'NoneType' object has no attribute",
        "A `.grad` is None until a backward() reaches that tensor, and stays None where no path "
        "leads to it. Check `t.grad is None` before calling a method on it, or clear with "
        "`t.grad = None`, which works whether or not a gradient is there yet.",
    ),
    (
        "Trying to backward through the graph a second time",
        "backward() frees the graph it has just walked. Build the computation again (y = ...) "
        "before each backward().",
    ),
    (
        "does not require grad and does not have a grad_fn",
        "backward() was called on a tensor with no path to anything that requires grad: a "
        "detach(), .item(), torch.tensor(...) or torch.no_grad() cut it off. `t.requires_grad` "
        "tells you beforehand whether backward() can run.",
    ),
    (
        "grad can be implicitly created only for scalar outputs",
        "backward() with no argument needs a single number. Reduce first, with .sum() or "
        ".mean(), to the scalar you want to differentiate.",
    ),
    (
        "One of the differentiated Tensors appears to not have been used in the graph",
        "torch.autograd.grad was asked for the gradient of an input the output does not depend "
        "on. Check that the output was computed from that very tensor.",
    ),
)


def explain(error: BaseException) -> str | None:
    text = f"{type(error).__name__}: {error}"
    return next((meaning for fragment, meaning in KNOWN_ERRORS if fragment in text), None)

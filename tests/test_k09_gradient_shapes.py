"""Kata 9: a gradient has its tensor's shape; fan-out and broadcasting sum the contributions."""

import math

import pytest
import torch

from coach.runtime.testing import (
    TorchCalls,
    Wrong,
    backward_passes,
    check_shape_like,
    check_value,
    explained,
    load_kata,
    require,
)

kata = load_kata("k09_gradient_shapes")

TOLERANCE = {"rel": 1e-9, "abs_": 1e-9}  # the linear layer tests run in float64


def random_tensor(rng, shape, dtype=torch.float64) -> torch.Tensor:
    values = [round(rng.uniform(-2.0, 2.0), 3) for _ in range(math.prod(shape))]
    return torch.tensor(values, dtype=dtype).reshape(shape)


def shape_text(shape) -> str:
    return str(tuple(shape))


# --- sum_to_shape ----------------------------------------------------------------------------

# (grad's shape, the broadcast tensor's shape)
BROADCASTS = [
    ((5, 4), (4,)),
    ((5, 4), (1, 4)),
    ((5, 4), (5, 1)),
    ((2, 3, 4), (3, 1)),
    ((2, 3, 4), (1, 1, 4)),
    ((2, 3), (1, 1)),
    ((5, 4), ()),
]
UNCHANGED = [((), ()), ((4,), (4,)), ((3, 4), (3, 4))]


def autograd_sum_to_shape(grad: torch.Tensor, shape) -> torch.Tensor:
    """What autograd gives b for `zeros(grad.shape) + b`, with upstream gradient `grad`."""
    b = torch.zeros(shape, dtype=grad.dtype, requires_grad=True)
    # ((out * grad).sum() backpropagates `grad` into out; a scalar output keeps the test fast.)
    (grad_b,) = torch.autograd.grad(((torch.zeros_like(grad) + b) * grad).sum(), b)
    return grad_b


SUMMED_EVERYTHING = (
    "that is grad summed over every dimension. Sum only the dimensions broadcasting added or "
    "stretched. (t.sum(dim=()) sums over every dimension too: an empty dim tuple means all of "
    "them, so skip the sum when there is nothing to reduce.)"
)


def summed_everything(grad: torch.Tensor, expected: torch.Tensor):
    """Recognises the total of grad, in any shape (sum(dim=(), keepdim=True) gives (1, 1))."""
    total = grad.sum().item()

    def check(got) -> bool:
        return expected.numel() > 1 and got.numel() == 1 and abs(got.item() - total) < 1e-4

    return check


def summed_from_the_right(grad: torch.Tensor, shape) -> torch.Tensor | None:
    """grad with its extra dimensions summed away from the right, then the size-1 ones summed."""
    if grad.dim() <= len(shape):
        return None
    summed = grad.sum(dim=tuple(range(len(shape), grad.dim())))
    for i, size in enumerate(shape):
        if size == 1 and summed.shape[i] != 1:
            summed = summed.sum(dim=i, keepdim=True)
    return summed


def from_the_right(grad: torch.Tensor, shape, expected: torch.Tensor) -> list[Wrong]:
    summed = summed_from_the_right(grad, shape)
    if summed is None:
        return []
    extra = grad.dim() - len(shape)
    leading = "dim 0" if extra == 1 else f"dims {tuple(range(extra))}"
    last = "dimension" if len(shape) == 1 else f"{len(shape)} dimensions"
    other_shape = (
        f" (that is why the result has shape {shape_text(summed.shape)}, not "
        f"{shape_text(expected.shape)})"
        if summed.shape != expected.shape
        else ""
    )
    return [
        Wrong(
            summed,
            f"the extra dimensions were summed from the right, the trailing ones{other_shape}. "
            f"Broadcasting lines shapes up from the right: {shape_text(shape)} is matched "
            f"against the last {last} of {shape_text(grad.shape)}, so the dimensions it adds "
            f"are the leading ones. Sum over {leading}.",
        )
    ]


def where_copies(grad: torch.Tensor, shape) -> str:
    """': the leading dimension 0, and dimension 1 (size 1 in the shape, 4 in grad)'."""
    leading = grad.dim() - len(shape)
    parts = []
    if leading:
        dims = ", ".join(str(d) for d in range(leading))
        parts.append(f"the leading dimension{'s' if leading > 1 else ''} {dims}")
    for d, size in enumerate(shape):
        if size == 1 and grad.shape[leading + d] != 1:
            parts.append(
                f"dimension {leading + d} (size 1 in the shape, {grad.shape[leading + d]} in "
                f"grad: stretched, so keep it with keepdim=True)"
            )
    return ": " + ", and ".join(parts) if parts else ""


def sum_to_shape_mistakes(grad: torch.Tensor, shape, expected: torch.Tensor) -> list[Wrong]:
    leading = grad.dim() - len(shape)
    leading_summed = grad.sum(dim=tuple(range(leading))) if leading else grad
    copies = grad.numel() // expected.numel()
    squeezed = [size for size in shape if size != 1]
    return [
        *from_the_right(grad, shape, expected),
        Wrong(
            grad,
            "that is grad itself, with the broadcast result's shape. A gradient has the "
            "shape of the tensor it belongs to: broadcasting used each element of that tensor "
            f"several times, so sum grad over the copies{where_copies(grad, shape)}.",
        ),
        Wrong(
            expected / copies,
            f"that is the mean over the {copies} copies. Each copy's use adds its own "
            f"contribution (fan-out sums): sum them, do not average them.",
        ),
        Wrong(summed_everything(grad, expected), SUMMED_EVERYTHING),
        Wrong(
            lambda got: (
                isinstance(got, torch.Tensor)
                and list(got.shape) == squeezed
                and torch.allclose(got, expected.reshape(squeezed))
            ),
            "the sums are right but the size-1 dimensions were dropped. A dimension "
            "broadcasting stretched from size 1 stays in the shape: sum it with keepdim=True.",
        ),
        Wrong(
            leading_summed,
            "only the leading dimensions were summed. The size-1 dimensions that broadcasting "
            "stretched were used several times too: sum over them as well (keepdim=True).",
        ),
    ]


def empty_dim_sum(func, args, kwargs) -> bool:
    """A sum asked to reduce over an empty tuple or list of dimensions."""
    if getattr(func, "__name__", None) != "sum":
        return False
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    return isinstance(dim, (tuple, list)) and len(dim) == 0


def called_sum_to_shape(grad: torch.Tensor, shape, call: str):
    """Call sum_to_shape; a crash after a sum over dim=() is told as what it is."""
    none_leading = (
        f"Here there are no leading dimensions (grad has as many as the shape "
        f"{shape_text(shape)}), and "
        if grad.dim() == len(shape)
        else ""
    )

    def after_an_empty_sum(error) -> str | None:
        if not sums.seen:
            return None
        return (
            f"Called {call}. It raised {type(error).__name__}: {error}. {none_leading}"
            f"sum(dim=()) sums over every dimension in torch, not none (so does dim=[]): it "
            f"left a single total, which the next step could not work with. Skip the sum "
            f"when there are no leading dimensions."
        )

    with TorchCalls(empty_dim_sum) as sums, explained(after_an_empty_sum, errors=Exception):
        return kata.sum_to_shape(grad, shape)


def check_sum_to_shape(grad: torch.Tensor, shape) -> None:
    call = f"sum_to_shape(grad, {shape_text(shape)}) with grad of shape {shape_text(grad.shape)}"
    expected = autograd_sum_to_shape(grad, shape)
    got = called_sum_to_shape(grad, shape, call)
    check_value(
        got,
        expected,
        call=call,
        what="The result",
        wrong=sum_to_shape_mistakes(grad, shape, expected),
    )
    require(
        got.dtype == grad.dtype,
        f"Called {call}. The result is {got.dtype}, expected {grad.dtype}: keep grad's dtype.",
    )


def test_sum_to_shape_sums_over_what_broadcasting_added(rng):
    for grad_shape, shape in BROADCASTS:
        check_sum_to_shape(random_tensor(rng, grad_shape, torch.float32), shape)


def test_sum_to_shape_returns_a_grad_of_the_right_shape_unchanged(rng):
    for grad_shape, shape in UNCHANGED:
        grad = random_tensor(rng, grad_shape, torch.float32)
        call = f"sum_to_shape(grad, {shape_text(shape)}) with grad of shape {shape_text(shape)}"
        check_sum_to_shape(grad, shape)
        check_shape_like(kata.sum_to_shape(grad, shape), grad, call=call)


def test_sum_to_shape_accepts_a_torch_size_and_keeps_float64(rng):
    grad = random_tensor(rng, (3, 2, 4))
    check_sum_to_shape(grad, torch.Size([2, 1]))


def test_a_bias_gradient_sums_over_the_batch(rng):
    batch = rng.randint(2, 6)
    check_sum_to_shape(random_tensor(rng, (batch, 3), torch.float32), (3,))


# --- linear_backward -------------------------------------------------------------------------


class Layer:
    """Random x, W, b and grad_out for y = x @ W.T + b, with autograd's gradients."""

    def __init__(self, rng, n: int, n_in: int, n_out: int):
        self.x = random_tensor(rng, (n, n_in))
        self.W = random_tensor(rng, (n_out, n_in))
        self.b = random_tensor(rng, (n_out,))
        self.grad_out = random_tensor(rng, (n, n_out))
        self.call = (
            f"linear_backward(x, W, b, grad_out) with x of shape {shape_text(self.x.shape)}, "
            f"W {shape_text(self.W.shape)}, b {shape_text(self.b.shape)}, grad_out "
            f"{shape_text(self.grad_out.shape)}"
        )
        x, W, b = (t.clone().requires_grad_() for t in (self.x, self.W, self.b))
        self.expected = torch.autograd.grad(((x @ W.T + b) * self.grad_out).sum(), (x, W, b))

    @classmethod
    def random(cls, rng, square: bool = False) -> "Layer":
        # At most 9 elements each, so that messages show the numbers.
        n, n_in = rng.randint(1, 3), rng.randint(2, 3)
        n_out = n_in if square else rng.choice([size for size in range(1, 4) if size != n_in])
        return cls(rng, n, n_in, n_out)

    def run(self):
        def misfit(error):
            return (
                f"Called {self.call}; torch raised '{error}'. A product's shapes do "
                f"not fit: a formula from another layout (y = W @ x with one sample as a column, "
                f"or x @ W with W of shape (in, out)) crept in. Here x is (N, in), W is (out, in) "
                f"and grad_out is (N, out): pick the product whose shapes give each gradient its "
                f"tensor's shape."
            )

        with backward_passes() as engine, explained({"cannot be multiplied": misfit}):
            result = kata.linear_backward(self.x, self.W, self.b, self.grad_out)
        require(
            engine.passes == 0,
            f"Called {self.call}. Autograd ran {engine.passes} backward pass(es) inside it: "
            f"this backward is to be written by hand, from the shapes. Autograd is what the "
            f"tests check you against.",
        )
        require(
            isinstance(result, tuple)
            and len(result) == 3
            and all(isinstance(t, torch.Tensor) for t in result),
            f"Called {self.call}. It returned {type(result).__name__}; expected a tuple of "
            f"three tensors (grad_x, grad_W, grad_b).",
        )
        return result

    def check(self, which: str) -> None:
        """Check one of 'grad_x', 'grad_W', 'grad_b' against autograd."""
        index = ("grad_x", "grad_W", "grad_b").index(which)
        got, expected = self.run()[index], self.expected[index]
        check_value(
            got, expected, call=self.call, what=which, wrong=self.mistakes(which), **TOLERANCE
        )

    def mistakes(self, which: str) -> list[Wrong]:
        # A None value marks a mistake these shapes cannot show (a transpose of a non-square).
        return [wrong for wrong in self._mistakes(which) if wrong.value is not None]

    def _mistakes(self, which: str) -> list[Wrong]:
        x, W, grad_out = self.x, self.W, self.grad_out
        n, n_in, n_out = x.shape[0], x.shape[1], W.shape[0]
        grad_W = self.expected[1]
        if which == "grad_x":
            other_layout = (
                "that is the formula of the other layout: with W of shape (out, in), "
                "grad_x = grad_out @ W, which has x's shape (N, in)."
            )
            return [
                Wrong(lambda got: tuple(got.shape) == (n, n_out) != (n, n_in), other_layout),
                Wrong(grad_out @ W.T if n_in == n_out else None, other_layout),
            ]
        if which == "grad_W":
            transposed = (
                "that is grad_W transposed: x.T @ grad_out belongs to the layout y = x @ W "
                "with W of shape (in, out). Here W has shape (out, in), and so does its "
                "gradient: grad_out.T @ x."
            )
            return [
                Wrong(lambda got: tuple(got.shape) == (n_in, n_out) != (n_out, n_in), transposed),
                Wrong(grad_W.T if n_in == n_out else None, transposed),
                Wrong(
                    grad_W / n,
                    f"that is the average over the {n} samples. Every sample used W (fan-out), "
                    f"so their contributions add up: grad_out.T @ x sums them.",
                ),
            ]
        return [
            Wrong(
                grad_out,
                "that is grad_out itself, with the batch's shape (N, out). b has shape (out,) "
                "and so does its gradient: b was broadcast to every row, so sum grad_out over "
                "the rows.",
            ),
            Wrong(
                grad_out.mean(dim=0),
                "that is the mean over the rows. Every row used b, and each use adds its "
                "contribution: sum over the rows, do not average.",
            ),
            Wrong(
                summed_everything(grad_out, self.expected[2]),
                "that is grad_out summed over everything. Sum over the rows only (dim=0): "
                "each output unit has its own bias. (t.sum(dim=()) sums over everything too.)",
            ),
        ]


@pytest.mark.parametrize("which", ["grad_x", "grad_W", "grad_b"])
def test_linear_backward_matches_autograd(rng, which):
    for _ in range(3):
        Layer.random(rng).check(which)


@pytest.mark.parametrize("which", ["grad_x", "grad_W", "grad_b"])
def test_linear_backward_of_a_square_layer_is_not_transposed(rng, which):
    # With in == out every shape fits, so only the values tell W from W.T.
    for _ in range(2):
        Layer.random(rng, square=True).check(which)


def test_linear_backward_of_a_single_sample_keeps_the_batch_dimension(rng):
    layer = Layer(rng, 1, 3, 2)
    for which in ("grad_x", "grad_W", "grad_b"):
        layer.check(which)


def test_each_gradient_has_its_tensors_shape(rng):
    layer = Layer.random(rng)
    for name, got, tensor in zip(
        ("grad_x", "grad_W", "grad_b"), layer.run(), (layer.x, layer.W, layer.b)
    ):
        require(
            got.shape == tensor.shape,
            f"Called {layer.call}. {name} has shape {shape_text(got.shape)}, expected "
            f"{shape_text(tensor.shape)}: a gradient has the shape of the tensor it belongs "
            f"to, whatever the batch size."
            + (" This one is transposed." if got.shape == tensor.shape[::-1] else ""),
        )


# --- layer_twice_backward --------------------------------------------------------------------


class TwiceApplied:
    """y = layer(layer(x)) with one W and b; autograd's gradients, per use and in total."""

    def __init__(self, rng):
        n, d = rng.randint(1, 3), rng.randint(2, 3)
        self.x, self.W = random_tensor(rng, (n, d)), random_tensor(rng, (d, d))
        self.b, self.grad_out = random_tensor(rng, (d,)), random_tensor(rng, (n, d))
        self.call = (
            f"layer_twice_backward(x, W, b, grad_out) with x of shape {shape_text(self.x.shape)}, "
            f"W {shape_text(self.W.shape)}, b {shape_text(self.b.shape)}"
        )
        # Each use gets its own copy of W and b, so autograd reports each contribution apart.
        W1, W2, b1, b2 = (t.clone().requires_grad_() for t in (self.W, self.W, self.b, self.b))
        h = self.x @ W1.T + b1
        loss = ((h @ W2.T + b2) * self.grad_out).sum()  # d loss / d y is grad_out
        self.first = torch.autograd.grad(loss, (W1, b1), retain_graph=True)
        self.second = torch.autograd.grad(loss, (W2, b2))
        # What walking back through the second use with x as its input (instead of h) gives.
        self.second_from_x = self.grad_out.T @ self.x

    def run(self):
        with backward_passes() as engine:
            result = kata.layer_twice_backward(self.x, self.W, self.b, self.grad_out)
        require(
            engine.passes == 0,
            f"Called {self.call}. Autograd ran {engine.passes} backward pass(es) inside it: "
            f"write this backward by hand, with linear_backward.",
        )
        require(
            isinstance(result, tuple)
            and len(result) == 2
            and all(isinstance(t, torch.Tensor) for t in result),
            f"Called {self.call}. It returned {type(result).__name__}; expected a tuple of "
            f"two tensors (grad_W, grad_b).",
        )
        return result

    def check(self) -> None:
        grad_W, grad_b = self.run()
        (first_W, first_b), (second_W, second_b) = self.first, self.second
        only_one = (
            "that is the contribution of only the {} use. W and b were used twice, and "
            "fan-out sums: add the contributions of both applications."
        )
        check_value(
            grad_W,
            first_W + second_W,
            call=self.call,
            what="grad_W",
            wrong=[
                Wrong(second_W, only_one.format("second (outer)")),
                Wrong(first_W, only_one.format("first (inner)")),
                Wrong(
                    first_W + self.second_from_x,
                    "the second application's input was h = layer(x), not x: its "
                    "contribution to grad_W is grad_out.T @ h.",
                ),
                Wrong(
                    (first_W + second_W).T,
                    "that is grad_W transposed: W has shape (out, in), and so does each "
                    "contribution, grad_out.T @ input.",
                ),
            ],
            **TOLERANCE,
        )
        check_value(
            grad_b,
            first_b + second_b,
            call=self.call,
            what="grad_b",
            wrong=[
                Wrong(second_b, only_one.format("second (outer)")),
                Wrong(first_b, only_one.format("first (inner)")),
                Wrong(
                    summed_everything(first_b + second_b, first_b + second_b),
                    "grad_b is a single total: sum each contribution over the rows only "
                    "(dim=0), since each output unit has its own bias.",
                ),
                Wrong(
                    lambda got: got.dim() == 2,
                    "grad_b has the batch's shape: b has shape (d,), so sum each "
                    "contribution over the rows.",
                ),
            ],
            **TOLERANCE,
        )


def test_a_layer_used_twice_sums_both_contributions(rng):
    for _ in range(4):
        TwiceApplied(rng).check()


# --- contracts the stub states (issue 16) -----------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_sum_to_shape_keeps_every_floating_dtype(dtype, rng):
    lead = rng.randint(1, 3)
    grad = torch.randint(-3, 4, (lead, 3, 4)).to(dtype)  # whole numbers: every sum is exact
    shape = (3, 1)
    expected = grad.double().sum(dim=0).sum(dim=1, keepdim=True)
    call = f"sum_to_shape(grad, {shape}) with grad of shape {tuple(grad.shape)} in {dtype}"
    result = kata.sum_to_shape(grad, shape)
    require(
        isinstance(result, torch.Tensor) and result.dtype == dtype,
        f"Called {call}. The result's dtype is {getattr(result, 'dtype', type(result))}, "
        f"expected {dtype}: sum keeps a floating dtype; do not convert the gradient.",
    )
    check_value(result, expected, call=call, what="The result")

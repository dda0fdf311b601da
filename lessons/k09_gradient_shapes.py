"""Kata 9's teaching unit: gradients have the shape of what they differentiate."""

from coach.core.lesson import Fact, Lesson, Question, Quiz, code

HINTS = (
    """
        What shape does a gradient have? And where a tensor was used more than once (in two
        layers, or broadcast over a batch), how do the gradients of its uses combine?
    """,
    """
        A gradient has the shape of its tensor, and a tensor used several times gets the sum
        of what each use sends back. Broadcasting is such a reuse: it added leading
        dimensions and stretched size-1 ones, so undoing it means summing over exactly those.
        linear_backward follows from the shapes alone: only one product of the gradient and
        each operand has the right shape. layer_twice_backward walks back through the second
        application first; W and b got a share from each application.
    """,
    """
        sum_to_shape: first sum over the grad.dim() - len(shape) leading dimensions, then over
        every dimension where `shape` has a 1 but grad does not, with keepdim=True; skip a
        sum whose dims would be empty (sum(dim=()) sums over everything). linear_backward:
        grad_out is (N, out), W is (out, in), x is (N, in); grad_b is grad_out summed over the
        rows. layer_twice_backward: compute h first; the second application's input is h.
    """,
    """
        Nearly the code of layer_twice_backward:

            h = x @ W.T + b
            grad_h, grad_W_second, grad_b_second = linear_backward(h, W, b, grad_out)
            _, grad_W_first, grad_b_first = linear_backward(x, W, b, ...)
            return ...   # W and b were used twice: what do their two parts add up to?

        linear_backward: grad_out @ W, grad_out.T @ x, grad_out.sum(dim=0).
    """,
)

QUIZ = Quiz(
    setup=code("""
            torch.manual_seed(0)
            x = torch.randn(8, 3)
            W = torch.randn(2, 3, requires_grad=True)
            b = torch.zeros(2, requires_grad=True)
        """),
    questions=(
        Question(
            "k09_bias_grad_value",
            "y = x @ W.T + b has shape (8, 2); loss = y.sum(). b has shape (2,). What is "
            "b.grad[0]?",
            code("""
                    (x @ W.T + b).sum().backward()
                    print("b.grad:", b.grad, "shape", tuple(b.grad.shape))
                    result = b.grad[0].item()
                """),
            "8.0: b was broadcast to all 8 rows, each row's output sends back a 1, and the "
            "8 contributions add up. b.grad has b's shape (2,), not the batch's (8, 2).",
            claim=8.0,
        ),
        Question(
            "k09_used_twice",
            "w = 3.0 is used twice: y = (w * 2.0) * w. What is w.grad?",
            code("""
                    w = torch.tensor(3.0, requires_grad=True)
                    y = (w * 2.0) * w
                    y.backward()
                    result = w.grad.item()
                """),
            "12.0: each use sends back 2 * w = 6, and the two add up (the derivative of "
            "2w**2 is 4w). Count only one use and you get 6.",
            claim=12.0,
        ),
        Question(
            "k09_column_bias",
            "c has shape (3, 1) and is broadcast across 4 columns: (torch.ones(3, 4) + "
            "c).sum().backward(). What is c.grad[0, 0]?",
            code("""
                    c = torch.zeros(3, 1, requires_grad=True)
                    (torch.ones(3, 4) + c).sum().backward()
                    print("c.grad shape:", tuple(c.grad.shape))
                    result = c.grad[0, 0].item()
                """),
            "4.0: each element of c was stretched over 4 columns, so 4 ones come back and "
            "are summed. c.grad keeps c's shape (3, 1).",
            claim=4.0,
        ),
        Question(
            "k09_sum_empty_dims",
            "torch.ones(2, 3).sum(dim=()). What does an empty tuple of dimensions sum over?",
            "result = torch.ones(2, 3).sum(dim=()).item()",
            "6.0: an empty dim tuple means every dimension, not none of them. A sum_to_shape "
            "that has nothing to reduce must skip the sum.",
            claim=6.0,
        ),
    ),
)


def graph_views(module) -> list:
    """The graph of a layer used twice, with the learner's grad_W beside autograd's."""
    import torch

    from coach.runtime import graphs

    x = torch.tensor([[1.0, -1.0]])
    W = torch.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True)
    b = torch.tensor([0.1, -0.2], requires_grad=True)
    h = x @ W.T + b
    y = h @ W.T + b
    grad_out = torch.ones(1, 2)
    (expected_W, _) = torch.autograd.grad(y.sum(), (W, b), retain_graph=True)  # grad_out: ones
    call = "layer_twice_backward(x, W, b, grad_out) with grad_out = ones"
    with graphs.learner_code(module, call):
        got = module.layer_twice_backward(x, W.detach(), b.detach(), grad_out)
    grad_W = graphs.require_tensor(got[0] if isinstance(got, tuple) else got, f"{call}'s grad_W")

    def rounded(tensor):
        return [[round(value, 4) for value in row] for row in tensor.tolist()]

    return [
        graphs.GraphView(
            "y = layer(layer(x)), layer(z) = z @ W.T + b, as autograd records it",
            graphs.walk(y.grad_fn, {"y": y, "h": h, "W": W, "b": b}),
            [
                "W's AccumulateGrad is reached along two paths, one per application, and so is "
                "b's:",
                "fan-out. Autograd adds what arrives along each path; a backward by hand must "
                "add them too.",
                f"autograd's W.grad = {rounded(expected_W)}",
                f"your grad_W       = {rounded(grad_W)}",
            ],
        )
    ]


FACTS = (
    Fact(
        "Within one backward pass, autograd adds up what every use of a value sends back before "
        "passing the value's gradient on, for a non-leaf too: h's hook sees one gradient, 3 + 5.",
        code("""
            x = torch.tensor(2.0, requires_grad=True)
            h = x * 1
            seen = []
            h.register_hook(lambda grad: seen.append(grad.item()))
            (h * 3 + h * 5).backward()
            result = seen == [8.0] and x.grad.item() == 8.0
        """),
        outcome=True,
    ),
)


LESSON = Lesson(
    title="Gradients take their tensor's shape",
    concept="fan-out and broadcasting sum; a linear layer's backward by hand",
    source="CS231n notes on backprop (fan-out, broadcasting); PyTorch Autograd mechanics",
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
    # by hand, by formula: with inputs that require grad the gradients are differentiable too
    keeps_graph=("sum_to_shape", "linear_backward", "layer_twice_backward"),
    facts=FACTS,
)

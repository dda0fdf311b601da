"""Kata 13's teaching unit: gradients of gradients."""

from coach.core.lesson import YES_NO, Fact, Lesson, Question, Quiz, code

HINTS = (
    """
        To differentiate a gradient, autograd must have recorded how the gradient itself was
        computed. Does it do that by default? What does the first gradient's grad_fn say?
    """,
    """
        By default a gradient comes out as a constant: its computation is not recorded.
        Asking for the graph of the gradient makes the gradient differentiable, so a second
        walk from it gives the second derivative. A Hessian-vector product is the gradient of
        (gradient . v): one scalar, one more walk, and H is never formed. The gradient
        penalty differentiates the critic's scores with respect to x, keeps that gradient
        differentiable, and takes each sample's norm.
    """,
    """
        The tools: torch.autograd.grad(..., create_graph=True) records the gradient's own
        graph; a second torch.autograd.grad differentiates it. Work on your own x
        (x.detach().requires_grad_()). gradient_penalty: the gradient of critic(x).sum() has
        one row per sample, (n, d); its norm along dim 1; return .item() only where a float
        is asked for, at the very end.
    """,
    """
        Nearly the code of gradient_penalty:

            x = x.detach().requires_grad_()
            (gradients,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
            return ((gradients.norm(dim=...) - 1) ** 2)...

        second_derivative: (first,) = torch.autograd.grad(f(x), x, create_graph=True), then
        torch.autograd.grad(first, x).
    """,
)

QUIZ = Quiz(
    setup="x = torch.tensor(1.0, requires_grad=True)",
    questions=(
        Question(
            "k13_backward_twice",
            "y = x**3 at x = 1. y.backward(create_graph=True), then x.grad.backward(). x.grad?",
            code("""
                y = x**3
                y.backward(create_graph=True)
                x.grad.backward()
                result = x.grad.item()
            """),
            "9.0: the first backward() left dy/dx = 3 in x.grad, and the second one added "
            "the second derivative 6 on top, as backward() always adds. x.grad holds the 6 "
            "alone only if it is cleared between the passes (g = x.grad, x.grad = None, then "
            "g.backward()).",
            claim=9.0,
        ),
        Question(
            "k13_without_create_graph",
            "(g,) = torch.autograd.grad(x**3, x), with no create_graph; then "
            "torch.autograd.grad(g, x). What happens?",
            code("""
                (g,) = torch.autograd.grad(x**3, x)
                (second,) = torch.autograd.grad(g, x)
                result = second.item()
            """),
            "It raises RuntimeError: 'element 0 of tensors does not require grad and does not "
            "have a grad_fn'. Without create_graph the gradient is a plain number to autograd, "
            "with no record of how it depends on x.",
            claim=RuntimeError,
        ),
        Question(
            "k13_gradient_has_a_graph",
            "The same first gradient, but with create_graph=True. Does g require grad?",
            code("""
                (g,) = torch.autograd.grad(x**3, x, create_graph=True)
                result = g.requires_grad
            """),
            "Yes: g = 3x**2 now has a grad_fn (the backward pass, recorded), so it can be "
            "differentiated again: torch.autograd.grad(g, x) gives 6x = 6.",
            claim=True,
            kind=YES_NO,
        ),
        Question(
            "k13_linear_has_no_second",
            "And for y = 3 * x, with create_graph=True: does the gradient require grad?",
            code("""
                (g,) = torch.autograd.grad(3 * x, x, create_graph=True)
                result = g.requires_grad
            """),
            "No: the backward formula of 3 * x multiplies the incoming gradient by the "
            "constant 3 and uses nothing that requires grad, so create_graph has nothing to "
            "record, and torch.autograd.grad(g, x) would raise. It is the formula that counts, "
            "not the maths: x**1 also has the constant derivative 1, yet its gradient requires "
            "grad, because pow's formula uses x.",
            claim=False,
            kind=YES_NO,
        ),
        Question(
            "k13_hessian_vector",
            "f(x) = x0**2 * x1 at x = (1, 2), v = (1, 0). H = [[2 x1, 2 x0], [2 x0, 0]]. "
            "The second entry of H v?",
            code("""
                x = torch.tensor([1.0, 2.0], requires_grad=True)
                v = torch.tensor([1.0, 0.0])
                (g,) = torch.autograd.grad(x[0] ** 2 * x[1], x, create_graph=True)
                (hv,) = torch.autograd.grad(g @ v, x)
                result = hv[1].item()
            """),
            "2.0: H = [[4, 2], [2, 0]], so H v = (4, 2). Two backward passes gave it, the "
            "gradient g and then the gradient of g . v, and H itself was never built.",
            claim=2.0,
        ),
    ),
)


def graph_views(module) -> list:
    """The graph `make graph` prints and `make plots` draws, from the learner's module."""
    import torch

    from coach.runtime import graphs

    class Critic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([0.5, -1.0]))

        def forward(self, x):
            return torch.tanh(x @ self.w)

    critic = Critic()
    x = torch.tensor([[1.0, 2.0], [-0.5, 0.3]])
    call = "gradient_penalty(critic, x) with critic(x) = tanh(x @ w)"
    with graphs.learner_code(module, call):
        penalty = module.gradient_penalty(critic, x)
    graphs.require_grad_fn(penalty, f"{call}'s result")
    return [
        graphs.GraphView(
            f"penalty = {call}",
            graphs.walk(penalty.grad_fn, {"penalty": penalty, "w": critic.w}),
            [
                "TanhBackwardBackward0 is tanh's backward pass, recorded as a graph because",
                "the gradient was taken with create_graph=True: penalty.backward() walks",
                "through it into w. (The leaf of shape (2, 2) is the function's own copy of x.)",
            ],
        )
    ]


FACTS = (
    Fact(
        "Without create_graph=True, differentiating the first gradient raises; it does not give 0.",
        code("""
            x = torch.tensor(1.0, requires_grad=True)
            (g,) = torch.autograd.grad(x**3, x)
            torch.autograd.grad(g, x)
        """),
        outcome=RuntimeError,
        message="does not require grad and does not have a grad_fn",
    ),
    Fact(
        "A detached first gradient raises too when differentiated; it does not give 0.",
        code("""
            x = torch.tensor(1.0, requires_grad=True)
            (g,) = torch.autograd.grad(x**3, x, create_graph=True)
            torch.autograd.grad(g.detach(), x)
        """),
        outcome=RuntimeError,
        message="does not require grad and does not have a grad_fn",
    ),
    Fact(
        "A first gradient wiped in place (x.grad.zero_()) before the second pass gives 0.",
        code("""
            x = torch.tensor(1.0, requires_grad=True)
            (x**3).backward(create_graph=True)
            x.grad.zero_()
            x.grad.backward()
            result = x.grad.item()
        """),
        outcome=0.0,
    ),
    Fact(
        "A rebuilt first gradient differentiated with materialize_grads=True gives 0, and "
        "with allow_unused=True gives None.",
        code("""
            x = torch.tensor(1.0, requires_grad=True)
            (g,) = torch.autograd.grad(x**3, x, create_graph=True)
            rebuilt = g.detach().requires_grad_()
            (zero,) = torch.autograd.grad(rebuilt * 1, x, materialize_grads=True)
            (none,) = torch.autograd.grad(rebuilt * 1, x, allow_unused=True)
            result = zero.item() == 0.0 and none is None
        """),
        outcome=True,
    ),
    Fact(
        "Cleared between the passes, .grad holds the second derivative alone: 6 for x**3 at 1.",
        code("""
            x = torch.tensor(1.0, requires_grad=True)
            (x**3).backward(create_graph=True)
            g = x.grad
            x.grad = None
            g.backward()
            result = x.grad.item()
        """),
        outcome=6.0,
    ),
    Fact(
        "With create_graph=True, the gradient of 3 * x does not require grad, but that of x**1 "
        "does (pow's formula uses x), and its own gradient is 0.",
        code("""
            x = torch.tensor(1.0, requires_grad=True)
            (of_3x,) = torch.autograd.grad(3 * x, x, create_graph=True)
            (of_x1,) = torch.autograd.grad(x**1, x, create_graph=True)
            (second,) = torch.autograd.grad(of_x1, x)
            result = (of_3x.requires_grad, of_x1.requires_grad, second.item())
        """),
        outcome=(False, True, 0.0),
    ),
)


LESSON = Lesson(
    title="Gradients of gradients",
    concept="create_graph: second derivatives, H v, a gradient penalty",
    source="PyTorch docs: torch.autograd.grad (create_graph); WGAN-GP (Gulrajani et al. 2017)",
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
    returns_gradients=("hessian_vector_product",),
    facts=FACTS,
)

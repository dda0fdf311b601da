"""Kata 13's teaching unit: gradients of gradients."""

from coach.core.lesson import YES_NO, Lesson, Question, Quiz, code

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
            "the second derivative 6 on top, as backward() always adds. .grad never holds a "
            "second derivative on its own.",
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
            "No: the derivative 3 does not depend on x at all, so even create_graph records "
            "nothing for it. Its second derivative is 0, and torch.autograd.grad(g, x) would "
            "raise.",
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


LESSON = Lesson(
    title="Gradients of gradients",
    concept="create_graph: second derivatives, H v, a gradient penalty",
    source="PyTorch docs: torch.autograd.grad (create_graph); WGAN-GP (Gulrajani et al. 2017)",
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
)

"""Kata 11's teaching unit: a custom torch.autograd.Function."""

from coach.core.lesson import YES_NO, Fact, Lesson, Question, Quiz, code

HINTS = (
    """
        forward runs before backward, in a different call. How does backward learn the x
        that forward saw? And is backward asked for dy/dx, or for something else?
    """,
    """
        forward computes the value and leaves notes for backward in ctx; backward turns
        grad_output (dL/dy) into one gradient per input of forward, dL/dx = grad_output times
        dy/dx. Autograd calls both: you only call Softplus.apply(x). Tensors go through
        ctx's saving mechanism; a plain number (scale) is kept as an attribute on ctx. An
        input that needs no gradient (scale) still gets an entry: None.
    """,
    """
        The tools: ctx.save_for_backward(...) in forward, ctx.saved_tensors in backward (a
        tuple, even for one tensor: unpack it). softplus is log(1 + exp(x)) (torch.log1p
        exists); its derivative is the sigmoid of x. For ScaledProduct each input's gradient
        holds the OTHER factor: d(scale * a * b)/da = scale * b.
    """,
    """
        Nearly the code:

            ctx.save_for_backward(x)                  # Softplus.forward, then the value
            (x,) = ctx.saved_tensors                  # Softplus.backward
            return grad_output * torch.sigmoid(x)

            a, b = ctx.saved_tensors                  # ScaledProduct.backward
            return grad_output * ctx.scale * ..., grad_output * ctx.scale * ..., None
    """,
)

QUIZ = Quiz(
    setup=code("""
        class Square(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, grad_output):
                (x,) = ctx.saved_tensors
                return grad_output * 2 * x
    """),
    questions=(
        Question(
            "k11_square_grad",
            "x = 3.0, y = Square.apply(x), then (5 * y).backward(). What is x.grad?",
            code("""
                x = torch.tensor(3.0, requires_grad=True)
                y = Square.apply(x)
                (5 * y).backward()
                result = x.grad.item()
            """),
            "30.0: the multiplication by 5 hands backward grad_output = 5, and backward "
            "returns grad_output * 2x = 5 * 6.",
            claim=30.0,
        ),
        Question(
            "k11_forgot_grad_output",
            "The same, but this backward returns 2 * x and forgets grad_output. x.grad?",
            code("""
                class Forgetful(Square):
                    @staticmethod
                    def backward(ctx, grad_output):
                        (x,) = ctx.saved_tensors
                        return 2 * x

                x = torch.tensor(3.0, requires_grad=True)
                (5 * Forgetful.apply(x)).backward()
                result = x.grad.item()
            """),
            "6.0: dy/dx alone. The factor 5 that grad_output carried is lost, so the chain "
            "rule stops at this node. The right answer is 30.",
            claim=6.0,
        ),
        Question(
            "k11_missing_none",
            "A Function forward(ctx, x, power) whose backward returns only the gradient for "
            "x. What does backward() do?",
            code("""
                class Power(torch.autograd.Function):
                    @staticmethod
                    def forward(ctx, x, power):
                        ctx.save_for_backward(x)
                        ctx.power = power
                        return x**power

                    @staticmethod
                    def backward(ctx, grad_output):
                        (x,) = ctx.saved_tensors
                        return grad_output * ctx.power * x ** (ctx.power - 1)

                x = torch.tensor(2.0, requires_grad=True)
                Power.apply(x, 3).backward()
                result = x.grad.item()
            """),
            "It raises RuntimeError: 'returned an incorrect number of gradients (expected 2, "
            "got 1)'. backward owes one entry per input of forward: return (..., None), with "
            "None for the int power.",
            claim=RuntimeError,
        ),
        Question(
            "k11_changed_after_forward",
            "y = Square.apply(x) with x = 3; then x += 1 under no_grad; then y.backward(). "
            "What happens?",
            code("""
                x = torch.tensor(3.0, requires_grad=True)
                y = Square.apply(x)
                with torch.no_grad():
                    x += 1
                y.backward()
                result = x.grad.item()
            """),
            "It raises RuntimeError: x was saved with save_for_backward at version 0, the "
            "in-place += made it version 1, and autograd refuses to compute a gradient from "
            "a value that is not the one forward saw. Kept as ctx.x = x instead, backward "
            "would silently return 8.0, the gradient at x = 4.",
            claim=RuntimeError,
        ),
        Question(
            "k11_gradcheck_float32",
            "Does gradcheck pass torch.sin, whose backward is right, at a float32 x?",
            code("""
                x = torch.tensor([0.3, -1.2, 2.0], requires_grad=True)
                result = torch.autograd.gradcheck(torch.sin, (x,), raise_exception=False)
            """),
            "No (and it warns): gradcheck's finite differences use a step of 1e-6, and in "
            "float32 both the step and sin's values are rounded to about 7 digits, so its "
            "numerical derivatives come out 1 to 10% off (0.3278 where cos(-1.2) = 0.3624), "
            "far outside its relative tolerance of 1e-3. Run gradcheck on float64 inputs.",
            claim=False,
            kind=YES_NO,
        ),
    ),
)


def _view(module, heading: str, build, notes: list[str]):
    from coach.runtime import graphs as g

    with g.learner_code(module, heading):
        names = build(g)
    y = g.require_grad_fn(names["y"], heading)
    return g.GraphView(heading, g.walk(y.grad_fn, names), notes)


def graph_views(module) -> list:
    """The graphs `make graph` prints and `make plots` draws, from the learner's module."""

    def softplus(g):
        x = g.leaf(0.5)
        return {"y": module.Softplus.apply(x), "x": x}

    def scaled_product(g):
        a, b = g.leaf(2.0), g.leaf(-1.5)
        return {"y": module.ScaledProduct.apply(a, b, 3.0), "a": a, "b": b}

    return [
        _view(
            module,
            "y = Softplus.apply(x) with x = 0.5",
            softplus,
            [
                "Your whole forward is ONE node: autograd recorded none of the operations",
                "inside it. backward() calls your backward there, then hands x its gradient.",
            ],
        ),
        _view(
            module,
            "y = ScaledProduct.apply(a, b, 3.0) with a = 2, b = -1.5",
            scaled_product,
            [
                "The node has an edge to a and one to b, and none to scale: a float is no",
                "tensor, so nothing can receive its gradient. backward's None fills its place.",
            ],
        ),
    ]


FACTS = (
    Fact(
        "Differentiating torch.special.zeta in its first argument raises: its derivative is "
        "not implemented.",
        code("""
            x = torch.tensor(2.0, requires_grad=True)
            torch.special.zeta(x, torch.tensor(1.0)).backward()
        """),
        outcome=NotImplementedError,
        message="the derivative for 'zeta' is not implemented",
    ),
    Fact(
        "gradcheck's step is 1e-6 and its relative tolerance 1e-3.",
        code("""
            import inspect
            defaults = inspect.signature(torch.autograd.gradcheck).parameters
            result = (defaults["eps"].default, defaults["rtol"].default) == (1e-6, 1e-3)
        """),
        outcome=True,
    ),
    Fact(
        "In float32, gradcheck's numerical derivatives of sin at 0.3, -1.2 and 2.0 are 1 to "
        "10% off cos: 0.3278 where cos(-1.2) = 0.3624.",
        code("""
            import re
            import warnings
            x = torch.tensor([0.3, -1.2, 2.0], requires_grad=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    torch.autograd.gradcheck(torch.sin, (x,))
                except RuntimeError as error:  # torch's GradcheckError
                    numerical = str(error).split("analytical")[0]
            found = [float(n) for n in re.findall(r"-?[0-9]+[.][0-9]+", numerical)]
            numbers = torch.tensor([n for n in found if n != 0.0])
            off = (numbers / torch.cos(x.detach()) - 1).abs()
            result = round(numbers[1].item(), 4), bool(((off > 0.01) & (off < 0.10)).all())
        """),
        outcome=(0.3278, True),
    ),
)


LESSON = Lesson(
    title="A custom autograd Function",
    concept="forward, backward, save_for_backward; checked with gradcheck",
    source='PyTorch docs: "Extending torch.autograd", torch.autograd.Function, gradcheck',
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
    facts=FACTS,
)

"""Kata 1's teaching unit: polynomial gradient."""

from coach.core.lesson import Lesson, Question, Quiz, code

HINTS = (
    """
        Autograd can only differentiate what it watched happen. How does torch know it
        should watch x? Which single call turns y into dy/dx, and where does the answer land?
    """,
    """
        polynomial(x) is ordinary arithmetic: **, *, + and - on tensors are all recorded.
        Stay with tensor operations inside it: .item(), float() or the math module would
        step outside the graph. value_and_grad needs a tensor that requires grad, built from
        a float: autograd refuses integer tensors.
    """,
    """
        value_and_grad in four moves: make x as a float tensor that requires grad, compute
        y with polynomial, call backward() on y, read x.grad. Hand both back as plain floats
        (.item()). Check yourself: at x = 3, y = 31 and dy/dx = 27 + 12 - 5 = 34.
    """,
    """
        Nearly the code of value_and_grad:

            x = torch.tensor(float(x0), requires_grad=True)
            y = polynomial(x)
            y.backward()
            # return y and x.grad, each turned into a float

        polynomial(x) is the docstring's formula written with x, in one return line.
    """,
)

QUIZ = Quiz(
    setup=code("""
            x = torch.tensor(3.0, requires_grad=True)
            y = x**3 + 2*x**2 - 5*x + 1
        """),
    questions=(
        Question(
            "grad_before_backward",
            "y is built, but backward() has not run yet. What is x.grad?",
            "result = x.grad",
            "None. Building y only records the steps; nothing is differentiated until "
            "backward() runs, and until then .grad holds nothing at all, not even 0.",
            claim=None,
        ),
        Question(
            "y_at_3",
            "What is y?",
            "result = y.item()",
            "31.0: 27 + 18 - 15 + 1. The forward pass is plain arithmetic; autograd "
            "only writes down what was done.",
            claim=31.0,
        ),
        Question(
            "grad_at_3",
            "After y.backward(), what is x.grad?",
            "y.backward()\nresult = x.grad.item()",
            "34.0: dy/dx = 3x**2 + 4x - 5 = 27 + 12 - 5 at x = 3. backward() applied the "
            "chain rule to every recorded step and put the sum in x.grad.",
            claim=34.0,
        ),
        Question(
            "integer_leaf",
            "Start again from the integer 3 instead of 3.0. What happens?",
            "x = torch.tensor(3, requires_grad=True)\nresult = x",
            "It raises RuntimeError: only floating-point (and complex) tensors can require "
            "gradients. torch.tensor(3) holds an integer, and integers have no small steps "
            "to take a derivative along.",
            claim=RuntimeError,
        ),
    ),
)


def graph_views(module) -> list:
    """The graphs `make graph` prints and `make plots` draws, from the learner's module."""
    from coach.runtime import graphs as g

    x = g.leaf(3.0)
    with g.learner_code(module, "polynomial(x)"):
        y = module.polynomial(x)
    g.require_grad_fn(y, "polynomial(x)")
    root = g.walk(y.grad_fn, {"y": y, "x": x})
    return [
        g.GraphView(
            "y = polynomial(x) at x = 3",
            root,
            [
                "Every use of x in your polynomial starts a path that ends in the same "
                "AccumulateGrad:",
                "backward() adds up what arrives there along every path, and that sum is x.grad.",
            ],
        )
    ]


LESSON = Lesson(
    title="Polynomial gradient",
    concept="requires_grad, backward() and .grad",
    source="Seed notebook, Exercise 1",
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
)

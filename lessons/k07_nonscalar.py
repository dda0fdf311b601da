"""Kata 7's teaching unit: non-scalar outputs and vector-Jacobian products."""

from coach.core.lesson import Lesson, Question, Quiz, code

HINTS = (
    """
        backward() from a vector needs a vector: one weight per output. What does it leave in
        the leaf's .grad for a given v, and which v would pick out one row of J?
    """,
    """
        Backpropagating from y with weights v leaves v^T J in the leaf's .grad, without ever
        building J. vjp is exactly that, on a leaf of your own (the caller's x keeps its flag
        and its .grad). A one-hot v (1 at i, 0 elsewhere) gives row i, so jacobian is one such
        walk per output, the rows stacked. Walking the same graph again needs it kept, and
        .grad adds up between walks. jacobian_diagonal: summing y first gives the column
        sums 1^T J, the diagonal only for an elementwise f; the whole Jacobian's diagonal is
        right for every f.
    """,
    """
        The tools: a leaf of your own is x.detach().requires_grad_(); backward() takes the
        weights as its first argument; the rows of torch.eye(m) are the one-hot vectors;
        retain_graph=True keeps the graph for the next walk; setting leaf.grad to None clears
        it; torch.stack makes the (m, n) matrix; Tensor.diagonal() reads a diagonal.
        torch.autograd.grad(y, leaf, grad_outputs=v) returns the same VJP, in a one-element
        tuple, without touching .grad.
    """,
    """
        Nearly the code of jacobian:

            leaf = x.detach().requires_grad_()
            y = f(leaf)
            rows = []
            for one_hot in torch.eye(len(y), dtype=y.dtype):
                leaf.grad = None
                y.backward(one_hot, ...)   # the same graph is walked again for the next row
                rows.append(leaf.grad)
            return ...                     # the rows as one (m, n) tensor

        vjp is the body of that loop once, with v; jacobian_diagonal is one line on jacobian.
    """,
)

QUIZ = Quiz(
    setup="x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)",
    questions=(
        Question(
            "k07_vector_backward",
            "y = x**2 is a vector of 3 numbers. What does y.backward() do?",
            "y = x**2\ny.backward()\nresult = x.grad",
            "It raises RuntimeError: grad can be implicitly created only for scalar outputs. "
            "For a vector y, backward() needs v, one weight per output: y.backward(v).",
            claim=RuntimeError,
        ),
        Question(
            "k07_weighted",
            "y = x**2, then y.backward(torch.tensor([1.0, 0.0, 10.0])). What is x.grad[2]?",
            "y = x**2\ny.backward(torch.tensor([1.0, 0.0, 10.0]))\nresult = x.grad[2]",
            "60.0: v^T J with J = diag(2x) is [1 * 2, 0 * 4, 10 * 6]. Each output's gradient is "
            "weighted by its entry of v.",
            claim=60.0,
        ),
        Question(
            "k07_cumsum_sum",
            "y = torch.cumsum(x, 0) = [x0, x0 + x1, x0 + x1 + x2], then y.sum().backward(). "
            "What is x.grad[0]?",
            "y = torch.cumsum(x, 0)\ny.sum().backward()\nresult = x.grad[0]",
            "3.0: x.grad is 1^T J = [3, 2, 1], because x0 appears in all three sums. Yet "
            "dy_i/dx_i is 1 for every i: the sum shortcut is not the elementwise derivative "
            "when f mixes elements.",
            claim=3.0,
        ),
        Question(
            "k07_softmax_sum",
            "y = torch.softmax(x, 0), then y.sum().backward(). What is the largest |x.grad|?",
            "y = torch.softmax(x, 0)\ny.sum().backward()\nresult = x.grad.abs().max()",
            "0.0: softmax's outputs always add up to 1, so their sum does not change with x "
            "and 1^T J is all zeros. Each dy_i/dx_i = s_i * (1 - s_i) is not zero at all.",
            claim=0.0,
        ),
        Question(
            "k07_second_row",
            "y = x**2, then y.backward(torch.tensor([1.0, 0.0, 0.0])) for the first row of J, "
            "then y.backward(torch.tensor([0.0, 1.0, 0.0])) for the second. What happens?",
            code("""
                    y = x**2
                    y.backward(torch.tensor([1.0, 0.0, 0.0]))
                    y.backward(torch.tensor([0.0, 1.0, 0.0]))
                    result = x.grad[1]
                """),
            "It raises RuntimeError: Trying to backward through the graph a second time. The "
            "first backward() freed the x that x**2 saved for it; pass retain_graph=True to "
            "walk the graph again.",
            claim=RuntimeError,
        ),
    ),
)


def graph_views(module) -> list:
    """The graph `make graph` prints and `make plots` draws, from the learner's jacobian()."""
    import torch

    from coach.runtime import graphs
    from coach.runtime.testing import backward_passes

    def draw(y):
        names = {"y": y}
        x = next((t for t in graphs.leaves_below(y.grad_fn) if t.shape == (3,)), None)
        if x is not None:
            names["x"] = x
        return graphs.walk(y.grad_fn, names)

    call = "jacobian(lambda x: x * x.sum(), torch.tensor([1.0, 2.0, 3.0]))"
    x = torch.tensor([1.0, 2.0, 3.0])
    with (
        graphs.learner_code(module, call),
        graphs.first_backward_pass(draw) as drawn,
        backward_passes() as engine,
    ):
        module.jacobian(lambda t: t * t.sum(), x)
    if not drawn:
        raise graphs.KataBroken(f"{call} ran no backward pass, so there is no graph to draw.")
    passes = (
        "3 backward passes, one per row, as it should"
        if engine.passes == 3
        else f"{engine.passes} backward pass(es); a 3 x 3 Jacobian takes one per row"
    )
    return [
        graphs.GraphView(
            "y = x * x.sum() at x = [1, 2, 3]: the graph your jacobian() walked first",
            drawn[0],
            [
                "Two paths lead from y down to x: one through Mul alone (y_i from x_i), one "
                "through Sum (y_i from every x_j).",
                "The Sum path is why J is not diagonal, and why x.grad after y.sum().backward() "
                "is not dy_i/dx_i.",
                f"Your jacobian ran {passes}: row i is the VJP with the one-hot v = e_i.",
            ],
        )
    ]


LESSON = Lesson(
    title="Non-scalar outputs and vector-Jacobians",
    concept="y.backward(v) computes v^T J",
    source="torch.autograd.backward docs (grad_tensors); 'A Gentle Introduction to "
    "torch.autograd'; PyTorch's Autograd mechanics note",
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
    returns_gradients=("vjp", "jacobian", "jacobian_diagonal"),
)

"""Kata 14's teaching unit: in-place edits and the version counter."""

from coach.core.lesson import Fact, Lesson, Question, Quiz, code

HINTS = (
    """
        When does an in-place edit break backward()? Ask of each operation: what does its
        derivative need? Which of exp, sin and x + 1 keeps its input, its output, or nothing?
    """,
    """
        An in-place edit breaks backward() only when it overwrites a tensor that some
        operation saved for its backward: exp needs its output, sin its input, x + 1 nothing
        at all. Autograd notices through each tensor's version counter and raises when
        backward() runs. So the experiment: a leaf of your own, a non-leaf input made from it
        (a leaf that requires grad cannot be edited in place at all), the operation, the
        edit, then backward().
    """,
    """
        The tools: x.detach().clone().requires_grad_(True) for the leaf, clone() for the input,
        add_(1) as the edit on whichever of the two `edit` names. Only backward() goes in the
        try block: a RuntimeError whose message contains "modified by an inplace operation"
        means True; anything else should propagate. softmax: shift by the max, exponentiate,
        divide by the sum, with no in-place step anywhere (no /=, no -=, no .data).
    """,
    """
        Nearly the code:

            try:
                out.sum().backward()
            except RuntimeError as error:
                if "modified by an inplace operation" in str(error):
                    return True
                raise
            return False

            exps = torch.exp(x - ...)                  # softmax
            return exps / ...
    """,
)

QUIZ = Quiz(
    setup="x = torch.tensor([0.0, 1.0], requires_grad=True)",
    questions=(
        Question(
            "inplace_exp_output",
            "y = x.exp(), then y.add_(1), then y.sum().backward(). What happens?",
            "y = x.exp()\ny.add_(1)\ny.sum().backward()\nresult = x.grad[1].item()",
            "It raises RuntimeError: exp saved its output y for backward (the derivative of "
            "exp is exp), add_ bumped y's version counter, and backward() refuses to use a "
            "saved tensor whose version changed.",
            claim=RuntimeError,
        ),
        Question(
            "inplace_exp_input",
            "h = x * 2, y = h.exp(), then h.add_(1) and y.sum().backward(). x.grad[1]?",
            code("""
                    h = x * 2
                    y = h.exp()
                    h.add_(1)
                    y.sum().backward()
                    result = x.grad[1].item()
                """),
            "14.778112: 2 * exp(2), the right gradient. exp saved its output, not its input "
            "h, and x * 2 saved only the constant 2, so editing h overwrote nothing backward "
            "needs.",
            claim=14.778112,
        ),
        Question(
            "inplace_through_detach",
            "y = x.exp(), then y.detach().zero_() and y.sum().backward(). What happens?",
            "y = x.exp()\ny.detach().zero_()\ny.sum().backward()\nresult = x.grad[1].item()",
            "It raises RuntimeError: detach() shares y's memory and its version counter, so "
            "the edit through it is seen and backward() refuses the overwritten output.",
            claim=RuntimeError,
        ),
        Question(
            "inplace_through_data",
            "y = x.exp(), then y.data.zero_() and y.sum().backward(). x.grad[1]? (The right "
            "gradient is exp(1) = 2.718.)",
            "y = x.exp()\ny.data.zero_()\ny.sum().backward()\nresult = x.grad[1].item()",
            "0.0: .data shares the memory but not the version counter, so nothing is caught; "
            "backward() multiplies by the zeroed output it saved and gives a wrong gradient "
            "without any error.",
            claim=0.0,
        ),
        Question(
            "inplace_on_a_leaf",
            "x is a leaf that requires grad. What does x.add_(1) do?",
            "x.add_(1)\nresult = x[0].item()",
            "It raises RuntimeError: 'a leaf Variable that requires grad is being used in an "
            "in-place operation'. Weights are updated in place only under torch.no_grad().",
            claim=RuntimeError,
        ),
    ),
)


def graph_views(module) -> list:
    """The learner's softmax as autograd recorded it, and whether backward could still run."""
    import torch

    from coach.runtime import graphs

    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    call = "softmax(torch.tensor([1.0, 2.0, 3.0], requires_grad=True))"
    with graphs.learner_code(module, call):
        result = module.softmax(x)
    graphs.require_grad_fn(result, f"{call}'s result")
    notes = []
    exp_nodes = [node for node in _nodes(result.grad_fn) if type(node).__name__ == "ExpBackward0"]
    for node in exp_nodes:
        try:
            node._saved_result  # noqa: B018 - reading it runs the version check
            notes.append(
                "ExpBackward0 saved exp's output; its version counter says no in-place edit "
                "has touched it since (an edit through .data would go unseen)."
            )
        except RuntimeError:
            notes.append(
                "ExpBackward0 saved exp's output, and an in-place edit has changed it since "
                "(its version counter moved): backward() will raise."
            )
    differs = _gradient_against_torch(result, x)
    if differs is not None:
        notes.append(
            f"Backward through this graph gives x.grad = {differs[0]} for the output weights "
            f"(1, -2, 0.5), where torch.softmax gives {differs[1]}: autograd did not see all "
            "of the computation. Most often the sum you divided by was taken through .data, "
            ".detach() or .item(), so backward() treats it as a constant."
        )
    view = graphs.GraphView(
        f"s = {call}",
        graphs.walk(result.grad_fn, {"s": result, "x": x}),
        notes or ["The graph below s is what backward() will walk."],
    )
    return [view]


def _gradient_against_torch(result, x) -> tuple[list, list] | None:
    """(the learner's, torch.softmax's) gradient at x for the output weights (1, -2, 0.5), when
    they differ. A correct softmax may record any sum node (SumBackward0 or SumBackward1) or
    none (exp(x - logsumexp(x)), torch.softmax itself): only the gradient tells."""
    import torch

    weights = torch.tensor([1.0, -2.0, 0.5])
    if result.shape != x.shape:
        return None  # the tests say what the shape should be
    try:
        (mine,) = torch.autograd.grad(
            result, x, grad_outputs=weights, retain_graph=True, allow_unused=True
        )
    except RuntimeError:
        return None  # an in-place edit: the ExpBackward0 note says so
    (reference,) = torch.autograd.grad(torch.softmax(x, dim=-1), x, grad_outputs=weights)
    if mine is not None and torch.allclose(mine, reference, atol=1e-6):
        return None
    shown = [0.0] * 3 if mine is None else [round(v, 4) for v in mine.tolist()]
    return shown, [round(v, 4) for v in reference.tolist()]


def _nodes(root) -> list:
    found, todo = [], [root]
    while todo:
        node = todo.pop()
        if node is None or any(node is seen for seen in found):
            continue
        found.append(node)
        todo.extend(child for child, _ in node.next_functions)
    return found


FACTS = (
    Fact(
        "A correct softmax need not record SumBackward0: e / e.sum(dim=-1, keepdim=True) "
        "records SumBackward1, and exp(s - logsumexp(s)) records no sum node at all.",
        code("""
            def names(t):
                found, todo = set(), [t.grad_fn]
                while todo:
                    node = todo.pop()
                    if node is not None:
                        found.add(type(node).__name__)
                        todo += [child for child, _ in node.next_functions]
                return found

            s = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
            e = s.exp()
            keepdim = names(e / e.sum(dim=-1, keepdim=True))
            logsumexp = names((s - s.logsumexp(dim=-1)).exp())
            result = (
                "SumBackward1" in keepdim and "SumBackward0" not in keepdim,
                any(name.startswith("Sum") for name in logsumexp),
            )
        """),
        outcome=(True, False),
    ),
    Fact(
        "Dividing by a sum taken through .detach() gives a gradient other than torch.softmax's; "
        "the correct forms give the same one.",
        code("""
            weights = torch.tensor([1.0, -2.0, 0.5])

            def gradient(softmax):
                s = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
                return torch.autograd.grad(softmax(s), s, grad_outputs=weights)[0]

            reference = gradient(lambda s: torch.softmax(s, dim=-1))
            same = [
                torch.allclose(gradient(f), reference, atol=1e-6)
                for f in (
                    lambda s: s.exp() / s.exp().sum(dim=-1, keepdim=True),
                    lambda s: (s - s.logsumexp(dim=-1)).exp(),
                    lambda s: torch.exp(s - s.max()) / torch.exp(s - s.max()).sum(),
                    lambda s: s.exp() / s.exp().sum().detach(),
                )
            ]
            result = same
        """),
        outcome=[True, True, True, False],
    ),
)


LESSON = Lesson(
    title="In-place edits and the version counter",
    concept="what autograd saves, and why .data hides edits that detach() does not",
    source="PyTorch docs, Autograd mechanics: In-place correctness checks",
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
    facts=FACTS,
)

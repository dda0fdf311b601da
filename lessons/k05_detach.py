"""Kata 5's teaching unit: stopping gradients with detach()."""

from coach.core.lesson import Lesson, Question, Quiz, code

HINTS = (
    """
        For each tensor in the chain, ask: does it remember how it was made? What do
        .requires_grad and .grad_fn say about b after detach(), and about c built from it?
    """,
    """
        detach() keeps a tensor's value and drops its history. When the chain is cut at b, c
        has no path back to a: c does not require grad, and backward() from it has nothing to
        walk. grad_of_a must see that case coming and answer None instead of crashing.
        straight_through_round wants two faces at once: the value of round(x), the gradient
        of x itself. A part that autograd cannot see changes the value but not the gradient.
    """,
    """
        chain: a is a 0-d float tensor that requires grad; b = a * 3, replaced by its
        detach() when asked; c = b ** 2 from that b. grad_of_a: backward() from c only when
        c.requires_grad is True (after detach it raises RuntimeError, "element 0 of tensors
        does not require grad"); then a.grad is a tensor (its .item()) or still None.
        straight_through_round: x plus a detached correction.
    """,
    """
        straight_through_round, nearly the code:

            return x + (<the rounded x> - x).detach()

        Its value is round(x); its gradient with respect to x is 1, because the detached
        part is a constant to autograd.
    """,
)

QUIZ = Quiz(
    setup="a = torch.tensor(2.0, requires_grad=True)",
    questions=(
        Question(
            "grad_without_detach",
            "b = a * 3, c = b**2, c.backward(). What is a.grad?",
            "b = a * 3\nc = b**2\nc.backward()\nresult = a.grad.item()",
            "36.0: dc/da = dc/db * db/da = 2b * 3 = 12 * 3.",
            claim=36.0,
        ),
        Question(
            "backward_after_detach",
            "Now b is detached before c is built. What does c.backward() do?",
            "b = (a * 3).detach()\nc = b**2\nc.backward()\nresult = a.grad",
            "It raises RuntimeError: c was built only from the detached b, so c does not "
            "require grad and has no grad_fn; there is nothing to walk back through.",
            claim=RuntimeError,
        ),
        Question(
            "grad_after_detach",
            "Same detached chain, but backward() only runs if c.requires_grad. a.grad?",
            code("""
                    b = (a * 3).detach()
                    c = b**2
                    if c.requires_grad:
                        c.backward()
                    result = a.grad
                """),
            "None: no gradient ever reached a, because the path was cut at b. None "
            "(never computed) is not the same as 0.0 (computed, and zero).",
            claim=None,
        ),
        Question(
            "round_grad",
            "x = 2.7, y = torch.round(x), y.backward(). What is x.grad?",
            code("""
                    x = torch.tensor(2.7, requires_grad=True)
                    y = torch.round(x)
                    y.backward()
                    result = x.grad.item()
                """),
            "0.0: round is flat between its jumps, so torch gives it the derivative 0 "
            "everywhere. Nothing learns through a rounding step.",
            claim=0.0,
        ),
        Question(
            "straight_through",
            "The straight-through version: y = x + (round(x) - x).detach(), which is 3.0. "
            "What is x.grad after y.backward()?",
            code("""
                    x = torch.tensor(2.7, requires_grad=True)
                    y = x + (torch.round(x) - x).detach()
                    print("y =", y.item())
                    y.backward()
                    result = x.grad.item()
                """),
            "1.0: autograd sees y = x + (a constant), so dy/dx = 1. The detached part "
            "changes the value, not the gradient.",
            claim=1.0,
        ),
    ),
)


def _chain(module, detach: bool):
    from coach.runtime import graphs as g

    call = f"chain(2.0, {detach})"
    spy = g.DetachSpy()
    with g.learner_code(module, call), spy:
        result = module.chain(2.0, detach)
    if not (isinstance(result, tuple) and len(result) == 3):
        raise g.KataBroken(f"{call} returned {type(result).__name__}; expected (a, b, c).")
    for tensor, name in zip(result, "abc"):
        g.require_tensor(tensor, f"{call}'s {name}")
    return result, spy.cuts


def graph_views(module) -> list:
    """The graphs `make graph` prints and `make plots` draws, from the learner's module."""
    from coach.runtime import graphs as g

    (a, b, c), _ = _chain(module, detach=False)
    g.require_grad_fn(c, "chain(2.0, False)'s c")
    plain = g.GraphView(
        "without detach: a, b, c = chain(2.0, False)",
        g.walk(c.grad_fn, {"c": c, "b": b, "a": a}),
        ["An unbroken path leads from c down to a: backward() from c reaches a."],
    )
    return [plain, _detached_view(module)]


def _detached_view(module):
    from coach.runtime import graphs as g

    (a, b, c), cuts = _chain(module, detach=True)
    heading = "with detach: a, b, c = chain(2.0, True)"
    names = {"c": c, "b": b, "a": a}
    if c.grad_fn is not None:  # nothing was cut: show what the learner's code really built
        return g.GraphView(heading, g.walk(c.grad_fn, names), ["c still has a grad_fn here."])
    before = next((fn for fn, out in cuts if out is b and fn is not None), None)
    b_node = g.GraphNode(
        f"b = {g.value_text(b)}", "detached: a leaf, requires_grad=False", kind="detached"
    )
    root = g.GraphNode(f"c = {g.value_text(c)}", "no grad_fn", kind="tensor", children=[b_node])
    notes = [
        "c has no grad_fn: it was computed from the detached b, a leaf that does not require grad,",
        "so autograd recorded nothing for c: the graph from c stops at the detached b.",
    ]
    if before is not None:
        cut_off = g.walk(before, {"a": a})
        cut_off.note, cut_off.cut = f"b before detach() = {g.value_text(b)}", True
        b_node.children.append(cut_off)
        notes += [
            "a's graph (a * 3) exists: chain() built it before detach(). But no edge leads "
            "into it,",
            "so nothing from c reaches it, and a gets no gradient from c.",
        ]
    return g.GraphView(heading, root, notes)


LESSON = Lesson(
    title="Stopping gradients with detach()",
    concept="cutting the graph on purpose",
    source="Seed notebook, Exercise 5",
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
)

"""Kata 2's teaching unit: backprop by hand and by autograd."""

from coach.core.lesson import Lesson, Question, Quiz, code

HINTS = (
    """
        Walk the three nodes from y back to the inputs. At each node, ask: if this input
        moved a little, how much would this node's output move? And what do you do with the
        gradient that has already come down from above?
    """,
    """
        Each node multiplies the gradient from above by its own local derivative and passes
        the product down. forward is three lines, each built from the result before it (h
        from x and w1, h_act from h and b, y from h_act and w2). autograd_grads lets autograd
        do that walk: the four inputs must be float tensors that require grad, and the four
        gradients come back as plain floats.
    """,
    """
        The two local rules for manual_grads. A product p = u * v: dp/du = v and dp/dv = u,
        the other factor. A sum s = u + v: ds/du = ds/dv = 1, so a sum passes the gradient
        from above on unchanged. Start with the gradient 1.0 at y, and compute h and h_act
        first: some local derivatives are forward values.
    """,
    """
        Nearly the code. autograd_grads:

            x = torch.tensor(float(x), requires_grad=True)   # and the same for w1, w2, b
            _, _, y = forward(x, w1, w2, b)
            y.backward()
            return {"x": x.grad.item(), ...}                 # the four gradients as floats

        manual_grads, one chain-rule step per line:

            h = x * w1
            h_act = h + b
            up_h_act = 1.0 * w2      # y = h_act * w2: the other factor
            grad_w2 = 1.0 * h_act
            up_h = up_h_act * 1.0    # h_act = h + b: a sum passes it on
            grad_b = ...             # the same rule as for h
            grad_x = up_h * ...      # h = x * w1: the other factor again
            grad_w1 = ...

        At (2, 3, -1, 0.5) you should get x: -3, w1: -2, w2: 6.5, b: -1.
    """,
)

QUIZ = Quiz(
    setup=code("""
            x = torch.tensor(2.0, requires_grad=True)
            w1 = torch.tensor(3.0, requires_grad=True)
            w2 = torch.tensor(-1.0, requires_grad=True)
            b = torch.tensor(0.5, requires_grad=True)
            h = x * w1          # 6
            h_act = h + b       # 6.5
            y = h_act * w2      # -6.5
            y.backward()
        """),
    questions=(
        Question(
            "w2_grad",
            "What is w2.grad?",
            "result = w2.grad.item()",
            "6.5: y = h_act * w2, so dy/dw2 is the other factor, h_act = 6.5.",
            claim=6.5,
        ),
        Question(
            "b_grad",
            "What is b.grad?",
            "result = b.grad.item()",
            "-1.0: the gradient arriving at h_act is w2 = -1, and the sum h + b passes it "
            "on unchanged to both of its inputs.",
            claim=-1.0,
        ),
        Question(
            "w1_grad",
            "What is w1.grad?",
            "result = w1.grad.item()",
            "-2.0: the gradient at h is -1 (from w2, through the sum); h = x * w1, so "
            "multiply by the other factor, x = 2.",
            claim=-2.0,
        ),
        Question(
            "x_grad",
            "What is x.grad?",
            "result = x.grad.item()",
            "-3.0: the same path as w1, but the other factor is now w1 = 3. x is an input, "
            "not a weight; autograd does not care, it serves every leaf that requires grad.",
            claim=-3.0,
        ),
        Question(
            "h_grad",
            "And the hidden value: what is h.grad?",
            "result = h.grad",
            "None (torch warns about it): h was computed, so it is not a leaf, and only "
            "leaves keep .grad. The -1 that passed through h was used and dropped; "
            "h.retain_grad() before backward() would keep it.",
            claim=None,
        ),
    ),
)

SEED_INPUTS = {"x": 2.0, "w1": 3.0, "w2": -1.0, "b": 0.5}  # the seed notebook's numbers


def graph_views(module) -> list:
    """The graphs `make graph` prints and `make plots` draws, from the learner's module."""
    from coach.runtime import graphs as g

    inputs = {name: g.leaf(value) for name, value in SEED_INPUTS.items()}
    with g.learner_code(module, "forward(x=2, w1=3, w2=-1, b=0.5)"):
        result = module.forward(**inputs)
    if not (isinstance(result, tuple) and len(result) == 3):
        raise g.KataBroken(f"forward() returned {type(result).__name__}; expected (h, h_act, y).")
    h, h_act, y = result
    for tensor, name in ((h, "h"), (h_act, "h_act")):
        g.require_tensor(tensor, f"forward()'s {name}")
    g.require_grad_fn(y, "forward()'s y")
    root = g.walk(y.grad_fn, {"y": y, "h_act": h_act, "h": h, **inputs})
    return [
        g.GraphView(
            "y from forward(x=2, w1=3, w2=-1, b=0.5): h = x*w1, h_act = h + b, y = h_act*w2",
            root,
            [
                "backward() starts at y's node and follows each edge down. A Mul node sends "
                "the gradient to each factor",
                "times the other factor; an Add node passes it on unchanged. Every leaf "
                "ends in AccumulateGrad.",
            ],
        )
    ]


LESSON = Lesson(
    title="Backprop by hand and by autograd",
    concept="the chain rule, node by node",
    source="Seed notebook, Exercise 2",
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
)

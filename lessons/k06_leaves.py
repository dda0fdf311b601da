"""Kata 6's teaching unit: leaves, and who gets a .grad."""

from coach.core.lesson import YES_NO, Fact, Lesson, Question, Quiz, code

HINTS = (
    """
        Only a leaf that requires grad gets a .grad. For every tensor you return, ask: was it
        made directly (a leaf), or by an operation on something that requires grad? What do
        t.is_leaf and t.grad_fn say?
    """,
    """
        make_parameter: multiplying a tensor that already requires grad makes a new,
        non-leaf tensor; the leaf is the one before the multiplication. So build the finished
        values first (drawn in the dtype, scaled) with gradients off, and switch requires_grad
        on last. No flag turns a result into a leaf. fresh_leaf: cut t's history, copy the
        values, then ask for gradients. hidden_grads: h already requires grad, inherited from
        x; what it lacks is a kept gradient, and backward() keeps one only if asked in time.
    """,
    """
        The tools: torch.randn draws in a dtype directly (dtype=); requires_grad_() switches
        the flag on in place and returns the tensor. `w.requires_grad = True` on a result
        raises RuntimeError ("you can only change requires_grad flags of leaf variables").
        detach() is a leaf with t's values that shares t's memory; clone() copies it.
        retain_grad() asks backward() to store a non-leaf's gradient in its .grad: call it
        before backward(), afterwards is too late.
    """,
    """
        Nearly the code:

            make_parameter:  return (torch.randn(shape, dtype=dtype) * scale)...  # flag last
            fresh_leaf:      return t.detach()...                                 # copy, flag

            x = torch.tensor(float(x0), requires_grad=True)
            h = x * 3
            h.retain_grad()      # before backward(): afterwards is too late
            y = h**2
            y.backward()
            return ...           # the two gradient tensors, h's first
    """,
)

QUIZ = Quiz(
    setup="torch.manual_seed(0)",
    questions=(
        Question(
            "k06_scaled_is_leaf",
            "w = torch.randn(3, requires_grad=True) * 0.01. Is w a leaf?",
            "w = torch.randn(3, requires_grad=True) * 0.01\nresult = w.is_leaf",
            "No: w is the result of `* 0.01` (its grad_fn is MulBackward0). The leaf is the "
            "tensor torch.randn made, which nobody holds.",
            claim=False,
            kind=YES_NO,
        ),
        Question(
            "k06_scaled_grad",
            "The same w, then (w * 2).sum().backward(). What is w.grad?",
            code("""
                    w = torch.randn(3, requires_grad=True) * 0.01
                    (w * 2).sum().backward()
                    result = w.grad
                """),
            "None: backward() stored the gradient in the unnamed leaf that torch.randn made and "
            "kept nothing in w, which is not a leaf. torch even warns that you are reading the "
            ".grad of a non-leaf.",
            claim=None,
        ),
        Question(
            "k06_inherited",
            "x = torch.tensor(2.0, requires_grad=True), h = x * 3. Does h require grad?",
            "x = torch.tensor(2.0, requires_grad=True)\nh = x * 3\nresult = h.requires_grad",
            "Yes: requires_grad is inherited. A floating-point result requires grad as soon "
            "as one of its inputs does, so no one has to set it on h. (A bool or integer "
            "result, such as x > 0 or x.argmax(), never does: it cannot carry a gradient.)",
            claim=True,
            kind=YES_NO,
        ),
        Question(
            "k06_set_on_result",
            "And if you set it anyway: h.requires_grad = True. What happens?",
            code("""
                    x = torch.tensor(2.0, requires_grad=True)
                    h = x * 3
                    h.requires_grad = True
                    result = h.is_leaf
                """),
            "It raises RuntimeError: you can only change requires_grad flags of leaf "
            "variables. h is the result of an operation, and no flag makes it a leaf.",
            claim=RuntimeError,
        ),
        Question(
            "k06_retained",
            "h = x * 3 at x = 2, h.retain_grad(), y = h**2, y.backward(). What is h.grad?",
            code("""
                    x = torch.tensor(2.0, requires_grad=True)
                    h = x * 3
                    h.retain_grad()
                    y = h**2
                    y.backward()
                    result = h.grad
                """),
            "12.0: dy/dh = 2h = 2 * 6. retain_grad() asked backward() to keep the gradient "
            "that passed through h; without it h.grad would be None.",
            claim=12.0,
        ),
    ),
)


FACTS = (
    Fact(
        "The result of an operation on tensors that do not require grad is a leaf, and so is "
        "the result of one run under torch.no_grad().",
        code("""
            a = torch.tensor([1.0, 2.0])
            x = torch.tensor([1.0, 2.0], requires_grad=True)
            with torch.no_grad():
                unrecorded = x * 2
            result = (a * 2).is_leaf and unrecorded.is_leaf and (x * 2).grad_fn is not None
        """),
        outcome=True,
    ),
    Fact(
        "x > 0, x.argmax() and x.long() never require grad, even when x does.",
        code("""
            x = torch.tensor([1.0, -2.0], requires_grad=True)
            result = any(t.requires_grad for t in (x > 0, x.argmax(), x.long()))
        """),
        outcome=False,
    ),
    Fact(
        "torch's optimizers refuse a non-leaf: torch.optim.SGD([w]) raises.",
        code("""
            w = torch.randn(3, requires_grad=True) * 0.01
            torch.optim.SGD([w], lr=0.1)
        """),
        outcome=ValueError,
        message="can't optimize a non-leaf Tensor",
    ),
    Fact(
        "An update written by hand fails on the None in the .grad of a non-leaf w.",
        code("""
            w = torch.randn(3, requires_grad=True) * 0.01
            (w * 2).sum().backward()
            with torch.no_grad():
                w -= 0.1 * w.grad
        """),
        outcome=TypeError,
        message="NoneType",
    ),
    Fact(
        "A float32 w.to(torch.float32) gives back w itself, still a leaf.",
        "w = torch.randn(3, requires_grad=True)\nresult = w.to(torch.float32) is w",
        outcome=True,
    ),
    Fact(
        "Without retain_grad(), backward() fills the .grad of the leaf x only, not of h.",
        code("""
            x = torch.tensor(2.0, requires_grad=True)
            h = x * 3
            (h**2).backward()
            result = h.grad is None and x.grad is not None
        """),
        outcome=True,
    ),
)


def _parameter_view(module):
    import torch

    from coach.runtime import graphs as g

    call = "make_parameter((3,), 0.01)"
    with g.learner_code(module, call):
        w = module.make_parameter((3,), 0.01)
    g.require_tensor(w, f"{call}'s result")
    if not w.requires_grad:
        raise g.KataBroken(f"{call} returned a tensor that does not require grad.")
    c = torch.tensor([1.0, 2.0, 3.0])
    loss = (w * c).sum()
    heading = f"loss = (w * c).sum(), w = {call}: where backward() stores the gradient"
    root = g.walk(loss.grad_fn, {"loss": loss, "w": w, "c": c})
    if w.is_leaf:
        notes = [
            "The edge from w's Mul node ends in AccumulateGrad for w itself: backward() "
            "stores the gradient in w.grad."
        ]
    else:
        notes = [
            f"w is not a leaf: its own node ({type(w.grad_fn).__name__}) sits between loss and "
            "the leaf that torch.randn made.",
            "backward() stores the gradient in that unnamed leaf; w.grad stays None.",
        ]
    return g.GraphView(heading, root, notes)


def _hidden_view(module):
    from coach.runtime import graphs as g

    def draw(y):
        leaves = g.leaves_below(y.grad_fn)
        is_x = len(leaves) == 1 and leaves[0].numel() == 1 and leaves[0].item() == 2.0
        x = leaves[0] if is_x else None
        tree = g.walk(y.grad_fn, {"y": y, **({"x": x} if is_x else {})})
        return tree, x

    call = "hidden_grads(2.0)"
    with g.learner_code(module, call), g.first_backward_pass(draw) as drawn:
        module.hidden_grads(2.0)
    if not drawn:
        raise g.KataBroken(f"{call} ran no backward pass, so there is no graph to draw.")
    tree, x = drawn[0]
    if x is None:
        notes = [
            "This graph does not lead from y down to one leaf x = 2: a leaf of its own was "
            "made on the way,",
            "so the path to x is cut. h = x * 3 inherits requires_grad from x; it needs no flag.",
        ]
        return g.GraphView(f"y, as {call} built it", tree, notes)
    middle = tree.children[0] if tree.children else None
    if middle is not None and middle.kind == "op" and not middle.note:
        middle.note = "h: no leaf, so no AccumulateGrad of its own"
    notes = [
        "Only x ends in AccumulateGrad: it is the one leaf, the only tensor whose .grad "
        "backward() fills unasked.",
        "h is the node in the middle: h.retain_grad() is what asks backward() to keep the "
        "gradient passing through it in h.grad too.",
    ]
    return g.GraphView(f"y = h**2, h = x * 3, as {call} built it", tree, notes)


def graph_views(module) -> list:
    """The graphs `make graph` prints and `make plots` draws, from the learner's module."""
    return [_parameter_view(module), _hidden_view(module)]


LESSON = Lesson(
    title="Leaves and retain_grad",
    concept="only leaves that require grad get .grad",
    source="PyTorch's Autograd mechanics note; torch.Tensor.is_leaf and retain_grad docs",
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
    returns_gradients=("hidden_grads",),
    facts=FACTS,
)

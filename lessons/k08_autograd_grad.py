"""Kata 8's teaching unit: torch.autograd.grad and the graph's lifetime."""

from coach.core.lesson import Lesson, Question, Quiz, code

HINTS = (
    """
        backward() writes into .grad. How would you get a gradient without touching .grad at
        all? And what does any walk of the graph do to the values the graph saved?
    """,
    """
        torch.autograd.grad walks the graph like backward() does, but returns the gradients
        (a tuple, one per input) instead of adding them into .grad. Every walk frees the
        values the graph saved unless told to keep them, so of two walks over the same graph
        only the last may free it. A parameter the loss never reaches has no gradient at all:
        autograd.grad can be told to answer None for it instead of raising.
    """,
    """
        cube_sum_grad: one autograd.grad call on the sum of x cubed, and unpack the tuple.
        two_losses_one_forward: forward once, both losses from that h; the first call passes
        retain_graph=True, the second does not. unused_parameters: one call over the whole
        list of params with allow_unused=True, and retain_graph=True (the caller walks the
        graph again afterwards); None marks a parameter not reached.
    """,
    """
        Nearly the code:

            (grad,) = torch.autograd.grad((x ** 3).sum(), x)

            (grad_a,) = torch.autograd.grad(loss_a, x, retain_graph=True)
            (grad_b,) = torch.autograd.grad(loss_b, x)          # the last walk frees it

            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            return [...]                                        # None means: not reached
    """,
)

QUIZ = Quiz(
    setup="x = torch.tensor(2.0, requires_grad=True)",
    questions=(
        Question(
            "k08_grad_value",
            "y = x ** 3, so dy/dx = 3x**2. g = torch.autograd.grad(y, x). What is g[0]?",
            "y = x ** 3\ng = torch.autograd.grad(y, x)\nresult = g[0].item()",
            "12.0: 3 * 2**2. autograd.grad returns a tuple with one gradient per input, here "
            "one: g is (tensor(12.),).",
            claim=12.0,
        ),
        Question(
            "k08_grad_leaves_dot_grad",
            "After g = torch.autograd.grad(y, x), what is x.grad?",
            "y = x ** 3\ng = torch.autograd.grad(y, x)\nresult = x.grad",
            "None: autograd.grad hands the gradient back to you and writes no .grad at all. "
            "Only backward() adds into .grad.",
            claim=None,
        ),
        Question(
            "k08_grad_twice",
            "torch.autograd.grad(y, x) twice on the same y. What happens?",
            code("""
                    y = x ** 3
                    torch.autograd.grad(y, x)
                    result = torch.autograd.grad(y, x)[0].item()
                """),
            "It raises RuntimeError: the first walk freed the values the graph saved for it "
            "(x, to differentiate x ** 3), so the second walk has nothing to work with. "
            "retain_graph=True on the first call keeps them.",
            claim=RuntimeError,
        ),
        Question(
            "k08_unused_input",
            "w = torch.tensor(1.0, requires_grad=True) plays no part in y = x ** 3. With "
            "allow_unused=True, what is w's gradient?",
            code("""
                    w = torch.tensor(1.0, requires_grad=True)
                    y = x ** 3
                    g = torch.autograd.grad(y, [x, w], allow_unused=True)
                    result = g[1]
                """),
            "None: no path leads from y to w, and None says exactly that. Without "
            "allow_unused=True the call raises RuntimeError instead.",
            claim=None,
        ),
        Question(
            "k08_zero_factor",
            "Now y = x ** 3 + 0 * w. Same call: what is w's gradient?",
            code("""
                    w = torch.tensor(1.0, requires_grad=True)
                    y = x ** 3 + 0 * w
                    g = torch.autograd.grad(y, [x, w], allow_unused=True)
                    result = g[1].item()
                """),
            "0.0: now a path leads from y to w, and the slope along it is 0. A zero gradient "
            "and no gradient (None) are different answers.",
            claim=0.0,
        ),
    ),
)


class _Forward:
    """x * sin(x), remembering the h it returns so the graph can be named."""

    def __init__(self):
        self.outputs = []

    def __call__(self, x):
        import torch

        h = x * torch.sin(x)
        self.outputs.append(h)
        return h


def _two_losses_view(module):
    import torch

    from coach.runtime import graphs as g

    forward, x = _Forward(), torch.tensor([0.5, 1.0], requires_grad=True)
    call = "two_losses_one_forward(forward, x) with forward(x) = x * sin(x), x = [0.5, 1.0]"

    def draw(root):
        names = {
            "the loss walked first": root,
            "x": x,
            **({"h": forward.outputs[0]} if forward.outputs else {}),
        }
        return g.walk(g.require_grad_fn(root, "the first loss walked").grad_fn, names)

    with g.learner_code(module, call), g.first_backward_pass(draw) as drawn:
        module.two_losses_one_forward(forward, x)
    if not drawn:
        raise g.KataBroken(f"{call} ran no backward pass: there is no walk to show.")
    return g.GraphView(
        f"the first walk of {call}",
        drawn[0],
        [
            "loss_b = (h ** 2).sum() hangs off the same h. Its walk goes through h's part of",
            "the graph (MulBackward0, SinBackward0) again, so the first walk must keep the",
            "values saved there (retain_graph=True), and the last walk lets them go.",
        ],
    )


def _unused_view(module):
    import torch

    from coach.runtime import graphs as g

    params = [torch.tensor(v, requires_grad=True) for v in (0.5, -1.0, 2.0)]
    p0, p1, _ = params
    loss = p0 * 3 + torch.relu(p1)
    call = "unused_parameters(loss, params) with loss = params[0] * 3 + relu(params[1])"
    with g.learner_code(module, call):
        answer = module.unused_parameters(loss, params)
    names = {"loss": loss, "params[0]": p0, "params[1]": p1}
    return g.GraphView(
        call,
        g.walk(loss.grad_fn, names),
        [
            "params[1] is reached (through a relu that is off: its gradient is 0, not None);",
            "params[2] has no AccumulateGrad node anywhere in the graph: no path leads to it.",
            f"Your unused_parameters says {answer!r}; the graph says [False, False, True].",
        ],
    )


def graph_views(module) -> list:
    """The graphs `make graph` prints and `make plots` draws, from the learner's module."""
    return [_two_losses_view(module), _unused_view(module)]


LESSON = Lesson(
    title="autograd.grad and the graph's lifetime",
    concept="gradients returned, not stored; a walk frees what the graph saved",
    source="PyTorch docs: torch.autograd.grad; Autograd mechanics (saved tensors)",
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
    returns_gradients=("cube_sum_grad", "two_losses_one_forward"),
)

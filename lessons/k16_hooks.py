"""Kata 16's teaching unit: hooks."""

from coach.core.lesson import Lesson, Question, Quiz, code

HINTS = (
    """
        Where in the graph could you change a gradient on its way back, without touching
        the forward values? And how would you run your own code the moment a parameter's
        .grad is ready?
    """,
    """
        A tensor hook gets the gradient arriving at that tensor and may return a replacement;
        a post-accumulate-grad hook gets the parameter right after its .grad is written.
        reverse_gradient needs a tensor that only the reversed path uses, equal to x, with
        its own place in the graph, and a hook on it. step_in_backward moves each parameter
        inside its hook, unrecorded, and empties its .grad. Every hook stays until its
        handle's remove() is called.
    """,
    """
        The tools: x.clone() (or x.view_as(x)) is a new tensor equal to x; register_hook on
        it takes a function of grad that returns the new gradient (a new tensor, never an
        in-place edit of grad). register_post_accumulate_grad_hook takes a function of the
        parameter; inside it, the update under torch.no_grad(), then param.grad = None. Keep
        every handle and remove them all after backward() (a try/finally removes them even
        if backward() fails).
    """,
    """
        Nearly the code:

            reversed_x = x.clone()
            reversed_x.register_hook(lambda grad: ...)   # a new tensor, never grad.mul_()

            handles = [p.register_post_accumulate_grad_hook(update) for p in params]
            loss = loss_fn()
            loss.backward()
            for handle in handles:
                ...
    """,
)

QUIZ = Quiz(
    setup="w = torch.tensor(1.0, requires_grad=True)",
    questions=(
        Question(
            "hooks_intermediate",
            "x = 3 requires grad, y = x * 2 with the hook `lambda g: g * 10`, z = y + x. "
            "What is x.grad after z.backward()?",
            code("""
                x = torch.tensor(3.0, requires_grad=True)
                y = x * 2
                y.register_hook(lambda g: g * 10)
                z = y + x
                z.backward()
                result = x.grad.item()
            """),
            "21.0: the path through y carries 1 * 10 * 2 = 20, the direct path from z to x "
            "carries 1, untouched by the hook on y.",
            claim=21.0,
        ),
        Question(
            "hooks_off_the_path",
            "a and b require grad; c = a * 2 gets the hook `lambda g: g * 10`; "
            "loss = c + b * 3. What is b.grad after loss.backward()?",
            code("""
                a = torch.tensor(1.0, requires_grad=True)
                b = torch.tensor(1.0, requires_grad=True)
                c = a * 2
                c.register_hook(lambda g: g * 10)
                loss = c + b * 3
                loss.backward()
                result = b.grad.item()
            """),
            "3.0: b's gradient never passes through c, so the hook on c cannot touch it. "
            "(a.grad is 20.0.)",
            claim=3.0,
        ),
        Question(
            "hooks_never_removed",
            "Two calls each register `lambda g: g * 2` on w and never remove it. Then "
            "(w * 3).backward(). What is w.grad?",
            code("""
                for _ in range(2):
                    w.register_hook(lambda g: g * 2)
                (w * 3).backward()
                result = w.grad.item()
            """),
            "12.0: both hooks run, one after the other: 3 * 2 * 2. A hook stays until its "
            "handle is removed.",
            claim=12.0,
        ),
        Question(
            "hooks_removed",
            "handle = w.register_hook(lambda g: g * 2), then handle.remove(), then "
            "(w * 3).backward(). What is w.grad?",
            code("""
                handle = w.register_hook(lambda g: g * 2)
                handle.remove()
                (w * 3).backward()
                result = w.grad.item()
            """),
            "3.0: the hook was removed before backward(), so the gradient is untouched.",
            claim=3.0,
        ),
        Question(
            "hooks_post_accumulate",
            "A post-accumulate-grad hook on w records w.grad. Two backward() calls of w * 3, "
            "nothing cleared. What does the hook record the second time?",
            code("""
                seen = []
                w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.item()))
                (w * 3).backward()
                (w * 3).backward()
                result = seen[-1]
            """),
            "6.0: the hook runs after the new gradient has been added into w.grad, so it sees "
            "the sum, 3 + 3.",
            claim=6.0,
        ),
    ),
)


def graph_views(module) -> list:
    """loss = sum(reverse_gradient(x) + x): the reversed path and the direct one."""
    import torch

    from coach.runtime import graphs

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    call = "reverse_gradient(x, 2.0)"
    with graphs.learner_code(module, call):
        reversed_x = module.reverse_gradient(x, 2.0)
    graphs.require_grad_fn(reversed_x, f"{call}'s result")
    loss = (reversed_x + x).sum()
    tree = graphs.walk(loss.grad_fn, {"loss": loss, "r": reversed_x, "x": x})
    with graphs.learner_code(module, "backward() through your hook"):
        (grad,) = torch.autograd.grad(loss, x)
    view = graphs.GraphView(
        f"loss = (r + x).sum() with r = {call}",
        tree,
        [
            "Two paths lead from loss down to x: one through r, one straight from the sum.",
            "The hook sits on r, so it changes only the gradient on r's path: -2 * 1 through r",
            f"plus 1 straight is -1.0 per element. Your code gives x.grad = {grad.tolist()}.",
        ],
    )
    return [view]


LESSON = Lesson(
    title="Hooks",
    concept="register_hook replaces a gradient; post-accumulate hooks step; handles remove",
    source="PyTorch docs: Tensor.register_hook, Tensor.register_post_accumulate_grad_hook",
    hints=HINTS,
    quiz=QUIZ,
    changes_inputs={"step_in_backward": ("params",)},
    graph=graph_views,
)

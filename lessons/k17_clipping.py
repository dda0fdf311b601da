"""Kata 17's teaching unit: gradient clipping."""

from coach.core.lesson import GRAD, YES_NO, Fact, Lesson, Question, Quiz, code

HINTS = (
    """
        Clipping by the global norm: is each parameter's gradient measured on its own, or
        all of them together? Can clipping ever make a gradient bigger?
    """,
    """
        The global norm measures all gradients as ONE vector and shrinks them all by ONE
        factor, max_norm / total, only when the total is above max_norm; it never looks at a
        parameter on its own and never makes anything bigger. A total that is inf or nan must
        stop everything before any gradient changes. Clipping by value caps every element on
        its own. A clipped step clears, computes the gradients, clips them (they exist only
        now), then updates.
    """,
    """
        The tools: the gradients that exist are the .grad that are not None; the total is
        the square root of the sum of every grad.pow(2).sum() (math.sqrt of an empty Python
        sum is 0.0); math.isfinite checks it; mul_ scales in place and clamp_ caps in place.
        The update goes under torch.no_grad().
    """,
    """
        Nearly the code of clip_grad_norm:

            grads = [p.grad for p in parameters if p.grad is not None]
            total_norm = math.sqrt(sum(grad.pow(2).sum().item() for grad in grads))
            if not math.isfinite(total_norm):
                raise RuntimeError(...)
            if total_norm > max_norm:
                for grad in grads:
                    ...                      # one factor for all: max_norm / total_norm
            return total_norm

        clip_grad_value: p.grad.clamp_(-clip_value, clip_value) for each gradient.
    """,
)

QUIZ = Quiz(
    setup=code("""
        from torch.nn.utils import clip_grad_norm_, clip_grad_value_
        a = torch.zeros(2, requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        a.grad = torch.tensor([3.0, 4.0])
        b.grad = torch.tensor([12.0])
    """),
    questions=(
        Question(
            "clip_total_norm",
            "a.grad is [3, 4] and b.grad is [12]. What does clip_grad_norm_([a, b], 6.5) return?",
            "result = clip_grad_norm_([a, b], max_norm=6.5)",
            "13.0: the norm of all gradients as one vector, sqrt(9 + 16 + 144), measured "
            "before clipping. a's own norm is 5 and b's is 12; the global norm is not their sum.",
            claim=13.0,
        ),
        Question(
            "clip_small_parameter_too",
            "After clip_grad_norm_([a, b], 6.5), what is a.grad[0]? (a's own norm, 5, is "
            "below 6.5.)",
            "clip_grad_norm_([a, b], max_norm=6.5)\nresult = a.grad[0]",
            "1.5: every gradient is multiplied by the same factor 6.5 / 13 = 0.5, a's too, "
            "although a's own norm is below the limit. (torch divides by 13 + 1e-6, so the "
            "exact value is a hair below 1.5.)",
            claim=1.5,
        ),
        Question(
            "clip_below_limit",
            "clip_grad_norm_([a, b], 20.0): the total norm 13 is below the limit. a.grad[0]?",
            "clip_grad_norm_([a, b], max_norm=20.0)\nresult = a.grad[0]",
            "3.0: below the limit the factor is clamped to 1, so nothing changes. Clipping "
            "never scales a gradient up.",
            claim=3.0,
        ),
        Question(
            "clip_value_direction",
            "clip_grad_value_([a], 2.0) clamps each element into [-2, 2]. Does a.grad still "
            "point the same way as [3, 4]?",
            code("""
                clip_grad_value_([a], clip_value=2.0)
                print("a.grad =", a.grad)
                before = torch.tensor([3.0, 4.0])
                result = bool(torch.allclose(a.grad / a.grad.norm(), before / before.norm()))
            """),
            "No: [3, 4] became [2, 2]. Clipping by value shrinks the big elements more than "
            "the small ones, so the direction changes; clipping by norm keeps it.",
            claim=False,
            kind=YES_NO,
        ),
        Question(
            "clip_before_backward",
            "x has no gradient yet. clip_grad_norm_([x], 1.0), then (10 * x).sum().backward(). "
            "What is x.grad[0]?",
            code("""
                x = torch.zeros(2, requires_grad=True)
                print("norm clipped:", clip_grad_norm_([x], max_norm=1.0))
                (10 * x).sum().backward()
                result = x.grad[0]
            """),
            "10.0: clipping ran when there was no gradient to clip (the norm was 0), and "
            "backward() wrote the full gradient afterwards. Clip between backward() and the "
            "update.",
            claim=10.0,
        ),
    ),
)

FACTS = (
    Fact(
        "clip_grad_norm_ returns the total norm from before clipping as a 0-d tensor, not a float.",
        code("""
            p = torch.zeros(2, requires_grad=True)
            p.grad = torch.tensor([3.0, 4.0])
            norm = torch.nn.utils.clip_grad_norm_([p], max_norm=1.0)
            result = (type(norm).__name__, norm.dim(), norm.item())
        """),
        outcome=("Tensor", 0, 5.0),
    ),
)


LESSON = Lesson(
    title="Gradient clipping",
    concept="one global norm for all gradients; clipping by value changes direction",
    source="torch.nn.utils.clip_grad_norm_ and clip_grad_value_ docs",
    hints=HINTS,
    quiz=QUIZ,
    changes_inputs={
        # in place: the same .grad tensors, their values scaled or clamped
        "clip_grad_norm": {"parameters": (GRAD,)},
        "clip_grad_value": {"parameters": (GRAD,)},
        "clipped_sgd_step": ("parameters",),
    },
    facts=FACTS,
)

"""Kata 12's teaching unit: checking a gradient numerically."""

from coach.core.lesson import YES_NO, Lesson, Question, Quiz, code

HINTS = (
    """
        A gradient entry is a slope. How could you measure it without autograd, and how
        close must two measurements be to count as the same?
    """,
    """
        Move one element of x a little each way, evaluate f at both points, and divide the
        difference by the distance: a central difference, one element at a time, in float64
        so rounding does not drown the slope. Compare with a tolerance that grows with the
        size of the numbers (relative) plus a floor for numbers near zero (absolute).
    """,
    """
        numerical_grad: work on a float64 copy of x that you may change; reshaping to one
        dimension (view(-1)) reaches element i whatever the shape, 0-d included. For each i:
        remember the value, evaluate at value + eps and value - eps, put it back, and store
        (above - below) / (2 * eps) in a float64 result of the same shape. gradients_match:
        every element (all()) passes |a - n| <= atol + rtol * |n|, as a Python bool.
        check_gradient: autograd on a float64 copy of x that requires grad, then the other
        two functions.
    """,
    """
        Nearly the code of numerical_grad's loop:

            flat_point, flat_grad = point.view(-1), grad.view(-1)
            for i in range(flat_point.numel()):
                original = flat_point[i].item()
                flat_point[i] = original + eps
                above = float(f(point))
                ...                                   # the step down, and put it back
                flat_grad[i] = (above - below) / (2 * eps)

        point = x.detach().to(torch.float64).clone(), grad = torch.zeros_like(point).
    """,
)

QUIZ = Quiz(
    setup=code("""
            f = lambda t: t**3   # f'(1) = 3
            x = torch.tensor(1.0, dtype=torch.float64)
        """),
    questions=(
        Question(
            "k12_one_sided",
            "The one-sided difference (f(x + eps) - f(x)) / eps with eps = 1e-3. What do you get?",
            "eps = 1e-3\nresult = ((f(x + eps) - f(x)) / eps).item()",
            "3.003001: off by about 3 * eps, since the error of a one-sided step is eps * "
            "f''(x) / 2 = eps * 6 / 2. It shrinks only as fast as eps does.",
            claim=3.003001,
        ),
        Question(
            "k12_central_error",
            "The central difference with the same eps. How many times closer to 3 is it than "
            "the one-sided one?",
            code("""
                    eps = 1e-3
                    one_sided = (f(x + eps) - f(x)) / eps
                    central = (f(x + eps) - f(x - eps)) / (2 * eps)
                    print("one-sided:", one_sided.item(), " central:", central.item())
                    result = ((one_sided - 3) / (central - 3)).item()
                """),
            "3001.0007, so about 3001 times: for a cubic the central difference is exactly "
            "f' + eps**2 = 3.000001, while the one-sided one is off by 3.001e-3 with the same "
            "step (the 0.0007 is float64 round-off).",
            claim=3001.0007,
        ),
        Question(
            "k12_float32_eps",
            "The central difference again, but in float32 with eps = 1e-6. What do you get?",
            code("""
                    x32 = x.float()
                    eps = 1e-6
                    result = ((f(x32 + eps) - f(x32 - eps)) / (2 * eps)).item()
                """),
            "2.9504..., almost 2% off: near 1, float32's spacing is about 1e-7, so a step of "
            "1e-6 keeps only a digit or two of the change in f. In float64 the same step gives "
            "3 to better than 1e-10.",
            claim=2.9504,
        ),
        Question(
            "k12_tiny_eps",
            "And float32 with eps = 1e-8?",
            code("""
                    x32 = x.float()
                    eps = 1e-8
                    result = ((f(x32 + eps) - f(x32 - eps)) / (2 * eps)).item()
                """),
            "0.0: 1 + 1e-8 rounds back to 1 in float32, so both sides evaluate f at the same "
            "point. A smaller eps is not a better one.",
            claim=0.0,
        ),
        Question(
            "k12_gradcheck_float32",
            "torch.autograd.gradcheck on a correct function, but with a float32 input. Does "
            "it pass (raise_exception=False returns the verdict)?",
            code("""
                    import warnings
                    x32 = torch.tensor([0.3, 1.2], requires_grad=True)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        result = torch.autograd.gradcheck(
                            lambda t: (t**3).sum(), (x32,), raise_exception=False
                        )
                """),
            "No: gradcheck's numbers are measured in the input's dtype, and in float32 its "
            "eps = 1e-6 drowns in round-off. It warns that the input is not double precision; "
            "give it float64 inputs.",
            claim=False,
            kind=YES_NO,
        ),
    ),
)

LESSON = Lesson(
    title="Checking a gradient numerically",
    concept="central differences, float64, a relative tolerance",
    source="torch.autograd.gradcheck docs; minitorch's central difference; CS231n gradient checks",
    hints=HINTS,
    quiz=QUIZ,
)

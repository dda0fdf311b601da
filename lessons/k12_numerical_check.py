"""Kata 12's teaching unit: checking a gradient numerically."""

from coach.core.lesson import YES_NO, Fact, Lesson, Question, Quiz, code

HINTS = (
    """
        A gradient entry is a slope. How could you measure it without autograd, and how
        close must two measurements be to count as the same?
    """,
    """
        Move one element of x a little each way, evaluate f at both points, and divide the
        difference by the distance: a central difference, one element at a time, in float64
        (in float32 the rounded steps put slopes 1-10% off). Compare with a tolerance that
        grows with the size of the numbers (relative) plus a floor for numbers near zero
        (absolute).
    """,
    """
        numerical_grad: work on a float64 copy of x that you may change, laid out row by row
        (clone(memory_format=torch.contiguous_format)): a plain clone() of a transposed W.T
        keeps its strides, and view(-1) refuses it. Reshaped to one dimension, view(-1)
        reaches element i whatever the shape, 0-d included. For each i:
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

        point = x.detach().to(torch.float64).clone(memory_format=torch.contiguous_format)
        and grad = torch.zeros_like(point).
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
            "2.9504..., almost 2% off: 1 + 1e-6 and 1 - 1e-6 are not float32 numbers and "
            "round to 1.00000095 and 0.99999899, so the step really taken is 1.967e-6, not the "
            "2e-6 the formula divides by. In float64 the same step gives 3 to better than "
            "1e-10.",
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
            "No: gradcheck measures its numerical derivatives in the input's dtype, and in "
            "float32, with its eps = 1e-6, they come out 0.2980 and 4.1723 where 3x**2 is 0.27 "
            "and 4.32: 10% and 3% off, far outside its rtol of 1e-3. It warns that the input is "
            "not double precision; give it float64 inputs.",
            claim=False,
            kind=YES_NO,
        ),
    ),
)

FACTS = (
    Fact(
        "In float32, 1 + 1e-6 and 1 - 1e-6 round to 1.00000095 and 0.99999899.",
        code("""
            one = torch.tensor(1.0)
            result = (round((one + 1e-6).item(), 8), round((one - 1e-6).item(), 8))
        """),
        outcome=(1.00000095, 0.99999899),
    ),
    Fact(
        "In float32, the step between 1 - 1e-6 and 1 + 1e-6 is 1.967e-6, not 2e-6.",
        code("""
            one = torch.tensor(1.0)
            result = ((one + 1e-6) - (one - 1e-6)).item() / 1e-6
        """),
        outcome=1.96695,
    ),
    Fact(
        "Divided by the step really taken, float32's difference of x**3 around 1 gives 3: "
        "the 2.95 comes from dividing by 2e-6.",
        code("""
            one = torch.tensor(1.0)
            above, below = one + 1e-6, one - 1e-6
            result = ((above**3 - below**3) / (above - below)).item()
        """),
        outcome=3.0,
    ),
    Fact(
        "In float64, the central difference of x**3 at 1 with eps = 1e-6 is within 1e-10 of 3.",
        code("""
            x, eps = torch.tensor(1.0, dtype=torch.float64), 1e-6
            result = abs(((x + eps) ** 3 - (x - eps) ** 3).item() / (2 * eps) - 3) < 1e-10
        """),
        outcome=True,
    ),
    Fact(
        "In float32, gradcheck's numerical derivatives of (t**3).sum() at (0.3, 1.2) are 0.2980 "
        "and 4.1723.",
        code("""
            import re
            import warnings
            x32 = torch.tensor([0.3, 1.2], requires_grad=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    torch.autograd.gradcheck(lambda t: (t**3).sum(), (x32,))
                except RuntimeError as error:  # torch's GradcheckError
                    numerical = str(error).split("analytical")[0]
            result = [float(n) for n in re.findall(r"-?[0-9]+[.][0-9]+", numerical)]
        """),
        outcome=[0.298, 4.1723],
    ),
    Fact(
        "A clone() of a transposed tensor keeps its strides, and view(-1) refuses it.",
        "torch.randn(2, 3).T.clone().view(-1)",
        outcome=RuntimeError,
        message="view size is not compatible with input tensor's size and stride",
    ),
    Fact(
        "clone(memory_format=torch.contiguous_format) of a transposed tensor can be viewed "
        "flat, elements in row order.",
        code("""
            W = torch.arange(6.0).view(2, 3)
            result = W.T.clone(memory_format=torch.contiguous_format).view(-1).tolist()
        """),
        outcome=[0.0, 3.0, 1.0, 4.0, 2.0, 5.0],
    ),
)


LESSON = Lesson(
    title="Checking a gradient numerically",
    concept="central differences, float64, a relative tolerance",
    source="torch.autograd.gradcheck docs; minitorch's central difference; CS231n gradient checks",
    hints=HINTS,
    quiz=QUIZ,
    returns_gradients=("numerical_grad",),
    facts=FACTS,
)

"""Kata 18's teaching unit: NaN gradients from values nobody used."""

from coach.core.lesson import CHOICE, YES_NO, Lesson, Question, Quiz, code

HINTS = (
    """
        torch.where picks one branch per element. But which branches does it compute, and
        which ones get a gradient in backward()? What is 0 times inf?
    """,
    """
        torch.where computes both of its branches everywhere, and in backward both get a
        gradient (the untaken one gets zeros). 0 * inf is nan, so a branch with an infinite
        derivative anywhere poisons the gradient even where it is not picked. The fix is a
        second where, before the dangerous function: give it a safe input where its branch
        will not be picked, then pick as before. Masking by multiplication does not work.
    """,
    """
        safe_log: a safe input is 1.0 where x <= 0; log of it is finite, and so is its
        derivative. safe_norm: the danger is sqrt at 0, so the safe value goes into the sum
        of squares, not into v. nan_source: backward() inside torch.autograd.detect_anomaly()
        raises a RuntimeError whose message names the backward function, "Function
        'SomethingBackward0' returned nan values"; re.search can pull the name out. Work on
        your own leaf, x.detach().clone().requires_grad_().
    """,
    """
        Nearly the code:

            positive = x > 0
            safe_x = torch.where(positive, x, 1.0)
            return torch.where(positive, ..., 0.0)         # pick again

            leaf = x.detach().clone().requires_grad_()
            try:
                with torch.autograd.detect_anomaly():
                    ...                                   # the loss of leaf, and backward()
            except RuntimeError as error:
                found = re.search(r"Function '(\\w+)'", str(error))
                return found.group(1)
            return None
    """,
)

QUIZ = Quiz(
    setup="x = torch.tensor([0.0, 2.0], requires_grad=True)",
    questions=(
        Question(
            "nan_where_value",
            "y = torch.where(x > 0, torch.log(x), 0.0). What is y[0]?",
            "y = torch.where(x > 0, torch.log(x), 0.0)\nresult = y[0]",
            "0.0: the value is right. log(0) = -inf was computed too, but where picked 0.0 "
            "at x = 0.",
            claim=0.0,
        ),
        Question(
            "nan_where_grad",
            "Same y. After y.sum().backward(), is x.grad[0] nan?",
            code("""
                y = torch.where(x > 0, torch.log(x), 0.0)
                y.sum().backward()
                print("x.grad =", x.grad)
                result = bool(x.grad[0].isnan())
            """),
            "Yes: where sent a gradient of 0 to the log branch at x = 0, and log's backward "
            "divided it by x = 0. 0 / 0 is nan, and it landed in x.grad.",
            claim=True,
            kind=YES_NO,
        ),
        Question(
            "nan_zero_times_inf",
            "Is torch.tensor(0.0) * float('inf') equal to 0?",
            code("""
                product = torch.tensor(0.0) * float("inf")
                print("0 * inf =", product)
                result = bool(product == 0)
            """),
            "No: 0 * inf is nan, and nan equals nothing, not even itself. A zero gradient "
            "does not cancel an infinite derivative.",
            claim=False,
            kind=YES_NO,
        ),
        Question(
            "nan_double_where",
            "The double where: safe_x = torch.where(x > 0, x, 1.0), then "
            "y = torch.where(x > 0, torch.log(safe_x), 0.0). x.grad[0] after y.sum().backward()?",
            code("""
                safe_x = torch.where(x > 0, x, 1.0)
                y = torch.where(x > 0, torch.log(safe_x), 0.0)
                y.sum().backward()
                print("x.grad =", x.grad)
                result = x.grad[0]
            """),
            "0.0: log now sees 1.0 at x = 0, and its backward divides the 0 it gets by 1. The "
            "first where picked the constant 1.0 there, so x gets 0 from it too.",
            claim=0.0,
        ),
        Question(
            "nan_anomaly_names",
            "z = torch.zeros(3, requires_grad=True); (z**2).sum().sqrt().backward() under "
            "torch.autograd.detect_anomaly(). Which backward function does the error name: "
            "sqrt, pow or sum?",
            code("""
                import re
                import warnings
                z = torch.zeros(3, requires_grad=True)
                warnings.simplefilter("ignore")  # anomaly mode warns that it is on
                try:
                    with torch.autograd.detect_anomaly():
                        (z**2).sum().sqrt().backward()
                    result = "no error"
                except RuntimeError as error:
                    print(error)
                    name = re.search(r"Function '(\\w+)'", str(error)).group(1)
                    result = name.removesuffix("Backward0").lower()
            """),
            "pow: SqrtBackward0 returns inf at 0, not nan, so it passes the check. PowBackward0 "
            "then multiplies that inf by 2 * z = 0, and that is the first nan. The op that "
            "anomaly mode names is where the nan appears, which may be one step after the cause.",
            claim="pow",
            kind=CHOICE,
            options=("sqrt", "pow", "sum"),
        ),
    ),
)


def graph_views(module) -> list:
    """safe_log's graph from the learner's code: both branches of each where are in it."""
    import torch

    from coach.runtime import graphs

    x = torch.tensor([0.0, 2.0], requires_grad=True)
    call = "safe_log(tensor([0.0, 2.0]))"
    with graphs.learner_code(module, call):
        y = module.safe_log(x)
    graphs.require_grad_fn(y, f"{call}'s result")
    root = graphs.walk(y.grad_fn, {"y": y, "x": x})
    with graphs.learner_code(module, call):
        (grad,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    grad_text = "None" if grad is None else str([round(value, 4) for value in grad.tolist()])
    notes = [
        "backward() walks every edge below y, the branch where did not pick included: that",
        "branch gets a gradient of 0, and each node on it still runs its backward.",
        f"Here x.grad = {grad_text}"
        + (
            ": nan at x = 0, where LogBackward0 divided 0 by 0. Make log's input safe first."
            if grad is not None and bool(grad.isnan().any())
            else ": finite at x = 0."
        ),
    ]
    return [graphs.GraphView(f"y = {call}", root, notes)]


LESSON = Lesson(
    title="NaN gradients from torch.where",
    concept="both branches of where are computed; the double where; detect_anomaly",
    source="torch.where and torch.autograd.detect_anomaly docs; Autograd mechanics",
    hints=HINTS,
    quiz=QUIZ,
    graph=graph_views,
)

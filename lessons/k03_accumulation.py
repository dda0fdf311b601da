"""Kata 3's teaching unit: the accumulation trap."""

from coach.core.lesson import Lesson, Question, Quiz, code

HINTS = (
    """
        Does backward() replace what is in .grad, or add to it? The three functions are
        about seeing what it does, stopping it, and then using it on purpose.
    """,
    """
        backward() adds into .grad; it never replaces what is there. grads_without_zeroing
        makes x once, before the loop, and builds a fresh y from it on every pass (a walk
        frees what y's graph saved). grads_with_zeroing is the same loop, with x's gradient
        cleared at the top of each pass. accumulated_batch_grad uses the adding on purpose:
        one backward() per micro-batch, nothing cleared in between, each piece weighted so the
        sum is the full batch's gradient.
    """,
    """
        Clearing: setting x.grad to None works on every pass; zero_() on x.grad fails on the
        first, because x.grad is None until the first backward(). Micro-batches:
        torch.tensor_split cuts X and y into matching pieces. The full-batch mean divides by
        len(X) but a piece's mean by len(X_part), so a piece's share of the full loss is its
        mean times len(X_part) / len(X).
    """,
    """
        Nearly the code of accumulated_batch_grad:

            w = torch.tensor(float(w0), requires_grad=True)
            for X_part, y_part in zip(torch.tensor_split(X, chunks), ...):
                part_loss = ...                                # this piece's own mean
                (part_loss * len(X_part) / len(X)).backward()  # no clearing in between
            return w.grad.item()

        The other two: x = torch.tensor(float(x0), requires_grad=True) before the loop; in
        it, (x**2).backward() and record x.grad.item(); with zeroing, x.grad = None first.
    """,
)

QUIZ = Quiz(
    setup="x = torch.tensor(3.0, requires_grad=True)",
    questions=(
        Question(
            "first_backward",
            "y = x**2, so dy/dx = 2x. After one backward(), what is x.grad?",
            "y = x**2\ny.backward()\nresult = x.grad.item()",
            "6.0: 2 * 3. The first backward() finds x.grad empty (None) and fills it.",
            claim=6.0,
        ),
        Question(
            "second_backward",
            "Build y again and call backward() again, without clearing. What is x.grad?",
            code("""
                    y = x**2
                    y.backward()
                    y = x**2   # a fresh graph, the same x
                    y.backward()
                    result = x.grad.item()
                """),
            "12.0: 6 + 6. backward() adds into .grad instead of replacing it.",
            claim=12.0,
        ),
        Question(
            "after_zeroing",
            "Two backward() calls as before, then x.grad.zero_(), then one more. x.grad?",
            code("""
                    for _ in range(2):
                        y = x**2
                        y.backward()
                    x.grad.zero_()
                    y = x**2
                    y.backward()
                    result = x.grad.item()
                """),
            "6.0: zero_() emptied the pile, so only the newest gradient is in it. That is "
            "what optimizer.zero_grad() is for.",
            claim=6.0,
        ),
        Question(
            "same_graph_twice",
            "Call backward() twice on the same y. What happens?",
            "y = x**2\ny.backward()\ny.backward()\nresult = x.grad.item()",
            "It raises RuntimeError: to differentiate x**2 the graph saved x, and backward() "
            "frees saved values once it has used them, so this graph cannot be walked twice. "
            "(A graph that saved nothing, like y = x + 1, can.) Build a new y each time, or "
            "pass retain_graph=True to the first call.",
            claim=RuntimeError,
        ),
        Question(
            "halves_unweighted",
            "On the full batch, d(loss)/dw at w = 0 is -30. Two halves, each half's own "
            "mean loss backward()ed, nothing cleared. What is w.grad?",
            code("""
                    X = torch.tensor([1.0, 2.0, 3.0, 4.0])
                    y = torch.tensor([2.0, 4.0, 6.0, 8.0])
                    w = torch.tensor(0.0, requires_grad=True)
                    ((w * X[:2] - y[:2]) ** 2).mean().backward()
                    ((w * X[2:] - y[2:]) ** 2).mean().backward()
                    result = w.grad.item()
                """),
            "-60.0: each half's mean already counts as a whole batch (-10 and -50), so the "
            "two add up to twice the full-batch -30. Weighting each piece's loss fixes "
            "that; by how much is part of the kata.",
            claim=-60.0,
        ),
    ),
)

LESSON = Lesson(
    title="The accumulation trap",
    concept="gradients add up until you clear them",
    source="Seed notebook, Exercise 3",
    hints=HINTS,
    quiz=QUIZ,
)

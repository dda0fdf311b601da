"""Kata 15's teaching unit: grad modes and freezing."""

from coach.core.lesson import (
    GRAD,
    NEW_GRAD,
    REQUIRES_GRAD,
    VALUES,
    YES_NO,
    Fact,
    Lesson,
    Question,
    Quiz,
    code,
)

HINTS = (
    """
        Two different jobs. frozen_features wants a forward pass that autograd does not
        record at all; fine_tune_head wants autograd to record everything except the body's
        parameters. Which switch turns recording off for a block of code, and which one for a
        single tensor?
    """,
    """
        The first job is a grad mode: a block of code in which nothing is recorded (or a
        result cut from the graph afterwards). The second is a per-tensor flag: a parameter
        that does not require grad gets no gradient and does not move, while everything else
        is recorded as usual. Switching recording off for the whole forward pass would stop
        the head from learning too: the loss would have no grad_fn.
    """,
    """
        The tools: torch.no_grad() (torch.inference_mode() makes inference tensors, which
        autograd refuses to save later; model.eval() records everything as usual);
        model[0].requires_grad_(False) freezes every parameter of the body. After backward(),
        only the head's parameters have a .grad: update those (or skip any parameter whose
        .grad is None) under no_grad, then clear them.
    """,
    """
        fine_tune_head, nearly the code:

            model[0].requires_grad_(False)
            for _ in range(steps):
                loss = ...                  # mean((model(x) - y) ** 2)
                loss.backward()
                with torch.no_grad():
                    for p in model[2].parameters():
                        ...                 # move p against p.grad, then clear p.grad
                losses.append(...)          # the loss as a float: loss.item()
    """,
)

QUIZ = Quiz(
    setup=code("""
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
        x = torch.tensor([[1.0, 2.0]])
    """),
    questions=(
        Question(
            "modes_eval_records",
            "After model.eval(), does model(x).sum() still have a grad_fn?",
            "model.eval()\nloss = model(x).sum()\nresult = loss.grad_fn is not None",
            "Yes: eval() only switches layers such as dropout and batch norm to their "
            "inference behaviour. Autograd records the forward pass as before.",
            claim=True,
            kind=YES_NO,
        ),
        Question(
            "modes_no_grad_backward",
            "loss = model(x).sum() computed inside `with torch.no_grad():`. What does "
            "loss.backward() do?",
            code("""
                with torch.no_grad():
                    loss = model(x).sum()
                loss.backward()
                result = model.weight.grad
            """),
            "It raises RuntimeError: results computed under no_grad have no grad_fn and do "
            "not require grad, so there is nothing to backpropagate through.",
            claim=RuntimeError,
        ),
        Question(
            "modes_inference_later",
            "features = model(x) under torch.inference_mode(), then a new Linear layer is "
            "trained on them: head(features).sum().backward(). What happens?",
            code("""
                with torch.inference_mode():
                    features = model(x)
                head = torch.nn.Linear(1, 1)
                head(features).sum().backward()
                result = head.weight.grad
            """),
            "It raises RuntimeError: 'Inference tensors cannot be saved for backward'. The "
            "head's weight gradient needs its input, and autograd refuses to save an "
            "inference tensor. torch.no_grad() would have worked.",
            claim=RuntimeError,
        ),
        Question(
            "modes_frozen_grad",
            "model.weight.requires_grad_(False), then model(x).sum().backward(). What is "
            "model.weight.grad?",
            code("""
                model.weight.requires_grad_(False)
                model(x).sum().backward()
                result = model.weight.grad
            """),
            "None: a frozen parameter gets no gradient at all. The bias, still trainable, "
            "gets its gradient as usual.",
            claim=None,
        ),
        Question(
            "modes_left_out",
            "The weight is not frozen, but each step updates and clears only the bias. "
            "After three steps, what is model.weight.grad[0, 1]?",
            code("""
                for _ in range(3):
                    model.bias.grad = None
                    model(x).sum().backward()
                    with torch.no_grad():
                        model.bias -= 0.1 * model.bias.grad
                result = model.weight.grad[0, 1].item()
            """),
            "6.0: three times x[0, 1] = 2. The weight does not move, but autograd still "
            "computes its gradient at every backward(), and nothing clears it, so the "
            "weight's gradients pile up. (optimizer.zero_grad() likewise clears only the "
            "optimizer's own parameters.)",
            claim=6.0,
        ),
    ),
)


def graph_views(module) -> list:
    """The first training step's loss graph, from the learner's fine_tune_head."""
    import torch

    from coach.runtime import graphs

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh(), torch.nn.Linear(2, 1))
    x, y = torch.tensor([[1.0, 2.0], [3.0, -1.0]]), torch.tensor([[1.0], [0.0]])
    names = {
        "body.weight": model[0].weight,
        "body.bias": model[0].bias,
        "head.weight": model[2].weight,
        "head.bias": model[2].bias,
    }
    call = "fine_tune_head(model, x, y, lr=0.1, steps=1)"
    with (
        graphs.learner_code(module, call),
        graphs.first_backward_pass(
            lambda root: graphs.walk(
                graphs.require_grad_fn(root, "the loss").grad_fn, {"loss": root, **names}
            )
        ) as drawn,
    ):
        module.fine_tune_head(model, x, y, 0.1, 1)
    if not drawn:
        raise graphs.KataBroken(f"{call} ran no backward pass, so there is no graph to draw.")
    frozen = not any(p.requires_grad for p in model[0].parameters())
    notes = [
        "Only head.weight and head.bias have an AccumulateGrad node: backward() ends at them.",
        "The body's output enters the head as a constant (a None edge): with the body frozen,",
        "nothing in it needs a gradient, so autograd recorded none of it.",
    ]
    if not frozen:
        notes = ["The body still requires grad: backward() reaches body.weight and body.bias too."]
    return [graphs.GraphView(f"the loss of the first step of {call}", drawn[0], notes)]


FACTS = (
    Fact(
        "A parameter frozen before it ever had a gradient keeps p.grad None, and SGD's step() "
        "leaves it where it is.",
        code("""
            p = torch.nn.Parameter(torch.tensor([1.0]))
            optimizer = torch.optim.SGD([p], lr=0.1)
            p.requires_grad_(False)
            optimizer.step()
            result = p.grad is None and p.item() == 1.0
        """),
        outcome=True,
    ),
    Fact(
        "A .grad from before the freeze stays, and SGD's step() still moves the frozen weight: "
        "1 - 0.1 * 2 = 0.8.",
        code("""
            p = torch.nn.Parameter(torch.tensor([1.0]))
            optimizer = torch.optim.SGD([p], lr=0.1)
            (p * 2).sum().backward()
            p.requires_grad_(False)
            optimizer.step()
            result = p.item()
        """),
        outcome=0.8,
    ),
)


LESSON = Lesson(
    title="Grad modes and freezing",
    concept="no_grad, inference_mode and requires_grad_(False); eval() stops nothing",
    source="PyTorch docs, Autograd mechanics: Locally disabling gradient computation",
    hints=HINTS,
    quiz=QUIZ,
    changes_inputs={
        # the head trains, the body is frozen; the training flag stays as it was
        "fine_tune_head": {"model": (VALUES, GRAD, NEW_GRAD, REQUIRES_GRAD)},
    },
    graph=graph_views,
    facts=FACTS,
)

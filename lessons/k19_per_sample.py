"""Kata 19's teaching unit: per-sample gradients with torch.func."""

from coach.core.lesson import Fact, Lesson, Question, Quiz, code

HINTS = (
    """
        A per-sample gradient is the gradient of ONE sample's loss. Why can the batch
        gradient not be split back into them, and what shape does a stack of them have?
    """,
    """
        The loop computes each sample's loss and its gradient in turn, and stacks them per
        parameter. torch.func does the same in one call: make the loss a pure function of the
        parameters (and one sample), take its gradient as a function, and map that function
        over the samples while sharing the parameters. The mean of all per-sample gradients
        is the batch gradient.
    """,
    """
        The tools: torch.autograd.grad(loss, params) gives one gradient per parameter;
        torch.stack each parameter's list at the end. functional_call(model, params, (x_i,))
        runs the model with the weights from the dict params; grad(f) differentiates f with
        respect to its first argument; vmap's in_dims says, per argument, which dimension to
        map over, or None to share it. batch_grad: a mean over dim 0, per parameter.
    """,
    """
        Nearly the code of per_sample_grads:

            params = {name: p.detach() for name, p in model.named_parameters()}

            def sample_loss(params, x_i, y_i):
                output = functional_call(model, params, (x_i,))
                return ...                                   # this sample's mean squared error

            return vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)
    """,
)

QUIZ = Quiz(
    setup=code("""
        from torch.func import functional_call, grad, vmap
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        params = {name: p.detach() for name, p in model.named_parameters()}
        X, y = torch.randn(4, 3), torch.randn(4, 2)

        def sample_loss(params, x_i, y_i):
            return ((functional_call(model, params, (x_i,)) - y_i) ** 2).mean()
    """),
    questions=(
        Question(
            "per_sample_shape",
            "per = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y) for 4 samples "
            "and nn.Linear(3, 2). How many numbers does per['weight'] hold?",
            code("""
                per = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)
                print("shape:", tuple(per["weight"].shape))
                result = float(per["weight"].numel())
            """),
            "24.0: shape (4, 2, 3), one (2, 3) gradient per sample. The batch gradient of "
            "weight has just the 6 numbers of shape (2, 3).",
            claim=24.0,
        ),
        Question(
            "per_sample_mean",
            "Compare the mean over the samples of per['weight'] with the gradient of the batch "
            "loss ((model(X) - y) ** 2).mean(). What is the largest difference?",
            code("""
                per = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)
                batch_loss = ((model(X) - y) ** 2).mean()
                (batch_weight,) = torch.autograd.grad(batch_loss, model.weight)
                gap = (per["weight"].mean(dim=0) - batch_weight).abs().max()
                print("largest difference:", gap.item())
                result = round(gap.item(), 4)
            """),
            "0.0 (up to float32 rounding): the batch loss is the mean of the samples' losses, "
            "so its gradient is the mean of their gradients.",
            claim=0.0,
        ),
        Question(
            "per_sample_without_functional_call",
            "sample_loss written with model(x_i) instead of functional_call: what is the "
            "largest absolute value in per['weight']?",
            code("""
                def careless_loss(params, x_i, y_i):
                    return ((model(x_i) - y_i) ** 2).mean()

                per = vmap(grad(careless_loss), in_dims=(None, 0, 0))(params, X, y)
                result = per["weight"].abs().max()
            """),
            "0.0: the loss never used params, so grad, which differentiates with respect to "
            "params, sees a function that does not depend on them. No error, just zeros.",
            claim=0.0,
        ),
        Question(
            "per_sample_item_inside_vmap",
            "A sample_loss that calls .item() on the loss (say, to log it). What does vmap do?",
            code("""
                def logging_loss(params, x_i, y_i):
                    loss = sample_loss(params, x_i, y_i)
                    print(loss.item())
                    return loss

                result = vmap(grad(logging_loss), in_dims=(None, 0, 0))(params, X, y)
            """),
            "It raises RuntimeError: inside vmap the loss stands for all samples at once, so "
            "there is no one number for .item() to give.",
            claim=RuntimeError,
        ),
    ),
)

FACTS = (
    Fact(
        "backward() adds into .grad in place: zeroed with zero_() and then added to, p.grad "
        "stays the same tensor, so a list of it holds the last sample's gradient each time.",
        code("""
            p = torch.tensor([1.0], requires_grad=True)
            kept = []
            for sample in (1.0, 2.0, 3.0):
                if p.grad is not None:
                    p.grad.zero_()
                (p * sample).sum().backward()
                kept.append(p.grad)
            result = [g.item() for g in kept] + [all(g is kept[0] for g in kept)]
        """),
        outcome=[3.0, 3.0, 3.0, True],
    ),
    Fact(
        "Without zeroing, the same .grad tensor adds every sample's gradient: 1 + 2 + 3.",
        code("""
            p = torch.tensor([1.0], requires_grad=True)
            kept = []
            for sample in (1.0, 2.0, 3.0):
                (p * sample).sum().backward()
                kept.append(p.grad)
            result = [g.item() for g in kept]
        """),
        outcome=[6.0, 6.0, 6.0],
    ),
)


LESSON = Lesson(
    title="Per-sample gradients with torch.func",
    concept="grad, vmap and functional_call; the mean of per-sample gradients is the batch's",
    source='torch.func docs and the "Per-sample gradients" tutorial',
    hints=HINTS,
    quiz=QUIZ,
    returns_gradients=("per_sample_grads_loop", "per_sample_grads", "batch_grad"),
    facts=FACTS,
)
